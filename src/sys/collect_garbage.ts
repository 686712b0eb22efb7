/**
 * A full garbage collection on demand. Hashing and sealing make many short-lived native objects (hash and cipher
 * contexts, 64 KiB chunk buffers) that V8 does not count as memory pressure; collecting every few packs, and giving
 * what was freed back to the system, keeps a push, a fetch or a verify within its memory bound whatever the store's
 * size and history.
 *
 * @module
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { trimMemory } from "./trim_memory.ts";

let collect: (() => void) | null | undefined;

/**
 * Run a full garbage collection when the runtime offers one, then give the freed memory back ({@linkcode trimMemory}):
 * glibc kept what the buffers of a verify's workers freed, and a verify of 14 daily snapshots of the small-row store
 * peaked at 272 to 280 MiB without the trim, 233 to 237 with it (about 0.1 s of trims, and 0.5 s more in all).
 */
export function collectGarbage(): void {
  if (collect === undefined) {
    try {
      setFlagsFromString("--expose-gc");
      const found = runInNewContext("gc");
      collect = typeof found === "function" ? found : null;
    } catch {
      collect = null;
    }
  }
  collect?.();
  trimMemory();
}

/**
 * Run a full collection only when this thread holds more than `bytes` of array buffers (live or not yet collected):
 * a forced collection costs several milliseconds and makes the next calls slower (it drops compiled code), so a loop
 * that makes native garbage collects when that garbage is there rather than every few turns. Returns whether it did.
 */
export function collectGarbageAbove(bytes: number): boolean {
  if (Deno.memoryUsage().external <= bytes) return false;
  collectGarbage();
  return true;
}

/** This thread's array buffer bytes right after its last collection by {@linkcode collectGarbageGrown}. */
let floor = 0;

/**
 * Run a full collection only when this thread's array buffers grew by more than `bytes` since its last one here: the
 * buffers a loop keeps and moves between threads (counted again each time they arrive) stay below that floor, so only
 * the garbage it makes is measured. Returns whether it collected.
 */
export function collectGarbageGrown(bytes: number): boolean {
  if (Deno.memoryUsage().external - floor <= bytes) return false;
  collectGarbage();
  floor = Deno.memoryUsage().external;
  return true;
}
