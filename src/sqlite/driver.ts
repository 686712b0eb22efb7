/**
 * The small interface of what the tool needs from SQLite, shared by both drivers. Every
 * SQLite call lives under `src/sqlite/`; the rest of the tool sees only {@linkcode SqliteDriver}
 * and, to hash a copy behind its backup, `FollowedBackup` (`followed_backup.ts`).
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import type { Identity } from "../sys/folder_calls.ts";

/** The name of a driver, as recorded in a snapshot's metadata. */
export type DriverName = "ffi" | "builtin";

/** How the driver is chosen on the command line (`--sqlite-driver`). */
export type DriverChoice = DriverName | "auto";

/** Progress of an online backup, in pages. */
export interface BackupProgress {
  /** Pages still to copy. */
  remaining: number;
  /** Pages in the source database. */
  total: number;
}

/** The files a backup must open, where the caller knows them (see {@linkcode SqliteDriver.backup}). */
export interface BackupFiles {
  /** The file the source's links reached when judged: another one opened is refused (`ReplacedDatabaseError`). */
  source?: Identity;
  /**
   * The empty file the caller made at the destination inside a folder it holds: SQLite opens it without creating one,
   * and another file opened there (its folder swapped for a link since) is refused (`MovedCopyError`) before a page is
   * written.
   */
  destination?: Identity;
}

/** What the tool does with SQLite. */
export interface SqliteDriver {
  /** Which driver this is. */
  readonly name: DriverName;
  /** The SQLite library version, e.g. `3.40.1`. */
  readonly version: string;
  /**
   * Copy the database at `source` into the new file `destination` with the online
   * backup API, as one consistent state even while another process commits, then
   * leave the fsync to the caller (create flushes it while hashing). The source is
   * never created: a missing source is an error. With `files` (see {@linkcode BackupFiles}), the FFI driver refuses a
   * source or destination that SQLite's open finds replaced, before a page is read or written; the built-in one
   * cannot see which files it opened.
   */
  backup(
    source: string,
    destination: string,
    onProgress?: (progress: BackupProgress) => void,
    files?: BackupFiles,
  ): Promise<void>;
  /**
   * `PRAGMA integrity_check` of the database at `path`: `"ok"` or the first problem, on one line. The file is opened
   * read-only and immutable, so it works on a read-only folder and never grows `-wal`/`-shm` sidecars; the FFI driver
   * opens and checks it off the caller's thread, which goes on meanwhile (a validation checks both databases at once,
   * a push reads and packs beside its validation), and gives up an open that waits (see `read_open.ts`).
   */
  integrityCheck(path: string): Promise<string>;
  /** `PRAGMA wal_checkpoint(TRUNCATE)` on the database at `path` (which must exist). */
  checkpointTruncate(path: string): void;
  /**
   * Open the database at `path` (which must exist) read-write and read it once: SQLite then rolls a hot `-journal`
   * (a transaction a killed process left unfinished) back into it and removes the journal.
   */
  rollBackJournal(path: string): void;
  /** Row count of every table of the database at `path`, opened as {@linkcode integrityCheck} opens it. */
  tableRowCounts(path: string): Promise<Record<string, number>>;
  /**
   * Run SQL statements (their rows, if any, are dropped) on the database at `path`,
   * creating it when missing. Used to build the sample store.
   */
  execScript(path: string, sql: string): void;
}

/**
 * A database that could not be checked (not one found damaged): the built-in driver reads a WAL-mode file through a
 * private copy, and no temporary folder took it. A configuration problem (exit 2), fixed by pointing `TMPDIR` at room.
 */
export class IntegrityUncheckedError extends UsageError {
  /** Make the error for the database at `path`, with why no private copy could be made. */
  constructor(readonly path: string, readonly why: string) {
    super(
      `could not check the integrity of ${path}: ${why}; set TMPDIR to a folder with room for it, ` +
        `or use --sqlite-driver ffi`,
    );
  }
}

/** The operating system's error behind a SQLite error where it matters to the operator: the open-file limit, or EIO. */
export type SystemCode = "EMFILE" | "ENFILE" | "EIO";

/** An error reported by SQLite, with the symbolic name of its primary result code. */
export class SqliteError extends Error {
  /** Symbolic result code, such as `SQLITE_CORRUPT` or `SQLITE_FULL`. */
  readonly code: string;

  /**
   * Make an error from a numeric result code (kept, to make it again on another thread) and SQLite's message;
   * `systemCode`, the operating system's error behind it where it matters to the operator.
   */
  constructor(readonly resultCode: number, message: string, readonly systemCode?: SystemCode) {
    super(message);
    this.name = "SqliteError";
    this.code = resultCodeName(resultCode);
  }
}

/**
 * Whether `error`, or an error it was caused by, is SQLite's answer for a file that is not (or no longer) a database
 * (`SQLITE_NOTADB`, `SQLITE_CORRUPT`): no retry reads it, where a permission or a full disk can be mended.
 */
export function isDamagedDatabase(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof SqliteError && (cause.code === "SQLITE_NOTADB" || cause.code === "SQLITE_CORRUPT")) {
      return true;
    }
  }
  return false;
}

const RESULT_CODE_NAMES = [
  "SQLITE_OK",
  "SQLITE_ERROR",
  "SQLITE_INTERNAL",
  "SQLITE_PERM",
  "SQLITE_ABORT",
  "SQLITE_BUSY",
  "SQLITE_LOCKED",
  "SQLITE_NOMEM",
  "SQLITE_READONLY",
  "SQLITE_INTERRUPT",
  "SQLITE_IOERR",
  "SQLITE_CORRUPT",
  "SQLITE_NOTFOUND",
  "SQLITE_FULL",
  "SQLITE_CANTOPEN",
  "SQLITE_PROTOCOL",
  "SQLITE_EMPTY",
  "SQLITE_SCHEMA",
  "SQLITE_TOOBIG",
  "SQLITE_CONSTRAINT",
  "SQLITE_MISMATCH",
  "SQLITE_MISUSE",
  "SQLITE_NOLFS",
  "SQLITE_AUTH",
  "SQLITE_FORMAT",
  "SQLITE_RANGE",
  "SQLITE_NOTADB",
];

/**
 * Whether SQLite could not read the file: its I/O error (`SQLITE_IOERR`, any extended code, or another code with the
 * system's EIO behind it) thrown as `error`, or named in an integrity check's answer (`... error code=8458`). The
 * storage failed there; the bytes may be whole.
 */
export function isReadFailure(error: unknown): boolean {
  if (error instanceof SqliteError) return error.code === "SQLITE_IOERR" || error.systemCode === "EIO";
  if (typeof error !== "string") return false;
  // a failed read is told in the check of the file's trees, which comes first, under this heading, and names no index
  // or table: the words in a name ("wrong # of entries in index x 3: unable to get the page. error code=10") are not
  if (!error.startsWith("*** in database ")) return false;
  // a page of a chain its check could not fetch: the page number was checked first, so what failed is the read
  if (/(?:\d|[Ff]reelist): failed to get page \d+/.test(error)) return true;
  const code = /\d: unable to get the page\. error code=(\d+)/.exec(error)?.[1];
  return code !== undefined && resultCodeName(Number(code)) === "SQLITE_IOERR";
}

/** The symbolic name of a (possibly extended) SQLite result code. */
export function resultCodeName(resultCode: number): string {
  return RESULT_CODE_NAMES[resultCode & 0xff] ?? `SQLITE_${resultCode}`;
}

/**
 * A `file:` URI that opens `path` read-only and immutable: SQLite then takes no
 * locks and never creates `-wal`/`-shm` files beside it.
 */
export function immutableUri(path: string): string {
  const escaped = path.replace(/[%?#]/g, (char) => "%" + char.charCodeAt(0).toString(16).toUpperCase());
  return `file:${escaped}?mode=ro&immutable=1`;
}

/**
 * The first row of `PRAGMA integrity_check` on one line: a damaged database's starts `*** in database main ***` and a
 * newline, and every message of this tool is one line.
 */
export function integrityAnswer(row: string): string {
  return row.replace(/\s*\n\s*/g, " ");
}

/** Quote an SQL identifier (a table name) with double quotes. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The query listing the tables whose rows the drill compares. */
export const TABLES_QUERY =
  "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";

/** Pages copied per backup step: 4 MiB of 4 KiB pages between progress reports. */
export const PAGES_PER_STEP = 1024;

/** Milliseconds a connection waits on a locked database before giving up. */
export const BUSY_TIMEOUT_MS = 10_000;

/** The read that takes a read transaction's lock (after its `BEGIN`): see {@linkcode PIN_READ_SNAPSHOT}. */
export const PIN_READ = "SELECT count(*) FROM sqlite_master";

/**
 * Statements that pin one consistent read snapshot on the source connection, so that a
 * backup stepped in several parts never restarts and never mixes two committed states.
 */
export const PIN_READ_SNAPSHOT = `BEGIN; ${PIN_READ};`;
