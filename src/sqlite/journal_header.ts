/**
 * The two bytes of a database header that say whether it is in WAL mode (file format versions, offsets 18 and 19),
 * read and set without SQLite: snapshot copies are kept in rollback-journal mode, which every driver reads in place.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { readAt } from "../fs/read_at.ts";
import { kindOf, NotRegularFileError } from "../fs/regular_file.ts";
import { startsAsDatabase } from "./file_format.ts";
import { MovedCopyError } from "./opened_file.ts";
import type { Identity } from "../sys/folder_calls.ts";
import { OpenedRegular } from "../fs/opened_regular.ts";

/** A database's journal mode as its header tells it: WAL, or any rollback-journal mode. */
export type JournalMode = "wal" | "rollback";

/** The values a journal mode is recorded as (in a snapshot's metadata). */
export const JOURNAL_MODES: readonly JournalMode[] = ["wal", "rollback"];

const VERSIONS_OFFSET = 18;
const HEADER_BYTES = 20;

/** The journal mode a database header (at least its first 20 bytes) says; `null` when it is no SQLite header. */
export function journalModeOf(header: Uint8Array): JournalMode | null {
  if (header.length < HEADER_BYTES || !startsAsDatabase(header)) return null;
  return header[VERSIONS_OFFSET] === 2 || header[VERSIONS_OFFSET + 1] === 2 ? "wal" : "rollback";
}

/** A copy of the first page (or header) `page` that says `mode`; `page` itself when it is no SQLite header. */
export function withJournalMode(page: Uint8Array, mode: JournalMode): Uint8Array {
  if (journalModeOf(page) === null) return page;
  const copy = page.slice();
  copy.set(versionBytes(mode), VERSIONS_OFFSET);
  return copy;
}

/**
 * The journal mode of the database file at `path`, from its header; `null` for a file too short or not SQLite.
 *
 * @throws {Deno.errors.NotFound} when there is no file.
 */
export function readJournalMode(path: string): JournalMode | null {
  using file = OpenedRegular.open(path, { followLinks: true }); // never waiting on a FIFO swapped in
  const header = readAt(file, 0, HEADER_BYTES);
  return header === null ? null : journalModeOf(header);
}

/**
 * Mark the database file at `path` as in `mode` by writing its two version bytes, and return the mode it was in
 * (`null`, with nothing written, for a file that is not a database). Only for a file no connection has open and
 * with no `-wal` holding data: a new copy made by the backup API, or one just restored. The caller fsyncs it. The file
 * is opened never through a symbolic link (one the service's user put in place of a restored database would have a
 * root restore write root's file), and must be a regular file. With `made` (the copy's identity, made in a folder held
 * open), a path that now reaches another file is refused (`MovedCopyError`) before a byte is read or written.
 *
 * @throws {NotRegularFileError} for a link or anything but a regular file at `path`; OS errors.
 */
export function setJournalMode(path: string, mode: JournalMode, made?: Identity | null): JournalMode | null {
  const fd = openLookedAt(path, made);
  try {
    const header = new Uint8Array(HEADER_BYTES);
    const before = readSync(fd, header, 0, HEADER_BYTES, 0) === HEADER_BYTES ? journalModeOf(header) : null;
    if (before === null || before === mode) return before;
    const bytes = versionBytes(mode);
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(fd, bytes, written, bytes.length - written, VERSIONS_OFFSET + written);
    }
    return before;
  } finally {
    closeSync(fd);
  }
}

/** The regular file at `path` opened for writing, held to be the one looked at (and `made`, when given). */
function openLookedAt(path: string, made?: Identity | null): number {
  // looked at first, then held to be the file opened: O_NOFOLLOW alone is not kept by Deno's node:fs under
  // --allow-read/--allow-write, which opens what a link leads to
  const named = Deno.lstatSync(path);
  if (made && (named.dev !== made.dev || named.ino !== made.ino)) throw new MovedCopyError(path);
  if (!named.isFile) throw new NotRegularFileError(path, kindOf(named));
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as { code?: unknown }).code === "ELOOP") throw new NotRegularFileError(path, "symbolic link");
    throw error;
  }
  const opened = fstatSync(fd);
  if (!opened.isFile() || opened.dev !== named.dev || opened.ino !== named.ino) {
    closeSync(fd);
    throw new NotRegularFileError(path, "replaced while being opened");
  }
  return fd;
}

/**
 * The header bytes that say `mode`, and where they go: what a file that says another mode would hash as if it said
 * `mode` (the drill compares a restored database, set back to WAL mode, with its copy's checksum).
 */
export function journalModeBytes(mode: JournalMode): { offset: number; bytes: Uint8Array } {
  return { offset: VERSIONS_OFFSET, bytes: versionBytes(mode) };
}

function versionBytes(mode: JournalMode): Uint8Array {
  return mode === "wal" ? new Uint8Array([2, 2]) : new Uint8Array([1, 1]);
}
