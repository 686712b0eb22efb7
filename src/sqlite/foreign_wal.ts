/**
 * A `-wal` that cannot be its database's own: its pages are of another size (a database in WAL mode cannot change its
 * page size), so it is another database's, copied there by hand, which SQLite would write into the live database.
 *
 * @module
 */
import { readAt } from "../fs/read_at.ts";
import { OpenedRegular } from "../fs/opened_regular.ts";
import { startsAsDatabase } from "./file_format.ts";
import { isWalMagic, WAL_HEADER_BYTES } from "./_wal_format.ts";

/** Bytes of a database header read: its page size is at offsets 16 and 17. */
const DATABASE_HEADER_BYTES = 18;

/**
 * The page sizes of the database at `path` and of its `-wal` when they differ; `null` when they agree, or either is
 * missing, empty, not a regular file or not SQLite's (other checks name those).
 */
export function foreignWalPageSizes(path: string): { database: number; wal: number } | null {
  // the -wal first: without one (most runs) the database is not opened before SQLite opens it
  const wal = header(`${path}-wal`, WAL_HEADER_BYTES);
  if (wal === null) return null;
  const view = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  if (!isWalMagic(view.getUint32(0))) return null;
  const database = header(path, DATABASE_HEADER_BYTES);
  if (database === null || !startsAsDatabase(database)) return null;
  const walPageSize = view.getUint32(8);
  const field = (database[16] << 8) | database[17];
  const databasePageSize = field === 1 ? 65536 : field;
  return walPageSize === databasePageSize ? null : { database: databasePageSize, wal: walPageSize };
}

/** The first `bytes` of the regular file at `path`, or `null` (shorter, missing, or not a regular file). */
function header(path: string, bytes: number): Uint8Array | null {
  try {
    using file = OpenedRegular.open(path, { followLinks: true }); // never waiting on a FIFO swapped in
    return readAt(file, 0, bytes);
  } catch {
    return null;
  }
}
