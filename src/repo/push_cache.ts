/**
 * What this host remembers between pushes to one repository: where the last finished push stored each block (the
 * cache) and which packs unfinished pushes sent (journals). Both are hints, checksummed: anything missing, corrupt or
 * from another repository is ignored and costs a fuller push, never a wrong snapshot.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ensureDir, removeInside, removeQuietly, writeFileAtomic } from "../fs/durable.ts";
import { fileLines } from "../fs/lines.ts";
import { entriesOrNone } from "../fs/probe.ts";
import { openRegularFile } from "../fs/regular_file.ts";
import { closeSync, readSync } from "node:fs";
import { hexHashInto } from "./blocks.ts";
import type { PackInfo } from "./boundary.ts";
import { type ExtentTable, extentTableBytes, extentTableFrom, toExtentTable } from "./extent_table.ts";
import type { BlockTag } from "./pack_writer.ts";

/** Version 2 keeps extents as binary tables; version 1 had them in the JSON header, and is still read (not written). */
const MAGIC = "ATOCORE-PUSH-CACHE 2\n";
const MAGIC_V1 = "ATOCORE-PUSH-CACHE 1\n";

/** Per block of a file: its SHA-256, the pack (index into a pack table; -1 = unknown) and offset it is stored at. */
export interface BlockMap {
  block: number;
  hashes: Uint8Array;
  packs: Int32Array;
  offsets: Uint32Array;
}

/** A file of the last finished push: whole-file identity, extents as stored, and its block map. */
export interface CachedFile {
  path: string;
  size: number;
  sha256: string;
  block: number;
  extents: ExtentTable;
  map: BlockMap;
}

/** The cache of the last finished push; pack indexes refer to `packs`. */
export interface PushCache {
  repositoryId: string;
  packs: PackInfo[];
  files: CachedFile[];
}

/** An empty block map for a file of `size` bytes cut at `block`. */
export function emptyBlockMap(block: number, size: number): BlockMap {
  const count = Math.ceil(size / block);
  return {
    block,
    hashes: new Uint8Array(count * 32),
    packs: new Int32Array(count).fill(-1),
    offsets: new Uint32Array(count),
  };
}

/** Encode the cache: magic, header JSON, each file's block map and extent table, then the SHA-256 of all of it. */
export function encodePushCache(cache: PushCache): Uint8Array {
  return Buffer.concat(pushCacheParts(cache));
}

/** The encoded cache's parts in order, written one after the other: no copy of the maps, however large the files. */
function pushCacheParts(cache: PushCache): Uint8Array[] {
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
  const parts: Uint8Array[] = [new TextEncoder().encode(MAGIC), length, header];
  for (const { map, extents } of cache.files) {
    parts.push(map.hashes, bytesOf(map.packs), bytesOf(map.offsets), ...extentTableBytes(extents));
  }
  const sum = createHash("sha256");
  for (const part of parts) sum.update(part);
  return [...parts, sum.digest()];
}

/**
 * The next `length` bytes of an encoded cache as a new buffer (its own, so typed arrays can be made on it), or `null`
 * when fewer remain.
 */
type Take = (length: number) => Uint8Array<ArrayBuffer> | null;

/** Decode a cache, or `null` when it is damaged, of another version, or of another repository. */
export function decodePushCache(bytes: Uint8Array, repositoryId: string): PushCache | null {
  let at = 0; // each part copied: a Buffer's slice would share its pool
  return decodeFrom(
    (length) => length > bytes.length - at ? null : new Uint8Array(bytes.subarray(at, at += length)),
    bytes.length,
    repositoryId,
  );
}

/**
 * The cache at `path`: `null` when there is none, `"unusable"` when it cannot be used (damaged, not a regular file,
 * unreadable, another repository's), which the push says, since it then sends everything again. Each part is read
 * into its own array.
 */
export function loadPushCache(path: string, repositoryId: string): PushCache | "unusable" | null {
  let opened: { fd: number; size: number };
  try {
    opened = openRegularFile(path, { maxBytes: Number.MAX_SAFE_INTEGER }); // never a link, a FIFO or a folder
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? null : "unusable";
  }
  const { fd, size } = opened;
  try {
    let at = 0;
    return decodeFrom(
      (length) => length > size - at ? null : readPart(fd, (at += length) - length, length),
      size,
      repositoryId,
    ) ?? "unusable";
  } catch {
    return "unusable";
  } finally {
    closeSync(fd);
  }
}

/** Exactly `length` bytes of `fd` from `position` into a new buffer, or `null` when the file ends before. */
function readPart(fd: number, position: number, length: number): Uint8Array<ArrayBuffer> | null {
  const bytes = new Uint8Array(length);
  for (let filled = 0; filled < length;) {
    const read = readSync(fd, bytes, filled, length - filled, position + filled);
    if (read === 0) return null;
    filled += read;
  }
  return bytes;
}

/** Decode a cache of `size` bytes read through `take`; every part is counted into the checksum checked at the end. */
function decodeFrom(take: Take, size: number, repositoryId: string): PushCache | null {
  if (size < MAGIC.length + 36) return null;
  const sum = createHash("sha256");
  let left = size - 32;
  const next = (length: number) => {
    const bytes = Number.isSafeInteger(length) && length >= 0 && length <= left ? take(length) : null;
    if (bytes === null) throw new RangeError("the cache ends early");
    left -= length;
    sum.update(bytes);
    return bytes;
  };
  try {
    const magic = new TextDecoder().decode(next(MAGIC.length));
    if (magic !== MAGIC && magic !== MAGIC_V1) return null;
    const header = JSON.parse(new TextDecoder().decode(next(new DataView(next(4).buffer).getUint32(0, true))));
    if (header.repository_id !== repositoryId) return null;
    const files: CachedFile[] = [];
    for (const file of header.files) {
      const count = Math.ceil(file.size / file.block);
      const v1 = magic === MAGIC_V1 && Array.isArray(file.extents);
      if (!v1 && (magic === MAGIC_V1 || !Number.isSafeInteger(file.extents) || file.extents < 0)) return null;
      const map = {
        block: file.block,
        hashes: next(count * 32),
        packs: new Int32Array(next(count * 4).buffer),
        offsets: new Uint32Array(next(count * 4).buffer),
      };
      const extents = v1 ? toExtentTable(file.extents) : extentTableFrom(file.extents, (length) => next(length).buffer);
      files.push({ ...file, map, extents });
    }
    const stored = take(32);
    if (left !== 0 || stored === null || !sum.digest().equals(stored)) return null;
    return { repositoryId, packs: header.packs, files };
  } catch {
    return null;
  }
}

/** Replace the cache at `path` atomically. */
export function savePushCache(path: string, cache: PushCache): void {
  writeFileAtomic(path, pushCacheParts(cache));
}

function bytesOf(array: Int32Array | Uint32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** A journal line: one stored pack and, per file, the blocks it holds as `[index, packOffset, sha256 hex]`. */
interface JournalRecord {
  repository_id: string;
  pack: PackInfo;
  files: { path: string; block: number; size: number; blocks: [number, number, string][] }[];
}

/** Append-only journal of the packs one push stored, each line checksummed (a torn last line is ignored). */
export class PushJournal {
  /** A journal at `path` (its folder is made when missing) for pushes to repository `repositoryId`. */
  constructor(private readonly path: string, private readonly repositoryId: string) {
    ensureDir(join(path, ".."));
  }

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
    Deno.writeTextFileSync(this.path, `${json} ${createHash("sha256").update(json).digest("hex")}\n`, { append: true });
  }

  /** Remove the journal (the push finished and its cache was saved). */
  remove(): void {
    removeQuietly(this.path);
  }
}

/** What the journals of unfinished pushes say: the packs they stored and, per path, where each block went. */
export interface JournalContent {
  packs: PackInfo[];
  maps: Map<string, BlockMap>;
}

/**
 * A journal line's bytes at most: a pack's blocks, each about 80 characters, and its files (a pack of 8 MiB + 64 KiB
 * cut at 512 bytes is 1.3 MB); a longer line is skipped, which costs only sending its pack again.
 */
const MAX_JOURNAL_LINE = 8 << 20;

/** Read every journal in `dir` for repository `repositoryId`; unreadable lines and files are skipped. */
export function loadJournals(dir: string, repositoryId: string): JournalContent {
  const content: JournalContent = { packs: [], maps: new Map() };
  for (const entry of entriesOrNone(dir)) {
    if (!entry.isFile) continue;
    try {
      for (const line of fileLines(join(dir, entry.name), MAX_JOURNAL_LINE)) {
        const record = parseJournalLine(line, repositoryId);
        if (record) addRecord(content, record);
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
    const record = JSON.parse(json) as JournalRecord;
    return record.repository_id === repositoryId ? record : null;
  } catch {
    return null;
  }
}

function addRecord(content: JournalContent, record: JournalRecord): void {
  const packIndex = content.packs.push(record.pack) - 1;
  for (const file of record.files) {
    let map = content.maps.get(file.path);
    if (!map || map.block !== file.block || map.packs.length !== Math.ceil(file.size / file.block)) {
      map = emptyBlockMap(file.block, file.size);
      content.maps.set(file.path, map);
    }
    for (const [index, offset, hash] of file.blocks) {
      if (index < 0 || index >= map.packs.length) continue;
      hexHashInto(hash, map.hashes, index * 32);
      map.packs[index] = packIndex;
      map.offsets[index] = offset;
    }
  }
}

/**
 * Remove every journal in `dir`, a folder inside `root` (after a finished push saved its cache, they are superseded);
 * nothing is removed through a link (see `removeInside`).
 */
export function clearJournals(root: string, dir: string): void {
  for (const entry of entriesOrNone(dir)) if (entry.isFile) removeInside(root, join(dir, entry.name));
}

/** A block found stored already: the pack (index into {@linkcode KnownBlocks.packs}) and its offset there. */
export interface KnownLocation {
  pack: number;
  offset: number;
}

/**
 * The blocks this host knows are stored, from the cache and the journals, restricted to packs that a listing made after
 * the push's lease was written shows present (with their size) and not condemned.
 */
export class KnownBlocks {
  /** Every pack the cache or a journal mentions (the cache's first). */
  readonly packs: PackInfo[];
  private readonly usable: boolean[];
  private readonly cached = new Map<string, CachedFile>();
  private readonly journal: Map<string, BlockMap>;

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
    for (const map of journals.maps.values()) {
      map.packs.forEach((pack, at) => map.packs[at] = pack < 0 ? -1 : remap[pack]);
    }
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
    for (const map of [this.cached.get(path)?.map, this.journal.get(path)]) {
      if (map && map.block === block && index < map.packs.length && this.isUsable(map.packs[index])) return true;
    }
    return false;
  }

  /** Where block `index` of `path` (cut at `block`) with SHA-256 `hash` is already stored, or `null`. */
  find(path: string, block: number, index: number, hash: Uint8Array): KnownLocation | null {
    for (const map of [this.cached.get(path)?.map, this.journal.get(path)]) {
      if (!map || map.block !== block || index >= map.packs.length || !this.isUsable(map.packs[index])) continue;
      if (Buffer.compare(map.hashes.subarray(index * 32, index * 32 + 32), hash) === 0) {
        return { pack: map.packs[index], offset: map.offsets[index] };
      }
    }
    return null;
  }
}
