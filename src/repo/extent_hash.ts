/**
 * The hash a snapshot document records for an extent. Format 2 hashes an extent longer than its file's block as the
 * SHA-256 of its blocks' SHA-256s, which a push has already, instead of reading each byte once more; format 1 hashed
 * its bytes whole. An extent of one block has that block's SHA-256 in both.
 *
 * @module
 */
import { hash } from "node:crypto";
import { hashBlockInto, hexHashInto } from "./blocks.ts";

/**
 * The piece size an extent of `length` bytes of a file cut at `block` is hashed by in a document of `format`: 0 when
 * its bytes are hashed whole (format 1, or one block).
 */
export function extentUnit(format: number, block: number, length: number): number {
  return format === 1 || length <= block ? 0 : block;
}

/** The SHA-256 (hex) recorded for `bytes` hashed by pieces of `unit` (see {@linkcode extentUnit}). */
export function hashExtent(bytes: Uint8Array, unit: number): string {
  if (unit === 0 || bytes.length <= unit) return hash("sha256", bytes, "hex");
  const pieces = new Uint8Array(Math.ceil(bytes.length / unit) * 32);
  for (let at = 0, piece = 0; at < bytes.length; at += unit, piece += 32) {
    hashBlockInto(bytes.subarray(at, at + unit), pieces, piece);
  }
  return hash("sha256", pieces, "hex");
}

/** Write the hash recorded for `bytes` hashed by pieces of `unit` at `into[at, at + 32)`, for a table of many. */
export function hashExtentInto(bytes: Uint8Array, unit: number, into: Uint8Array, at: number): void {
  hexHashInto(hashExtent(bytes, unit), into, at);
}

/**
 * Write the hash of an extent whose blocks' SHA-256s are `blockHashes` (32 bytes each, in order) at `into[at, at + 32)`:
 * the block's own for one block.
 */
export function extentHashInto(blockHashes: Uint8Array, into: Uint8Array, at: number): void {
  if (blockHashes.length === 32) into.set(blockHashes, at);
  else hashBlockInto(blockHashes, into, at);
}
