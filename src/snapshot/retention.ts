/**
 * The retention policy as a pure function: stamps and counts in; which stamps are kept, under which rule,
 * and which go. No file is read or written here, so the module's decisions (`cleanup_old_backups`) are checked
 * against fixtures alone.
 *
 * @module
 */
import { parseStamp } from "./stamp.ts";

/** A rule of the policy; a stamp is kept when at least one rule keeps it. */
export type RetentionRule = "daily" | "weekly" | "monthly";

/** How many buckets each rule keeps (0 turns the rule off). */
export type RetentionPolicy = Record<RetentionRule, number>;

/** The reference module's counts: 7 days, 4 Sundays' weeks, 6 months' 1sts. */
export const DEFAULT_POLICY: Readonly<RetentionPolicy> = { daily: 7, weekly: 4, monthly: 6 };

/**
 * Why a stamp is kept: the rule, and the bucket (day, week or month) it is the newest of; or one of the guards
 * that keep a snapshot whatever the policy (`retention_guards.ts`), with what it found.
 */
export interface KeepReason {
  rule: RetentionRule | GuardRule;
  /** `2026-04-09` for daily, `2026-W14` (Python's `%Y-W%W`) for weekly, `2026-04` for monthly; a guard's finding. */
  bucket: string;
}

/** A guard that keeps a snapshot whatever the policy (see `retention_guards.ts`). */
export type GuardRule = "newest" | "last-published" | "newest-valid" | "pre-restore" | "future" | "unfinished-restore";

/** What {@linkcode applyRetention} decides. */
export interface RetentionDecision {
  /** Stamps to keep, newest first. */
  keep: string[];
  /** Stamps to remove, newest first. */
  remove: string[];
  /** For each kept stamp, every rule that keeps it, in the order daily, weekly, monthly. */
  reasons: Record<string, KeepReason[]>;
}

/** A rule: which snapshots it looks at, and the bucket each one falls in. */
interface Rule {
  rule: RetentionRule;
  eligible: (time: Date) => boolean;
  bucket: (time: Date) => string;
}

/** The rules, each after one loop of the module's `cleanup_old_backups`. */
const RULES: readonly Rule[] = [
  { rule: "daily", eligible: anyDay, bucket: ymd },
  { rule: "weekly", eligible: isSunday, bucket: yw },
  { rule: "monthly", eligible: isFirstOfMonth, bucket: ym },
];

/**
 * Decide which snapshots to keep and which to remove.
 *
 * Each rule walks the stamps newest first and keeps the first stamp of each
 * bucket it has not seen, until it has kept `policy[rule]` buckets. A count of 0
 * keeps nothing under that rule (the module, which has no counts, always keeps
 * at least one). The decision depends on the stamps alone, not on today's date.
 *
 * @param stamps Plain stamps (`YYYYMMDDTHHMMSSZ`); callers set aside every other
 *   name with `isStamp` first, so nothing that is not a snapshot is ever decided on.
 *   Duplicates count once.
 * @param policy How many buckets each rule keeps.
 * @throws {RangeError} for a name that is not a plain stamp, or a count that is
 *   not a non-negative integer.
 * @example
 * ```ts
 * const { keep, remove } = applyRetention(["20260405T010000Z", "20260406T010000Z"], DEFAULT_POLICY);
 * ```
 */
export function applyRetention(stamps: readonly string[], policy: Readonly<RetentionPolicy>): RetentionDecision {
  for (const { rule } of RULES) {
    if (!Number.isSafeInteger(policy[rule]) || policy[rule] < 0) {
      throw new RangeError(`retention count for ${rule} must be a non-negative integer, not ${policy[rule]}`);
    }
  }
  const newestFirst = [...new Set(stamps)].map((stamp) => ({ stamp, time: timeOf(stamp) }))
    .sort((a, b) => b.time.getTime() - a.time.getTime());
  const reasons: Record<string, KeepReason[]> = {};
  for (const { rule, eligible, bucket } of RULES) {
    const seen = new Set<string>();
    for (const { stamp, time } of newestFirst) {
      if (seen.size >= policy[rule]) break;
      if (!eligible(time)) continue;
      const key = bucket(time);
      if (seen.has(key)) continue;
      seen.add(key);
      (reasons[stamp] ??= []).push({ rule, bucket: key });
    }
  }
  return {
    keep: newestFirst.filter(({ stamp }) => stamp in reasons).map(({ stamp }) => stamp),
    remove: newestFirst.filter(({ stamp }) => !(stamp in reasons)).map(({ stamp }) => stamp),
    reasons,
  };
}

function timeOf(stamp: string): Date {
  const time = parseStamp(stamp);
  if (time === null) throw new RangeError(`not a plain snapshot stamp: ${JSON.stringify(stamp)}`);
  return time;
}

function anyDay(): boolean {
  return true;
}

function isSunday(time: Date): boolean {
  return time.getUTCDay() === 0;
}

function isFirstOfMonth(time: Date): boolean {
  return time.getUTCDate() === 1;
}

/** `%Y-%m-%d`. */
function ymd(time: Date): string {
  return `${ym(time)}-${pad2(time.getUTCDate())}`;
}

/** `%Y-%m`. */
function ym(time: Date): string {
  return `${year(time)}-${pad2(time.getUTCMonth() + 1)}`;
}

/**
 * `%Y-W%W`: Python's (C's) Monday-first week number, where the days of a new
 * year before its first Monday are week 00.
 */
export function yw(time: Date): string {
  const dayOfYear = (time.getTime() - Date.UTC(time.getUTCFullYear(), 0, 1)) / 86_400_000 | 0;
  const daysSinceMonday = (time.getUTCDay() + 6) % 7;
  return `${year(time)}-W${pad2(Math.floor((dayOfYear + 7 - daysSinceMonday) / 7))}`;
}

function year(time: Date): string {
  return String(time.getUTCFullYear()).padStart(4, "0");
}

function pad2(value: number): string {
  return String(value).padStart(2, "0");
}
