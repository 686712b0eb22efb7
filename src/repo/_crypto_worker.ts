/**
 * The worker behind `crypto_pool.ts`: opens packs off the main thread, so a fetch or a verify uses every core.
 * In: an {@linkcode OpenJob} with an `id`. Out: its result with the same `id`, buffers moved.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { collectGarbage } from "../sys/collect_garbage.ts";
import { type OpenJob, resultBuffers, runJob, transferables } from "./crypto_jobs.ts";
import { GC_EVERY_PACKS } from "./pack_writer.ts";

let jobs = 0;

self.onmessage = (event: MessageEvent<OpenJob & { id: number }>) => {
  if (++jobs % GC_EVERY_PACKS === 0) collectGarbage();
  const result = runJob(event.data);
  self.postMessage({ id: event.data.id, result }, transferables(resultBuffers(result)));
};
