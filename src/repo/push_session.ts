/**
 * The reading half of a push: each file of a local snapshot is cut into blocks, each block either found stored already
 * (same hash at the same place, in a pack that may be reused) or packed anew; runs of blocks contiguous in one pack
 * become one extent, hashed from its blocks' hashes. A file whose SHA-256 matches the last push is not read at all.
 *
 * @module
 */
import { OpenedRegular } from "../fs/opened_regular.ts";
import { NotRegularFileError } from "../fs/regular_file.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { OperationError } from "../errors.ts";
import { fileIdentity } from "../fs/file_identity.ts";
import { readAt } from "../fs/read_at.ts";
import { collectGarbage } from "../sys/collect_garbage.ts";
import { blockSizeOf, hashBlockInto, isCompressible, MIN_BLOCK, READ_BYTES, readChunks } from "./blocks.ts";
import type { PackInfo } from "./boundary.ts";
import type { DocumentLink, WritableFile } from "./document.ts";
import { PACK_MAX_BYTES } from "./document.ts";
import { extentHashInto } from "./extent_hash.ts";
import { emptyExtentTable, type ExtentTable, ExtentTableBuilder } from "./extent_table.ts";
import type { LocalEntry } from "./local_snapshot.ts";
import type { BlockTag, PackWriter, TaggedFile } from "./pack_writer.ts";
import type { CachedFile, KnownBlocks } from "./push_cache.ts";
import { MapBuilder, MapReader, type MapRegion, type Spool } from "./block_maps.ts";

/** A file as pushed; pack references are ≥ 0 for a known pack, `-1 - slot` for a new pack of the writer. */
interface PushedFile {
  path: string;
  size: number;
  sha256: string;
  block: number;
  extents: ExtentTable;
  /** Its identity when it was read (its SHA-256 taken from its bytes), `null` when reused whole from the last push. */
  identity: string | null;
  /** Its block map (pack references as above): being written for a file read, the last push's for one reused. */
  map: MapBuilder | MapRegion;
}

/** A file of the local snapshot that is not what its manifest says (kind, size or SHA-256): read as it was pushed. */
export class SnapshotFileChangedError extends OperationError {
  /** `path` (relative to the snapshot's folder) of snapshot `stamp`. */
  constructor(stamp: string, readonly path: string) {
    super(`snapshot ${stamp}: ${path} changed since the snapshot was made; run 'validate ${stamp}'`);
  }
}

/** A file a push read: its SHA-256 and its identity (`fs/file_identity.ts`) when it was read. */
export interface ReadFile {
  sha256: string;
  identity: string;
}

/** What reading the snapshot cost and saved. */
export interface SessionTotals {
  /** Bytes of every file of the snapshot. */
  bytesTotal: number;
  /** Bytes read from the local snapshot. */
  bytesRead: number;
  /** Bytes not sent because they were stored already. */
  bytesDeduplicated: number;
  /** Files not read because they match the last push. */
  filesUnchanged: number;
}

/** Bytes read between two forced collections. */
const GC_EVERY_BYTES = 64 << 20;

/** Reads the files of one snapshot into packs and extents. */
export class PushSession {
  /** The files and links pushed, in order. */
  readonly entries: (PushedFile | DocumentLink)[] = [];
  /** Totals so far. */
  readonly totals: SessionTotals = { bytesTotal: 0, bytesRead: 0, bytesDeduplicated: 0, filesUnchanged: 0 };
  private sinceCollected = 0;
  private readonly buffer = new Uint8Array(READ_BYTES);
  private done = 0;
  /** The map each file read is written to, by its tag (see {@linkcode stored}). */
  private readonly builders = new Map<TaggedFile, MapBuilder>();

  /**
   * A session reading from snapshot folder `root` (stamp `stamp`, for messages) of `total` bytes (for progress), its
   * block maps written into `spool`.
   */
  constructor(
    private readonly known: KnownBlocks,
    private readonly writer: PackWriter,
    private readonly spool: Spool,
    private readonly root: string,
    private readonly stamp: string,
    private readonly total: number,
    private readonly onProgress?: (done: number, total: number) => void,
  ) {}

  /** Push one entry: a link is recorded, a file reused whole or read block by block. */
  async add(entry: LocalEntry): Promise<void> {
    if (entry.kind === "link") {
      this.entries.push({ path: entry.path, link: entry.target });
      return;
    }
    this.totals.bytesTotal += entry.size;
    const cached = entry.sha256 ? this.known.unchangedFile(entry.path, entry.size, entry.sha256) : null;
    if (cached) this.reuse(cached);
    else await this.read(entry);
    this.done += entry.size;
    this.onProgress?.(this.done, this.total);
  }

  private reuse(cached: CachedFile): void {
    const { path, size, sha256, block, map } = cached;
    // resolve rewrites its pack indexes and hashes (a cache of a format-1 push holds hashes of the bytes)
    const extents = { ...cached.extents, packs: cached.extents.packs.slice(), hashes: cached.extents.hashes.slice() };
    this.entries.push({
      path,
      size,
      sha256,
      block,
      extents,
      identity: null,
      map,
    });
    this.totals.bytesDeduplicated += size;
    this.totals.filesUnchanged += 1;
  }

  private async read(entry: { path: string; size: number; sha256: string | null }): Promise<void> {
    const path = join(this.root, entry.path);
    using file = this.open(path, entry.path);
    const opened = file.statSync();
    const size = opened.size;
    if (size !== entry.size) throw this.changed(entry.path);
    const block = blockSizeOf(readAt(file, 0, Math.min(size, 100)) ?? new Uint8Array(0));
    const compression = isCompressible(file, size) ? "zstd" : "none";
    const count = Math.ceil(size / block);
    const pushed: PushedFile = {
      path: entry.path,
      size,
      sha256: "",
      block,
      extents: emptyExtentTable(0),
      identity: fileIdentity(opened),
      map: new MapBuilder(this.spool, count, block),
    };
    const tagged: TaggedFile = { path: entry.path, block, size };
    this.builders.set(tagged, pushed.map as MapBuilder);
    const extents = new ExtentBuilder();
    const whole = createHash("sha256");
    const read = await readChunks(file, this.buffer, async (chunk, offset) => {
      if (offset + chunk.length > size) throw this.changed(entry.path);
      whole.update(chunk);
      for (let at = 0; at < chunk.length; at += block) {
        this.place(pushed, tagged, compression, extents, chunk.subarray(at, at + block), (offset + at) / block);
      }
      this.onProgress?.(this.done + offset + chunk.length, this.total);
      this.collectWhenDue();
      await this.writer.drain();
    });
    pushed.extents = extents.finish();
    pushed.sha256 = whole.digest("hex");
    if (read !== size || (entry.sha256 !== null && pushed.sha256 !== entry.sha256)) throw this.changed(entry.path);
    if (fileIdentity(file.statSync()) !== pushed.identity) throw this.changed(entry.path); // written while read
    this.totals.bytesRead += size;
    this.entries.push(pushed);
  }

  /**
   * Collect garbage after every {@linkcode GC_EVERY_BYTES} hashed block by block on this thread: each block's hash is
   * native garbage V8 does not count as pressure, so a push that stores little (a daily one reads the whole store and
   * hashes each block to find it stored) would otherwise grow. Blocks hashed on the sealing worker are not counted.
   */
  private collectWhenDue(): void {
    if (this.sinceCollected < GC_EVERY_BYTES) return;
    this.sinceCollected = 0;
    collectGarbage();
  }

  /** Find block `index` stored already, or pack it; record where it is. */
  private place(
    pushed: PushedFile,
    tagged: TaggedFile,
    compression: "zstd" | "none",
    extents: ExtentBuilder,
    bytes: Uint8Array,
    index: number,
  ): void {
    const map = pushed.map as MapBuilder;
    const hash = map.hashView(index); // set here when hashed to be found, else once its pack is sealed
    let known = null;
    if (this.known.mayHave(pushed.path, pushed.block, index)) {
      hashBlockInto(bytes, hash, 0);
      this.sinceCollected += bytes.length;
      known = this.known.find(pushed.path, pushed.block, index, hash);
    } // else it cannot be found whatever its hash: it is packed, and hashed from the pack when sealed (PackWriter)
    let ref: number;
    let offset: number;
    if (known) {
      ref = known.pack;
      offset = known.offset;
      this.totals.bytesDeduplicated += bytes.length;
    } else {
      const placed = this.writer.add(bytes, compression, { file: tagged, index, hash });
      ref = -1 - placed.slot;
      offset = placed.offset;
    }
    map.place(index, ref, offset, !known);
    extents.add(index * pushed.block, ref, offset, bytes.length);
  }

  /** The blocks `tags` are in a stored pack, their hashes set: their maps may be written out. */
  stored(tags: readonly BlockTag[]): void {
    for (const { file, index, hash } of tags) this.builders.get(file)?.hashed(index, hash);
  }

  /** Each file read so far, by path: its SHA-256 (taken from its bytes, checked against the manifest) and identity. */
  readFiles(): Map<string, ReadFile> {
    return new Map(
      this.entries.flatMap((entry) =>
        "identity" in entry && entry.identity !== null
          ? [[entry.path, { sha256: entry.sha256, identity: entry.identity }]]
          : []
      ),
    );
  }

  /**
   * The regular file at `path` (the snapshot's `relative`), opened never through a link nor waiting on a FIFO: one that
   * is not such a file, or not the one looked at once opened (swapped by a writer of the backup folder), is changed.
   */
  private open(path: string, relative: string): OpenedRegular {
    try {
      return OpenedRegular.open(path);
    } catch (error) {
      if (error instanceof NotRegularFileError) throw this.changed(relative);
      throw error;
    }
  }

  private changed(path: string): SnapshotFileChangedError {
    return new SnapshotFileChangedError(this.stamp, path);
  }

  /**
   * Resolve pack references once every new pack is stored (`stored[slot]`): the document's pack table (only packs
   * used), its files, and the same as a push cache for the next push.
   */
  resolve(
    stored: readonly PackInfo[],
  ): { packs: PackInfo[]; files: (WritableFile | DocumentLink)[]; cache: CachedFile[] } {
    const packs: PackInfo[] = [];
    const byId = new Map<string, number>();
    const byRef = new Map<number, number>();
    const indexOf = (ref: number): number => {
      let index = byRef.get(ref);
      if (index !== undefined) return index;
      const info = ref >= 0 ? this.known.packs[ref] : stored[-1 - ref];
      if (info === undefined) {
        throw new RangeError(`a block map names pack ${ref}, which no table has (changed while read)`);
      }
      index = byId.get(info.id) ?? packs.push(info) - 1;
      byId.set(info.id, index);
      byRef.set(ref, index);
      return index;
    };
    const files: (WritableFile | DocumentLink)[] = [];
    const cache: CachedFile[] = [];
    const pieces = new Uint8Array(Math.ceil(PACK_MAX_BYTES / MIN_BLOCK) * 32);
    for (const entry of this.entries) {
      if ("link" in entry) {
        files.push(entry);
        continue;
      }
      const { path, size, sha256, block, extents } = entry;
      const region = entry.map instanceof MapBuilder ? entry.map.finish() : entry.map;
      hashExtents(extents, block, new MapReader(region), pieces);
      extents.packs.forEach((ref, at) => extents.packs[at] = indexOf(ref)); // in place: one table for both
      files.push({ path, size, sha256, block, extents });
      cache.push({ path, size, sha256, block, extents, map: { ...region, packOf: indexOf } });
    }
    return { packs, files, cache };
  }
}

/**
 * Set each extent's hash from its blocks' hashes in the file's block map (`extent_hash.ts`): every block of a file read
 * is hashed once, to be found or as its pack is sealed, and a file reused whole has the last push's map.
 */
function hashExtents(extents: ExtentTable, block: number, reader: MapReader, pieces: Uint8Array): void {
  for (let row = 0; row < extents.at.length; row++) {
    const first = extents.at[row] / block;
    const count = Math.ceil(extents.lengths[row] / block);
    if (count * 32 > pieces.length) pieces = new Uint8Array(count * 32); // only from a cache written by someone else
    for (let index = first; index < first + count;) {
      const window = reader.at(index);
      const end = Math.min(first + count, window.from + window.length);
      pieces.set(window.hashes.subarray((index - window.from) * 32, (end - window.from) * 32), (index - first) * 32);
      index = end;
    }
    extentHashInto(pieces.subarray(0, count * 32), extents.hashes, row * 32);
  }
}

/** An extent's hash until {@linkcode PushSession.resolve} takes it from its blocks' hashes. */
const NO_HASH = new Uint8Array(32);

/** Merges consecutive blocks stored contiguously in one pack into one extent (hashed once every pack is sealed). */
class ExtentBuilder {
  private current: { at: number; ref: number; offset: number; length: number } | null = null;
  private readonly out = new ExtentTableBuilder();

  /** Add a block of `length` bytes at file offset `at`, stored at `offset` of pack reference `ref`. */
  add(at: number, ref: number, offset: number, length: number): void {
    const current = this.current;
    if (current && current.ref === ref && current.offset + current.length === offset) current.length += length;
    else {
      this.close();
      this.current = { at, ref, offset, length };
    }
  }

  private close(): void {
    const current = this.current;
    if (current) this.out.push(current.at, current.ref, current.offset, current.length, NO_HASH);
    this.current = null;
  }

  /** Close the last extent; the file's extents. */
  finish(): ExtentTable {
    this.close();
    return this.out.finish();
  }
}
