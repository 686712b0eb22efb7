/**
 * How a file is cut into blocks for deduplication (an SQLite file at its page size, so an unchanged page is never sent
 * again; anything else at 64 KiB) and whether its blocks are worth compressing (embeddings are not).
 *
 * @module
 */
import type { ReadableFile } from "../fs/opened_regular.ts";
import { hash } from "node:crypto";
import { constants, zstdCompressSync } from "node:zlib";
import { readAt } from "../fs/read_at.ts";
import { startsAsDatabase } from "../sqlite/file_format.ts";

/** Block size of files that are not SQLite databases. */
export const DEFAULT_BLOCK = 64 * 1024;
/** The smallest block size: SQLite's smallest page. */
export const MIN_BLOCK = 512;
/** Bytes read at once while splitting a file: a multiple of every block size, small beside the memory bound. */
export const READ_BYTES = 1 << 20;
/** A sample compressing to more than this fraction of its size marks the file as not worth compressing. */
const COMPRESSIBLE_RATIO = 0.9;
/** Windows sampled from a file, and their size. */
const SAMPLE_WINDOWS = 8;
const SAMPLE_BYTES = 32 * 1024;

/** The block size for a file whose first bytes are `header`: the SQLite page size, else {@linkcode DEFAULT_BLOCK}. */
export function blockSizeOf(header: Uint8Array): number {
  if (header.length < 18 || !startsAsDatabase(header)) return DEFAULT_BLOCK;
  const raw = (header[16] << 8) | header[17];
  const size = raw === 1 ? 65536 : raw;
  return size >= MIN_BLOCK && size <= 65536 && (size & (size - 1)) === 0 ? size : DEFAULT_BLOCK;
}

/**
 * Whether the file's blocks are worth compressing: windows spread over its body (not its first bytes, a header unlike
 * the rest) are compressed with zstd level 1 and must shrink to under 90 %. A small file is sampled whole; an empty
 * one is not worth it.
 */
export function isCompressible(file: ReadableFile, size: number): boolean {
  if (size === 0) return false;
  const windows = Math.min(SAMPLE_WINDOWS, Math.floor(size / SAMPLE_BYTES));
  const starts = windows <= 1
    ? [0]
    : Array.from({ length: windows }, (_, window) => Math.floor((size - SAMPLE_BYTES) * (window + 0.5) / windows));
  let raw = 0;
  let packed = 0;
  for (const start of starts) {
    const sample = readAt(file, start, windows <= 1 ? Math.min(size, SAMPLE_WINDOWS * SAMPLE_BYTES) : SAMPLE_BYTES);
    if (sample === null) break;
    raw += sample.length;
    packed += zstdCompressSync(sample, { params: { [constants.ZSTD_c_compressionLevel]: 1 } }).length;
  }
  return raw > 0 && packed < raw * COMPRESSIBLE_RATIO;
}

/**
 * Read the file from its start in {@linkcode READ_BYTES} chunks into one reused buffer and hand each chunk to `onChunk`
 * with its file offset (the view is only valid during the call). Returns the bytes read.
 */
export async function readChunks(
  file: ReadableFile,
  buffer: Uint8Array,
  onChunk: (chunk: Uint8Array, offset: number) => Promise<void> | void,
): Promise<number> {
  file.seekSync(0, Deno.SeekMode.Start);
  let offset = 0;
  while (true) {
    let filled = 0;
    while (filled < buffer.length) {
      const read = file.readSync(buffer.subarray(filled));
      if (read === null) break;
      filled += read;
    }
    if (filled === 0) return offset;
    await onChunk(buffer.subarray(0, filled), offset);
    offset += filled;
    if (filled < buffer.length) return offset;
  }
}

/** The value of each lowercase hex digit, by character code (or byte); 255 for anything else. */
const HEX_VALUE = new Uint8Array(256).fill(255);
for (let digit = 0; digit < 16; digit++) HEX_VALUE["0123456789abcdef".charCodeAt(digit)] = digit;

/**
 * Write the SHA-256 of `bytes` at `into[at, at + 32)`. A push hashes every block (several hundred thousand in a 1 GiB
 * database): taken as hex and decoded here, a 4 KiB block's hash cost 3.2 µs where a `Buffer` digest cost 3.9 µs and
 * left a buffer for the collector.
 */
export function hashBlockInto(bytes: Uint8Array, into: Uint8Array, at: number): void {
  hexHashInto(hash("sha256", bytes, "hex"), into, at);
}

/**
 * Write the 32 bytes of a SHA-256 given as 64 lowercase hex digits (a block's digest, or a hash this tool wrote in its
 * own checksummed files) at `into[at, at + 32)`, without a buffer for each: a push takes hundreds of thousands.
 */
export function hexHashInto(hex: string, into: Uint8Array, at: number): void {
  if (at < 0 || at + 32 > into.length) throw new RangeError(`a hash at ${at} does not fit ${into.length} bytes`);
  for (let byte = 0; byte < 32; byte++) {
    into[at + byte] = (HEX_VALUE[hex.charCodeAt(2 * byte)] << 4) | HEX_VALUE[hex.charCodeAt(2 * byte + 1)];
  }
}

/**
 * Decode the 64 lowercase hex digits at `text[from, from + 64)` (ASCII bytes, as a document holds them) into
 * `into[at, at + 32)`, without a string for each: `false`, with `into` partly written, when one is not such a digit.
 */
export function hexBytesInto(text: Uint8Array, from: number, into: Uint8Array, at: number): boolean {
  if (from + 64 > text.length || at + 32 > into.length) return false;
  for (let byte = 0; byte < 32; byte++) {
    const high = HEX_VALUE[text[from + 2 * byte]];
    const low = HEX_VALUE[text[from + 2 * byte + 1]];
    if ((high | low) > 15) return false;
    into[at + byte] = (high << 4) | low;
  }
  return true;
}
