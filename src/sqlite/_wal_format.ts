/**
 * The few facts of SQLite's WAL file format this tool reads (sqlite.org/fileformat.html, "WAL File Format"), said once
 * for the readers of `-wal` headers in this folder.
 *
 * @module
 */

/** Bytes of the WAL file header. */
export const WAL_HEADER_BYTES = 32;
/** Bytes of each frame's header, before its page. */
export const WAL_FRAME_HEADER_BYTES = 24;

/** Whether the header's first word is a WAL magic number (`0x377f0682` or `0x377f0683`: checksum byte order). */
export function isWalMagic(word: number): boolean {
  return (word & ~1) === 0x377f0682;
}
