/**
 * The FFI driver: libsqlite3 loaded with `Deno.dlopen`, the one driver that offers
 * {@linkcode FollowedBackup}, so create can hash the database copy behind the backup.
 * Requires `--allow-ffi` and, for a followed backup, `--allow-read` of the source.
 *
 * @module
 */
import { cString } from "../sys/c_string.ts";
import { describeOsError } from "../errors.ts";
import {
  type BackupFiles,
  type BackupProgress,
  BUSY_TIMEOUT_MS,
  immutableUri,
  integrityAnswer,
  PAGES_PER_STEP,
  PIN_READ_SNAPSHOT,
  quoteIdentifier,
  type SqliteDriver,
  SqliteError,
  type SystemCode,
  TABLES_QUERY,
} from "./driver.ts";
import { backupFirstPage, FirstPageReader } from "./first_page.ts";
import type { FollowedBackup, SettledListener } from "./followed_backup.ts";
import { MovedCopyError, requireOpenedFile, SQLITE_FCNTL_FILE_POINTER } from "./opened_file.ts";
import { kindOf } from "../fs/regular_file.ts";
import { fileOpenToOthers } from "../fs/shared_folder.ts";
import { foreignLinkOnTheWay } from "../fs/foreign_link.ts";
import { lookAtDatabase, openedInTime, replacedWhileOpened } from "./read_open.ts";

/** What a backup tells of its progress, and the files it must open. */
interface BackupListeners {
  onProgress?: (progress: BackupProgress) => void;
  onSettled?: SettledListener;
  files?: BackupFiles;
}

/** Library names tried, in order, when no path is given. */
export const DEFAULT_LIBRARY_NAMES = ["libsqlite3.so.0", "libsqlite3.so", "libsqlite3.dylib"];

const SYMBOLS = {
  sqlite3_libversion: { parameters: [], result: "pointer" },
  sqlite3_libversion_number: { parameters: [], result: "i32" },
  sqlite3_db_cacheflush: { parameters: ["pointer"], result: "i32", optional: true },
  sqlite3_open_v2: { parameters: ["buffer", "buffer", "i32", "pointer"], result: "i32" },
  /** The same, on a thread of the runtime's pool: a FIFO swapped in holds that thread, not the caller's. */
  sqlite3_open_v2_elsewhere: {
    name: "sqlite3_open_v2",
    parameters: ["buffer", "buffer", "i32", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  sqlite3_close_v2: { parameters: ["pointer"], result: "i32" },
  sqlite3_busy_timeout: { parameters: ["pointer", "i32"], result: "i32" },
  sqlite3_errmsg: { parameters: ["pointer"], result: "pointer" },
  sqlite3_system_errno: { parameters: ["pointer"], result: "i32", optional: true },
  sqlite3_exec: { parameters: ["pointer", "buffer", "pointer", "pointer", "pointer"], result: "i32" },
  sqlite3_prepare_v2: { parameters: ["pointer", "buffer", "i32", "buffer", "pointer"], result: "i32" },
  sqlite3_step: { parameters: ["pointer"], result: "i32" },
  /** The same, on a thread of the runtime's pool: the caller's thread runs on meanwhile. */
  sqlite3_step_elsewhere: { name: "sqlite3_step", parameters: ["pointer"], result: "i32", nonblocking: true },
  sqlite3_column_text: { parameters: ["pointer", "i32"], result: "pointer" },
  sqlite3_column_int64: { parameters: ["pointer", "i32"], result: "i64" },
  sqlite3_finalize: { parameters: ["pointer"], result: "i32" },
  sqlite3_backup_init: { parameters: ["pointer", "buffer", "pointer", "buffer"], result: "pointer" },
  sqlite3_backup_step: { parameters: ["pointer", "i32"], result: "i32" },
  sqlite3_backup_remaining: { parameters: ["pointer"], result: "i32" },
  sqlite3_backup_pagecount: { parameters: ["pointer"], result: "i32" },
  sqlite3_backup_finish: { parameters: ["pointer"], result: "i32" },
  sqlite3_file_control: { parameters: ["pointer", "buffer", "i32", "buffer"], result: "i32" },
} as const;

type Library = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type Handle = Deno.PointerObject;

const OPEN_READONLY = 0x01;
const OPEN_READWRITE = 0x02;
const OPEN_CREATE = 0x04;
const OPEN_URI = 0x40;
const SQLITE_OK = 0;
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
const MAX_BUSY_RETRIES = 100;
/** Linux's errno values for the open-file limit: the process's own (EMFILE) and the system's (ENFILE). */
const EMFILE = 24;
const ENFILE = 23;
/** Linux's errno for the storage's failure to read or write. */
const EIO = 5;

/**
 * Load libsqlite3 and return the FFI driver.
 *
 * @param libraryPath A library path (from `ATOCORE_SQLITE_LIB`); else the usual names are tried.
 * @throws {Error} when no library loads; the message names what was tried.
 */
export function openFfiDriver(libraryPath?: string): SqliteDriver & FollowedBackup {
  const candidates = libraryPath ? [libraryPath] : DEFAULT_LIBRARY_NAMES;
  const failures: string[] = [];
  for (const candidate of candidates) {
    const chosen = libraryFile(candidate);
    if ("unfit" in chosen) {
      failures.push(`${candidate}: ${chosen.unfit}`);
      continue;
    }
    try {
      return new FfiDriver(Deno.dlopen(chosen.path, SYMBOLS).symbols);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) throw error;
      failures.push(`${candidate}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(`cannot load libsqlite3 (${failures.join("; ")})`);
}

/**
 * The path handed to dlopen for the library `candidate`, or why none is: what is there when it is not a regular file (a
 * FIFO would hold dlopen's open for ever, and no signal ends it), or who else could change it or choose it (another
 * user's link on the way). A path is loaded by its real path, the one checked; one that cannot be looked at is not
 * loaded. A bare name (no `/`), which dlopen looks for in the library path, is left to dlopen.
 */
function libraryFile(candidate: string): { path: string } | { unfit: string } {
  if (!candidate.includes("/")) return { path: candidate };
  let info: Deno.FileInfo;
  let real: string;
  try {
    info = Deno.statSync(candidate);
    real = Deno.realPathSync(candidate);
  } catch (error) {
    return { unfit: `cannot be looked at (${describeOsError(error)})` }; // never handed on unchecked
  }
  if (!info.isFile) return { unfit: `not a regular file (${kindOf(info)})` };
  // loading runs the library's code as this run's user (root, for a live restore): another user must not choose it
  const link = foreignLinkOnTheWay(candidate);
  const open = link !== null
    ? `the symbolic link ${link.link} on its way belongs to user ${link.linkOwner}`
    : fileOpenToOthers(real);
  return open === null ? { path: real } : { unfit: `not loaded: ${open}, and it would run as this run's user` };
}

class FfiDriver implements SqliteDriver, FollowedBackup {
  readonly name = "ffi";
  readonly version: string;
  readonly #lib: Library;

  constructor(lib: Library) {
    this.#lib = lib;
    this.version = Deno.UnsafePointerView.getCString(lib.sqlite3_libversion()!);
  }

  backup(
    source: string,
    destination: string,
    onProgress?: (progress: BackupProgress) => void,
    files?: BackupFiles,
  ): Promise<void> {
    return this.#backup(source, destination, { onProgress, files });
  }

  backupFollowed(
    source: string,
    destination: string,
    onSettled: SettledListener,
    onProgress?: (progress: BackupProgress) => void,
    files?: BackupFiles,
  ): Promise<void> {
    return this.#backup(source, destination, { onProgress, onSettled, files });
  }

  /**
   * The destination is a new file in a staging folder, so it is written with
   * `journal_mode=OFF`, `synchronous=OFF` and a bounded cache, and left for the caller to
   * fsync. With `onSettled`, each step's pages are written to the file
   * (`sqlite3_db_cacheflush`) before the next step and reported with the first page the
   * copy will end with (see `first_page.ts`). With `files`, the source and destination SQLite opened must be those
   * files, and a destination known is opened, never created.
   */
  async #backup(source: string, destination: string, listeners: BackupListeners): Promise<void> {
    const { onProgress, onSettled, files } = listeners;
    // opened before SQLite opens the source and closed after it closes it (see FirstPageReader)
    using firstPage = onSettled ? FirstPageReader.open(source) : null;
    const from = this.#open(source, OPEN_READWRITE);
    try {
      if (files?.source) requireOpenedFile(this.#filePointer(from), source, files.source);
      this.#exec(from, PIN_READ_SNAPSHOT);
      const sourceFirstPage = firstPage?.read() ?? null;
      const to = this.#open(destination, OPEN_READWRITE | (files?.destination ? 0 : OPEN_CREATE));
      try {
        const made = files?.destination;
        if (made) requireOpenedFile(this.#filePointer(to), destination, made, () => new MovedCopyError(destination));
        this.#exec(to, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8192;");
        const settle = sourceFirstPage && onSettled && this.#lib.sqlite3_db_cacheflush
          ? this.#settler(to, sourceFirstPage, onSettled)
          : undefined;
        await this.#copyPages(from, to, onProgress, settle);
      } finally {
        this.#lib.sqlite3_close_v2(to);
      }
      this.#exec(from, "COMMIT");
    } finally {
      this.#lib.sqlite3_close_v2(from);
    }
  }

  /** The check's one long step runs on another thread; its first row is the answer. */
  async integrityCheck(path: string): Promise<string> {
    const db = await this.#openToRead(path);
    try {
      const statement = this.#prepare(db, "PRAGMA integrity_check");
      try {
        const step = await this.#lib.sqlite3_step_elsewhere(statement);
        if (step === SQLITE_DONE) return "no_row";
        if (step !== SQLITE_ROW) this.#fail(db, step);
        const text = this.#lib.sqlite3_column_text(statement, 0);
        return integrityAnswer(text === null ? "null" : Deno.UnsafePointerView.getCString(text));
      } finally {
        this.#lib.sqlite3_finalize(statement);
      }
    } finally {
      this.#lib.sqlite3_close_v2(db);
    }
  }

  checkpointTruncate(path: string): void {
    const db = this.#open(path, OPEN_READWRITE);
    try {
      this.#query(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      this.#lib.sqlite3_close_v2(db);
    }
  }

  rollBackJournal(path: string): void {
    const db = this.#open(path, OPEN_READWRITE);
    try {
      this.#query(db, "SELECT count(*) FROM sqlite_master");
    } finally {
      this.#lib.sqlite3_close_v2(db);
    }
  }

  async tableRowCounts(path: string): Promise<Record<string, number>> {
    const db = await this.#openToRead(path);
    try {
      const tables = this.#query(db, TABLES_QUERY).map((row) => String(row[0]));
      return Object.fromEntries(tables.map((table) => [
        table,
        Number(this.#query(db, `SELECT count(*) FROM ${quoteIdentifier(table)}`, "int")[0][0]),
      ]));
    } finally {
      this.#lib.sqlite3_close_v2(db);
    }
  }

  execScript(path: string, sql: string): void {
    const db = this.#open(path, OPEN_READWRITE | OPEN_CREATE);
    try {
      this.#exec(db, sql);
    } finally {
      this.#lib.sqlite3_close_v2(db);
    }
  }

  /**
   * After each step that is not the last: write the destination's cached pages to its
   * file and report them, with the first page the finished copy will hold.
   */
  #settler(to: Handle, sourceFirstPage: Uint8Array, onSettled: SettledListener) {
    let firstPage: Uint8Array | null = null;
    return ({ remaining, total }: BackupProgress) => {
      const code = this.#lib.sqlite3_db_cacheflush!(to);
      if (code !== SQLITE_OK) this.#fail(to, code);
      firstPage ??= backupFirstPage(sourceFirstPage, total, this.#lib.sqlite3_libversion_number());
      onSettled(firstPage, (total - remaining) * sourceFirstPage.length);
    };
  }

  async #copyPages(
    from: Handle,
    to: Handle,
    onProgress?: (progress: BackupProgress) => void,
    onStepDone?: (progress: BackupProgress) => void,
  ) {
    const backup = this.#lib.sqlite3_backup_init(to, cString("main"), from, cString("main"));
    if (backup === null) this.#fail(to);
    let result = SQLITE_OK;
    let busyRetries = 0;
    try {
      while (true) {
        result = this.#lib.sqlite3_backup_step(backup, PAGES_PER_STEP);
        const progress = {
          remaining: this.#lib.sqlite3_backup_remaining(backup),
          total: this.#lib.sqlite3_backup_pagecount(backup),
        };
        onProgress?.(progress);
        if (result === SQLITE_DONE) break;
        if (result === SQLITE_OK) onStepDone?.(progress);
        if (result === SQLITE_BUSY || result === SQLITE_LOCKED) {
          if (++busyRetries > MAX_BUSY_RETRIES) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        } else if (result !== SQLITE_OK) {
          break;
        }
      }
    } finally {
      const finish = this.#lib.sqlite3_backup_finish(backup);
      if (result === SQLITE_DONE && finish !== SQLITE_OK) this.#fail(to, finish);
    }
    if (result !== SQLITE_DONE) this.#fail(to, result);
  }

  /** The `sqlite3_file` of the main database of `db`. */
  #filePointer(db: Handle): Deno.PointerObject {
    const out = new BigUint64Array(1);
    const code = this.#lib.sqlite3_file_control(
      db,
      cString("main"),
      SQLITE_FCNTL_FILE_POINTER,
      new Uint8Array(out.buffer),
    );
    const file = Deno.UnsafePointer.create(out[0]);
    if (code !== SQLITE_OK || file === null) this.#fail(db, code === SQLITE_OK ? 1 : code);
    return file;
  }

  #open(path: string, flags: number): Handle {
    const out = new BigUint64Array(1);
    const code = this.#lib.sqlite3_open_v2(cString(path), new Uint8Array(out.buffer), flags, null);
    return this.#opened(code, out, path);
  }

  /**
   * Open the database at `path` read-only and immutable, as the regular file looked at just before (see
   * `read_open.ts`): SQLite's open runs on another thread and is given up when it does not end in time, and another
   * file opened is refused before a page of it is read.
   */
  async #openToRead(path: string): Promise<Handle> {
    const looked = lookAtDatabase(path);
    const uri = immutableUri(path);
    const name = cString(uri);
    const out = new BigUint64Array(1);
    const opening = this.#lib.sqlite3_open_v2_elsewhere(
      name,
      new Uint8Array(out.buffer),
      OPEN_READONLY | OPEN_URI,
      null,
    );
    // the other thread reads `name` and writes `out` until the open ends: both stay referenced until then
    const late = () => this.#closeOpened(out, name);
    const db = this.#opened(await openedInTime(opening, path, late), out, uri);
    name.fill(0);
    try {
      requireOpenedFile(this.#filePointer(db), path, looked, replacedWhileOpened);
    } catch (error) {
      this.#lib.sqlite3_close_v2(db);
      throw error;
    }
    return db;
  }

  /** The connection `out` holds after an open that gave `code`, or (closing it) the error naming `path`. */
  #opened(code: number, out: BigUint64Array, path: string): Handle {
    const db = Deno.UnsafePointer.create(out[0]);
    if (code !== SQLITE_OK) {
      const [message, system] = db ? [this.#message(db), this.#systemCode(db)] : ["out of memory", undefined];
      if (db) this.#lib.sqlite3_close_v2(db);
      throw new SqliteError(code, `${message}: ${path}`, system);
    }
    this.#lib.sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    return db!;
  }

  /** Close what an open given up on left in `out`, should it ever end (`name`, its file name, held until then). */
  #closeOpened(out: BigUint64Array, name: Uint8Array): void {
    name.fill(0);
    const db = Deno.UnsafePointer.create(out[0]);
    if (db) this.#lib.sqlite3_close_v2(db);
  }

  #exec(db: Handle, sql: string): void {
    const code = this.#lib.sqlite3_exec(db, cString(sql), null, null, null);
    if (code !== SQLITE_OK) this.#fail(db, code);
  }

  #prepare(db: Handle, sql: string): Deno.PointerValue {
    const out = new BigUint64Array(1);
    const code = this.#lib.sqlite3_prepare_v2(db, cString(sql), -1, new Uint8Array(out.buffer), null);
    if (code !== SQLITE_OK) this.#fail(db, code);
    return Deno.UnsafePointer.create(out[0]);
  }

  /** Run one statement and return its rows, each column as text (or as a bigint for "int"). */
  #query(db: Handle, sql: string, as: "text" | "int" = "text"): (string | bigint | null)[][] {
    const statement = this.#prepare(db, sql);
    const rows: (string | bigint | null)[][] = [];
    try {
      while (true) {
        const step = this.#lib.sqlite3_step(statement);
        if (step === SQLITE_DONE) break;
        if (step !== SQLITE_ROW) this.#fail(db, step);
        if (as === "int") {
          rows.push([this.#lib.sqlite3_column_int64(statement, 0) as bigint]);
        } else {
          const text = this.#lib.sqlite3_column_text(statement, 0);
          rows.push([text === null ? null : Deno.UnsafePointerView.getCString(text)]);
        }
      }
    } finally {
      this.#lib.sqlite3_finalize(statement);
    }
    return rows;
  }

  /**
   * SQLite's message for the last error on `db`; when it came from the open-file limit (SQLite says only "unable to
   * open database file"), with the limit named and the next step.
   */
  #message(db: Handle): string {
    const text = this.#lib.sqlite3_errmsg(db);
    const message = text === null ? "unknown error" : Deno.UnsafePointerView.getCString(text);
    const system = this.#systemCode(db);
    const limit = system === "EMFILE" || system === "ENFILE";
    return limit ? `${message} (the open-file limit was reached: raise it (ulimit -n))` : message;
  }

  /** The errno's name when the last error on `db` came from the open-file limit or the storage (EIO). */
  #systemCode(db: Handle): SystemCode | undefined {
    const errno = this.#lib.sqlite3_system_errno?.(db);
    return errno === EMFILE ? "EMFILE" : errno === ENFILE ? "ENFILE" : errno === EIO ? "EIO" : undefined;
  }

  #fail(db: Handle, code = 1): never {
    throw new SqliteError(code, this.#message(db), this.#systemCode(db));
  }
}
