/**
 * A full garbage collection on demand, then the freed memory given back: hashing and sealing make native objects V8 does
 * not count as memory pressure; collecting every few packs keeps a push, a fetch or a verify within its memory bound.
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
 * peaked at 266 to 274 MiB without the trim, 218 to 231 with it (0.1 s of trims, 0.6 to 1.0 s more in all).
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
