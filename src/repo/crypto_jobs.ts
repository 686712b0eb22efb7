/**
 * The work a crypto worker does on one pack, as a plain function of a plain message: open a sealed pack and hash the
 * ranges its readers check. Run in `_crypto_worker.ts`, or inline when no worker starts.
 *
 * @module
 */
import { type AgeIdentity, parseIdentity } from "../crypto/age.ts";
import { OperationError } from "../errors.ts";
import { collectGarbage } from "../sys/collect_garbage.ts";
import { hashExtentInto } from "./extent_hash.ts";
import { type Compression, openBytes } from "./sealing.ts";

/**
 * Open the pack `name` read into `sealed` (decrypting into `into`) and hash each `[offset, length, unit]` triple of
 * `ranges` (by pieces of `unit`, 0 for whole: `extent_hash.ts`).
 */
export interface OpenJob {
  name: string;
  sealed: Uint8Array;
  into: Uint8Array;
  compression: Compression;
  maxBytes: number;
  /** The identities as `AGE-SECRET-KEY-1…` text (key objects cannot cross to a worker). */
  identities: readonly string[];
  /** Triples, typed: a verify may check hundreds of thousands of ranges of one pack; empty for none (a fetch). */
  ranges: Uint32Array;
  /** Skip the pack's SHA-256 against its name (`skipNameHash` of {@linkcode openBytes}'s options). */
  skipNameHash?: boolean;
  /**
   * Where a compressed pack's plaintext is decompressed (`plainInto` of {@linkcode openBytes}'s options; it moves to the
   * worker and back), or copied when it could not be: a reader that opens many packs then receives no new buffer per
   * pack, which V8 does not count on the receiving thread until collected.
   */
  plainInto?: Uint8Array;
  /**
   * For a job that hashes no range: how far the worker's array buffers may grow past what it held after its last full
   * collection before it collects again (default 48 MiB).
   */
  collectAfterGrowth?: number;
}

/**
 * An opened pack: the buffers given back, its plaintext, and each range's hash at `hashes[32r, 32r + 32)` (zeros when
 * the range lies past the plaintext, which the reader checks against `plain`'s length).
 */
export interface OpenDone {
  sealed: Uint8Array;
  into: Uint8Array;
  plain: Uint8Array;
  hashes: Uint8Array;
  /** The job's `plainInto`, given back (`plain` is a view of it when the plaintext was copied there). */
  plainInto?: Uint8Array;
}

/** A job that failed: its message, whether it is an {@linkcode OperationError}, and its buffers given back. */
export interface JobFailure {
  error: string;
  operation: boolean;
  buffers: Uint8Array[];
}

const parsed = new Map<string, AgeIdentity>();

/**
 * Ranges hashed between two full collections within one pack: each hash leaves a native context V8 does not count
 * (a forged document's 185,000 ranges of one pack: a verify peaked at 192 MiB without these collections, 166 with).
 */
const RANGES_PER_COLLECTION = 16384;

/** Do one job; a failure is returned (with the job's buffers), never thrown. */
export function runJob(job: OpenJob): OpenDone | JobFailure {
  try {
    return open(job);
  } catch (error) {
    return {
      error: (error as Error).message,
      operation: error instanceof OperationError,
      buffers: [job.sealed, job.into, ...(job.plainInto ? [job.plainInto] : [])],
    };
  }
}

function open(job: OpenJob): OpenDone {
  const identities = job.identities.map((text) => {
    let identity = parsed.get(text);
    if (!identity) parsed.set(text, identity = parseIdentity(text));
    return identity;
  });
  let plain = openBytes(job.name, job.sealed, identities, {
    compression: job.compression,
    maxBytes: job.maxBytes,
    into: job.into,
    skipNameHash: job.skipNameHash,
    plainInto: job.plainInto,
  });
  const spare = job.plainInto;
  if (spare && job.compression === "zstd" && plain.buffer !== spare.buffer && plain.length <= spare.length) {
    spare.set(plain);
    plain = spare.subarray(0, plain.length);
  }
  const hashes = new Uint8Array(job.ranges.length / 3 * 32);
  for (let range = 0; range < job.ranges.length / 3; range++) {
    const [offset, length, unit] = [job.ranges[3 * range], job.ranges[3 * range + 1], job.ranges[3 * range + 2]];
    if (offset + length <= plain.length) {
      hashExtentInto(plain.subarray(offset, offset + length), unit, hashes, 32 * range);
    }
    if (range % RANGES_PER_COLLECTION === RANGES_PER_COLLECTION - 1) collectGarbage();
  }
  return { sealed: job.sealed, into: job.into, plain, hashes, ...(spare ? { plainInto: spare } : {}) };
}

/** The distinct array buffers of `views`, for a transfer list (a buffer listed twice is refused). */
export function transferables(views: readonly Uint8Array[]): ArrayBuffer[] {
  return [...new Set(views.map((view) => view.buffer as ArrayBuffer))].filter((buffer) => buffer.byteLength > 0);
}

/** The buffers a result holds, to transfer it back. */
export function resultBuffers(result: OpenDone | JobFailure): Uint8Array[] {
  if ("error" in result) return result.buffers;
  return [result.sealed, result.into, result.plain, result.hashes, ...(result.plainInto ? [result.plainInto] : [])];
}
