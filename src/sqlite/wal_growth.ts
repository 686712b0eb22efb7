/**
 * What a checkpoint may add to a database's files, read from its `-wal` frame headers (never its pages), so that a
 * restore can check the free space before it checkpoints: a checkpoint that runs out of space leaves the WAL
 * needed, and the tool must not be the one to find that out.
 *
 * @module
 */
import { readAt } from "../fs/read_at.ts";
import { exists, lstatOrNull } from "../fs/probe.ts";
import { isWalMagic, WAL_FRAME_HEADER_BYTES, WAL_HEADER_BYTES } from "./_wal_format.ts";

/** One `-shm` block (32 KiB) indexes 4096 frames, the first block 4062. */
const SHM_BLOCK_BYTES = 32768;
const SHM_FRAMES_PER_BLOCK = 4096;
const SHM_FIRST_BLOCK_SHORTFALL = 34;

/** What a checkpoint of a database's `-wal` may write. */
export interface CheckpointGrowth {
  /** Frames in the `-wal` of its current generation. */
  frames: number;
  /** Bytes the database file may grow by (pages the WAL adds beyond its end), plus a `-shm` it may create. */
  bytes: number;
}

/**
 * What checkpointing the `-wal` of the database `db` may write: the largest database size a commit frame of the
 * current WAL generation records (an upper bound of the size after the checkpoint) less the file's size now, plus
 * the `-shm` index when there is none. No `-wal`, one that is not a regular file, or one SQLite would ignore, needs
 * nothing.
 */
export function checkpointGrowth(db: string): CheckpointGrowth {
  // only a regular file holds frames: opening a FIFO there to read would wait for a writer for ever
  if (lstatOrNull(`${db}-wal`)?.isFile !== true) return { frames: 0, bytes: 0 };
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(`${db}-wal`, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { frames: 0, bytes: 0 };
    throw error;
  }
  using _file = file;
  const { frames, pages, pageSize } = scanFrames(file);
  const dbBytes = exists(db) ? Deno.statSync(db).size : 0;
  const shm = frames > 0 && !exists(`${db}-shm`)
    ? SHM_BLOCK_BYTES * Math.ceil((frames + SHM_FIRST_BLOCK_SHORTFALL) / SHM_FRAMES_PER_BLOCK)
    : 0;
  return { frames, bytes: Math.max(0, pages * pageSize - dbBytes) + shm };
}

/** The frames of the WAL's current generation (those carrying the header's salts) and the largest committed size. */
function scanFrames(file: Deno.FsFile): { frames: number; pages: number; pageSize: number } {
  const none = { frames: 0, pages: 0, pageSize: 0 };
  const header = readAt(file, 0, WAL_HEADER_BYTES);
  if (header === null) return none;
  const view = new DataView(header.buffer);
  if (!isWalMagic(view.getUint32(0))) return none;
  const pageSize = view.getUint32(8) === 1 ? 65536 : view.getUint32(8);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return none;
  const salts = [view.getUint32(16), view.getUint32(20)];
  const size = file.statSync().size;
  let frames = 0;
  let pages = 0;
  for (
    let at = WAL_HEADER_BYTES;
    at + WAL_FRAME_HEADER_BYTES + pageSize <= size;
    at += WAL_FRAME_HEADER_BYTES + pageSize
  ) {
    const frame = new DataView(readAt(file, at, WAL_FRAME_HEADER_BYTES)!.buffer);
    if (frame.getUint32(8) !== salts[0] || frame.getUint32(12) !== salts[1]) break;
    frames += 1;
    pages = Math.max(pages, frame.getUint32(4));
  }
  return { frames, pages, pageSize };
}
