/**
 * The only door between this program and a repository's storage: every object written goes through here, sealed (zstd
 * when asked, then age to the repository's recipients) unless its kind is one of the few the format makes public.
 * Reads check what they can before decrypting (a pack's bytes must hash to its name) and name the object in errors.
 *
 * @module
 */
import { collectGarbage } from "../sys/collect_garbage.ts";
import { Buffer } from "node:buffer";
import type { AgeIdentity } from "../crypto/age.ts";
import { OperationError } from "../errors.ts";
import { type Backend, ObjectExistsError } from "./backend.ts";
import { packName, parseName } from "./layout.ts";
import { type Compression, decompressBytes, openBytes, type OpenOptions, sealText, sha256Hex } from "./sealing.ts";
import { type SealDone, type SealJob, sealPack } from "./seal_jobs.ts";
import { parseBoundedJson } from "../text/bounded_json.ts";

export { type Compression, type OpenOptions, sha256Hex };

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

/** How {@linkcode Boundary.putPack} seals: where, into what, and who takes the buffers back. */
export interface PackSealing {
  /** A buffer to seal into, reused across packs (a new one is made when it is too short). */
  out?: Uint8Array;
  /** Takes the plaintext's buffer back once sealed. */
  recycle?: (plain: Uint8Array) => void;
  /** Takes `out` back once the sealed bytes are written. */
  release?: (out: Uint8Array) => void;
  /** Runs the seal elsewhere (a worker: `CryptoPool.seal`); inline when absent. */
  sealer?: (job: SealJob) => Promise<SealDone>;
  /** Flat `[offset, length]` pairs of the plaintext to hash while sealing (see {@linkcode StoredPack.hashes}). */
  ranges?: Uint32Array;
}

/** A pack stored by {@linkcode Boundary.putPack}, and the SHA-256 of each range asked for (32 bytes each, in order). */
export interface StoredPack {
  info: PackInfo;
  hashes: Uint8Array;
}

/** The kinds of object the format stores in the clear; everything else is sealed. */
const PUBLIC_KINDS = new Set(["config", "refs", "lease", "condemned"]);

/** The repository's storage seen through the boundary: sealed writes to `recipients`, checked reads. */
export class Boundary {
  /** Bytes written through this boundary so far, and objects. */
  readonly sent = { bytes: 0, objects: 0 };

  /** A boundary over `backend` sealing to `recipients` (the repository's, after the pin check). */
  constructor(readonly backend: Backend, readonly recipients: readonly string[]) {}

  /**
   * Seal a pack's plaintext (into `out` when long enough; on `sealer` when given) to this boundary's recipients, hash
   * the `ranges` asked for, and store it under the SHA-256 of the sealed bytes (exclusive create). The plaintext's
   * buffer is handed to `recycle` once sealed (before the upload ends), the sealed bytes' buffer to `release` once
   * written. The compression recorded is the one used: zstd only when it paid.
   */
  async putPack(plaintext: Uint8Array, compression: Compression, options: PackSealing = {}): Promise<StoredPack> {
    const job: SealJob = {
      kind: "seal",
      plain: plaintext,
      out: options.out ?? new Uint8Array(0),
      compression,
      recipients: this.recipients,
      ranges: options.ranges ?? new Uint32Array(0),
    };
    const sealed = options.sealer ? await options.sealer(job) : sealPack(job);
    options.recycle?.(sealed.plain);
    await this.write(packName(sealed.sha256), sealed.bytes, sealed.sha256);
    if (options.out) options.release?.(sealed.out);
    return {
      info: { id: sealed.sha256, size: sealed.bytes.length, compression: sealed.compression },
      hashes: sealed.hashes,
    };
  }

  /**
   * Seal a snapshot document's JSON text, given piece by piece (zstd, then age), without writing it yet, so the SHA-256
   * can be recorded (in refs) before the object exists.
   */
  async prepareSealed(name: string, text: Iterable<string>): Promise<SealedObject> {
    if (parseName(name)?.kind !== "snapshot") throw new RangeError(`not a sealed object name: ${JSON.stringify(name)}`);
    const { bytes, sha256 } = await sealText(text, this.recipients);
    return Object.freeze({ name, bytes, sha256 });
  }

  /** Store an object sealed by {@linkcode prepareSealed}, exclusively. */
  async writeSealed(sealed: SealedObject): Promise<void> {
    await this.write(sealed.name, sealed.bytes, sealed.sha256);
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
    await this.write(name, publicBytes(value));
  }

  private async write(name: string, bytes: Uint8Array, sha256?: string): Promise<void> {
    try {
      await this.backend.write(name, bytes, { exclusive: true, sha256 });
    } catch (error) {
      if (!(error instanceof ObjectExistsError) || !(await this.holds(name, bytes))) throw error;
    }
    this.sent.bytes += bytes.length;
    this.sent.objects += 1;
  }

  /**
   * Whether `name` holds exactly `bytes`: a write whose answer was lost (a connection cut after the server stored it)
   * may be sent again, by the HTTP client itself, and then finds its own object there.
   */
  private async holds(name: string, bytes: Uint8Array): Promise<boolean> {
    const found = await this.backend.read(name, undefined, bytes.length).catch(() => null);
    return found !== null && Buffer.compare(found, bytes) === 0;
  }
}

/** Options of {@linkcode getSealed}. */
export type SealedRead = OpenOptions;

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
  return openBytes(name, await backend.read(name), identities, options);
}

/** {@linkcode getSealed} on bytes already read. */
export const openSealed = openBytes;

/** The decompression of {@linkcode openSealed}, for a reader that decrypts first and decompresses once it trusts. */
export const decompressOpened = decompressBytes;

/** The most bytes a public object (config, refs, a lease, a condemned marker) may have: refs of ~500,000 packs. */
const PUBLIC_MAX_BYTES = 8 * 1024 * 1024;

/** The deepest nesting a public object is read with: this format's nest 3 deep; `[[[[…` would take V8 gigabytes. */
const PUBLIC_MAX_DEPTH = 16;

/**
 * The most JSON values a public object is parsed with: refs of 100,000 packs hold about 300,000; a lease of 8 MB of
 * `{},` (2.8 million empty objects) took `remote list` and `remote cleanup` to 400 MiB.
 */
const PUBLIC_MAX_VALUES = 500_000;

/**
 * Read a public JSON object.
 *
 * @throws {OperationError} naming the object when it is not JSON.
 */
export async function getPublic(backend: Backend, name: string, maxBytes = PUBLIC_MAX_BYTES): Promise<unknown> {
  const bytes = await backend.read(name, undefined, Math.min(maxBytes, PUBLIC_MAX_BYTES));
  try {
    const text = Buffer.from(bytes).toString("utf8");
    return parseBoundedJson(text, { maxValues: PUBLIC_MAX_VALUES, maxDepth: PUBLIC_MAX_DEPTH });
  } catch {
    throw new NotJsonError(`${name} in ${backend.location} is not JSON; the repository was altered`);
  } finally {
    // a large one's bytes and text are garbage V8 is slow to take back: many of them (leases, markers, refs a writer
    // padded) would take a cleanup past its memory bound between two of its collections
    if (bytes.length > 1 << 20) collectGarbage();
  }
}

/** A public object read is not JSON (or nests deeper than the format does). */
export class NotJsonError extends OperationError {}

/** The bytes of a public object holding `value`, as {@linkcode Boundary.putPublic} writes them: one JSON line. */
export function publicBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value) + "\n");
}
