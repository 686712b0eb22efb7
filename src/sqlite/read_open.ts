/**
 * Guards on SQLite's open of a database it only reads (a snapshot's, a restored copy): whoever may write its folder can
 * swap it, between a look and the open, for a FIFO (whose open waits for a writer for ever, deaf to signals) or another
 * file.
 *
 * @module
 */
import { closeSync, fstatSync } from "node:fs";
import { describeOsError } from "../errors.ts";
import type { Identity } from "../sys/folder_calls.ts";
import { NotRegularFileError, openRegularFile } from "../fs/regular_file.ts";
import { SqliteError } from "./driver.ts";

const SQLITE_CANTOPEN = 14;

/** Longest wait for SQLite's open of a database it only reads: a regular file's open ends at once, even over NFS. */
export const READ_OPEN_MS = 10_000;

/**
 * The identity of the regular file at `path` (through links, as SQLite opens it), looked at through a non-blocking
 * open: what SQLite's open must then reach.
 *
 * @throws {SqliteError} `SQLITE_CANTOPEN` naming `path` and what is there when it is not a regular file.
 */
export function lookAtDatabase(path: string): Identity {
  let fd: number;
  try {
    fd = openRegularFile(path, { followLinks: true, maxBytes: Number.MAX_SAFE_INTEGER }).fd;
  } catch (error) {
    const why = error instanceof NotRegularFileError ? error.message : describeOsError(error);
    throw new SqliteError(SQLITE_CANTOPEN, `unable to open database file ${path} (${why})`);
  }
  try {
    const { dev, ino } = fstatSync(fd);
    return { dev, ino };
  } finally {
    closeSync(fd);
  }
}

/**
 * What `opening` (SQLite's open of `path`, on another thread) gives, or, when it has not ended within
 * {@linkcode READ_OPEN_MS}, an error naming `path`; `late` gets what it gives should it ever end, to close it.
 *
 * @throws {SqliteError} `SQLITE_CANTOPEN` when the open did not end in time.
 */
export async function openedInTime<T>(opening: Promise<T>, path: string, late: (value: T) => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tooLate = new Promise<typeof TIMED_OUT>((resolve) =>
    timer = setTimeout(() => resolve(TIMED_OUT), READ_OPEN_MS)
  );
  const result = await Promise.race([opening, tooLate]).finally(() => clearTimeout(timer));
  if (result !== TIMED_OUT) return result as T;
  opening.then(late, () => {});
  throw notOpenedInTime(path);
}

/** The error for SQLite's open of `path` that did not end within {@linkcode READ_OPEN_MS}. */
export function notOpenedInTime(path: string): SqliteError {
  return new SqliteError(
    SQLITE_CANTOPEN,
    `SQLite's open of ${path} did not end within ${READ_OPEN_MS / 1000} s (a FIFO or device put in its place since ` +
      "it was looked at, or beside it as its -journal?); find who changes that folder, then run again",
  );
}

/** The error for a database SQLite opened that is not the file at `path` looked at just before. */
export function replacedWhileOpened(path: string): SqliteError {
  return new SqliteError(
    SQLITE_CANTOPEN,
    `${path} was replaced while SQLite opened it (another file, a FIFO or device put in its place since it was ` +
      "looked at); find who changes that folder, then run again",
  );
}

const TIMED_OUT = Symbol("timed out");
