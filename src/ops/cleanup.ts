/**
 * Cleanup: apply the retention policy and its guards (`retention_guards.ts`) to the snapshots of a backup folder and,
 * when confirmed, remove through `.trash/` the ones it lets go, and older kept-aside failed ones (README, "Clean up").
 *
 * @module
 */
import { basename } from "node:path";
import { describeOsError, RefusedError } from "../errors.ts";
import { folderNames } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import type { KeepReason, RetentionDecision, RetentionPolicy } from "../snapshot/retention.ts";
import {
  factGuards,
  newestValidGuard,
  retainByPolicy,
  type SnapshotFacts,
  unfinishedRestoreGuard,
  withGuards,
} from "../snapshot/retention_guards.ts";
import { pruneIntegrityRecords } from "../snapshot/integrity_record.ts";
import { metadataPath, snapshotDir, snapshotsDir } from "../snapshot/layout.ts";
import { isPreRestore, readMetadata } from "../snapshot/metadata.ts";
import { isInFuture } from "../snapshot/clock.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { IntegrityUncheckedError, type SqliteDriver } from "../sqlite/driver.ts";
import { trustedSequence } from "../snapshot/trusted_sequence.ts";
import { DEFAULT_KEEP_FAILED, failedEntries, failedRetention, removeFailed } from "./failed.ts";
import { removeViaTrash } from "./remove_via_trash.ts";
import { readNeeds } from "./restore_needs.ts";
import { validateSnapshot } from "./validate.ts";
import { nextStep } from "./next_step.ts";

/** Options of {@linkcode cleanupSnapshots}. */
export interface CleanupOptions {
  /** Retention counts. */
  policy: Readonly<RetentionPolicy>;
  /** Remove for real; otherwise only report what would go. */
  confirm: boolean;
  /** Where events go. */
  reporter: Reporter;
  /** The SQLite driver, for the quick validation that finds the newest valid snapshot. */
  driver: SqliteDriver;
  /** The time pre-restore snapshots' ages are measured from. */
  now: Date;
  /** Days a pre-restore snapshot is kept whatever the policy (0: the policy alone decides). */
  preRestoreDays: number;
  /** The snapshot a restore left unfinished restores, and its pre-restore snapshot: kept (see `restore_intent.ts`). */
  unfinishedRestore?: { stamp: string; pre: string | null };
  /** How many `failed/` entries to keep, newest first (default {@linkcode DEFAULT_KEEP_FAILED}). */
  keepFailed?: number;
  /** The path flags the commands it prints need to reach this run's store (see `pathFlags`; none by default). */
  pathFlags?: string;
}

/** A kept snapshot and every rule that keeps it. */
export interface KeptSnapshot {
  stamp: string;
  reasons: KeepReason[];
}

/**
 * The result: the reference module's keys (`kept`, `dry_run`, `errors`, `deleted`
 * or `would_delete`, `unparseable`), then this tool's.
 */
export interface CleanupResult {
  /** Number of snapshots kept. */
  kept: number;
  dry_run: boolean;
  /** One line per snapshot that could not be removed: `STAMP: what went wrong ...`. */
  errors: string[];
  /** Number of snapshots removed (confirmed runs). */
  deleted?: number;
  /** Number of snapshots a confirmed run would remove (dry runs). */
  would_delete?: number;
  /** Folders under `snapshots/` whose names are not plain stamps, left alone. */
  unparseable: string[];
  /** The counts applied. */
  policy: { keep_daily: number; keep_weekly: number; keep_monthly: number; keep_pre_restore_days: number };
  /** The kept snapshots, newest first, with the rules that keep them. */
  kept_snapshots: KeptSnapshot[];
  /** Stamps removed (confirmed runs), newest first. */
  deleted_snapshots?: string[];
  /** Stamps a confirmed run would remove (dry runs), newest first. */
  would_delete_snapshots?: string[];
  /** Folder names under `failed/` (snapshots that failed post-backup validation), sorted, as found. */
  failed_snapshots: string[];
  /** The `failed/` entries kept: the newest `keep_failed`, and any whose name is not this tool's. */
  failed_kept: string[];
  /** `failed/` entries removed (confirmed runs). */
  failed_deleted?: string[];
  /** `failed/` entries a confirmed run would remove (dry runs). */
  failed_would_delete?: string[];
  keep_failed: number;
}

/**
 * Apply `policy` and the guards to the snapshots of `backupDir`, removing what they let go when
 * `confirm` is set. Never throws for one snapshot that cannot be removed: that
 * is a line in `errors`, and the others are still removed.
 *
 * @param backupDir The backup folder; a missing `snapshots/` means no snapshots.
 * @throws {RefusedError} when something would be removed and no snapshot passes a quick validation
 *   (the run would leave no valid snapshot); nothing is removed.
 * @throws {IntegrityUncheckedError} when a database could not be checked here; nothing is removed.
 * @example
 * ```ts
 * const result = await cleanupSnapshots("/srv/backups", { policy: DEFAULT_POLICY, confirm: false, ... });
 * ```
 */
export async function cleanupSnapshots(backupDir: string, options: CleanupOptions): Promise<CleanupResult> {
  const { stamps, unparseable } = readSnapshotNames(backupDir);
  const decision = await decide(backupDir, stamps, options);
  const errors: string[] = [];
  const deleted = new Set<string>();
  if (options.confirm) {
    for (const stamp of [...decision.remove].reverse()) {
      const outcome = removeViaTrash(backupDir, snapshotDir(backupDir, stamp), stamp, "snapshots/", stamp);
      if (outcome.gone) {
        deleted.add(stamp);
        options.reporter.event("info", "snapshot_removed", { stamp });
      }
      if (outcome.error) errors.push(outcome.error);
    }
    pruneIntegrityRecords(backupDir);
  }
  const removed = options.confirm ? decision.remove.filter((stamp) => deleted.has(stamp)) : decision.remove;
  const result: CleanupResult = {
    kept: decision.keep.length,
    dry_run: !options.confirm,
    errors,
    ...(options.confirm ? { deleted: removed.length } : { would_delete: removed.length }),
    unparseable,
    policy: {
      keep_daily: options.policy.daily,
      keep_weekly: options.policy.weekly,
      keep_monthly: options.policy.monthly,
      keep_pre_restore_days: options.preRestoreDays,
    },
    kept_snapshots: decision.keep.map((stamp) => ({ stamp, reasons: decision.reasons[stamp] })),
    ...(options.confirm ? { deleted_snapshots: removed } : { would_delete_snapshots: removed }),
    ...boundFailed(backupDir, options, errors),
  };
  options.reporter.event("info", "cleanup_old_backups", {
    kept: result.kept,
    deleted: result.deleted ?? 0,
    would_delete: result.would_delete ?? 0,
    dry_run: result.dry_run,
  });
  return result;
}

/**
 * The policy's decision with the guards applied: those that the snapshots' metadata decides, then, when anything
 * would still go, the newest snapshot that passes a quick validation.
 *
 * @throws {RefusedError} when something would go and no snapshot is valid.
 */
async function decide(backupDir: string, stamps: string[], options: CleanupOptions): Promise<RetentionDecision> {
  const facts = stamps.map((stamp) => factsOf(backupDir, stamp));
  const unfinished = options.unfinishedRestore;
  const guarded = withGuards(retainByPolicy(stamps, options.policy, options.now), factGuards(facts, options));
  const beside = unfinished ? withGuards(guarded, unfinishedRestoreGuard(unfinished.stamp, unfinished.pre)) : guarded;
  const decision = withGuards(beside, neededGuards(backupDir, options.reporter));
  if (decision.remove.length === 0) return decision;
  const newestFirst = [...stamps].sort().reverse();
  const inFuture = (stamp: string) => isInFuture(stamp, options.now); // kept anyway: a real one is looked for first
  const order = [...newestFirst.filter((stamp) => !inFuture(stamp)), ...newestFirst.filter(inFuture)];
  const valid = await newestValid(backupDir, order, options);
  if (valid === null) {
    const flags = options.pathFlags ?? "";
    const short = "run 'validate --all' to see why, then 'create'";
    const then = `then make a snapshot with: atocore-backup create${flags}`;
    throw new RefusedError(
      `no snapshot in ${snapshotsDir(backupDir)} passes a quick validation, so cleanup removes nothing ` +
        `(it would leave no valid snapshot); ${nextStep(short, "see why with", "validate --all", flags, then)}`,
    );
  }
  return withGuards(decision, newestValidGuard(valid));
}

/**
 * The guards of the records in the backup folder of the snapshots unfinished restores need (`restore_needs.ts`): kept
 * also when this cleanup does not look at the live store they were restoring into; each record named in a warning.
 *
 * @throws {RefusedError} when a record cannot be read; nothing is removed.
 */
function neededGuards(backupDir: string, reporter: Reporter): Record<string, KeepReason[]> {
  const guards: Record<string, KeepReason[]> = {};
  for (const { path, needs } of readNeeds(backupDir)) {
    reporter.event("warning", "cleanup_unfinished_restore_kept", { path, db: needs.db, stamps: needs.stamps });
    const bucket = `needed by the unfinished restore into ${needs.db} (recorded in ${basename(path)})`;
    for (const stamp of needs.stamps) (guards[stamp] ??= []).push({ rule: "unfinished-restore", bucket });
  }
  return guards;
}

/** What the metadata of the snapshot `stamp` says about it (nothing, when it cannot be read). */
function factsOf(backupDir: string, stamp: string): SnapshotFacts {
  const read = readMetadata(metadataPath(snapshotDir(backupDir, stamp)));
  const metadata = read.ok ? read.metadata : null;
  const restoring = metadata?.restoring_stamp;
  return {
    stamp,
    sequence: trustedSequence(metadata, stamp), // as --latest reads it: a hand-edited one must not take the guard
    preRestore: isPreRestore(metadata),
    restoringStamp: typeof restoring === "string" && isStamp(restoring) ? restoring : null,
  };
}

/**
 * The newest of `newestFirst` that passes a quick validation (metadata, integrity checks, registry, manifest sizes),
 * or `null`; each newer one that fails is reported. Validates only until one passes: usually the newest.
 */
async function newestValid(backupDir: string, newestFirst: string[], options: CleanupOptions): Promise<string | null> {
  for (const stamp of newestFirst) {
    let errors: string[];
    try {
      const validation = await validateSnapshot(backupDir, stamp, { driver: options.driver, quick: true });
      if (validation.valid) return stamp;
      errors = validation.errors;
    } catch (error) {
      if (error instanceof IntegrityUncheckedError) throw error; // not checked is not invalid: nothing is removed
      errors = [describeOsError(error)];
    }
    // the validate printed reaches this run's backup folder
    const next = nextStep(`run 'validate ${stamp}'`, "check it with", `validate ${stamp}`, options.pathFlags ?? "");
    options.reporter.event("warning", "cleanup_snapshot_invalid", { stamp, errors: errors.slice(0, 5), next });
  }
  return null;
}

/**
 * Apply the `failed/` bound: keep the newest `keepFailed` entries, remove (when confirmed) or list the older ones.
 * A removal that fails is a line in `errors`.
 */
function boundFailed(
  backupDir: string,
  options: CleanupOptions,
  errors: string[],
): Pick<CleanupResult, "failed_snapshots" | "failed_kept" | "failed_deleted" | "failed_would_delete" | "keep_failed"> {
  const keepFailed = options.keepFailed ?? DEFAULT_KEEP_FAILED;
  const entries = failedEntries(backupDir);
  const decision = failedRetention(entries, keepFailed);
  const names = (list: typeof entries) => list.map((entry) => entry.name);
  if (!options.confirm) {
    return {
      failed_snapshots: names(entries),
      failed_kept: names(decision.keep),
      failed_would_delete: names(decision.remove),
      keep_failed: keepFailed,
    };
  }
  const deleted: string[] = [];
  for (const entry of decision.remove) {
    const error = removeFailed(backupDir, entry);
    if (error) errors.push(error);
    else {
      deleted.push(entry.name);
      options.reporter.event("info", "failed_snapshot_removed", { path: entry.path });
    }
  }
  return {
    failed_snapshots: names(entries),
    failed_kept: names(entries.filter((entry) => !deleted.includes(entry.name))),
    failed_deleted: deleted,
    keep_failed: keepFailed,
  };
}

/** The folder names under `snapshots/`, split into plain stamps and the rest (sorted). */
function readSnapshotNames(backupDir: string): { stamps: string[]; unparseable: string[] } {
  const stamps: string[] = [];
  const unparseable: string[] = [];
  for (const name of folderNames(snapshotsDir(backupDir))) {
    (isStamp(name) ? stamps : unparseable).push(name);
  }
  return { stamps, unparseable };
}
