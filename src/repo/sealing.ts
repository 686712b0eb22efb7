/**
 * Sealing and opening one object's bytes: zstd (when it pays) then age; and back, checking a pack's bytes against its
 * name first. Run on the main thread or in the crypto worker; only the boundary writes what they make.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { constants, createZstdCompress, createZstdDecompress, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { ageDecrypt, ageEncrypt, AgeError, type AgeIdentity } from "../crypto/age.ts";
import { OperationError } from "../errors.ts";
import { parseName } from "./layout.ts";
import { RepositoryFindingError } from "./backend.ts";
import { collectGarbage } from "../sys/collect_garbage.ts";

/** How a pack's or document's plaintext is stored inside its age envelope. */
export type Compression = "zstd" | "none";

/** Sealed bytes, their SHA-256 (a pack's id), and the compression actually used. */
export interface SealedBytes {
  bytes: Uint8Array;
  sha256: string;
  compression: Compression;
}

/** Options of {@linkcode openBytes}. */
export interface OpenOptions {
  /** How the plaintext is stored (recorded in the snapshot document). */
  compression: Compression;
  /** Refuse a plaintext larger than this (default 1 GiB): a zstd bomb stops here. */
  maxBytes?: number;
  /**
   * A buffer to decrypt into, reused by a caller that opens many objects (see {@linkcode ageDecrypt}); the result of an
   * object stored without compression is then a view of it, valid until the buffer is reused.
   */
  into?: Uint8Array;
  /**
   * Skip a pack's SHA-256 against its name: only for a reader that proves every byte it uses by another hash (a fetch
   * checks each extent's SHA-256) and, when opening fails, checks the name itself to say what happened.
   */
  skipNameHash?: boolean;
  /**
   * A buffer to decompress into, for a reader that proves every byte it uses by another hash (a fetch checks each
   * file's SHA-256, a verify each range's): the result is then a view of it, and a truncated zstd frame gives a short
   * plaintext, not an error.
   */
  plainInto?: Uint8Array;
}

/**
 * zstd level for packs and documents. Level 1 compressed the small-row store's text at 460 MB/s against 380 for level
 * 3, to 18.8 % of its size against 18.2 % (`node:zlib`, 8 MiB packs): about what restic stores, in less time.
 */
const ZSTD_LEVEL = 1;
/** A zstd result must save at least this fraction, or the plaintext is stored as it is. */
const MIN_SAVING = 0.05;
const MAX_PLAINTEXT = 1 << 30;

/** SHA-256 of `bytes` as lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** zstd-compress `plaintext` at the format's level. */
export function compress(plaintext: Uint8Array): Uint8Array {
  return zstdCompressSync(plaintext, { params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
}

/**
 * Seal `plaintext` to `recipients`: zstd first when `compression` asks for it and it saves at least 5 % (else stored
 * as it is, and the result says `none`; `always` keeps zstd anyway, for objects whose compression is fixed), then age
 * (into `into` when it is long enough: the result is then a view of it).
 */
export function sealBytes(
  plaintext: Uint8Array,
  compression: Compression,
  recipients: readonly string[],
  always = false,
  into?: Uint8Array,
): SealedBytes {
  let body = plaintext;
  let used: Compression = "none";
  if (compression === "zstd") {
    const packed = compress(plaintext);
    if (always || packed.length <= plaintext.length * (1 - MIN_SAVING)) [body, used] = [packed, "zstd"];
  }
  const bytes = ageEncrypt(body, recipients, into);
  return { bytes, sha256: sha256Hex(bytes), compression: used };
}

/** UTF-8 bytes of text handed to the zstd stream at once when text is sealed piece by piece. */
const TEXT_CHUNK_BYTES = 1 << 20;
/**
 * Chunks handed between two full collections (about every 3 MiB of text): the pieces' text and chunks are garbage at
 * once, but V8 let them grow the heap; a week's daily pushes of the small-row store peaked at 160 to 199 MiB without,
 * 162 to 176 with.
 */
const TEXT_GC_CHUNKS = 3;

/**
 * Seal text given piece by piece (a snapshot document): zstd as one frame, streamed, then age. What is held at once is
 * about 1 MiB of its UTF-8 bytes (or one larger piece) and the compressed frame, whatever the text's length.
 * (`zstdDecompressSync` of Deno 2.9.6 stops after a first frame of about 1 MiB, so the frame is one, as a whole-buffer
 * compression makes it.)
 */
export async function sealText(pieces: Iterable<string>, recipients: readonly string[]): Promise<SealedBytes> {
  const stream = createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
  const compressed: Uint8Array[] = [];
  stream.on("data", (chunk: Uint8Array) => compressed.push(chunk));
  const ended = new Promise<void>((resolve, reject) => stream.on("end", resolve).on("error", reject));
  ended.catch(() => {}); // awaited below, and raced while writing: a failure is thrown there, never left unhandled
  try {
    await writeText(stream, pieces, ended);
    stream.end();
    await ended;
  } catch (error) {
    stream.destroy();
    throw error;
  }
  const body = new Uint8Array(compressed.reduce((sum, chunk) => sum + chunk.length, 0));
  compressed.reduce((at, chunk) => (body.set(chunk, at), at + chunk.length), 0);
  const bytes = ageEncrypt(body, recipients);
  return { bytes, sha256: sha256Hex(bytes), compression: "zstd" };
}

/** Hand the pieces' UTF-8 bytes to `stream` in chunks of about 1 MiB (a larger piece alone), waiting when it asks to. */
async function writeText(stream: Writable, pieces: Iterable<string>, ended: Promise<void>): Promise<void> {
  const encoder = new TextEncoder();
  const buffer = new Uint8Array(TEXT_CHUNK_BYTES);
  let used = 0;
  let handed = 0;
  const hand = async (bytes: Uint8Array) => {
    if (bytes.length > 0 && !stream.write(bytes)) await Promise.race([once(stream, "drain"), ended]);
    if (++handed % TEXT_GC_CHUNKS === 0) collectGarbage();
  };
  for (const piece of pieces) {
    const most = piece.length * 3; // UTF-8 takes at most 3 bytes for each UTF-16 unit
    if (used + most > buffer.length) {
      await hand(buffer.slice(0, used));
      used = 0;
    }
    if (most > buffer.length) await hand(encoder.encode(piece));
    else used += encoder.encodeInto(piece, buffer.subarray(used)).written;
  }
  await hand(buffer.slice(0, used));
}

/**
 * Check that a pack's bytes hash to its name (nothing for an object of another kind).
 *
 * @throws {OperationError} naming the pack when they do not: swapped, truncated or edited.
 */
export function checkPackName(name: string, sealed: Uint8Array): void {
  const parsed = parseName(name);
  if (parsed?.kind === "pack" && sha256Hex(sealed) !== parsed.id) {
    throw new RepositoryFindingError(
      `${name}: its bytes do not hash to its name (swapped, truncated or edited)`,
      "run 'remote verify'",
    );
  }
}

/**
 * Open a sealed object read as `name`: a pack's bytes must hash to its name; then age, then zstd when recorded.
 *
 * @throws {OperationError} naming the object: swapped or truncated pack, another key, tampered, corrupt.
 */
export function openBytes(
  name: string,
  sealed: Uint8Array,
  identities: readonly AgeIdentity[],
  options: OpenOptions,
): Uint8Array {
  if (!options.skipNameHash) checkPackName(name, sealed);
  let body: Uint8Array;
  try {
    body = ageDecrypt(sealed, identities, options.into);
  } catch (error) {
    if (error instanceof AgeError) throw new OperationError(ageMessage(name, error));
    throw error;
  }
  if (options.compression === "none") return body;
  const maxBytes = options.maxBytes ?? MAX_PLAINTEXT;
  const placed = options.plainInto ? decompressInto(body, options.plainInto.subarray(0, maxBytes + 1)) : null;
  if (placed) return placed; // shorter than the window: at most maxBytes
  return decompressBytes(name, body, maxBytes);
}

/**
 * zstd-decompress the decrypted `body` of object `name`, at most `maxBytes`.
 *
 * @throws {OperationError} naming the object when its content is corrupt or decompresses to more.
 */
export function decompressBytes(name: string, body: Uint8Array, maxBytes: number): Uint8Array {
  try {
    const plain = zstdDecompressSync(body, { maxOutputLength: maxBytes });
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new OperationError(
        `${name}: decompresses to more than ${maxBytes} bytes, more than this tool writes there (altered, or a zstd ` +
          `bomb); it is not read: check the repository ('remote verify')`,
      );
    }
    throw new OperationError(`${name}: its zstd content is corrupt (${(error as Error).message.split("\n")[0]})`);
  }
}

/** The private stream handle of `node:zlib`'s zstd decompressor, as Deno 2.9 has it (see {@linkcode decompressInto}). */
interface ZstdHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inAt: number,
    inLength: number,
    out: Uint8Array,
    at: number,
    length: number,
  ): void;
  onerror?: (...args: unknown[]) => void;
}

/**
 * zstd-decompress `body` straight into `out` through the decompressor's stream handle: `zstdDecompressSync` makes a new
 * buffer per call (then copied) and measured 850 MB/s where this does 1.1 GB/s. `null` when the handle is not there
 * (another runtime), it failed, or the plaintext fills `out` (it may be longer); the caller then decompresses the usual
 * way, which names what is wrong. A truncated frame gives a short plaintext: only for a reader that proves the bytes.
 */
export function decompressInto(body: Uint8Array, out: Uint8Array): Uint8Array | null {
  const stream = createZstdDecompress() as unknown as {
    _handle?: ZstdHandle;
    _writeState?: Uint32Array;
    _finishFlushFlag?: number;
    close(): void;
  };
  const handle = stream._handle;
  if (
    !handle || typeof handle.writeSync !== "function" || !stream._writeState || stream._finishFlushFlag === undefined
  ) {
    return null;
  }
  let failed = false;
  handle.onerror = () => failed = true;
  const state = stream._writeState;
  let [outLeft, inLeft] = [out.length, body.length];
  try {
    // a call ends with a frame: the compressor may follow the data's frame with an empty one, read by the next call
    while (!failed && inLeft > 0 && outLeft > 0) {
      const [inAt, at] = [body.length - inLeft, out.length - outLeft];
      handle.writeSync(stream._finishFlushFlag, body, inAt, inLeft, out, at, outLeft);
      if (state[1] === inLeft && state[0] === outLeft) failed = true; // no progress
      [outLeft, inLeft] = [state[0], state[1]];
    }
  } catch {
    failed = true;
  } finally {
    stream.close();
  }
  return failed || inLeft > 0 || outLeft === 0 ? null : out.subarray(0, out.length - outLeft);
}

function ageMessage(name: string, error: AgeError): string {
  switch (error.kind) {
    case "no_identity":
      return `${name}: encrypted to another key, which no identity given opens; give an identity of one of the ` +
        "repository's recipients (--identity); if that is what was given, this object was made for another repository " +
        "and copied in";
    case "header_auth":
    case "payload_auth":
    case "truncated":
      return `${name}: ${error.message}; the object was altered, run 'remote verify --read-data'`;
    default:
      return `${name}: ${error.message}; the object was altered or is not from this tool`;
  }
}
