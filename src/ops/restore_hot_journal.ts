/**
 * Clearing the target database's rollback `-journal` before and right after a restore replaces the database: a
 * journal a killed writer left would otherwise be played back into the restored database by its first open.
 *
 * @module
 */
import { describeOsError } from "../errors.ts";
import { removeFileQuietly } from "../fs/durable.ts";
import { lstatOrNull } from "../fs/probe.ts";
import { kindOf } from "../fs/regular_file.ts";
import type { Reporter } from "../report/reporter.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { type Change, keepAside } from "./restore_wal.ts";

/**
 * Clear the database `db` of its `-journal` before it is replaced, noting in `changes` what was done: SQLite rolls
 * a hot journal back into the old database (its committed rows, as any open would); an empty journal is removed;
 * any journal still there after (the database missing, damaged, not a file of one name; the rollback failed) is kept aside
 * with a hard link to its database, never deleted.
 */
export function clearJournal(driver: SqliteDriver, db: string, reporter: Reporter, changes: Change[]): void {
  const journal = `${db}-journal`;
  const found = lstatOrNull(journal);
  if (found === null) return;
  let why = found.isFile ? noRollbackInto(db) : `it is a ${kindOf(found)}, not a file`;
  if (found.isFile && found.size > 0 && why === null) {
    try {
      driver.rollBackJournal(db);
      why = "SQLite did not roll it back";
    } catch (error) {
      why = `the rollback failed: ${describeOsError(error)}`;
      reporter.event("warning", "restore_journal_rollback_failed", { target_db: db, error: String(error) });
    }
    if (lstatOrNull(journal) === null) {
      changes.push({ what: `rolled the unfinished transaction in ${journal} back into ${db} (its committed rows)` });
      return;
    }
  }
  settle(db, why ?? "", reporter, changes, db); // an empty journal is removed, a reason needed only for a kept one
}

/**
 * Why `db` may not take a journal's rollback, or `null` when it is a file of one name: missing, not a file, a link,
 * or a file of other names too (hard links), which a rollback would write through: `--to` given a folder whose
 * database was linked to a live Chroma file or a snapshot's.
 */
function noRollbackInto(db: string): string | null {
  const info = lstatOrNull(db);
  if (info === null) return "its database file is missing";
  if (!info.isFile) return `its database is a ${kindOf(info)}, not a file`;
  return (info.nlink ?? 1) > 1
    ? `its database has ${info.nlink} names (hard links), which a rollback writes through`
    : null;
}

/**
 * After `db` was replaced: a `-journal` that appeared beside it since {@linkcode clearJournal} belongs to the old
 * database, so it is kept aside (an empty one removed), never played back into the restored one.
 */
export function clearJournalAfterReplace(db: string, reporter: Reporter, changes: Change[]): void {
  if (lstatOrNull(`${db}-journal`) === null) return;
  settle(db, "it appeared beside the restored database, which it does not belong to", reporter, changes, null);
}

/** Remove an empty `-journal` (it holds nothing), else keep it aside. */
function settle(db: string, why: string, reporter: Reporter, changes: Change[], database: string | null): void {
  const journal = `${db}-journal`;
  const found = lstatOrNull(journal);
  if (found === null) return;
  if (found.isFile && found.size === 0) {
    removeFileQuietly(journal);
    changes.push({ what: `removed the empty ${journal}` });
    return;
  }
  keepAside(db, "-journal", why, reporter, changes, database);
}
