/**
 * A backup whose destination can be hashed while it is written: a capability only the FFI
 * driver offers, kept apart so that {@linkcode SqliteDriver.backup} is plain for every driver.
 *
 * @module
 */
import type { BackupFiles, BackupProgress, SqliteDriver } from "./driver.ts";

/**
 * Told after each backup step that the destination's bytes from the end of
 * `firstPage` up to `bytes` are written and final, and that its first page will be
 * `firstPage` once the backup completes: a prediction, to check against the finished
 * file.
 */
export type SettledListener = (firstPage: Uint8Array, bytes: number) => void;

/** A driver whose backup can say, step by step, which bytes of the destination are final. */
export interface FollowedBackup {
  /**
   * Back up as {@linkcode SqliteDriver.backup} does, writing each step's pages to the file
   * before the next step and telling `onSettled` of them. When the first page cannot be
   * predicted or the library cannot write its cache out, `onSettled` is never called.
   */
  backupFollowed(
    source: string,
    destination: string,
    onSettled: SettledListener,
    onProgress?: (progress: BackupProgress) => void,
    files?: BackupFiles,
  ): Promise<void>;
}

/** Whether `driver` offers {@linkcode FollowedBackup} (the FFI driver does, the built-in one does not). */
export function offersFollowedBackup(driver: SqliteDriver): driver is SqliteDriver & FollowedBackup {
  return typeof (driver as Partial<FollowedBackup>).backupFollowed === "function";
}

/**
 * Back up `source` into `destination`, telling `onSettled` of each step where the driver
 * offers it; elsewhere a plain backup that never calls `onSettled` (the caller then hashes
 * the finished file).
 */
export function backupFollowedIfOffered(
  driver: SqliteDriver,
  source: string,
  destination: string,
  onSettled: SettledListener,
  onProgress?: (progress: BackupProgress) => void,
  files?: BackupFiles,
): Promise<void> {
  return offersFollowedBackup(driver)
    ? driver.backupFollowed(source, destination, onSettled, onProgress, files)
    : driver.backup(source, destination, onProgress, files);
}
