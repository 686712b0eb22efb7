/**
 * The age v1 file format (age-encryption.org/v1) with X25519 recipients, on node:crypto alone, so that every
 * object of a repository can be decrypted by hand with the `age` tool. Whole buffers in and out.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { bech32Decode, bech32Encode } from "./bech32.ts";

const VERSION_LINE = "age-encryption.org/v1";
const X25519_LABEL = "age-encryption.org/v1/X25519";
const CHUNK = 64 * 1024;
const TAG = 16;
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
/** A header longer than this is refused before any parsing (ours are a few hundred bytes per recipient). */
const MAX_HEADER = 64 * 1024;

/** What is wrong with an age file, so callers can name the object and say the next step. */
export type AgeErrorKind = "not_age" | "malformed" | "no_identity" | "header_auth" | "payload_auth" | "truncated";

/** An age file could not be decrypted; `kind` tells why, the message says it in a few words. */
export class AgeError extends Error {
  /** Why the file could not be decrypted. */
  readonly kind: AgeErrorKind;

  /** Make an age error of `kind`. */
  constructor(kind: AgeErrorKind, message: string) {
    super(message);
    this.name = "AgeError";
    this.kind = kind;
  }
}

/** An X25519 identity (secret key) and its recipient; the secret never leaves this object as text. */
export interface AgeIdentity {
  /** The matching `age1…` recipient. */
  readonly recipient: string;
  /** @internal The secret scalar as a key object. */
  readonly privateKey: KeyObject;
  /** @internal The raw public key (32 bytes). */
  readonly publicKey: Uint8Array;
}

/** A new identity as `age-keygen` makes it: the `AGE-SECRET-KEY-1…` text and its recipient. */
export function generateIdentity(): { identity: string; recipient: string } {
  const pair = generateKeyPairSync("x25519");
  const secret = pair.privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  const identity = bech32Encode("age-secret-key-", secret).toUpperCase();
  return { identity, recipient: parseIdentity(identity).recipient };
}

/** The text of an identity file in `age-keygen`'s format (created, public key, secret key). */
export function formatIdentityFile(identity: string, created: Date = new Date()): string {
  const recipient = parseIdentity(identity).recipient;
  const when = created.toISOString().replace(/\.\d{3}Z$/, "Z");
  return `# created: ${when}\n# public key: ${recipient}\n${identity}\n`;
}

/**
 * Parse one `AGE-SECRET-KEY-1…` identity.
 *
 * @throws {Error} saying what the text is not (the secret is never echoed).
 */
export function parseIdentity(text: string): AgeIdentity {
  const decoded = bech32Decode(text.trim());
  if (
    !decoded || decoded.prefix !== "age-secret-key-" || decoded.bytes.length !== 32 ||
    text.trim() !== text.trim().toUpperCase()
  ) {
    throw new Error("not an age X25519 identity (expected AGE-SECRET-KEY-1…)");
  }
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, decoded.bytes]),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = new Uint8Array(createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32));
  return { recipient: bech32Encode("age", publicKey), privateKey, publicKey };
}

/**
 * Parse one `age1…` X25519 recipient into its canonical (lower-case) text.
 *
 * @throws {Error} saying what the text is not.
 */
export function parseRecipient(text: string): string {
  return bech32Encode("age", recipientKey(text));
}

function recipientKey(text: string): Uint8Array {
  const decoded = bech32Decode(text.trim());
  if (!decoded || decoded.prefix !== "age" || decoded.bytes.length !== 32) {
    throw new Error(`not an age X25519 recipient (expected age1…): ${JSON.stringify(text.slice(0, 80))}`);
  }
  return decoded.bytes;
}

/**
 * Parse an identity file as `age-keygen` writes it: `#` comments, blank lines, one `AGE-SECRET-KEY-1…` per line.
 *
 * @param source Named in errors (a path), with the line number.
 * @throws {Error} naming `source` and the line of the first entry that is not an X25519 identity, or a file with none.
 */
export function parseIdentityFile(text: string, source: string): AgeIdentity[] {
  if (/^(age-encryption\.org\/v1\n|-----BEGIN AGE ENCRYPTED FILE-----)/.test(text.trimStart())) {
    throw new Error(
      `${source}: an age-encrypted file (an identity kept under a passphrase?), not an identity file; decrypt it ` +
        "first (age -d) into a file only this user may read",
    );
  }
  return keyLines(text, source, "identity").map(({ line, number }) => {
    try {
      return parseIdentity(line);
    } catch {
      const found = isRecipient(line)
        ? "a recipient (public key, age1…), not an identity"
        : "not an age X25519 identity";
      throw new Error(`${source}:${number}: ${found} (expected AGE-SECRET-KEY-1…, as age-keygen writes)`);
    }
  });
}

/**
 * Parse a recipients file: `#` comments, blank lines, one `age1…` per line; returns canonical recipients, deduplicated.
 *
 * @throws {Error} naming `source` and the line of the first entry that is not an X25519 recipient, or a file with none.
 */
export function parseRecipientsFile(text: string, source: string): string[] {
  const recipients = keyLines(text, source, "recipient").map(({ line, number }) => {
    try {
      return parseRecipient(line);
    } catch {
      const found = /^AGE-SECRET-KEY-1/i.test(line)
        ? "an identity (secret key), not a recipient: keep it off this host"
        : "not an age X25519 recipient";
      throw new Error(`${source}:${number}: ${found} (expected age1…, as age-keygen -y prints)`);
    }
  });
  return [...new Set(recipients)];
}

/** Whether `line` is an age X25519 recipient. */
function isRecipient(line: string): boolean {
  try {
    recipientKey(line);
    return true;
  } catch {
    return false;
  }
}

function keyLines(text: string, source: string, what: string): { line: string; number: number }[] {
  const lines = text.split("\n").map((line, index) => ({ line: line.replace(/\r$/, "").trim(), number: index + 1 }))
    .filter(({ line }) => line !== "" && !line.startsWith("#"));
  if (lines.length === 0) throw new Error(`${source}: no age ${what} in the file`);
  return lines;
}

/**
 * The identity as `AGE-SECRET-KEY-1…` text, only to hand it to a worker of this process (which parses it back with
 * {@linkcode parseIdentity}): key objects cannot cross to a worker.
 */
export function identityText(identity: AgeIdentity): string {
  const secret = identity.privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  return bech32Encode("age-secret-key-", secret).toUpperCase();
}

/** The recipient of an identity (as `age-keygen -y` prints it). */
export function recipientOf(identity: AgeIdentity): string {
  return identity.recipient;
}

const rawPublic = (raw: Uint8Array) =>
  createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" });
const hkdf = (ikm: Uint8Array, salt: Uint8Array, info: string) =>
  new Uint8Array(hkdfSync("sha256", ikm, salt, info, 32));
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64").replace(/=+$/, "");

/** ChaCha20-Poly1305 seal of `plain` into `out` at `at`; returns the bytes written (plain + tag). */
function sealInto(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array, out: Uint8Array, at: number): number {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG });
  const body = cipher.update(plain);
  cipher.final();
  out.set(body, at);
  out.set(cipher.getAuthTag(), at + body.length);
  return body.length + TAG;
}

/** ChaCha20-Poly1305 open; `null` when the tag does not match. */
function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.length < TAG) return null;
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  const body = decipher.update(sealed.subarray(0, sealed.length - TAG));
  try {
    decipher.final();
  } catch {
    return null;
  }
  return body;
}

function chunkNonce(index: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setUint32(7, index);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** A stanza's body as header lines: 64 columns each, the last one shorter (empty when the body fills its line). */
function bodyLines(body: string): string {
  let text = "";
  for (let at = 0; at <= body.length; at += 64) text += body.slice(at, at + 64) + "\n";
  return text;
}

function x25519Stanza(recipient: string, fileKey: Uint8Array): string {
  const theirs = recipientKey(recipient);
  const ephemeral = generateKeyPairSync("x25519");
  const share = new Uint8Array(ephemeral.publicKey.export({ format: "der", type: "spki" }).subarray(-32));
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: rawPublic(theirs) });
  const wrapKey = hkdf(shared, Buffer.concat([share, theirs]), X25519_LABEL);
  const wrapped = new Uint8Array(fileKey.length + TAG);
  sealInto(wrapKey, new Uint8Array(12), fileKey, wrapped, 0);
  return `-> X25519 ${b64(share)}\n${bodyLines(b64(wrapped))}`;
}

/**
 * Encrypt `plaintext` to every recipient (`age1…`) as one age file; anyone holding one matching identity decrypts it.
 * With `into` (when long enough) the file is written there and a view of it returned, so a caller sealing many
 * objects reuses one buffer.
 *
 * @throws {Error} when a recipient is not an X25519 recipient, or none is given.
 */
export function ageEncrypt(plaintext: Uint8Array, recipients: readonly string[], into?: Uint8Array): Uint8Array {
  if (recipients.length === 0) throw new Error("no age recipient to encrypt to");
  const fileKey = new Uint8Array(randomBytes(16));
  let header = `${VERSION_LINE}\n`;
  for (const recipient of recipients) header += x25519Stanza(recipient, fileKey);
  header += "---";
  const mac = createHmac("sha256", hkdf(fileKey, new Uint8Array(0), "header")).update(header).digest();
  const head = new TextEncoder().encode(`${header} ${b64(mac)}\n`);
  const nonce = new Uint8Array(randomBytes(16));
  const payloadKey = hkdf(fileKey, nonce, "payload");
  const chunks = Math.max(1, Math.ceil(plaintext.length / CHUNK));
  const size = head.length + 16 + plaintext.length + chunks * TAG;
  const out = into && into.length >= size ? into.subarray(0, size) : new Uint8Array(size);
  out.set(head, 0);
  out.set(nonce, head.length);
  let at = head.length + 16;
  for (let index = 0; index < chunks; index++) {
    const piece = plaintext.subarray(index * CHUNK, (index + 1) * CHUNK);
    at += sealInto(payloadKey, chunkNonce(index, index === chunks - 1), piece, out, at);
  }
  return out;
}

/** A parsed header: its stanzas, the bytes the MAC covers, the MAC, and where the payload starts. */
interface Header {
  stanzas: { args: string[]; body: Uint8Array }[];
  macked: Uint8Array;
  mac: Uint8Array;
  payloadStart: number;
}

/** Strict unpadded base64: canonical (re-encodes to the same text) or `null`. */
function unb64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*$/.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, "base64");
  return b64(bytes) === text ? new Uint8Array(bytes) : null;
}

/** The next `\n`-terminated line of `bytes` from `at` as ASCII text, or `null` when none ends before `limit`. */
function lineAt(bytes: Uint8Array, at: number, limit: number): { text: string; next: number } | null {
  const end = bytes.subarray(0, Math.min(limit, bytes.length)).indexOf(10, at);
  if (end < 0) return null;
  const line = bytes.subarray(at, end);
  if (line.some((byte) => byte < 32 || byte > 126)) return null;
  return { text: Buffer.from(line).toString("latin1"), next: end + 1 };
}

function parseHeader(bytes: Uint8Array): Header {
  const first = lineAt(bytes, 0, 64);
  if (!first || first.text !== VERSION_LINE) {
    const armored = Buffer.from(bytes.subarray(0, 34)).toString("latin1") === "-----BEGIN AGE ENCRYPTED FILE-----";
    throw new AgeError("not_age", armored ? "an armored age file (not supported here)" : "not an age file");
  }
  const stanzas: Header["stanzas"] = [];
  let at = first.next;
  while (true) {
    const line = lineAt(bytes, at, MAX_HEADER);
    if (!line) throw new AgeError("malformed", "age header is malformed or truncated");
    if (line.text.startsWith("--- ")) {
      const mac = unb64(line.text.slice(4));
      if (!mac || mac.length !== 32) throw new AgeError("malformed", "age header MAC is malformed");
      return { stanzas, macked: bytes.subarray(0, at + 3), mac, payloadStart: line.next };
    }
    const args = line.text.split(" ");
    if (args[0] !== "->" || args.length < 2 || args.some((arg) => arg === "")) {
      throw new AgeError("malformed", "age header has a malformed stanza");
    }
    const body = stanzaBody(bytes, line.next);
    stanzas.push({ args: args.slice(1), body: body.bytes });
    at = body.next;
  }
}

function stanzaBody(bytes: Uint8Array, start: number): { bytes: Uint8Array; next: number } {
  let text = "";
  let at = start;
  while (true) {
    const line = lineAt(bytes, at, MAX_HEADER);
    if (!line || line.text.length > 64) throw new AgeError("malformed", "age stanza body is malformed or truncated");
    text += line.text;
    at = line.next;
    if (line.text.length < 64) break;
  }
  const body = unb64(text);
  if (!body) throw new AgeError("malformed", "age stanza body is not canonical base64");
  return { bytes: body, next: at };
}

/** The file key from the first X25519 stanza one of `identities` opens, or `null`. */
function unwrapFileKey(header: Header, identities: readonly AgeIdentity[]): Uint8Array | null {
  for (const { args, body } of header.stanzas) {
    if (args[0] !== "X25519") continue;
    const share = args.length === 2 ? unb64(args[1]) : null;
    if (!share || share.length !== 32 || body.length !== 32) {
      throw new AgeError("malformed", "age X25519 stanza is malformed");
    }
    for (const identity of identities) {
      const shared = diffieHellman({ privateKey: identity.privateKey, publicKey: rawPublic(share) });
      if (shared.every((byte) => byte === 0)) throw new AgeError("malformed", "age X25519 share is a low-order point");
      const wrapKey = hkdf(shared, Buffer.concat([share, identity.publicKey]), X25519_LABEL);
      const fileKey = open(wrapKey, new Uint8Array(12), body);
      if (fileKey) return new Uint8Array(fileKey);
    }
  }
  return null;
}

/**
 * Decrypt an age file with any of `identities`. With `into` (at least as long as the plaintext), the plaintext is
 * written there (a plaintext is never longer than its age file) and a view of it returned, so a caller opening many objects reuses one buffer instead of allocating
 * one per object.
 *
 * @throws {AgeError} `not_age`, `malformed`, `no_identity` (encrypted to another key), `header_auth` (header
 *   tampered), `payload_auth` (content tampered) or `truncated`.
 */
export function ageDecrypt(
  ciphertext: Uint8Array,
  identities: readonly AgeIdentity[],
  into?: Uint8Array,
): Uint8Array {
  const header = parseHeader(ciphertext);
  const fileKey = unwrapFileKey(header, identities);
  if (!fileKey) throw new AgeError("no_identity", "encrypted to another key (no given identity matches)");
  const mac = createHmac("sha256", hkdf(fileKey, new Uint8Array(0), "header")).update(header.macked).digest();
  if (!timingSafeEqual(mac, header.mac)) {
    throw new AgeError("header_auth", "age header authentication failed (tampered)");
  }
  const nonce = ciphertext.subarray(header.payloadStart, header.payloadStart + 16);
  const payload = ciphertext.subarray(header.payloadStart + 16);
  if (nonce.length < 16 || payload.length < TAG) throw new AgeError("truncated", "age payload is truncated");
  return openPayload(hkdf(fileKey, nonce, "payload"), payload, into);
}

function openPayload(key: Uint8Array, payload: Uint8Array, into?: Uint8Array): Uint8Array {
  const sealedChunk = CHUNK + TAG;
  const chunks = Math.ceil(payload.length / sealedChunk);
  const lastSize = payload.length - (chunks - 1) * sealedChunk;
  if (lastSize < TAG) throw new AgeError("truncated", "age payload is truncated");
  const size = payload.length - chunks * TAG;
  const out = into && into.length >= size ? into.subarray(0, size) : new Uint8Array(size);
  for (let index = 0; index < chunks; index++) {
    const last = index === chunks - 1;
    const sealed = payload.subarray(index * sealedChunk, (index + 1) * sealedChunk);
    const plain = open(key, chunkNonce(index, last), sealed);
    if (!plain) {
      const cutShort = last && sealed.length === sealedChunk && open(key, chunkNonce(index, false), sealed);
      if (cutShort) throw new AgeError("truncated", "age payload is truncated (final chunk missing)");
      throw new AgeError("payload_auth", "age payload authentication failed (tampered or truncated)");
    }
    if (last && plain.length === 0 && index > 0) {
      throw new AgeError("malformed", "age payload ends with an empty chunk");
    }
    out.set(plain, index * CHUNK);
  }
  return out;
}
