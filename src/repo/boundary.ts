/**
 * The only door between this program and a repository's storage: every object written goes through here, sealed (zstd
 * when asked, then age to the repository's recipients) unless its kind is one of the few the format makes public.
 * Reads check what they can before decrypting (a pack's bytes must hash to its name) and name the object in errors.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { ageDecrypt, ageEncrypt, AgeError, type AgeIdentity } from "../crypto/age.ts";
import { OperationError } from "../errors.ts";
import type { Backend } from "./backend.ts";
import { packName, parseName } from "./layout.ts";

/** How a pack's or document's plaintext is stored inside its age envelope. */
export type Compression = "zstd" | "none";

/** A pack as written: its id (SHA-256 of the object's bytes), the object's size, and how its plaintext is stored. */
export interface PackInfo {
  id: string;
  size: number;
  compression: Compression;
}

/** An object sealed by {@linkcode Boundary.prepareSealed} and not yet written. */
export interface SealedObject {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

/** zstd level for packs and documents: most of level 9's ratio at several times its speed. */
const ZSTD_LEVEL = 3;
/** Largest plaintext a sealed read may decompress to, unless the caller says less (a zstd bomb stops here). */
const MAX_PLAINTEXT = 1 << 30;

/** The kinds of object the format stores in the clear; everything else is sealed. */
const PUBLIC_KINDS = new Set(["config", "refs", "lease", "condemned"]);

/** SHA-256 of `bytes` as lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The repository's storage seen through the boundary: sealed writes to `recipients`, checked reads. */
export class Boundary {
  /** Bytes written through this boundary so far, and objects. */
  readonly sent = { bytes: 0, objects: 0 };

  /** A boundary over `backend` sealing to `recipients` (the repository's, after the pin check). */
  constructor(readonly backend: Backend, readonly recipients: readonly string[]) {}

  /** Seal a pack's plaintext and store it under the SHA-256 of the sealed bytes (exclusive create). */
  async putPack(plaintext: Uint8Array, compression: Compression): Promise<PackInfo> {
    const sealed = this.seal(plaintext, compression);
    const id = sha256Hex(sealed);
    await this.write(packName(id), sealed);
    return { id, size: sealed.length, compression };
  }

  /**
   * Seal `plaintext` (zstd first when `compress`) and store it as `name`, exclusively. Only sealed kinds are accepted
   * (snapshot documents); packs go through {@linkcode putPack}. Returns the sealed bytes' SHA-256 and size.
   */
  async putSealed(name: string, plaintext: Uint8Array, compress = false): Promise<{ sha256: string; size: number }> {
    const sealed = this.prepareSealed(name, plaintext, compress);
    await this.writeSealed(sealed);
    return { sha256: sealed.sha256, size: sealed.bytes.length };
  }

  /** Seal without writing yet, so the SHA-256 can be recorded (in refs) before the object exists. */
  prepareSealed(name: string, plaintext: Uint8Array, compress = false): SealedObject {
    if (parseName(name)?.kind !== "snapshot") throw new RangeError(`not a sealed object name: ${JSON.stringify(name)}`);
    const bytes = this.seal(plaintext, compress ? "zstd" : "none");
    return Object.freeze({ name, bytes, sha256: sha256Hex(bytes) });
  }

  /** Store an object sealed by {@linkcode prepareSealed}, exclusively. */
  async writeSealed(sealed: SealedObject): Promise<void> {
    await this.write(sealed.name, sealed.bytes);
  }

  /** Remove an object (a backend's remove: never an error when it is already gone). */
  async remove(name: string): Promise<void> {
    if (!parseName(name)) throw new RangeError(`not a repository object name: ${JSON.stringify(name)}`);
    await this.backend.remove(name);
  }

  /** Store one of the format's public objects (config, refs, leases, condemned) as JSON, exclusively. */
  async putPublic(name: string, value: unknown): Promise<void> {
    const kind = parseName(name)?.kind;
    if (!kind || !PUBLIC_KINDS.has(kind)) throw new RangeError(`not a public object name: ${JSON.stringify(name)}`);
    await this.write(name, new TextEncoder().encode(JSON.stringify(value) + "\n"));
  }

  private seal(plaintext: Uint8Array, compression: Compression): Uint8Array {
    const body = compression === "zstd" ? compress(plaintext) : plaintext;
    return ageEncrypt(body, this.recipients);
  }

  private async write(name: string, bytes: Uint8Array): Promise<void> {
    await this.backend.write(name, bytes, { exclusive: true });
    this.sent.bytes += bytes.length;
    this.sent.objects += 1;
  }
}

/** zstd-compress `plaintext` at the format's level. */
export function compress(plaintext: Uint8Array): Uint8Array {
  return zstdCompressSync(plaintext, { params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
}

/** Options of {@linkcode getSealed}. */
export interface SealedRead {
  /** How the plaintext is stored (recorded in the snapshot document). */
  compression: Compression;
  /** Refuse a plaintext larger than this (default 1 GiB). */
  maxBytes?: number;
}

/**
 * Read a sealed object, check a pack's bytes against its name, decrypt with `identities` and decompress.
 *
 * @throws {OperationError} naming the object: missing, swapped or truncated pack, another key, tampered, corrupt.
 */
export async function getSealed(
  backend: Backend,
  identities: readonly AgeIdentity[],
  name: string,
  options: SealedRead,
): Promise<Uint8Array> {
  return openSealed(name, await backend.read(name), identities, options);
}

/** {@linkcode getSealed} on bytes already read (verify reads a pack once for several checks). */
export function openSealed(
  name: string,
  sealed: Uint8Array,
  identities: readonly AgeIdentity[],
  options: SealedRead,
): Uint8Array {
  const parsed = parseName(name);
  if (parsed?.kind === "pack" && sha256Hex(sealed) !== parsed.id) {
    throw new OperationError(
      `${name}: its bytes do not hash to its name (swapped, truncated or edited); run 'remote verify'`,
    );
  }
  let body: Uint8Array;
  try {
    body = ageDecrypt(sealed, identities);
  } catch (error) {
    if (error instanceof AgeError) throw new OperationError(ageMessage(name, error));
    throw error;
  }
  if (options.compression === "none") return body;
  try {
    const plain = zstdDecompressSync(body, { maxOutputLength: options.maxBytes ?? MAX_PLAINTEXT });
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
  } catch (error) {
    throw new OperationError(`${name}: its zstd content is corrupt (${(error as Error).message.split("\n")[0]})`);
  }
}

function ageMessage(name: string, error: AgeError): string {
  switch (error.kind) {
    case "no_identity":
      return `${name}: encrypted to another key; give an identity of one of the repository's recipients (--identity)`;
    case "header_auth":
    case "payload_auth":
    case "truncated":
      return `${name}: ${error.message}; the object was altered, run 'remote verify --read-data'`;
    default:
      return `${name}: ${error.message}; the object was altered or is not from this tool`;
  }
}

/**
 * Read a public JSON object.
 *
 * @throws {OperationError} naming the object when it is not JSON.
 */
export async function getPublic(backend: Backend, name: string): Promise<unknown> {
  const bytes = await backend.read(name);
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new OperationError(`${name} in ${backend.location} is not JSON; the repository was altered`);
  }
}
