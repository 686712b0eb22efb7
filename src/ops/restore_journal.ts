/**
 * The last step of a restore: setting each restored database back to the journal mode its live original had, as its
 * snapshot records it (snapshots hold rollback-journal images since format 2), so the service finds WAL mode again.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError, OperationError } from "../errors.ts";
import { syncFile } from "../fs/durable.ts";
import { isFile } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import { CHROMA_DB_FILE } from "../snapshot/chroma.ts";
import type { SnapshotMetadata } from "../snapshot/metadata.ts";
import { setJournalMode } from "../sqlite/journal_header.ts";

/** The restored files whose journal mode may need setting back: the database, and Chroma's folder when restored. */
export interface RestoredDatabases {
  db: string;
  chroma: string | null;
}

/**
 * Set the restored database (and Chroma's, when restored) back to WAL mode where the snapshot records that the live
 * one was in it; other snapshots (the module's, this tool's of format 1: WAL images already) are left as restored.
 *
 * @throws {OperationError} when a header cannot be written: the database is whole, in rollback-journal mode.
 */
export function restoreJournalModes(metadata: SnapshotMetadata, restored: RestoredDatabases, reporter: Reporter): void {
  const files = [
    metadata.db_journal_mode === "wal" ? restored.db : null,
    metadata.chroma_db_journal_mode === "wal" && restored.chroma !== null
      ? join(restored.chroma, CHROMA_DB_FILE)
      : null,
  ];
  for (const file of files) {
    if (file === null || !isFile(file)) continue;
    try {
      setJournalMode(file, "wal");
      syncFile(file);
    } catch (error) {
      throw new OperationError(
        `restored, but could not set ${file} back to WAL mode (${describeOsError(error)}); the database is whole, ` +
          `in rollback-journal mode: open it once with PRAGMA journal_mode=WAL, or restore again`,
        { cause: error },
      );
    }
    reporter.event("info", "restore_journal_mode_set", { path: file, journal_mode: "wal" });
  }
}
