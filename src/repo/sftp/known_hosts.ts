/**
 * The SSH server's host key checked against an OpenSSH known_hosts file (plain and hashed `|1|` host names,
 * `[host]:port`, patterns, `@revoked`): an unknown or changed key is refused, never learned.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";
import { Buffer } from "node:buffer";

/** One key line of a known_hosts file that names the host. */
export interface KnownKey {
  /** The key's type (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...). */
  type: string;
  /** The public key blob (the base64 field decoded). */
  blob: Uint8Array;
  /** `@revoked` lines: the key is refused even where another line trusts it. */
  revoked: boolean;
  /** The line number, for messages. */
  line: number;
}

/** What the check found: the key is trusted, or why it is not. */
export type HostKeyVerdict = "trusted" | "unknown" | "changed" | "revoked";

/** The name known_hosts gives a host on `port`: `host` on 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key lines of known_hosts `text` whose host field matches `host` on `port` (`@cert-authority` lines skipped). */
export function keysForHost(text: string, host: string, port: number): KnownKey[] {
  const name = knownHostsName(host.toLowerCase(), port); // as OpenSSH: a hashed name was hashed lowercased
  const found: KnownKey[] = [];
  text.split("\n").forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === "" || fields[0].startsWith("#")) return;
    const marker = fields[0].startsWith("@") ? fields.shift() : undefined;
    if (marker === "@cert-authority" || fields.length < 3) return;
    if (!hostFieldMatches(fields[0], name)) return;
    const blob = Buffer.from(fields[2], "base64");
    found.push({ type: fields[1], blob: new Uint8Array(blob), revoked: marker === "@revoked", line: index + 1 });
  });
  return found;
}

/** Whether a host field (a hashed `|1|salt|hash`, or comma-separated patterns with `*`, `?` and `!`) names `name`. */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|1|")) {
    const [, , salt, hash] = field.split("|");
    if (salt === undefined || hash === undefined) return false;
    const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64");
    return mac === hash;
  }
  let matched = false;
  for (const pattern of field.split(",")) {
    const negated = pattern.startsWith("!");
    if (!globMatches(negated ? pattern.slice(1) : pattern, name.toLowerCase())) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatches(pattern: string, name: string): boolean {
  const source = pattern.toLowerCase().replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${source}$`).test(name);
}

/** Whether `offered` (the server's key blob) is trusted by `known` (the lines for the host), and if not, why. */
export function judgeHostKey(known: readonly KnownKey[], offered: Uint8Array): HostKeyVerdict {
  const same = (key: KnownKey) => key.blob.length === offered.length && key.blob.every((b, i) => b === offered[i]);
  if (known.some((key) => key.revoked && same(key))) return "revoked";
  if (known.some((key) => !key.revoked && same(key))) return "trusted";
  return known.some((key) => !key.revoked) ? "changed" : "unknown";
}

/** The OpenSSH fingerprint of a key blob: `SHA256:` and the unpadded base64 of its SHA-256. */
export function fingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type a blob names (its first string), such as `ssh-ed25519`. */
export function blobType(blob: Uint8Array): string {
  const length = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0);
  return new TextDecoder().decode(blob.subarray(4, 4 + length));
}

const ALGORITHMS_OF_TYPE: Record<string, string[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

/**
 * The host key algorithms to offer: those of the keys known_hosts holds for the host (as OpenSSH's client does), so
 * a server with several keys shows the one known; `undefined` (the client's defaults) when none is known.
 */
export function hostKeyAlgorithms(known: readonly KnownKey[]): string[] | undefined {
  const algorithms = [
    ...new Set(known.filter((key) => !key.revoked).flatMap((key) => ALGORITHMS_OF_TYPE[key.type] ?? [])),
  ];
  return algorithms.length ? algorithms : undefined;
}
