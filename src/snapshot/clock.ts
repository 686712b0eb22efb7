/**
 * Stamps against the clock: which are in the future (the clock was wrong when they were made, or is now) and how
 * old the others are. One place, so that create, list, validate, drill and cleanup agree on the skew they allow.
 *
 * @module
 */
import { parseStamp } from "./stamp.ts";

/**
 * How far ahead of now a stamp may be before it counts as in the future (clocks of two hosts differ a little); also
 * create's default `--max-clock-skew`.
 */
export const CLOCK_SKEW_SECONDS = 300;

/**
 * Seconds by which `stamp` is ahead of `now` beyond {@linkcode CLOCK_SKEW_SECONDS}, as a whole number; `0` for a
 * stamp that is not in the future (or is no stamp).
 */
export function secondsInFuture(stamp: string, now: Date): number {
  const time = parseStamp(stamp);
  if (time === null) return 0;
  const ahead = Math.round((time.getTime() - now.getTime()) / 1000);
  return ahead > CLOCK_SKEW_SECONDS ? ahead : 0;
}

/** Tell whether `stamp` is later than `now` beyond the allowed skew. */
export function isInFuture(stamp: string, now: Date): boolean {
  return secondsInFuture(stamp, now) > 0;
}

/**
 * The age of the snapshot `stamp` at `now` in whole seconds, never negative: `null` for a name that is not a stamp
 * or a stamp in the future (its age is unknown), `0` for one ahead of `now` within the skew.
 */
export function stampAgeSeconds(stamp: string, now: Date): number | null {
  const time = parseStamp(stamp);
  if (time === null || isInFuture(stamp, now)) return null;
  return Math.max(0, Math.round((now.getTime() - time.getTime()) / 1000));
}
