/**
 * The first page a backup will write last, predicted from the source (its WAL when a committed frame holds it,
 * else the database file), so that the copy can be hashed while it is written (`src/fs/follow_hash.ts`).
 *
 * @module
 */
import { OpenedRegular } from "../fs/opened_regular.ts";
import { readAt } from "../fs/read_at.ts";
import { isWalMagic, WAL_FRAME_HEADER_BYTES, WAL_HEADER_BYTES } from "./_wal_format.ts";

/** Frames of the current WAL generation scanned at most: beyond, no prediction (frame headers are read one by one). */
export const MAX_WAL_FRAMES_SCANNED = 16_384;

const HEADER_BYTES = 100;

/**
 * The last committed first page of the database at `path`: from its `-wal` file when
 * a committed frame there holds page 1, else the first page of the database file. Each is read only as a regular file
 * (never a link, never a FIFO waited on).
 *
 * @returns The page, or `null` when it cannot be told cheaply (unreadable files,
 * unknown WAL format, more than {@linkcode MAX_WAL_FRAMES_SCANNED} frames in the WAL's
 * current generation). It is only a prediction: no error is thrown.
 */
export function readFirstPage(path: string): Uint8Array | null {
  using reader = FirstPageReader.open(path);
  return reader.read();
}

/**
 * Reads the first page of the database at `path` as {@linkcode readFirstPage} does, through a descriptor of the
 * database file opened once: a backup opens it before SQLite opens the file and closes it after SQLite closes it. A
 * process that closes any descriptor of a file drops every POSIX lock it holds on it, SQLite's read lock included:
 * a writer could then reset the WAL or commit under the copy, which would hold no committed state.
 */
export class FirstPageReader implements Disposable {
  private constructor(private readonly path: string, private readonly database: OpenedRegular | null) {}

  /** Open the database file `path` (a reader that predicts nothing when it cannot be opened as a regular file). */
  static open(path: string): FirstPageReader {
    try {
      return new FirstPageReader(path, OpenedRegular.open(path)); // never waiting on a FIFO swapped in
    } catch {
      return new FirstPageReader(path, null);
    }
  }

  /**
   * The page now, or `null` (see {@linkcode readFirstPage}); the `-wal` is opened and closed here: SQLite locks none.
   */
  read(): Uint8Array | null {
    if (this.database === null) return null;
    try {
      const header = readAt(this.database, 0, HEADER_BYTES);
      if (header === null) return null;
      const pageSize = pageSizeOf(header);
      const fromWal = readWalFirstPage(`${this.path}-wal`, pageSize);
      if (fromWal !== undefined) return fromWal;
      return readAt(this.database, 0, pageSize);
    } catch {
      return null; // whatever failed, the backup goes on and its copy is hashed after it
    }
  }

  [Symbol.dispose](): void {
    this.database?.[Symbol.dispose]();
  }
}

/**
 * The first page a backup writes into a new, empty destination, from the source's
 * first page: the copy's change counter, "version valid for" number and schema cookie
 * are 1, its page count is the source's, and the SQLite version number is the one of
 * the library that writes it.
 */
export function backupFirstPage(sourceFirstPage: Uint8Array, pageCount: number, libraryVersion: number): Uint8Array {
  const page = sourceFirstPage.slice();
  const fields = new DataView(page.buffer);
  fields.setUint32(24, 1);
  fields.setUint32(28, pageCount);
  fields.setUint32(40, 1);
  fields.setUint32(92, 1);
  fields.setUint32(96, libraryVersion);
  return page;
}

/** The page size of a database header (the value 1 means 65536). */
function pageSizeOf(header: Uint8Array): number {
  const size = new DataView(header.buffer, header.byteOffset).getUint16(16);
  return size === 1 ? 65536 : size;
}

/**
 * Page 1 as of the last commit in the WAL at `walPath`, `null` when it cannot be told,
 * or `undefined` when the WAL holds no committed page 1 (or does not exist).
 */
function readWalFirstPage(walPath: string, pageSize: number): Uint8Array | null | undefined {
  let wal: OpenedRegular;
  try {
    wal = OpenedRegular.open(walPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  using _ = wal;
  const header = readAt(wal, 0, WAL_HEADER_BYTES);
  if (header === null) return undefined;
  const view = new DataView(header.buffer);
  if (!isWalMagic(view.getUint32(0)) || view.getUint32(8) !== pageSize) return null;
  const salts = [view.getUint32(16), view.getUint32(20)];
  const frameBytes = WAL_FRAME_HEADER_BYTES + pageSize;
  const frames = Math.floor((wal.statSync().size - WAL_HEADER_BYTES) / frameBytes);
  let pending = -1;
  let committed = -1;
  for (let frame = 0; frame < frames; frame++) {
    if (frame === MAX_WAL_FRAMES_SCANNED) return null;
    const offset = WAL_HEADER_BYTES + frame * frameBytes;
    const frameHeader = readAt(wal, offset, WAL_FRAME_HEADER_BYTES);
    if (frameHeader === null) break;
    const fields = new DataView(frameHeader.buffer);
    if (fields.getUint32(8) !== salts[0] || fields.getUint32(12) !== salts[1]) break;
    if (fields.getUint32(0) === 1) pending = offset;
    if (fields.getUint32(4) !== 0) committed = pending;
  }
  if (committed < 0) return undefined;
  return readAt(wal, committed + WAL_FRAME_HEADER_BYTES, pageSize);
}
