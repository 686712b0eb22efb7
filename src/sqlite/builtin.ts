/**
 * The built-in driver: `node:sqlite`, which ships inside the Deno runtime and so
 * inside the compiled binary. Used where no libsqlite3 can be loaded.
 *
 * @module
 */
import { backup, DatabaseSync } from "node:sqlite";
import { type BackupProgress, BUSY_TIMEOUT_MS, PAGES_PER_STEP, PIN_READ, type SqliteDriver } from "./driver.ts";
import { asSqliteError, openDatabase, withDatabase } from "./builtin_open.ts";
import { readOffThread } from "./off_thread.ts";

/**
 * The result codes behind the words node:sqlite's `backup` rejects with, which carry no code: SQLite's own fixed text
 * for each (`sqlite3_errstr`), so a failed read is told as the storage's and a full disk as the copy's.
 */
const BACKUP_ERROR_CODES = new Map([["disk I/O error", 10], ["database is locked", 5], [
  "database or disk is full",
  13,
]]);

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
      // PIN_READ_SNAPSHOT, its read as a statement: node:sqlite's exec gives no result code, a statement's error has
      // one (a busy database is SQLITE_BUSY, as the FFI driver names it)
      from.exec("BEGIN");
      try {
        from.prepare(PIN_READ).get();
      } catch (error) {
        throw asSqliteError(error);
      }
      await backup(from, destination, {
        rate: PAGES_PER_STEP,
        progress: ({ totalPages, remainingPages }) => onProgress?.({ total: totalPages, remaining: remainingPages }),
      }).catch((error: unknown) => {
        throw asSqliteError(error, BACKUP_ERROR_CODES.get((error as Error | null)?.message ?? ""));
      });
      // node:sqlite reports progress only between steps, never after the last one.
      const { page_count: total } = from.prepare("PRAGMA page_count").get() as { page_count: number };
      onProgress?.({ total, remaining: 0 });
      from.exec("COMMIT");
    } finally {
      from.close();
    }
  }

  /** On a worker of its own (node:sqlite has no call off the thread), as {@linkcode tableRowCounts}. */
  integrityCheck(path: string): Promise<string> {
    return readOffThread("integrity", path);
  }

  checkpointTruncate(path: string): void {
    withDatabase(path, {}, (db) => db.exec("PRAGMA wal_checkpoint(TRUNCATE)"));
  }

  rollBackJournal(path: string): void {
    withDatabase(path, {}, (db) => db.prepare("SELECT count(*) FROM sqlite_master").get());
  }

  /**
   * On a worker of its own, so that SQLite's open of the file, which may wait on a FIFO swapped in, is given up after
   * `READ_OPEN_MS` (see `off_thread.ts`), and the caller's thread goes on meanwhile.
   */
  tableRowCounts(path: string): Promise<Record<string, number>> {
    return readOffThread("counts", path);
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
