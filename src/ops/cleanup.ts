/**
 * Cleanup: apply the retention policy to the snapshots of a backup folder and,
 * when confirmed, remove the ones it lets go.
 *
 * Only folders under `<backup>/snapshots/` whose names are plain stamps are
 * snapshots; any other name is reported as `unparseable` and never touched. A
 * snapshot is removed by renaming it into `<backup>/.trash/` (durably) and only
 * then deleting it, so `list` and `validate` see it whole or not at all, and a
 * killed cleanup leaves no half-deleted snapshot behind (the next create or
 * cleanup removes what is left in `.trash/`).
 *
 * Snapshots kept aside under `<backup>/failed/` (they failed post-backup
 * validation) are bounded: the newest few are kept for inspection, older ones go
 * (`failed.ts`).
 *
 * The caller holds the operation lock for a confirmed cleanup. A dry run reads
 * only. Requires `--allow-read`, and `--allow-write` to remove.
 *
 * @module
 */
import { describeOsError } from "../errors.ts";
import { ensureDir, removeInside, renameDurable } from "../fs/durable.ts";
import { folderNames, isDirectory } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import { applyRetention, type KeepReason, type RetentionPolicy } from "../snapshot/retention.ts";
import { snapshotDir, snapshotsDir, trashDir, trashRoot } from "../snapshot/layout.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { DEFAULT_KEEP_FAILED, failedEntries, failedRetention, removeFailed } from "./failed.ts";

/** Options of {@linkcode cleanupSnapshots}. */
export interface CleanupOptions {
  /** Retention counts. */
  policy: Readonly<RetentionPolicy>;
  /** Remove for real; otherwise only report what would go. */
  confirm: boolean;
  /** Where events go. */
  reporter: Reporter;
  /** How many `failed/` entries to keep, newest first (default {@linkcode DEFAULT_KEEP_FAILED}). */
  keepFailed?: number;
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
  policy: { keep_daily: number; keep_weekly: number; keep_monthly: number };
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
 * Apply `policy` to the snapshots of `backupDir`, removing what it lets go when
 * `confirm` is set. Never throws for one snapshot that cannot be removed: that
 * is a line in `errors`, and the others are still removed.
 *
 * @param backupDir The backup folder; a missing `snapshots/` means no snapshots.
 * @example
 * ```ts
 * const result = cleanupSnapshots("/srv/backups", { policy: DEFAULT_POLICY, confirm: false, reporter: SILENT });
 * ```
 */
export function cleanupSnapshots(backupDir: string, options: CleanupOptions): CleanupResult {
  const { stamps, unparseable } = readSnapshotNames(backupDir);
  const decision = applyRetention(stamps, options.policy);
  const errors: string[] = [];
  const deleted = new Set<string>();
  if (options.confirm) {
    for (const stamp of [...decision.remove].reverse()) {
      const outcome = removeSnapshot(backupDir, stamp);
      if (outcome.gone) {
        deleted.add(stamp);
        options.reporter.event("info", "snapshot_removed", { stamp });
      }
      if (outcome.error) errors.push(outcome.error);
    }
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

/**
 * Move one snapshot out of `snapshots/` into `.trash/`, durably, then delete it.
 * `gone` tells whether it left `snapshots/`; a failure after the move is still an error.
 * The deletion needs no fsync: what a crash leaves in `.trash/` is never listed, and
 * the next create or cleanup removes it.
 */
function removeSnapshot(backupDir: string, stamp: string): { gone: boolean; error?: string } {
  const source = snapshotDir(backupDir, stamp);
  const trash = trashDir(backupDir, stamp);
  try {
    if (!isDirectory(trashRoot(backupDir))) ensureDir(trashRoot(backupDir));
    renameDurable(source, trash);
  } catch (error) {
    return {
      gone: false,
      error: `${stamp}: could not move ${source} out of snapshots/: ${
        describeOsError(error)
      }; it is untouched, fix that and run cleanup again`,
    };
  }
  try {
    removeInside(backupDir, trash);
  } catch (error) {
    return {
      gone: true,
      error: `${stamp}: moved out of snapshots/ but not removed from ${trash}: ${describeOsError(error)}; ` +
        "the next create or cleanup removes it",
    };
  }
  return { gone: true };
}
