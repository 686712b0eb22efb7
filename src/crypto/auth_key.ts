/**
 * Snapshot authentication keys: derived one-way from an age X25519 identity, so that a pushing host can prove a
 * snapshot is its own to whoever holds the identity without holding the identity itself; their file format, and the
 * MAC a push records in a snapshot's refs.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { type AgeIdentity, parseRecipient } from "./age.ts";

const SALT = "atocore-backup";
const INFO = "snapshot-authentication-v1";
const MAC_CONTEXT = "atocore-backup snapshot v1\0";
const REFS_MAC_CONTEXT = "atocore-backup refs v1\0";
const HEX64 = /^[0-9a-f]{64}$/;

/** An authentication key and the recipient of the identity it was derived from. */
export interface AuthKey {
  /** The `age1…` recipient (canonical), as the repository's config lists it. */
  readonly recipient: string;
  /** K: 32 bytes. */
  readonly key: Uint8Array;
  /** The line of the key file it was read from (0 when derived), for errors. */
  readonly line: number;
}

/** K = HKDF-SHA256(ikm = the identity's 32-byte X25519 secret, salt, info): reveals nothing of the identity. */
export function deriveAuthKey(identity: AgeIdentity): AuthKey {
  const secret = identity.privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  const key = new Uint8Array(hkdfSync("sha256", secret, SALT, INFO, 32));
  return { recipient: identity.recipient, key, line: 0 };
}

/** The text of a key file for `identities`: a comment saying what it is for, then `<recipient> <K hex>` per line. */
export function formatAuthKeyFile(identities: readonly AgeIdentity[]): string {
  return [
    "# atocore-backup snapshot authentication key(s), from 'remote auth-key'. It cannot decrypt anything;",
    "# it lets a host push snapshots that restore accepts. Install it on each pushing host with mode 600",
    "# and give it with --auth-key FILE or ATOCORE_BACKUP_AUTH_KEY_FILE.",
    ...identities.map(deriveAuthKey).map(({ recipient, key }) => `${recipient} ${Buffer.from(key).toString("hex")}`),
  ].join("\n") + "\n";
}

/**
 * Parse a key file: `#` comments, blank lines, one `<age1… recipient> <64 lowercase hex>` per line, each recipient
 * once. Errors name `source` and the line, never a key.
 *
 * @throws {Error} naming `source` and the line of the first entry that is not a key line, or a file with none.
 */
export function parseAuthKeyFile(text: string, source: string): AuthKey[] {
  const keys: AuthKey[] = [];
  const lines = text.split("\n");
  for (const [index, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    if (/AGE-SECRET-KEY-1/i.test(line)) {
      throw new Error(
        `${source}:${index + 1}: holds an age identity (secret key), which must not be on a pushing host; ` +
          "install the output of 'atocore-backup remote auth-key --identity FILE' instead",
      );
    }
    const [recipient, hex, ...rest] = line.split(/\s+/);
    let canonical: string | null = null;
    try {
      canonical = parseRecipient(recipient);
    } catch { /* reported below */ }
    if (canonical === null || canonical !== recipient || !HEX64.test(hex ?? "") || rest.length > 0) {
      throw new Error(
        `${source}:${index + 1}: not an authentication key line (expected "age1… <64 hex>", as ` +
          "'atocore-backup remote auth-key' prints)",
      );
    }
    const key = new Uint8Array(Buffer.from(hex, "hex"));
    const earlier = keys.find((known) => known.recipient === canonical);
    if (earlier && Buffer.compare(earlier.key, key) === 0) continue; // the same line again ('auth-key >>' run twice)
    if (earlier) {
      throw new Error(
        `${source}:${index + 1}: another key for the recipient of line ${earlier.line}; keep one of them`,
      );
    }
    keys.push({ recipient: canonical, key, line: index + 1 });
  }
  if (keys.length === 0) throw new Error(`${source}: no authentication key in the file`);
  return keys;
}

/**
 * What a snapshot's MAC covers, as text: the repository id, the snapshot object's name and the hex SHA-256 of its bytes
 * (which cover the document, hence every pack and extent by hash).
 */
export interface SnapshotClaim {
  repositoryId: string;
  /** `snapshots/<stamp>_<push id>`. */
  objectName: string;
  /** The hex SHA-256 of the sealed snapshot object. */
  sha256: string;
}

/** HMAC-SHA256(K, "atocore-backup snapshot v1\0" ‖ id ‖ "\0" ‖ name ‖ "\0" ‖ hex SHA-256), as 64 lowercase hex. */
export function snapshotMac(key: AuthKey, claim: SnapshotClaim): string {
  return hmacHex(key, `${MAC_CONTEXT}${claim.repositoryId}\0${claim.objectName}\0${claim.sha256}`);
}

/** Whether `mac` (hex, as found in refs) is `key`'s MAC of `claim`; compared in constant time. */
export function macMatches(key: AuthKey, claim: SnapshotClaim, mac: string): boolean {
  return sameHex(snapshotMac(key, claim), mac);
}

/**
 * What a refs says in public that cleanup, push and a drill go by: the pushing source, its local metadata's hash, the
 * packs, the local publication sequence.
 */
export interface RefsFields {
  source?: string;
  local_sha256?: string;
  sequence?: number;
  packs: readonly { id: string; size: number }[];
}

/**
 * HMAC-SHA256(K, "atocore-backup refs v1\0" ‖ id ‖ "\0" ‖ name ‖ "\0" ‖ hex SHA-256 ‖ "\0" ‖ source ‖ "\0" ‖
 * local_sha256 ‖ "\0" ‖ the packs as `<id>:<size>` joined by commas, in the refs' order [‖ "\0" ‖ the sequence in
 * decimal, when the refs hold one]), an absent source or hash as empty, as 64 lowercase hex: binds what cleanup keeps
 * packs and counts snapshots by, what a push recognises its own by, and the order a drill takes the latest in, to the
 * snapshot. Refs without a sequence keep the MAC they had before it was recorded; one stripped of its sequence fails.
 */
export function refsMac(key: AuthKey, claim: SnapshotClaim, refs: RefsFields): string {
  const list = refs.packs.map(({ id, size }) => `${id}:${size}`).join(",");
  const fields = [claim.repositoryId, claim.objectName, claim.sha256, refs.source ?? "", refs.local_sha256 ?? "", list];
  if (refs.sequence !== undefined) fields.push(String(refs.sequence));
  return hmacHex(key, `${REFS_MAC_CONTEXT}${fields.join("\0")}`);
}

/** Whether `mac` is `key`'s MAC of the fields `refs` of `claim`'s refs (see {@linkcode refsMac}). */
export function refsMacMatches(key: AuthKey, claim: SnapshotClaim, refs: RefsFields, mac: string): boolean {
  return sameHex(refsMac(key, claim, refs), mac);
}

function hmacHex(key: AuthKey, text: string): string {
  return createHmac("sha256", key.key).update(text, "utf8").digest("hex");
}

/** Whether `mac` is 64 lowercase hex equal to `expected`, compared in constant time. */
function sameHex(expected: string, mac: string): boolean {
  if (!HEX64.test(mac)) return false;
  return timingSafeEqual(Buffer.from(expected, "hex"), Buffer.from(mac, "hex"));
}
