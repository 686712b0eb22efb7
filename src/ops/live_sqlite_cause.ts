/**
 * What beside a live database would make SQLite fail to open it, or write where it must not, when it is opened to be
 * copied: a `-wal`/`-shm`/`-journal` that is not a file of its own, a stray rollback journal, a full filesystem.
 *
 * @module
 */
import { dirname } from "node:path";
import { lstatOrNull } from "../fs/probe.ts";
import { kindOf } from "../fs/regular_file.ts";
import { JOURNAL_MAGIC, SIDECAR_SUFFIXES, startsAsJournal } from "../sqlite/file_format.ts";
import { readJournalMode } from "../sqlite/journal_header.ts";
import { foreignWalPageSizes } from "../sqlite/foreign_wal.ts";
import { fileSystemSpace } from "../sys/free_space.ts";
import { OpenedRegular } from "../fs/opened_regular.ts";

/** Room SQLite needs beside a WAL database to open it: its `-shm` index grows in 32 KiB pieces. */
const SHM_ROOM = 64 * 1024;

/**
 * What SQLite would do harm with beside the live database at `path`, as a clause naming the file and what to do, or
 * `null`: a sidecar that is a symbolic link (SQLite fails to open one, or would write through it), one with other
 * hard links (SQLite empties and writes a `-shm`, rolls back a `-journal`: the other names' bytes would change, a
 * snapshot's file among them), a `-journal` that is not a file (a FIFO: SQLite's open of it would wait for ever), or a
 * rollback journal beside a WAL database (none is its own: one copied there would be rolled back into the live
 * database, wrecking it), or a `-wal` of pages of another size (another database's: SQLite would write it in).
 */
export function sidecarHazard(path: string): string | null {
  const linked = linkedSidecar(path);
  if (linked !== null) return linked;
  const journal = lstatOrNull(`${path}-journal`);
  if (journal !== null && !journal.isFile) {
    // SQLite opens a -journal to read its first byte (a hot journal?) before it reads the database: a FIFO blocks that
    // open until a writer comes, for ever, in a call no signal ends
    return `${path}-journal is a ${kindOf(journal)}, not a file, and SQLite opens it to look for a hot journal (a ` +
      "FIFO would hold that open for ever); once no process uses the database, move it aside";
  }
  if (journal?.isFile && hasJournalHeader(`${path}-journal`) && readJournalMode(path) === "wal") {
    return `${path}-journal is a rollback journal beside a WAL database, which keeps none: a stray (from a copy made ` +
      "by hand?) that SQLite would roll back into the live database; once no process uses the database, move it aside";
  }
  const sizes = foreignWalPageSizes(path);
  if (sizes !== null) {
    return `${path}-wal holds pages of ${sizes.wal} bytes beside a database of ${sizes.database}-byte pages: another ` +
      "database's (from a copy made by hand?), which SQLite would write into the live database; once no process " +
      "uses the database, move it aside";
  }
  return null;
}

/**
 * The part of {@linkcode sidecarHazard} that harms any open of the database, as a clause, or `null`: a sidecar that is a
 * symbolic link or has other names (a restore with no pre-restore snapshot still opens the live one to checkpoint it).
 */
export function linkedSidecar(path: string): string | null {
  for (const suffix of SIDECAR_SUFFIXES) {
    const info = lstatOrNull(`${path}${suffix}`);
    if (info?.isSymlink) {
      return `${path}${suffix} is a symbolic link, not a file of its own, and SQLite opens that file with the ` +
        "database; once no process uses the database, remove the link";
    }
    if (info !== null && info.isFile && (info.nlink ?? 1) > 1) {
      return `${path}${suffix} has ${info.nlink} names (hard links), and SQLite writes that file; once no process ` +
        "uses the database, remove its other names or move it aside";
    }
  }
  return null;
}

/**
 * The cause of a failed open of the live database at `path`, as a clause that names the path and what to do, or
 * `null` when none is seen beside it (the caller then reports SQLite's own error).
 */
export function liveSqliteCause(path: string): string | null {
  for (const suffix of SIDECAR_SUFFIXES) {
    const info = lstatOrNull(`${path}${suffix}`);
    if (info !== null && !info.isFile) {
      return `${path}${suffix} is a ${kindOf(info)}, not a file, and SQLite opens only a file there; once no ` +
        "process uses the database, move it aside";
    }
  }
  const space = fileSystemSpace(dirname(path));
  if (space !== null && space.available < SHM_ROOM) {
    return `the filesystem of ${dirname(path)} is full (${space.available} bytes free) and SQLite needs room there ` +
      "for its -shm file; free space there";
  }
  return null;
}

/**
 * Whether a rollback journal lies beside the database at `path`: a hot one (a writer killed mid-transaction) is rolled
 * back into the database by SQLite's first reader, which then removes it, so its folder must be writable by that reader.
 */
export function hasJournalBeside(path: string): boolean {
  return lstatOrNull(`${path}-journal`)?.isFile === true && hasJournalHeader(`${path}-journal`);
}

/** Whether the file at `path` starts as a rollback journal does. */
function hasJournalHeader(path: string): boolean {
  try {
    using file = OpenedRegular.open(path, { followLinks: true }); // never waiting on a FIFO swapped in
    const head = new Uint8Array(JOURNAL_MAGIC.length);
    const read = file.readSync(head);
    return read === head.length && startsAsJournal(head);
  } catch {
    return false; // unreadable: SQLite's own open reports it
  }
}
