/**
 * Telling a database with no tables from the file format alone, without opening it through SQLite: a service
 * whose volume did not mount sees such a database, and create refuses to back one up as if it were the store.
 *
 * @module
 */
import { readAt } from "../fs/read_at.ts";
import { startsAsDatabase } from "./file_format.ts";

/** The database header, then page 1's b-tree page header: type (byte 100) and cell count (bytes 103-104). */
const BYTES_READ = 108;
const LEAF_TABLE_PAGE = 0x0d;

/**
 * Whether the database file at `path` has an empty schema (no table, index, view or trigger): page 1, the root of
 * `sqlite_schema`, is a leaf with no cells. Read from the file itself, so only for a file whose `-wal` holds
 * nothing newer (a backup copy); `false` for anything that is not an SQLite database (validation reports it).
 */
export function hasEmptySchema(path: string): boolean {
  using file = Deno.openSync(path, { read: true });
  const head = readAt(file, 0, BYTES_READ);
  if (head === null || !startsAsDatabase(head)) return false;
  return head[100] === LEAF_TABLE_PAGE && ((head[103] << 8) | head[104]) === 0;
}
