/**
 * The worker behind `crypto_pool.ts`: opens packs off the main thread, so a fetch or a verify uses every core.
 * In: an {@linkcode OpenJob} with an `id`. Out: its result with the same `id`, buffers moved.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { collectGarbage } from "../sys/collect_garbage.ts";
import { type OpenJob, resultBuffers, runJob, transferables } from "./crypto_jobs.ts";
import { runSealJob, type SealJob, sealResultBuffers } from "./seal_jobs.ts";

/**
 * Jobs between two full garbage collections: a zstd pack's plaintext is a new buffer each time, and the workers share
 * the packs, so each collects more often than the main thread (every 8 packs).
 */
const GC_EVERY_JOBS = 2;
let jobs = 0;
/**
 * Seal jobs between two full collections: 8 packs (64 MiB), as the main thread did when it sealed. A seal job's big
 * buffers move back to the main thread; what it leaves is cipher and hash objects and zstd's output. Measured on the
 * 1 GiB stores: collecting every 2 seals cost 1 to 2 s of CPU more for 0 to 13 MiB less peak memory.
 */
const GC_EVERY_SEALS = 8;
let seals = 0;

self.onmessage = (event: MessageEvent<(OpenJob | SealJob) & { id: number }>) => {
  if ("kind" in event.data && event.data.kind === "seal") {
    if (++seals % GC_EVERY_SEALS === 0) collectGarbage();
    const sealed = runSealJob(event.data);
    self.postMessage({ id: event.data.id, result: sealed }, transferables(sealResultBuffers(sealed)));
    return;
  }
  if (++jobs % GC_EVERY_JOBS === 0) collectGarbage();
  const result = runJob(event.data as OpenJob);
  self.postMessage({ id: event.data.id, result }, transferables(resultBuffers(result)));
};
