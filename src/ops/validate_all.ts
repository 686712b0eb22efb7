/**
 * Validation of every snapshot in a backup folder, for `validate --all`.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { snapshotsDir } from "../snapshot/layout.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { snapshotNames } from "./list.ts";
import { type ValidateOptions, validateSnapshot, type ValidationResult } from "./validate.ts";

/** The result of validating every snapshot. */
export interface ValidateAllResult {
  /** True when every snapshot is valid (and so when there is none). */
  valid: boolean;
  /** One result per snapshot, in name order. */
  results: ValidationResult[];
  /** Folders under `snapshots/` whose name is not a stamp: no snapshot, so skipped, not failed. */
  skipped: string[];
}

/**
 * Validate every snapshot under `<backup>/snapshots/`, in name order.
 *
 * @throws {UsageError} naming the path, when the backup folder has no `snapshots/` folder.
 */
export async function validateAll(backupDir: string, options: ValidateOptions): Promise<ValidateAllResult> {
  requireSnapshotsFolder(backupDir);
  const names = snapshotNames(backupDir);
  const results: ValidationResult[] = [];
  for (const stamp of names.filter(isStamp)) results.push(await validateSnapshot(backupDir, stamp, options));
  return {
    valid: results.every((result) => result.valid),
    results,
    skipped: names.filter((name) => !isStamp(name)),
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
  let folder: boolean;
  try {
    folder = Deno.statSync(path).isDirectory;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory)) throw error;
    folder = false;
  }
  if (!folder) {
    throw new UsageError(
      `no snapshots folder at ${path}; check --backup-dir or ATOCORE_BACKUP_DIR (see 'config')`,
    );
  }
}
