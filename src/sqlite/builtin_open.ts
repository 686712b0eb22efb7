/**
 * Opening databases with `node:sqlite` for the built-in driver, and its reads of a database that may be swapped (an
 * integrity check, row counts), which its worker runs (see `off_thread.ts`).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { NoScratchSpaceError, type ScratchCopy, scratchCopy } from "../fs/scratch_copy.ts";
import { UsageError } from "../errors.ts";
import {
  BUSY_TIMEOUT_MS,
  immutableUri,
  integrityAnswer,
  IntegrityUncheckedError,
  quoteIdentifier,
  SqliteError,
  TABLES_QUERY,
} from "./driver.ts";
import { readJournalMode, setJournalMode } from "./journal_header.ts";
import { lookAtDatabase } from "./read_open.ts";

const SQLITE_CANTOPEN = 14;

/** Told before and after each SQLite open of a file another user may swap: a worker's way to be given up. */
export interface OpenWatch {
  opening(): void;
  opened(): void;
}

/** `PRAGMA integrity_check` of the database at `path`, on this thread: `"ok"` or the first problem, on one line. */
export function readIntegrity(path: string, watch?: OpenWatch): string {
  return withImmutable(path, (db) => {
    const row = db.prepare("PRAGMA integrity_check").get() as Record<string, unknown> | undefined;
    return row ? integrityAnswer(String(Object.values(row)[0])) : "no_row";
  }, watch);
}

/** The row count of every table of the database at `path`, on this thread. */
export function readRowCounts(path: string, watch?: OpenWatch): Record<string, number> {
  return withImmutable(path, (db) => {
    const tables = db.prepare(TABLES_QUERY).all().map((row) => String(row.name));
    return Object.fromEntries(tables.map((table) => {
      const row = db.prepare(`SELECT count(*) AS n FROM ${quoteIdentifier(table)}`).get() as { n: number };
      return [table, Number(row.n)];
    }));
  }, watch);
}

/** Open the database at `location` (a path, a `file:` URI or `:memory:`), telling `watch` of the open. */
export function openDatabase(location: string, options: { readOnly?: boolean }, watch?: OpenWatch): DatabaseSync {
  try {
    if (location !== ":memory:" && !location.startsWith("file:")) Deno.statSync(location);
    watch?.opening();
    const db = new DatabaseSync(location, { readOnly: options.readOnly ?? false, timeout: BUSY_TIMEOUT_MS });
    // its first read opens a -journal beside it, to see whether it is hot: a FIFO there waits as the file's would
    if (watch) db.prepare("SELECT count(*) FROM sqlite_master").get();
    return db;
  } catch (error) {
    throw asSqliteError(error, SQLITE_CANTOPEN);
  } finally {
    watch?.opened();
  }
}

/** Use the database at `location` opened as {@linkcode openDatabase} opens it, closed after; errors as `SqliteError`. */
export function withDatabase<T>(
  location: string,
  options: { readOnly?: boolean },
  use: (db: DatabaseSync) => T,
  watch?: OpenWatch,
): T {
  const db = openDatabase(location, options, watch);
  try {
    return use(db);
  } catch (error) {
    throw asSqliteError(error);
  } finally {
    db.close();
  }
}

/**
 * Use the database at `path` opened read-only, never writing beside it.
 *
 * A database in rollback-journal mode is opened by its plain path, read-only, which
 * needs no sidecar. A WAL-mode one (as snapshot copies of a WAL database are) needs the
 * `file:` URI with `immutable=1`, which node:sqlite hands to SQLite only when the process
 * holds every permission (otherwise it takes the URI for a relative path); where it
 * cannot, it is read through a private copy (see {@linkcode withRollbackCopy}).
 */
function withImmutable<T>(path: string, use: (db: DatabaseSync) => T, watch?: OpenWatch): T {
  lookAtDatabase(path); // a FIFO or device there fails at once; one swapped in after, `watch` is told of
  if (!isWalMode(path)) return withDatabase(path, { readOnly: true }, use, watch);
  try {
    return withDatabase(immutableUri(path), { readOnly: true }, use, watch);
  } catch (error) {
    if (!(error instanceof SqliteError) || error.code !== "SQLITE_CANTOPEN") throw error;
  }
  return withRollbackCopy(path, use);
}

/**
 * Use a private copy of the WAL-mode database at `path`, in the first temporary folder that takes it (see
 * `scratch_copy.ts`), its header set to rollback-journal mode and opened read-only: what `immutable=1` reads,
 * where the URI cannot be used. Costs one copy of the file; the copy is removed after.
 *
 * @throws {IntegrityUncheckedError} when no temporary folder takes the copy, or TMPDIR cannot be read: the database
 *   was not checked.
 */
function withRollbackCopy<T>(path: string, use: (db: DatabaseSync) => T): T {
  let copy: ScratchCopy;
  try {
    copy = scratchCopy(path, "copy.db");
  } catch (error) {
    if (error instanceof NoScratchSpaceError) throw new IntegrityUncheckedError(path, error.message);
    // a TMPDIR that is not UTF-8: not checked, never a database that failed to open
    if (error instanceof UsageError) throw new IntegrityUncheckedError(path, error.message.split(";")[0]);
    throw error;
  }
  using _ = copy;
  setJournalMode(copy.file, "rollback");
  return withDatabase(copy.file, { readOnly: true }, use);
}

/** Tell whether the database file's header says WAL mode (file format versions at bytes 18-19). */
function isWalMode(path: string): boolean {
  try {
    return readJournalMode(path) === "wal";
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new SqliteError(SQLITE_CANTOPEN, `unable to open database file: ${path}`);
    }
    throw error;
  }
}

/**
 * Turn `node:sqlite`'s error (which carries `errcode`) into a {@linkcode SqliteError}.
 * Some (a database that cannot be opened) come without `errcode`: `fallback` is used then.
 */
export function asSqliteError(error: unknown, fallback?: number): unknown {
  const { errcode, code } = (error ?? {}) as { errcode?: unknown; code?: unknown };
  if (typeof errcode === "number") return new SqliteError(errcode, (error as Error).message);
  if (fallback !== undefined && code === "ERR_SQLITE_ERROR") return new SqliteError(fallback, (error as Error).message);
  return error;
}
