/**
 * The work a crypto worker does to seal one pack, as a plain function of a plain message: seal it (zstd when it pays,
 * then age) and hash the ranges of its plaintext that the push records (each block), beside the push's main thread,
 * which reads, hashes files and extents, and fills packs. Run in `_crypto_worker.ts`, or inline when no worker starts.
 *
 * @module
 */
import { OperationError } from "../errors.ts";
import { hashBlockInto } from "./blocks.ts";
import type { JobFailure } from "./crypto_jobs.ts";
import { type Compression, sealBytes } from "./sealing.ts";

/**
 * Seal a pack's plaintext `plain` to `recipients` (into `out` when it is long enough) and hash each `[offset, length]`
 * pair of `ranges` (flat) of the plaintext.
 */
export interface SealJob {
  kind: "seal";
  plain: Uint8Array;
  out: Uint8Array;
  compression: Compression;
  recipients: readonly string[];
  ranges: Uint32Array;
}

/**
 * A sealed pack: the buffers given back, the sealed bytes (a view of `out` when they fit), their SHA-256, the
 * compression used, and the SHA-256 of each range, 32 bytes each in order.
 */
export interface SealDone {
  plain: Uint8Array;
  out: Uint8Array;
  bytes: Uint8Array;
  sha256: string;
  compression: Compression;
  hashes: Uint8Array;
}

/** Seal one pack; a failure is returned (with the job's buffers), never thrown. */
export function runSealJob(job: SealJob): SealDone | JobFailure {
  try {
    return sealPack(job);
  } catch (error) {
    return {
      error: (error as Error).message,
      operation: error instanceof OperationError,
      buffers: [job.plain, job.out],
    };
  }
}

/** {@linkcode runSealJob}, throwing its failure. */
export function sealPack(job: SealJob): SealDone {
  const { plain, out } = job;
  const hashes = hashRanges(plain, job.ranges);
  const sealed = sealBytes(plain, job.compression, job.recipients, false, out.length > 0 ? out : undefined);
  return { plain, out, hashes, ...sealed };
}

/**
 * The SHA-256 of each `[offset, length]` pair of `ranges` (flat) of `plain`, 32 bytes each in order: a pack's blocks,
 * hashed where the push has time (the worker sealing the pack, or the thread filling packs while the worker is busy).
 */
export function hashRanges(plain: Uint8Array, ranges: Uint32Array): Uint8Array {
  const hashes = new Uint8Array(ranges.length * 16);
  for (let at = 0; at < ranges.length; at += 2) {
    const [offset, length] = [ranges[at], ranges[at + 1]];
    if (offset + length > plain.length) throw new RangeError(`range ${offset}+${length} is outside the pack`);
    hashBlockInto(plain.subarray(offset, offset + length), hashes, at * 16);
  }
  return hashes;
}

/** The buffers a seal result holds, to transfer it back. */
export function sealResultBuffers(result: SealDone | JobFailure): Uint8Array[] {
  return "error" in result ? result.buffers : [result.plain, result.out, result.bytes, result.hashes];
}
