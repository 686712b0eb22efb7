/**
 * The guards that keep a snapshot whatever the retention policy, as pure functions over what cleanup read: the
 * newest stamp, the last one published, recent pre-restore snapshots, the newest valid one, and any stamped in the
 * future.
 *
 * @module
 */
import { isInFuture } from "./clock.ts";
import {
  applyRetention,
  type GuardRule,
  type KeepReason,
  type RetentionDecision,
  type RetentionPolicy,
} from "./retention.ts";
import { parseStamp } from "./stamp.ts";

/** Days a pre-restore snapshot is kept whatever the policy, unless `--keep-pre-restore-days` says otherwise. */
export const DEFAULT_PRE_RESTORE_DAYS = 7;

/** What cleanup knows of one snapshot from its metadata. */
export interface SnapshotFacts {
  /** A plain stamp. */
  stamp: string;
  /** Its publication sequence, or `null` when its metadata records none. */
  sequence: number | null;
  /** Whether its metadata marks it as a restore's pre-restore snapshot. */
  preRestore: boolean;
  /** For a pre-restore snapshot, the stamp whose restore it preceded, when recorded. */
  restoringStamp: string | null;
}

/**
 * The guards that facts alone decide, by stamp: `newest` (the newest stamp not in the future at `now`),
 * `last-published` (the highest sequence, which a clock set back cannot hide behind an older stamp) and `pre-restore`
 * (a pre-restore snapshot younger than `preRestoreDays` days at `now`, or stamped after `now`; "for ever" when the
 * window reaches past the last date a clock can show).
 */
export function factGuards(
  facts: readonly SnapshotFacts[],
  options: { now: Date; preRestoreDays: number },
): Record<string, KeepReason[]> {
  const guards: Record<string, KeepReason[]> = {};
  const add = (stamp: string, rule: GuardRule, bucket: string) => (guards[stamp] ??= []).push({ rule, bucket });
  const byStamp = [...facts].sort((a, b) => a.stamp < b.stamp ? 1 : a.stamp > b.stamp ? -1 : 0);
  const newest = byStamp.find((fact) => !isInFuture(fact.stamp, options.now)); // one in the future is kept anyway
  if (newest) add(newest.stamp, "newest", "by stamp");
  const published = byStamp.filter((fact) => fact.sequence !== null);
  const last = published.reduce<SnapshotFacts | null>(
    (best, fact) => best && best.sequence! >= fact.sequence! ? best : fact,
    null,
  );
  if (last) add(last.stamp, "last-published", `sequence ${last.sequence}`);
  const window = options.preRestoreDays * 86_400_000;
  for (const fact of byStamp.filter((one) => one.preRestore)) {
    const until = parseStamp(fact.stamp)!.getTime() + window;
    if (until <= options.now.getTime()) continue;
    const before = fact.restoringStamp ? `taken before restoring ${fact.restoringStamp}` : "taken before a restore";
    const end = new Date(until); // a window past the last date a Date can hold means for ever
    const kept = Number.isNaN(end.getTime()) ? "kept for ever" : `kept until ${end.toISOString().slice(0, 10)}`;
    add(fact.stamp, "pre-restore", `${before}, ${kept}`);
  }
  return guards;
}

/**
 * The policy's decision over `stamps` where a stamp in the future at `now` (the clock was ahead when it was made) is
 * kept (`future`) and takes no rule's place: days, weeks and months the clock was wrong in would otherwise push real
 * ones out. It is kept until the clock passes its stamp: what it holds was real when it was made.
 */
export function retainByPolicy(
  stamps: readonly string[],
  policy: Readonly<RetentionPolicy>,
  now: Date,
): RetentionDecision {
  const future = [...new Set(stamps)].filter((stamp) => isInFuture(stamp, now));
  const decided = applyRetention(stamps.filter((stamp) => !future.includes(stamp)), policy);
  const guards: Record<string, KeepReason[]> = {};
  for (const stamp of future) {
    guards[stamp] = [{ rule: "future", bucket: `stamped after this host's clock (${now.toISOString()})` }];
  }
  return withGuards({ ...decided, remove: [...decided.remove, ...future] }, guards);
}

/** The guard that keeps the newest snapshot found valid. */
export function newestValidGuard(stamp: string): Record<string, KeepReason[]> {
  return { [stamp]: [{ rule: "newest-valid", bucket: "passed a quick validation" }] };
}

/**
 * The snapshots a restore left unfinished names (`restoring`, what it restores, and `pre`, its way back): the commands
 * that finish or undo it need them.
 */
export function unfinishedRestoreGuard(restoring: string, pre: string | null): Record<string, KeepReason[]> {
  const guards: Record<string, KeepReason[]> = {
    [restoring]: [{ rule: "unfinished-restore", bucket: "the restore to finish restores it" }],
  };
  if (pre !== null) (guards[pre] ??= []).push({ rule: "unfinished-restore", bucket: "the way back of that restore" });
  return guards;
}

/**
 * The decision with every guarded stamp kept: moved from `remove` to `keep` when the policy let it go, and its
 * guards' reasons added after the policy's own.
 */
export function withGuards(decision: RetentionDecision, guards: Record<string, KeepReason[]>): RetentionDecision {
  const reasons: Record<string, KeepReason[]> = {};
  for (const [stamp, kept] of Object.entries(decision.reasons)) reasons[stamp] = [...kept];
  for (const [stamp, guarded] of Object.entries(guards)) {
    if (!decision.keep.includes(stamp) && !decision.remove.includes(stamp)) continue;
    (reasons[stamp] ??= []).push(...guarded);
  }
  const all = [...decision.keep, ...decision.remove];
  return {
    keep: all.filter((stamp) => stamp in reasons).sort().reverse(),
    remove: decision.remove.filter((stamp) => !(stamp in reasons)),
    reasons,
  };
}
