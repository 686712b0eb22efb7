/**
 * Clearing the target database's `-wal` before a restore replaces the database, so the restored one never meets
 * the old WAL, without ever deleting a committed row the WAL still holds.
 *
 * @module
 */
import { describeOsError } from "../errors.ts";
import { removeFileQuietly, removeTemporariesOf, renameDurable } from "../fs/durable.ts";
import { isFile, lstatOrNull, statOrNull } from "../fs/probe.ts";
import { readAt } from "../fs/read_at.ts";
import type { Reporter } from "../report/reporter.ts";
import { formatStamp } from "../snapshot/stamp.ts";
import { isDamagedDatabase, type SqliteDriver, SqliteError } from "../sqlite/driver.ts";
import { DATABASE_MAGIC, startsAsDatabase } from "../sqlite/file_format.ts";
import { OpenedRegular } from "../fs/opened_regular.ts";

/** One change a restore made, in words; `part` names the part of the store whose data it changed, if any. */
export interface Change {
  what: string;
  part?: "database" | "registry" | "chroma";
}

/** The WAL could not be checkpointed fully; it was left in place, so the database keeps every committed row. */
export class WalKeptError extends Error {}

/**
 * Clear the database `db` of its `-wal` and `-shm`, noting in `changes` what was done: temporaries of killed
 * restores beside it are removed; a WAL with frames is checkpointed (TRUNCATE) into the database, and removed only
 * once it is empty. A checkpoint that fails, or leaves frames behind (another connection holds them), stops with
 * {@linkcode WalKeptError} and the WAL in place. A WAL whose database is missing or not a database, which no
 * checkpoint can apply, is kept under a new name with (a hard link to) its database, never deleted.
 *
 * @throws {WalKeptError} when the WAL could not be emptied; nothing was removed.
 */
export function clearWal(driver: SqliteDriver, db: string, reporter: Reporter, changes: Change[]): void {
  removeStaleTemporaries(db, reporter, changes);
  const wal = `${db}-wal`;
  if (walBytes(wal) > 0) {
    const damage = !isFile(db)
      ? "the database file is missing"
      : !hasDatabaseHeader(db)
      ? "the database file is not an SQLite database"
      : checkpoint(driver, db, reporter);
    if (damage !== null) {
      keepAside(db, "-wal", damage, reporter, changes);
    } else if (walBytes(wal) > 0) {
      throw new WalKeptError(
        `the checkpoint could not finish: another connection still uses the database; ${wal} was kept, so the ` +
          `live database keeps every committed row`,
      );
    } else {
      changes.push({ what: `checkpointed ${wal} into ${db} (the same rows)` });
    }
  }
  removeFileQuietly(wal);
  removeFileQuietly(`${db}-shm`);
}

/** The files beside a database before its replacement, by identity: `-wal` and `-shm` (see below). */
export interface Sidecars {
  wal: string | null;
  shm: string | null;
}

/** The identities of `db`'s `-wal` and `-shm` as they are now (just before it is replaced). */
export function sidecarsOf(db: string): Sidecars {
  return { wal: identityOrNull(`${db}-wal`), shm: identityOrNull(`${db}-shm`) };
}

/**
 * After `db` was replaced: its `-wal` and `-shm` from before the replacement (`before`: a process opened the old
 * database during the restore) are the old database's: the WAL is kept aside with the old database (`oldDatabase`, a
 * link to it), never applied to the restored one (an empty one removed), the `-shm` removed (its opener keeps its own
 * mapping). Ones made since belong to a process that opened the restored database (the service come back): left to it.
 */
export function clearWalAfterReplace(
  db: string,
  before: Sidecars,
  oldDatabase: string | null,
  reporter: Reporter,
  changes: Change[],
): void {
  const wal = `${db}-wal`;
  if (before.wal !== null && identityOrNull(wal) === before.wal) {
    if (walBytes(wal) > 0) {
      const why = "it appeared beside the database during the restore: a process opened the old one";
      keepAside(db, "-wal", why, reporter, changes, oldDatabase);
    } else {
      removeFileQuietly(wal);
      changes.push({ what: `removed the empty ${wal} of the old database` });
    }
  }
  if (before.shm !== null && identityOrNull(`${db}-shm`) === before.shm) {
    removeFileQuietly(`${db}-shm`);
    changes.push({ what: `removed ${db}-shm, the old database's index` });
  }
}

function identityOrNull(path: string): string | null {
  const info = lstatOrNull(path);
  return info === null ? null : `${info.dev}:${info.ino}`;
}

/** Checkpoint `db`: `null` when done, or why its file is damaged; any other failure throws {@linkcode WalKeptError}. */
function checkpoint(driver: SqliteDriver, db: string, reporter: Reporter): string | null {
  try {
    driver.checkpointTruncate(db);
    return null;
  } catch (error) {
    if (error instanceof SqliteError && isDamagedDatabase(error)) { // no checkpoint can ever read it
      reporter.event("warning", "restore_pre_checkpoint_failed", { target_db: db, error: error.message });
      return `the database is damaged (${error.message})`;
    }
    throw new WalKeptError(
      `${describeOsError(error)}; ${db}-wal was kept, so the live database keeps every committed row`,
      { cause: error },
    );
  }
}

/**
 * Keep a sidecar (`-wal` or `-journal`) no SQLite open can apply under a name of its own, beside a hard link to its
 * database `database` (the pair SQLite would open together; `null` when there is none to keep, the database being the
 * restored one), so the restored database never reads it and nothing of it is deleted.
 */
export function keepAside(
  db: string,
  sidecar: "-wal" | "-journal",
  why: string,
  reporter: Reporter,
  changes: Change[],
  database: string | null = db,
): void {
  const kept = `${db}.kept-${formatStamp(new Date())}-${crypto.randomUUID().slice(0, 8)}`;
  if (database !== null && isFile(database)) Deno.linkSync(database, kept);
  renameDurable(`${db}${sidecar}`, `${kept}${sidecar}`);
  const fields = { [sidecar.slice(1)]: `${db}${sidecar}`, kept: `${kept}${sidecar}`, reason: why };
  if (sidecar === "-wal") reporter.event("warning", "restore_wal_set_aside", fields);
  else reporter.event("warning", "restore_journal_set_aside", fields);
  const pair = isFile(kept) ? `${kept} and ${kept}${sidecar}` : `${kept}${sidecar}`;
  const name = sidecar === "-wal" ? "WAL" : "rollback journal";
  changes.push({ what: `kept the old database's ${name}, not applied (${why}), as ${pair}` });
}

/**
 * Tell whether a file may be an SQLite database: it starts as every one does, or is
 * shorter than that (a new WAL-mode database may hold nothing yet outside its WAL).
 */
function hasDatabaseHeader(path: string): boolean {
  using file = OpenedRegular.open(path, { followLinks: true }); // never waiting on a FIFO swapped in
  const header = readAt(file, 0, DATABASE_MAGIC.length);
  return header === null || startsAsDatabase(header);
}

function walBytes(wal: string): number {
  return statOrNull(wal)?.size ?? 0;
}

/** Remove temporary copies beside `target` left by a restore that was killed (the lock rules out a live one). */
export function removeStaleTemporaries(target: string, reporter: Reporter, changes: Change[]): void {
  const stale = removeTemporariesOf(target);
  for (const path of stale) reporter.event("warning", "stale_leftover_removed", { path });
  if (stale.length > 0) {
    changes.push({ what: `removed ${stale.length} temporary file(s) a killed restore left beside ${target}` });
  }
}
