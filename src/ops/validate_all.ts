/**
 * Validation of every snapshot in a backup folder, for `validate --all`, and of one as the CLI reports it: a stamp in
 * the future flagged, a snapshot that a cleanup removes meanwhile told apart from a damaged one.
 *
 * @module
 */
import { unexpectedErrorLine, UsageError } from "../errors.ts";
import { exists, statThroughFilesOrNull } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import { secondsInFuture } from "../snapshot/clock.ts";
import { snapshotDir, snapshotsDir } from "../snapshot/layout.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { IntegrityUncheckedError } from "../sqlite/driver.ts";
import { snapshotNames } from "./list.ts";
import { snapshotsNotAFolder } from "./own_folders.ts";
import { type ValidateOptions, validateSnapshot, type ValidationResult } from "./validate.ts";

/** Options of {@linkcode validateAll} and {@linkcode checkSnapshot}. */
export interface CheckOptions extends ValidateOptions {
  /** The time stamps are compared with. */
  now: Date;
  /** Where warnings go: a stamp in the future, a snapshot removed meanwhile. */
  reporter: Reporter;
}

/** A validation as the CLI reports it. */
export type CheckedSnapshot = ValidationResult & {
  /** The stamp is later than now beyond the allowed skew: the clock was wrong when it was made, or is now. */
  stamp_in_future: boolean;
};

/** The result of validating every snapshot. */
export interface ValidateAllResult {
  /** True when every snapshot still there is valid (and so when there is none). */
  valid: boolean;
  /** One result per snapshot, in name order. */
  results: CheckedSnapshot[];
  /** Folders under `snapshots/` whose name is not a stamp: no snapshot, so skipped, not failed. */
  skipped: string[];
  /** Snapshots removed (by a cleanup) while the run went on, before their validation ended: not checked. */
  removed_during_validation: string[];
}

/**
 * Validate every snapshot under `<backup>/snapshots/`, in name order. One that vanishes meanwhile is reported and
 * the run goes on; one whose validation throws is an invalid result naming the error.
 *
 * @throws {UsageError} naming the path, when the backup folder has no `snapshots/` folder.
 * @throws {IntegrityUncheckedError} when a database could not be checked here (not damage: no snapshot would be).
 */
export async function validateAll(backupDir: string, options: CheckOptions): Promise<ValidateAllResult> {
  requireSnapshotsFolder(backupDir);
  const names = snapshotNames(backupDir);
  const results: CheckedSnapshot[] = [];
  const removed: string[] = [];
  for (const stamp of names.filter(isStamp)) {
    let result: CheckedSnapshot | null;
    try {
      result = await checkSnapshot(backupDir, stamp, options);
    } catch (error) {
      if (error instanceof IntegrityUncheckedError) throw error;
      result = failedValidation(backupDir, stamp, options, error);
    }
    if (result === null) removed.push(stamp);
    else results.push(result);
  }
  return {
    valid: results.every((result) => result.valid),
    results,
    skipped: names.filter((name) => !isStamp(name)),
    removed_during_validation: removed,
  };
}

/**
 * Validate the snapshot `stamp` and flag a stamp in the future; `null` when the snapshot was removed before its
 * validation ended (a concurrent cleanup), which is reported as such, never as damage.
 *
 * @throws {UsageError} when `stamp` is not a plain stamp.
 */
export async function checkSnapshot(
  backupDir: string,
  stamp: string,
  options: CheckOptions,
): Promise<CheckedSnapshot | null> {
  const root = snapshotDir(backupDir, stamp);
  const ahead = secondsInFuture(stamp, options.now);
  if (ahead > 0) options.reporter.event("warning", "snapshot_stamp_in_future", { stamp, seconds_ahead: ahead });
  let result: ValidationResult | null = null;
  try {
    result = await validateSnapshot(backupDir, stamp, options);
  } catch (error) {
    if (exists(root)) throw error;
  }
  if (result !== null && (result.valid || exists(root))) return { ...result, stamp_in_future: ahead > 0 };
  options.reporter.event("warning", "snapshot_removed_during_validation", { stamp, path: root });
  return null;
}

/** An invalid result for a snapshot whose validation threw, so that one snapshot never stops the others. */
function failedValidation(backupDir: string, stamp: string, options: CheckOptions, error: unknown): CheckedSnapshot {
  return {
    stamp,
    path: snapshotDir(backupDir, stamp),
    exists: true,
    db_ok: false,
    registry_ok: null,
    chroma_ok: null,
    errors: [`validation_error: ${unexpectedErrorLine(error)}`], // a system error's line names the path
    valid: false,
    manifest_ok: null,
    metadata_bound: null,
    files_checked: 0,
    bytes_hashed: 0,
    quick: options.quick ?? false,
    stamp_in_future: secondsInFuture(stamp, options.now) > 0,
  };
}

/**
 * Refuse a backup folder that has no `snapshots/` folder: a mistyped `--backup-dir`
 * would otherwise pass as "no snapshots", valid. An empty one is fine.
 *
 * @throws {UsageError} naming the path, when nothing or no folder is there.
 */
function requireSnapshotsFolder(backupDir: string): void {
  const path = snapshotsDir(backupDir);
  const notFolder = snapshotsNotAFolder(backupDir);
  if (notFolder !== null) throw new UsageError(notFolder);
  if (statThroughFilesOrNull(path)?.isDirectory !== true) {
    throw new UsageError(
      `no snapshots folder at ${path}; check --backup-dir or ATOCORE_BACKUP_DIR (see 'config')`,
    );
  }
}
