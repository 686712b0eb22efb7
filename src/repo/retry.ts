/**
 * Bounded retries with exponential backoff and full jitter for network backends: a transient failure (timeout, reset,
 * 5xx, throttling) is tried again a fixed number of times; anything else fails at once.
 *
 * @module
 */
import { interruption, sleepUnlessInterrupted } from "../sys/interrupt.ts";

function throwIfInterrupted(): void {
  const stop = interruption();
  if (stop) throw stop;
}

/** How often and how long to try again. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The first backoff's ceiling in milliseconds; doubled each attempt. */
  baseMs: number;
  /** The largest backoff ceiling in milliseconds. */
  maxMs: number;
}

/** A transient failure of a network backend about to be tried again: what a warning says. */
export interface RetryNotice {
  /** The repository's location (no credential). */
  location: string;
  /** The object (or listing) the request was about. */
  object: string;
  /** The attempt that failed (from 1), and how many are allowed in all. */
  attempt: number;
  attempts: number;
  /** The wait before the next attempt, in milliseconds. */
  waitMs: number;
  /** What went wrong, one line. */
  error: string;
}

/** Hears each retry of a network backend (the CLI turns it into a warning event). */
export type RetryListener = (notice: RetryNotice) => void;

/** The first line of an error's message, for a {@linkcode RetryNotice}. */
export function errorLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0].slice(0, 300);
}

/**
 * The default: 6 attempts over at most 7.75 s of waiting (full jitter: about half that on average), or 50 s when the
 * server asks for longer waits (`Retry-After`, each followed up to `maxMs`).
 */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseMs: 250, maxMs: 10_000 };

/** The backoff before attempt `attempt + 1` (attempt counts from 1): a random wait up to the doubled ceiling. */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Run `operation` until it succeeds, it throws an error `isTransient` rejects, or `policy.attempts` are used up; the
 * last error is rethrown with the number of attempts made (`attempts` on the error's `cause` chain stays intact).
 * `onRetry` hears each transient failure before its wait (for a warning or a log line). `askedWaitMs` is the wait the
 * server asked for with the error (`Retry-After`), followed up to `policy.maxMs` so that no server stalls a run.
 */
export async function withRetries<T>(
  operation: (attempt: number) => Promise<T>,
  isTransient: (error: unknown) => boolean,
  policy: RetryPolicy = DEFAULT_RETRY,
  onRetry: (error: unknown, attempt: number, waitMs: number) => void = () => {},
  askedWaitMs: (error: unknown) => number = () => 0,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (!isTransient(error)) throw error;
      throwIfInterrupted(); // a stop asked for ends the retries (and aborts a request in flight): said as a stop
      if (attempt >= policy.attempts) throw error;
      const waitMs = Math.max(backoffMs(policy, attempt), Math.min(askedWaitMs(error), policy.maxMs));
      onRetry(error, attempt, waitMs);
      await sleepUnlessInterrupted(waitMs);
      throwIfInterrupted();
    }
  }
}
