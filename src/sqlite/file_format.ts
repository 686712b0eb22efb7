/**
 * The few facts of SQLite's database and rollback-journal file formats this tool reads outside SQLite
 * (sqlite.org/fileformat.html), said once for every reader of them.
 *
 * @module
 */

/** The bytes every database file starts with: `SQLite format 3` and a NUL. */
export const DATABASE_MAGIC: Uint8Array = new TextEncoder().encode("SQLite format 3\0");

/** The first bytes of a rollback journal SQLite would play back (another file of that name it ignores). */
export const JOURNAL_MAGIC: Uint8Array = Uint8Array.of(0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7);

/** SQLite's own files beside a database (`<database><suffix>`), which it opens, creates, writes and removes with it. */
export const SIDECAR_SUFFIXES: readonly ["-wal", "-shm", "-journal"] = ["-wal", "-shm", "-journal"];

/** Whether `bytes` start with a database header's magic. */
export function startsAsDatabase(bytes: Uint8Array): boolean {
  return startsWith(bytes, DATABASE_MAGIC);
}

/** Whether `bytes` start with a rollback journal's magic. */
export function startsAsJournal(bytes: Uint8Array): boolean {
  return startsWith(bytes, JOURNAL_MAGIC);
}

function startsWith(bytes: Uint8Array, magic: Uint8Array): boolean {
  return bytes.length >= magic.length && magic.every((byte, at) => bytes[at] === byte);
}
