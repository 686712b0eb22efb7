/**
 * Rebuilding a snapshot folder from a repository: each pack read and decrypted once, each extent written at its place,
 * each file checked by SHA-256 as it is written; links last. A scratch copy, not fsynced (a restore makes it durable).
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { AgeIdentity } from "../crypto/age.ts";
import { OperationError, UsageError } from "../errors.ts";
import { BufferPool } from "./buffer_pool.ts";
import { FILE_MODE, FlushAhead, FOLDER_MODE, removeQuietly } from "../fs/durable.ts";
import { OpenTree } from "../fs/held_copy.ts";
import { lstatOrNull } from "../fs/probe.ts";
import { type FolderCalls, folderCalls } from "../sys/folder_calls.ts";
import { type Backend, isFolderBackend, isSftpBackend } from "./backend.ts";
import { FileHashes } from "./file_hashes.ts";
import { CryptoPool } from "./crypto_pool.ts";
import { DEFAULT_TRANSFERS, FOLDER_FETCH_TRANSFERS, inLanes, S3_FETCH_TRANSFERS } from "./lanes.ts";
import { collectGarbage, collectGarbageGrown } from "../sys/collect_garbage.ts";
import { Buffer } from "node:buffer";
import {
  type DocumentFile,
  type DocumentLink,
  isDocumentFile,
  PACK_BUFFER_BYTES,
  PACK_MAX_BYTES,
  type SnapshotDocument,
} from "./document.ts";
import { packName, snapshotKeyText } from "./layout.ts";
import { openRepository } from "./repository.ts";
import { readSnapshot, snapshotArgument } from "./snapshots.ts";
import { checkPackName } from "./sealing.ts";
import { extentUnit, hashExtent } from "./extent_hash.ts";
import { readAt } from "../fs/read_at.ts";
import { emptyExtentTable, type ExtentTable, ExtentTableBuilder } from "./extent_table.ts";
import { listNames } from "../fs/listing.ts";

/**
 * Growth of each thread's array buffers before a full collection (the lane buffers moved back and forth not counted):
 * from a folder 48 MiB on the main thread and the worker; over the network the main thread also makes the transport's
 * garbage (SSH packets, HTTP bodies), so both collect sooner (an SFTP restore of the small-row store peaked at 262 to
 * 269 MiB with 48 MiB, 237 with these).
 */
function collectionBounds(backend: Backend): { main: number; worker: number } {
  return isFolderBackend(backend) ? { main: 48 << 20, worker: 48 << 20 } : { main: 24 << 20, worker: 32 << 20 };
}

/**
 * Workers that open packs: one, while this thread writes and hashes what it opened. On 2 CPUs a second one measured
 * slower (each makes garbage the process must collect to stay within its memory bound) and 30 MiB more.
 */
const FETCH_WORKERS = 1;
/**
 * Spare buffers a fetch over the network decompresses into at most (one pack opening on the worker, one being written
 * here): the lanes wait on the transfers, and a restore from S3 with 4 lanes peaked about 20 MiB lower with 2 than with
 * one per lane, as fast. From a folder each lane has one: there opening and writing are what the lanes wait on.
 */
const NETWORK_SPARE_BUFFERS = 2;

/** What a fetch asks of a worker for every pack: no range hashed, nor the pack against its name (see its use). */
const FETCH_JOB = { maxBytes: PACK_MAX_BYTES, ranges: new Uint32Array(0), skipNameHash: true } as const;

/**
 * A fetch's transfers by default: {@linkcode FOLDER_FETCH_TRANSFERS} from a folder, {@linkcode S3_FETCH_TRANSFERS} from
 * S3, {@linkcode DEFAULT_TRANSFERS} over SFTP (its client decrypts on this thread and holds its own buffers: 3 came too
 * near the memory bound).
 */
export function fetchTransfers(backend: Pick<Backend, "location">): number {
  if (isFolderBackend(backend)) return FOLDER_FETCH_TRANSFERS;
  return isSftpBackend(backend) ? DEFAULT_TRANSFERS : S3_FETCH_TRANSFERS;
}

/** Options of {@linkcode fetchSnapshot}. */
export interface FetchOptions {
  /** Packs read and opened at once (default {@linkcode fetchTransfers}): a pack buffer each, and a few spare. */
  transfers?: number;
  /**
   * Called once the document is read, before anything is written, with the bytes the files will take: a caller that
   * must refuse a fetch that does not fit throws here (the folder is then not made).
   */
  beforeWriting?: (bytes: number) => void;
  /** Called as bytes are written, with the total. */
  onProgress?: (done: number, total: number) => void;
  /** Accept a snapshot without a MAC for the identities' recipients (`--allow-unauthenticated`). */
  allowUnauthenticated?: boolean;
  /**
   * Start flushing the files to disk as they are written (see `FlushAhead`), for a caller that makes them durable next;
   * a flush that fails fails the fetch.
   */
  flushAhead?: boolean;
}

/** What a fetch rebuilt. */
export interface FetchResult {
  snapshot: string;
  stamp: string;
  files: number;
  links: number;
  bytes: number;
  packs_read: number;
  bytes_downloaded: number;
  /** Whether its refs hold a valid MAC for the identities (else it was allowed unauthenticated). */
  authenticated: boolean;
  /** The snapshot's `backup-metadata.json` object as pushed. */
  metadata: Record<string, unknown>;
  /**
   * Each regular file's SHA-256 by path, as the document records it and as the bytes written were hashed and found:
   * a validation of the fetched folder compares the manifest with these instead of reading every file again.
   */
  verified: ReadonlyMap<string, string>;
  /**
   * The databases whose bytes passed `PRAGMA integrity_check` in the push's validation, as its authenticated document
   * records; none for a snapshot accepted unauthenticated (its document could claim anything).
   */
  integrityChecked: ReadonlySet<string>;
}

/**
 * Rebuild snapshot `name` (`<stamp>_<push id>`) of the repository at `backend` into `intoFolder` (made here; its parent
 * must exist; an existing folder must be empty). On failure the folder is removed.
 *
 * @throws {OperationError} naming the object when a key does not match, an object is missing, altered or swapped.
 */
export async function fetchSnapshot(
  backend: Backend,
  identities: readonly AgeIdentity[],
  name: string,
  intoFolder: string,
  options: FetchOptions = {},
): Promise<FetchResult> {
  const key = snapshotArgument(name);
  const repository = await openRepository(backend);
  const allowUnauthenticated = options.allowUnauthenticated;
  const { document, authenticated } = await readSnapshot(repository, identities, key, { allowUnauthenticated });
  collectGarbage(); // the document's decrypted bytes, larger than its tables
  const files = document.files.filter(isDocumentFile);
  options.beforeWriting?.(files.reduce((sum, file) => sum + file.size, 0));
  prepareFolder(intoFolder);
  try {
    const made = createFiles(intoFolder, files);
    const hashes = new FileHashes(intoFolder, files); // before the extents move into tables by pack
    const byPack = extentsByPack(files);
    collectGarbage(); // the files' own tables, now by pack
    const read = await writeExtents(backend, identities, document, intoFolder, options, {
      files,
      byPack,
      hashes,
      made,
    });
    const damaged = hashes.firstMismatch();
    if (damaged !== null) await refuseDamagedExtent(backend, intoFolder, document, files[damaged], byPack, damaged);
    hashes.check(snapshotKeyText(key));
    createLinks(intoFolder, document.files.filter((entry): entry is DocumentLink => !isDocumentFile(entry)));
    return {
      snapshot: snapshotKeyText(key),
      stamp: key.stamp,
      files: files.length,
      links: document.files.length - files.length,
      bytes: files.reduce((sum, file) => sum + file.size, 0),
      ...read,
      authenticated,
      metadata: document.metadata,
      verified: new Map(files.map((file) => [file.path, file.sha256])),
      integrityChecked: new Set(authenticated ? document.integrity_checked : []),
    };
  } catch (error) {
    removeQuietly(intoFolder);
    throw error;
  }
}

function prepareFolder(folder: string): void {
  const info = lstatOrNull(folder);
  if (info === null) {
    Deno.mkdirSync(folder, { mode: FOLDER_MODE });
    return;
  }
  if (!info.isDirectory || listNames(folder).length > 0) {
    throw new UsageError(`${folder} exists and is not an empty folder; give a new folder to fetch into`);
  }
}

/** Which file was made at each path (device and inode): a file reopened there must be that one. */
type MadeFiles = Map<string, string>;

/**
 * Make every file at its size (sparse until written); folders as needed. Paths were checked clean when parsed. Each is
 * made inside the folders held open from `root` down (libc's `*at` calls, where FFI is there), never through a link a
 * writer swapped in; which file was made at each path is kept, for the reopening to check.
 */
function createFiles(root: string, files: DocumentFile[]): MadeFiles {
  const made: MadeFiles = new Map();
  const calls = folderCalls();
  if (calls === null) {
    for (const file of files) made.set(file.path, createFileByPath(join(root, file.path), file.size));
    return made;
  }
  using tree = heldTree(calls, root);
  for (const file of files) {
    const { parent, name, shown } = tree.place(file.path, true);
    const fd = calls.createFile(parent, name, FILE_MODE, shown);
    try {
      calls.truncate(fd, file.size, shown);
      const { dev, ino } = calls.identity(fd, shown);
      made.set(file.path, `${dev}:${ino}`);
    } finally {
      calls.close(fd);
    }
  }
  return made;
}

/** Make the links of the snapshot, inside the folders held open from `root` down where FFI is there. */
function createLinks(root: string, links: DocumentLink[]): void {
  const calls = folderCalls();
  if (calls === null) {
    for (const { path, link } of links) {
      Deno.mkdirSync(dirname(join(root, path)), { recursive: true, mode: FOLDER_MODE });
      Deno.symlinkSync(link, join(root, path));
    }
    return;
  }
  using tree = heldTree(calls, root);
  for (const { path, link } of links) {
    const { parent, name, shown } = tree.place(path, true);
    calls.makeLink(link, parent, name, shown);
  }
}

/** The folder `root` (just made: opened without following a link) and the tree below it, held open. */
function heldTree(calls: FolderCalls, root: string): OpenTree {
  return new OpenTree(calls, { fd: calls.openFolderNoFollow(root), path: root }, { ownsRoot: true });
}

/** Make the file at `path` at `size` by its path (without FFI); which file it is. */
function createFileByPath(path: string, size: number): string {
  Deno.mkdirSync(dirname(path), { recursive: true, mode: FOLDER_MODE });
  using handle = Deno.openSync(path, { write: true, createNew: true, mode: FILE_MODE });
  handle.truncateSync(size);
  return identityOf(handle.statSync());
}

function identityOf(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

/** Open the file made at `full` for writing, refusing another one found there now (opening writes nothing). */
async function reopenMade(full: string, made: string | undefined): Promise<Deno.FsFile> {
  const file = await Deno.open(full, { write: true });
  if (made !== undefined && identityOf(file.statSync()) === made) return file;
  file.close();
  throw new OperationError(
    `${full} is no longer the file this fetch made there (a folder of the fetch swapped for a link?): nothing was ` +
      "written to it; look at who writes that folder, then run again (or give --scratch-dir a folder only you write)",
  );
}

/**
 * For each pack, the extents that take bytes from it as a table whose `packs` column holds the index of the file in
 * `files`. The files' own tables are emptied: only one copy of the extents is held through every pack.
 */
function extentsByPack(files: DocumentFile[]): Map<number, ExtentTable> {
  const byPack = new Map<number, ExtentTableBuilder>();
  files.forEach((file, index) => {
    const { at, packs, offsets, lengths, hashes } = file.extents;
    for (let row = 0; row < at.length; row++) {
      let table = byPack.get(packs[row]);
      if (!table) byPack.set(packs[row], table = new ExtentTableBuilder());
      table.push(at[row], index, offsets[row], lengths[row], hashes.subarray(row * 32, row * 32 + 32));
    }
    file.extents = emptyExtentTable(0);
  });
  return new Map([...byPack].map(([pack, table]) => [pack, table.finish()]));
}

async function writeExtents(
  backend: Backend,
  identities: readonly AgeIdentity[],
  document: SnapshotDocument,
  root: string,
  options: FetchOptions,
  { files, byPack, hashes, made }: {
    files: DocumentFile[];
    byPack: Map<number, ExtentTable>;
    hashes: FileHashes;
    made: MadeFiles;
  },
): Promise<{ packs_read: number; bytes_downloaded: number }> {
  const order = [...byPack.keys()].sort((a, b) => a - b);
  const total = files.reduce((sum, file) => sum + file.size, 0);
  const lanes = Math.max(1, options.transfers ?? fetchTransfers(backend));
  // per lane, a buffer a pack is read and decrypted into (its plaintext never overtakes its ciphertext); a compressed
  // pack's plaintext goes into one of a few spare buffers, as many as packs are opened and written at once (one worker
  // opens, this thread writes): no new buffer reaches this thread per pack, and lanes read on while those are busy
  const buffers: Uint8Array[] = Array.from(
    { length: Math.min(lanes, order.length) },
    () => new Uint8Array(PACK_BUFFER_BYTES),
  );
  const spares = new BufferPool(
    isFolderBackend(backend) ? buffers.length : Math.min(buffers.length, NETWORK_SPARE_BUFFERS),
    PACK_BUFFER_BYTES,
  );
  using pool = new CryptoPool(FETCH_WORKERS);
  const flush = options.flushAhead ? new FlushAhead(FLUSH_AHEAD_BYTES) : undefined;
  const bounds = collectionBounds(backend);
  let done = 0;
  let downloaded = 0;
  await inLanes(order.length, lanes, async (at, lane) => {
    collectGarbageGrown(bounds.main);
    const { id, compression } = document.packs[order[at]];
    const name = packName(id);
    const sealed = await backend.read(name, buffers[lane], PACK_BUFFER_BYTES); // larger: refused unread
    downloaded += sealed.length;
    const spare = compression === "zstd" ? await spares.take() : undefined;
    let back = spare;
    try {
      // no hash of the pack against its name nor of each extent: each whole file's SHA-256 proves every byte written
      const job = { ...FETCH_JOB, name, sealed, into: sealed, compression };
      const opened = await pool.open({ ...job, plainInto: spare, collectAfterGrowth: bounds.worker }, identities);
      buffers[lane] = new Uint8Array(opened.sealed.buffer);
      back = opened.plainInto;
      const extents = byPack.get(order[at])!;
      done += await placeExtents(root, opened.plain, { files, extents, made }, hashes, flush);
    } catch (error) {
      if (error instanceof OperationError) await refuseMisnamed(backend, name);
      throw error;
    } finally {
      if (back) spares.give(back); // detached by a failed job: the pool makes a new one
    }
    options.onProgress?.(done, total);
  });
  await flush?.settled();
  return { packs_read: order.length, bytes_downloaded: downloaded };
}

/**
 * A rebuilt file does not match its SHA-256: when one of its extents, read back, does not match its own hash, name the
 * pack of the first such (checked against its name first, to say swapped or edited) and throw; else return, and the
 * file's own mismatch stands (intact extents put together into another file by a forged document).
 */
async function refuseDamagedExtent(
  backend: Backend,
  root: string,
  document: SnapshotDocument,
  file: DocumentFile,
  byPack: Map<number, ExtentTable>,
  index: number,
): Promise<void> {
  using handle = Deno.openSync(join(root, file.path), { read: true });
  let first: { at: number; pack: number } | null = null;
  for (const [pack, table] of byPack) {
    for (let row = 0; row < table.at.length; row++) {
      const at = table.at[row];
      if (table.packs[row] !== index || (first !== null && first.at <= at)) continue;
      const bytes = readAt(handle, at, table.lengths[row]) ?? new Uint8Array(0);
      const expected = Buffer.from(table.hashes.buffer, table.hashes.byteOffset + row * 32, 32).toString("hex");
      if (hashExtent(bytes, extentUnit(document.format, file.block, bytes.length)) !== expected) first = { at, pack };
    }
  }
  if (first === null) return;
  const name = packName(document.packs[first.pack].id);
  await refuseMisnamed(backend, name);
  throw new OperationError(
    `${name}: the bytes of ${file.path} at ${first.at} do not match their hash; snapshot damaged`,
  );
}

/**
 * After a pack failed to open or to match an extent's hash: read it again and, when its bytes do not hash to its name,
 * say so (swapped, truncated or edited), as a reader that checks the name first would have.
 */
async function refuseMisnamed(backend: Backend, name: string): Promise<void> {
  let sealed: Uint8Array;
  try {
    sealed = await backend.read(name, undefined, PACK_BUFFER_BYTES); // a pack grown meanwhile: refused unread
  } catch {
    return; // the first error stands
  }
  checkPackName(name, sealed);
}

/**
 * Extents up to this size are written on this thread: a daily snapshot's database is mostly scattered 4 KiB extents
 * (22,665 extents in 173 packs for the small-row store), and a runtime thread's round trip per seek and write cost more
 * than the copy (a restore's fetch measured 2.3 to 2.7 s against 2.8 to 3.0 s, alternating).
 */
const INLINE_WRITE_BYTES = 65536;

/**
 * Bytes written between two head-start flushes of a fetch (`flushAhead`): few enough rounds to cost nothing, early
 * enough that the restore's fsyncs find little left (the README's restore figures).
 */
const FLUSH_AHEAD_BYTES = 256 << 20;

/** Write each extent's bytes from `plain` at their offset and add them to their file's hash; the bytes written. */
async function placeExtents(
  root: string,
  plain: Uint8Array,
  { files, extents, made }: { files: DocumentFile[]; extents: ExtentTable; made: MadeFiles },
  hashes: FileHashes,
  flush?: FlushAhead,
): Promise<number> {
  let written = 0;
  let open = null as { path: string; file: Deno.FsFile; full: string } | null;
  try {
    for (let index = 0; index < extents.at.length; index++) {
      const file = files[extents.packs[index]];
      const [at, offset, length] = [extents.at[index], extents.offsets[index], extents.lengths[index]];
      if (open?.path !== file.path) {
        open?.file.close();
        const full = join(root, file.path);
        open = { path: file.path, file: await reopenMade(full, made.get(file.path)), full };
      }
      const bytes = plain.subarray(offset, offset + length); // short when the pack is: the file's hash then fails
      if (bytes.length <= INLINE_WRITE_BYTES) {
        open.file.seekSync(at, Deno.SeekMode.Start);
        for (let done = 0; done < bytes.length;) done += open.file.writeSync(bytes.subarray(done));
      } else {
        await open.file.seek(at, Deno.SeekMode.Start); // off the main thread: lanes write while others decrypt
        for (let done = 0; done < bytes.length;) done += await open.file.write(bytes.subarray(done));
      }
      hashes.written(extents.packs[index], at, bytes);
      flush?.wrote(open.full, length);
      written += length;
    }
  } finally {
    open?.file.close();
  }
  return written;
}
