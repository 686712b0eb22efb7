/**
 * What this host remembers between pushes to one repository: where the last finished push stored each block (the
 * cache) and which packs unfinished pushes sent (journals). Both are hints, checksummed: anything missing, corrupt or
 * from another repository is ignored and costs a fuller push, never a wrong snapshot.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { closeSync, writeSync } from "node:fs";
import { join } from "node:path";
import { FILE_MODE } from "../fs/durable.ts";
import type { StateFile, StateFolder } from "../fs/state_folder.ts";
import { fileLines } from "../fs/lines.ts";
import { entriesOrNone } from "../fs/probe.ts";
import { openRegularFile } from "../fs/regular_file.ts";
import { hexHashInto } from "./blocks.ts";
import {
  mapBytes,
  MapFile,
  MapReader,
  type MapRegion,
  type MapWindow,
  regionBytes,
  type Spool,
  writeBlocks,
} from "./block_maps.ts";
import type { PackInfo } from "./boundary.ts";
import { type ExtentTable, extentTableBytes, extentTableFrom, toExtentTable } from "./extent_table.ts";
import type { BlockTag } from "./pack_writer.ts";
import { parseBoundedJson } from "../text/bounded_json.ts";

/** Version 2 keeps extents as binary tables; version 1 had them in the JSON header, and is still read (not written). */
const MAGIC = "ATOCORE-PUSH-CACHE 2\n";
const MAGIC_V1 = "ATOCORE-PUSH-CACHE 1\n";

/** A file of the last finished push: whole-file identity, extents as stored, and its block map (in a file). */
export interface CachedFile {
  path: string;
  size: number;
  sha256: string;
  block: number;
  extents: ExtentTable;
  map: MapRegion;
}

/** The cache of a finished push; pack indexes refer to `packs`. */
export interface PushCache {
  repositoryId: string;
  packs: PackInfo[];
  files: CachedFile[];
}

/** A cache read from its file, which its maps are read from until {@linkcode MapFile.close}. */
export interface LoadedPushCache extends PushCache {
  file: MapFile;
}

/**
 * The encoded cache's parts in order: magic, header JSON, each file's block map and extent table, then the SHA-256 of
 * all of it; the maps are read a window at a time, however large the files.
 */
function* pushCacheBytes(cache: PushCache): Generator<Uint8Array> {
  const header = new TextEncoder().encode(JSON.stringify({
    repository_id: cache.repositoryId,
    packs: cache.packs,
    files: cache.files.map(({ path, size, sha256, block, extents }) => ({
      path,
      size,
      sha256,
      block,
      extents: extents.at.length,
    })),
  }));
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, header.length, true);
  const sum = createHash("sha256");
  const counted = function* (parts: Iterable<Uint8Array>) {
    for (const part of parts) {
      sum.update(part);
      yield part;
    }
  };
  yield* counted([new TextEncoder().encode(MAGIC), length, header]);
  for (const { map, extents } of cache.files) yield* counted([...regionBytes(map), ...extentTableBytes(extents)]);
  yield sum.digest();
}

/** The bytes of a cache file read in order; each part is counted into the checksum checked at the end. */
class CacheReader {
  private at = 0;
  private left: number;
  readonly sum = createHash("sha256");

  constructor(private readonly file: MapFile, readonly size: number) {
    this.left = size - 32;
  }

  /** The next `length` bytes, in a buffer of their own (typed arrays are made on it). */
  take(length: number): Uint8Array<ArrayBuffer> {
    const bytes = this.read(this.claim(length), length);
    this.sum.update(bytes);
    return bytes;
  }

  /** Count the next `length` bytes into the checksum without keeping them; where they start. */
  skip(length: number): number {
    const start = this.claim(length);
    for (let done = 0; done < length;) {
      const part = Math.min(length - done, 1 << 20);
      this.sum.update(this.read(start + done, part));
      done += part;
    }
    return start;
  }

  /** Whether the rest is exactly the checksum of what was read. */
  checksumMatches(): boolean {
    return this.left === 0 && this.sum.digest().equals(this.read(this.at, 32));
  }

  private claim(length: number): number {
    if (!Number.isSafeInteger(length) || length < 0 || length > this.left) throw new RangeError("the cache ends early");
    this.left -= length;
    this.at += length;
    return this.at - length;
  }

  private read(position: number, length: number): Uint8Array<ArrayBuffer> {
    const bytes = new Uint8Array(length);
    if (this.file.read(position, bytes) < length) throw new RangeError("the cache ends early");
    return bytes;
  }
}

/**
 * The cache at `path`: `null` when there is none, `"unusable"` when it cannot be used (damaged, not a regular file,
 * unreadable, another repository's), which the push says, since it then sends everything again. Its header and extents
 * are read into memory, its maps are read from the file (kept open) when needed; the whole file is checksummed first.
 */
export function loadPushCache(path: string, repositoryId: string): LoadedPushCache | "unusable" | null {
  let opened: { fd: number; size: number };
  try {
    opened = openRegularFile(path, { maxBytes: Number.MAX_SAFE_INTEGER }); // never a link, a FIFO or a folder
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? null : "unusable";
  }
  const file = new MapFile(opened.fd, path);
  let cache: LoadedPushCache | null = null;
  try {
    cache = opened.size < MAGIC.length + 36 ? null : decode(new CacheReader(file, opened.size), file, repositoryId);
  } catch {
    cache = null;
  }
  if (cache === null) file.close();
  return cache ?? "unusable";
}

/**
 * The largest header read (16 MiB: about 125,000 packs, 1 TB stored) and the most JSON values parsed from it or from a
 * journal line (500,000: about 60 MiB parsed). A writer of the backup folder's header of 250 MB of `{},` took a push
 * past 7 GiB, to V8's fatal out-of-memory trace; one past these bounds is unusable, as a damaged one is.
 */
const MAX_HEADER_BYTES = 16 << 20;
const MAX_PARSED_VALUES = 500_000;

/** Decode a cache, or `null` when it is damaged, of another version, or of another repository. */
function decode(reader: CacheReader, file: MapFile, repositoryId: string): LoadedPushCache | null {
  const magic = new TextDecoder().decode(reader.take(MAGIC.length));
  if (magic !== MAGIC && magic !== MAGIC_V1) return null;
  const length = new DataView(reader.take(4).buffer).getUint32(0, true);
  if (length > MAX_HEADER_BYTES) return null;
  const text = new TextDecoder().decode(reader.take(length));
  const header: ReturnType<typeof JSON.parse> = parseBoundedJson(text, { maxValues: MAX_PARSED_VALUES });
  if (header.repository_id !== repositoryId || !Array.isArray(header.files)) return null;
  const files: CachedFile[] = [];
  for (const entry of header.files) {
    const count = Math.ceil(entry.size / entry.block);
    const v1 = magic === MAGIC_V1 && Array.isArray(entry.extents);
    if (!v1 && (magic === MAGIC_V1 || !Number.isSafeInteger(entry.extents) || entry.extents < 0)) return null;
    if (!Number.isSafeInteger(count) || count < 0) return null;
    const map = { file, at: reader.skip(mapBytes(count)), count, block: entry.block };
    const extents = v1 ? toExtentTable(entry.extents) : extentTableFrom(entry.extents, (n) => reader.take(n).buffer);
    files.push({ ...entry, map, extents });
  }
  return reader.checksumMatches() ? { repositoryId, packs: header.packs, files, file } : null;
}

/** Replace the cache `file` atomically, its maps read from their files a window at a time. */
export function savePushCache(file: StateFile, cache: PushCache): void {
  file.replace(pushCacheBytes(cache));
}

/** A journal line: one stored pack and, per file, the blocks it holds as `[index, packOffset, sha256 hex]`. */
interface JournalRecord {
  repository_id: string;
  pack: PackInfo;
  files: { path: string; block: number; size: number; blocks: [number, number, string][] }[];
}

/** Append-only journal of the packs one push stored, each line checksummed (a torn last line is ignored). */
export class PushJournal implements Disposable {
  #fd: number | null = null;

  /**
   * The journal `name` in the folder `folder` gives (opened, and made when missing, at the first pack recorded) for
   * pushes to repository `repositoryId`.
   */
  constructor(
    private readonly folder: () => StateFolder,
    private readonly name: string,
    private readonly repositoryId: string,
  ) {}

  /** Record that `pack` was stored holding the blocks `tags` at `offsets` of its plaintext. */
  record(pack: PackInfo, tags: BlockTag[], offsets: number[]): void {
    const files = new Map<string, JournalRecord["files"][number]>();
    tags.forEach(({ file, index, hash }, at) => {
      let entry = files.get(file.path);
      if (!entry) files.set(file.path, entry = { path: file.path, block: file.block, size: file.size, blocks: [] });
      entry.blocks.push([index, offsets[at], Buffer.from(hash).toString("hex")]);
    });
    const record: JournalRecord = { repository_id: this.repositoryId, pack, files: [...files.values()] };
    const json = JSON.stringify(record);
    const line = new TextEncoder().encode(`${json} ${createHash("sha256").update(json).digest("hex")}\n`);
    this.#fd ??= this.folder().createFile(this.name, FILE_MODE, { append: true });
    for (let written = 0; written < line.length;) written += writeSync(this.#fd, line, written, line.length - written);
  }

  /** Remove the journal (the push finished and its cache was saved). */
  remove(): void {
    if (this.#fd === null) return; // nothing recorded: never made
    this[Symbol.dispose]();
    this.folder().removeFile(this.name);
  }

  /** Close the journal (it stays, for the next push to read). */
  [Symbol.dispose](): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}

/**
 * What the journals of unfinished pushes say: the packs they stored and, per path, where each block went (in a spool,
 * pack indexes stored plus one: a block no journal names reads as 0).
 */
export interface JournalContent {
  packs: PackInfo[];
  maps: Map<string, MapRegion>;
}

/**
 * A journal line's bytes at most: a pack's blocks, each about 80 characters, and its files (a pack of 8 MiB + 64 KiB
 * cut at 512 bytes is 1.3 MB); a longer line is skipped, which costs only sending its pack again.
 */
const MAX_JOURNAL_LINE = 8 << 20;

/** Read every journal in `dir` for repository `repositoryId`, its maps into `spool`; unreadable lines are skipped. */
export function loadJournals(dir: string, repositoryId: string, spool: Spool): JournalContent {
  const content: JournalContent = { packs: [], maps: new Map() };
  for (const entry of entriesOrNone(dir)) {
    if (!entry.isFile) continue;
    try {
      for (const line of fileLines(join(dir, entry.name), MAX_JOURNAL_LINE)) {
        const record = parseJournalLine(line, repositoryId);
        if (record) addRecord(content, record, spool);
      }
    } catch {
      continue; // what was read counts: lines are checksummed one by one
    }
  }
  return content;
}

function parseJournalLine(line: string, repositoryId: string): JournalRecord | null {
  const space = line.lastIndexOf(" ");
  if (space < 0) return null;
  const json = line.slice(0, space);
  if (createHash("sha256").update(json).digest("hex") !== line.slice(space + 1)) return null;
  try {
    const record = parseBoundedJson(json, { maxValues: MAX_PARSED_VALUES }) as JournalRecord;
    return record.repository_id === repositoryId ? record : null;
  } catch {
    return null;
  }
}

/**
 * The largest file a journal line may describe (16 TiB) and the block sizes it may be cut at: a line a writer of the
 * backup folder made up cannot reserve room in the spool past what a filesystem holds (which would fail every push).
 */
const MAX_JOURNAL_FILE_BYTES = 2 ** 44;

function plausible(file: JournalRecord["files"][number]): boolean {
  const { size, block } = file;
  return Number.isSafeInteger(size) && size >= 0 && size <= MAX_JOURNAL_FILE_BYTES && Number.isSafeInteger(block) &&
    block >= 512 && block <= 65536 && Array.isArray(file.blocks);
}

function addRecord(content: JournalContent, record: JournalRecord, spool: Spool): void {
  if (!Array.isArray(record.files) || !record.files.every(plausible)) return; // a hint: skipped
  const stored = content.packs.push(record.pack); // the pack's index plus one
  for (const file of record.files) {
    const count = Math.ceil(file.size / file.block);
    let map = content.maps.get(file.path);
    if (!map || map.block !== file.block || map.count !== count) {
      map = spool.region(count, file.block);
      content.maps.set(file.path, map);
    }
    const blocks = file.blocks.filter(([index]) => Number.isSafeInteger(index) && index >= 0 && index < count);
    for (let run = 0; run < blocks.length;) {
      let end = run + 1;
      while (end < blocks.length && blocks[end][0] === blocks[end - 1][0] + 1) end++;
      writeBlocks(map, blocks[run][0], {
        hashes: hashesOf(blocks.slice(run, end)),
        packs: new Int32Array(end - run).fill(stored),
        offsets: Uint32Array.from(blocks.slice(run, end), ([, offset]) => offset),
      });
      run = end;
    }
  }
}

function hashesOf(blocks: [number, number, string][]): Uint8Array {
  const hashes = new Uint8Array(blocks.length * 32);
  blocks.forEach(([, , hash], at) => hexHashInto(hash, hashes, at * 32));
  return hashes;
}

/**
 * Remove every journal in the held `folder` (after a finished push saved its cache, they are superseded); by name in
 * it, so nothing is removed through a link.
 */
export function clearJournals(folder: StateFolder): void {
  for (const name of folder.files()) folder.removeFile(name);
}

/** A block found stored already: the pack (index into {@linkcode KnownBlocks.packs}) and its offset there. */
export interface KnownLocation {
  pack: number;
  offset: number;
}

/**
 * The blocks this host knows are stored, from the cache and the journals, restricted to packs that a listing made after
 * the push's lease was written shows present (with their size) and not condemned. The maps stay in their files: they
 * are read a window at a time, for the file being read.
 */
export class KnownBlocks {
  /** Every pack the cache or a journal mentions (the cache's first). */
  readonly packs: PackInfo[];
  private readonly usable: boolean[];
  private readonly cached = new Map<string, CachedFile>();
  private readonly journal: Map<string, MapRegion>;
  private readers: { path: string; cached: MapReader | null; journal: MapReader | null } | null = null;

  /** Combine the last push's cache (or none) with the journals of unfinished pushes. */
  constructor(cache: PushCache | null, journals: JournalContent) {
    this.packs = [...(cache?.packs ?? [])];
    const indexOf = new Map(this.packs.map((pack, index) => [pack.id, index]));
    const remap = journals.packs.map((pack) => {
      const known = indexOf.get(pack.id);
      if (known !== undefined) return known;
      indexOf.set(pack.id, this.packs.length);
      return this.packs.push(pack) - 1;
    });
    for (const map of journals.maps.values()) map.packOf = (stored) => stored <= 0 ? -1 : remap[stored - 1] ?? -1;
    this.journal = journals.maps;
    for (const file of cache?.files ?? []) this.cached.set(file.path, file);
    this.usable = this.packs.map(() => false);
  }

  /** The ids of every pack that may be reused (for the lease). */
  packIds(): string[] {
    return [...new Set(this.packs.map((pack) => pack.id))];
  }

  /** Mark usable the packs listed with the size recorded and in no condemned marker; returns how many are. */
  markUsable(listed: ReadonlyMap<string, number>, condemned: ReadonlySet<string>): number {
    this.packs.forEach((pack, index) => {
      this.usable[index] = listed.get(pack.id) === pack.size && !condemned.has(pack.id);
    });
    return this.usable.filter(Boolean).length;
  }

  /** Whether the pack at `index` may be reused. */
  isUsable(index: number): boolean {
    return index >= 0 && this.usable[index] === true;
  }

  /** The cached file when its size and SHA-256 are these and every pack it uses may be reused: it need not be read. */
  unchangedFile(path: string, size: number, sha256: string): CachedFile | null {
    const file = this.cached.get(path);
    if (!file || file.size !== size || file.sha256 !== sha256) return null;
    return file.extents.packs.every((pack) => this.isUsable(pack)) ? file : null;
  }

  /**
   * Whether block `index` of `path` (cut at `block`) may be stored already: a usable pack holds a block at that place.
   * When not, {@linkcode find} finds nothing whatever the block's hash, so the block need not be hashed before packing.
   */
  mayHave(path: string, block: number, index: number): boolean {
    return this.sources(path, block, index).some(({ window, at }) => this.isUsable(window.packs[at]));
  }

  /** Where block `index` of `path` (cut at `block`) with SHA-256 `hash` is already stored, or `null`. */
  find(path: string, block: number, index: number, hash: Uint8Array): KnownLocation | null {
    for (const { window, at } of this.sources(path, block, index)) {
      if (!this.isUsable(window.packs[at])) continue;
      if (Buffer.compare(window.hashes.subarray(at * 32, at * 32 + 32), hash) === 0) {
        return { pack: window.packs[at], offset: window.offsets[at] };
      }
    }
    return null;
  }

  /** The windows of the cache's and the journals' maps of `path` holding block `index`, where it is cut at `block`. */
  private sources(path: string, block: number, index: number): { window: MapWindow; at: number }[] {
    if (this.readers?.path !== path) {
      const reader = (map: MapRegion | undefined) => map ? new MapReader(map) : null;
      this.readers = { path, cached: reader(this.cached.get(path)?.map), journal: reader(this.journal.get(path)) };
    }
    const found = [];
    for (const reader of [this.readers.cached, this.readers.journal]) {
      if (!reader || reader.region.block !== block || index >= reader.region.count) continue;
      const window = reader.at(index);
      found.push({ window, at: index - window.from });
    }
    return found;
  }
}
