/**
 * The worker behind `crypto_pool.ts`: opens packs for a fetch or a verify, and seals a push's packs, off the main
 * thread, so both use every core. In: an {@linkcode OpenJob} or a {@linkcode SealJob} with an `id`. Out: its result
 * with the same `id`, buffers moved.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { collectGarbage, collectGarbageAbove, collectGarbageGrown } from "../sys/collect_garbage.ts";
import { type OpenJob, resultBuffers, runJob, transferables } from "./crypto_jobs.ts";
import { runSealJob, type SealJob, sealResultBuffers } from "./seal_jobs.ts";

/**
 * Array buffers a worker may hold before a full garbage collection when it hashes ranges (a verify): each 64 KiB chunk
 * decrypted is a new buffer (a zstd pack's plaintext goes into the buffer the verify lends).
 */
const GC_ABOVE_BYTES = 16 << 20;
/**
 * Open jobs that hash ranges between two full collections at most: the hash contexts a job leaves are native memory
 * that the buffer count above does not see.
 */
const GC_EVERY_OPENS = 4;
/**
 * Growth of a worker's array buffers before a full collection when it hashes nothing (a fetch): its garbage is then
 * buffers V8 counts, and a collection every few packs (each drops compiled code) took half of a fetch's time.
 */
const GC_GROWN_BYTES = 48 << 20;
let opens = 0;
/**
 * Sealed bytes between two full collections when the worker seals: what sealing leaves for the collector (buffers and
 * native state V8 does not count as pressure) follows the bytes encrypted more than the packs (a pack of text rows
 * seals to about 1.6 MiB, one of embeddings to 8). Every 8 packs took about 0.3 s of a small-row first push; this
 * collects about every 80 packs of text and every 16 of embeddings; with no forced collection the peak grew 40 MiB.
 */
const SEAL_GC_BYTES = 128 << 20;
/**
 * Sooner, after 16 MiB sealed, while the process holds more than 200 MiB: over a long push what sealing leaves rose
 * and fell by about 120 MiB between two collections, and took a 3 GB database's first push to 285 to 306 MiB (224 to
 * 238 with a collection every 16 MiB, which costs a smaller push time it does not need to spend).
 */
const SEAL_GC_BYTES_HIGH = 16 << 20;
const HIGH_RSS_BYTES = 200 << 20;
let sealedSince = 0;

/** Whether `since` bytes sealed since the last collection call for one now (see above). */
function sealedEnough(since: number): boolean {
  return since >= SEAL_GC_BYTES || (since >= SEAL_GC_BYTES_HIGH && Deno.memoryUsage().rss > HIGH_RSS_BYTES);
}

self.onmessage = (event: MessageEvent<(OpenJob | SealJob) & { id: number }>) => {
  if ("kind" in event.data && event.data.kind === "seal") {
    const sealed = runSealJob(event.data);
    if ("bytes" in sealed && sealedEnough(sealedSince += sealed.bytes.length)) {
      sealedSince = 0;
      collectGarbage();
    }
    self.postMessage({ id: event.data.id, result: sealed }, transferables(sealResultBuffers(sealed)));
    return;
  }
  const job = event.data as OpenJob;
  if (job.ranges.length === 0) collectGarbageGrown(job.collectAfterGrowth ?? GC_GROWN_BYTES);
  else if (!collectGarbageAbove(GC_ABOVE_BYTES) && ++opens % GC_EVERY_OPENS === 0) collectGarbage();
  const result = runJob(job);
  self.postMessage({ id: event.data.id, result }, transferables(resultBuffers(result)));
};
