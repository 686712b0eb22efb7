/**
 * The worker behind `crypto_pool.ts`: opens packs off the main thread, so a fetch or a verify uses every core.
 * In: an {@linkcode OpenJob} with an `id`. Out: its result with the same `id`, buffers moved.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { collectGarbageAbove } from "../sys/collect_garbage.ts";
import { type OpenJob, resultBuffers, runJob, transferables } from "./crypto_jobs.ts";

/**
 * Array buffers a worker may hold before a full garbage collection: a zstd pack's plaintext is a new buffer each time
 * and each 64 KiB chunk decrypted another; collecting only past this bound (rather than every few jobs) keeps the
 * process under its memory bound at a fraction of the cost.
 */
const GC_ABOVE_BYTES = 32 << 20;

self.onmessage = (event: MessageEvent<OpenJob & { id: number }>) => {
  collectGarbageAbove(GC_ABOVE_BYTES);
  const result = runJob(event.data);
  self.postMessage({ id: event.data.id, result }, transferables(resultBuffers(result)));
};
