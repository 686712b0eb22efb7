/**
 * The built-in driver: `node:sqlite`, which ships inside the Deno runtime and so
 * inside the compiled binary. Used where no libsqlite3 can be loaded.
 *
 * @module
 */
import { backup, DatabaseSync } from "node:sqlite";
import { NoScratchSpaceError, type ScratchCopy, scratchCopy } from "../fs/scratch_copy.ts";
import {
  type BackupProgress,
  BUSY_TIMEOUT_MS,
  immutableUri,
  integrityAnswer,
  IntegrityUncheckedError,
  PAGES_PER_STEP,
  PIN_READ_SNAPSHOT,
  quoteIdentifier,
  type SqliteDriver,
  SqliteError,
  TABLES_QUERY,
} from "./driver.ts";
import { readJournalMode, setJournalMode } from "./journal_header.ts";
import { lookAtDatabase } from "./read_open.ts";

const SQLITE_CANTOPEN = 14;

/** Return the built-in driver. */
export function openBuiltinDriver(): SqliteDriver {
  return new BuiltinDriver();
}

class BuiltinDriver implements SqliteDriver {
  readonly name = "builtin";
  readonly version: string;

  constructor() {
    this.version = withDatabase(
      ":memory:",
      {},
      (db) => String((db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v),
    );
  }

  async backup(
    source: string,
    destination: string,
    onProgress?: (progress: BackupProgress) => void,
  ): Promise<void> {
    await Deno.stat(source);
    const from = openDatabase(source, {});
    try {
      from.exec(PIN_READ_SNAPSHOT);
      await backup(from, destination, {
        rate: PAGES_PER_STEP,
        progress: ({ totalPages, remainingPages }) => onProgress?.({ total: totalPages, remaining: remainingPages }),
      }).catch((error: unknown) => {
        throw asSqliteError(error);
      });
      // node:sqlite reports progress only between steps, never after the last one.
      const { page_count: total } = from.prepare("PRAGMA page_count").get() as { page_count: number };
      onProgress?.({ total, remaining: 0 });
      from.exec("COMMIT");
    } finally {
      from.close();
    }
  }

  /** node:sqlite has no call off this thread: the check runs here, before the promise is returned. */
  integrityCheck(path: string): Promise<string> {
    return settled(() =>
      withImmutable(path, (db) => {
        const row = db.prepare("PRAGMA integrity_check").get() as Record<string, unknown> | undefined;
        return row ? integrityAnswer(String(Object.values(row)[0])) : "no_row";
      })
    );
  }

  checkpointTruncate(path: string): void {
    withDatabase(path, {}, (db) => db.exec("PRAGMA wal_checkpoint(TRUNCATE)"));
  }

  rollBackJournal(path: string): void {
    withDatabase(path, {}, (db) => db.prepare("SELECT count(*) FROM sqlite_master").get());
  }

  tableRowCounts(path: string): Promise<Record<string, number>> {
    return settled(() =>
      withImmutable(path, (db) => {
        const tables = db.prepare(TABLES_QUERY).all().map((row) => String(row.name));
        return Object.fromEntries(tables.map((table) => {
          const row = db.prepare(`SELECT count(*) AS n FROM ${quoteIdentifier(table)}`).get() as { n: number };
          return [table, Number(row.n)];
        }));
      })
    );
  }

  execScript(path: string, sql: string): void {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
      db.exec(sql);
    } catch (error) {
      throw asSqliteError(error);
    } finally {
      db?.close();
    }
  }
}

/** What `run` returns, or its error, as a promise. */
function settled<T>(run: () => T): Promise<T> {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error);
  }
}

function openDatabase(location: string, options: { readOnly?: boolean }): DatabaseSync {
  try {
    if (location !== ":memory:" && !location.startsWith("file:")) Deno.statSync(location);
    const db = new DatabaseSync(location, { readOnly: options.readOnly ?? false, timeout: BUSY_TIMEOUT_MS });
    return db;
  } catch (error) {
    throw asSqliteError(error, SQLITE_CANTOPEN);
  }
}

function withDatabase<T>(location: string, options: { readOnly?: boolean }, use: (db: DatabaseSync) => T): T {
  const db = openDatabase(location, options);
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
function withImmutable<T>(path: string, use: (db: DatabaseSync) => T): T {
  lookAtDatabase(path); // never a FIFO or device waited on, unless swapped in the instant before SQLite's open
  if (!isWalMode(path)) return withDatabase(path, { readOnly: true }, use);
  try {
    return withDatabase(immutableUri(path), { readOnly: true }, use);
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
 * @throws {IntegrityUncheckedError} when no temporary folder takes the copy: the database was not checked.
 */
function withRollbackCopy<T>(path: string, use: (db: DatabaseSync) => T): T {
  let copy: ScratchCopy;
  try {
    copy = scratchCopy(path, "copy.db");
  } catch (error) {
    if (error instanceof NoScratchSpaceError) throw new IntegrityUncheckedError(path, error.message);
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
function asSqliteError(error: unknown, fallback?: number): unknown {
  const { errcode, code } = (error ?? {}) as { errcode?: unknown; code?: unknown };
  if (typeof errcode === "number") return new SqliteError(errcode, (error as Error).message);
  if (fallback !== undefined && code === "ERR_SQLITE_ERROR") return new SqliteError(fallback, (error as Error).message);
  return error;
}
