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

self.onmessage = (event: MessageEvent<(OpenJob | SealJob) & { id: number }>) => {
  if (++jobs % GC_EVERY_JOBS === 0) collectGarbage(); // a seal job leaves cipher and hash objects and zstd's output
  if ("kind" in event.data && event.data.kind === "seal") {
    const sealed = runSealJob(event.data);
    self.postMessage({ id: event.data.id, result: sealed }, transferables(sealResultBuffers(sealed)));
    return;
  }
  const result = runJob(event.data as OpenJob);
  self.postMessage({ id: event.data.id, result }, transferables(resultBuffers(result)));
};
