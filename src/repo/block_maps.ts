/**
 * Block maps kept in files, not in memory: per block of a file, its SHA-256, the pack it is stored in and the offset
 * there. A push reads the last push's maps and writes its own a window at a time, so its memory does not grow with the
 * store's size (40 bytes per block: 10 MiB per GiB of 4 KiB pages).
 *
 * @module
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { StateFolder } from "../fs/state_folder.ts";

/** Blocks a window holds: 160 KiB of maps. */
export const WINDOW_BLOCKS = 4096;

/** An open file holding block maps, read (and, for a spool, written) at positions. */
export class MapFile {
  #fd: number | null;

  /** A map file on the open descriptor `fd`, closed by {@linkcode close}. */
  constructor(fd: number, readonly path: string) {
    this.#fd = fd;
  }

  /**
   * A new file at `path` for this process only: removed at once, so nothing is left behind however the process ends
   * (it lives while open).
   */
  static spool(path: string): MapFile {
    const fd = openSync(path, "wx+", 0o600);
    try {
      unlinkSync(path);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return new MapFile(fd, path);
  }

  /**
   * As {@linkcode spool}, the file `name` made in the held `folder` (never through a link, wherever its path leads
   * meanwhile) and removed there.
   */
  static spoolIn(folder: StateFolder, name: string): MapFile {
    const fd = folder.createFile(name, 0o600);
    try {
      folder.removeFile(name);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return new MapFile(fd, join(folder.path, name));
  }

  /** `into.length` bytes from `position`, zeros past the end (a spool never written there); how many were read. */
  read(position: number, into: Uint8Array): number {
    for (let filled = 0; filled < into.length;) {
      const read = readSync(this.fd, into, filled, into.length - filled, position + filled);
      if (read === 0) {
        into.fill(0, filled);
        return filled;
      }
      filled += read;
    }
    return into.length;
  }

  /** Write `bytes` at `position`; a failure names this file (a full disk is the backup folder's). */
  write(position: number, bytes: Uint8Array): void {
    try {
      for (let written = 0; written < bytes.length;) {
        written += writeSync(this.fd, bytes, written, bytes.length - written, position + written);
      }
    } catch (error) {
      (error as { path?: string }).path ??= this.path;
      throw error;
    }
  }

  /** Close the file (a spool is then gone); again, nothing. */
  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private get fd(): number {
    if (this.#fd === null) throw new Error(`block maps ${this.path} read after being closed`);
    return this.#fd;
  }
}

/**
 * One file's block map in a map file: `count` hashes from `at`, then `count` pack indexes (Int32), then `count`
 * offsets (Uint32), as the push cache stores them. `packOf` turns a stored pack index into the reader's.
 */
export interface MapRegion {
  file: MapFile;
  at: number;
  count: number;
  block: number;
  packOf?: (stored: number) => number;
}

/** The bytes a map of `count` blocks takes. */
export function mapBytes(count: number): number {
  return count * 40;
}

/** Room for maps in a spool, given out one after the other. */
export class Spool {
  private next = 0;

  /** Maps written into `file` (a {@linkcode MapFile.spool}). */
  constructor(readonly file: MapFile) {}

  /** A region of `count` blocks cut at `block`, of its own: zeros until written. */
  region(count: number, block: number): MapRegion {
    const region = { file: this.file, at: this.next, count, block };
    this.next += mapBytes(count);
    return region;
  }
}

/** Write the map of blocks `[from, from + packs.length)` of `region`. */
export function writeBlocks(
  region: MapRegion,
  from: number,
  { hashes, packs, offsets }: Pick<MapWindow, "hashes" | "packs" | "offsets">,
): void {
  const [hashesAt, packsAt, offsetsAt] = positions(region, from);
  region.file.write(hashesAt, hashes);
  region.file.write(packsAt, new Uint8Array(packs.buffer, packs.byteOffset, packs.byteLength));
  region.file.write(offsetsAt, new Uint8Array(offsets.buffer, offsets.byteOffset, offsets.byteLength));
}

/**
 * The region's bytes as the push cache stores them (hashes, pack indexes with `packOf` applied, offsets), a window at
 * a time.
 */
export function* regionBytes(region: MapRegion): Generator<Uint8Array> {
  for (const [section, width] of [[0, 32], [1, 4], [2, 4]]) {
    for (let from = 0; from < region.count; from += WINDOW_BLOCKS) {
      const bytes = new Uint8Array(Math.min(WINDOW_BLOCKS, region.count - from) * width);
      region.file.read(positions(region, from)[section], bytes);
      if (section === 1 && region.packOf) {
        const packs = new Int32Array(bytes.buffer);
        packs.forEach((pack, at) => packs[at] = region.packOf!(pack));
      }
      yield bytes;
    }
  }
}

/** Where the hashes, pack indexes and offsets of block `from` of `region` start. */
function positions(region: MapRegion, from: number): [number, number, number] {
  const { at, count } = region;
  return [at + from * 32, at + count * 32 + from * 4, at + count * 36 + from * 4];
}

/** A window of blocks `[from, from + length)` of a region, read into memory. */
export interface MapWindow {
  from: number;
  length: number;
  hashes: Uint8Array;
  packs: Int32Array;
  offsets: Uint32Array;
}

/** Read blocks `[from, from + length)` of `region` (with `packOf` applied). */
export function readWindow(region: MapRegion, from: number, length: number): MapWindow {
  const window = { from, length, ...windowArrays(length) };
  const [hashes, packs, offsets] = positions(region, from);
  region.file.read(hashes, window.hashes);
  region.file.read(packs, new Uint8Array(window.packs.buffer));
  region.file.read(offsets, new Uint8Array(window.offsets.buffer));
  if (region.packOf) window.packs.forEach((pack, at) => window.packs[at] = region.packOf!(pack));
  return window;
}

function windowArrays(length: number): Pick<MapWindow, "hashes" | "packs" | "offsets"> {
  return { hashes: new Uint8Array(length * 32), packs: new Int32Array(length), offsets: new Uint32Array(length) };
}

/** Reads a region block by block in any order, a window at a time: sequential reading costs a read per window. */
export class MapReader {
  private window: MapWindow | null = null;

  /** A reader of `region`. */
  constructor(readonly region: MapRegion) {}

  /** The window holding block `index` (which must be under the region's count). */
  at(index: number): MapWindow {
    const window = this.window;
    if (window && index >= window.from && index < window.from + window.length) return window;
    const from = index - index % WINDOW_BLOCKS;
    return this.window = readWindow(this.region, from, Math.min(WINDOW_BLOCKS, this.region.count - from));
  }
}

/** A window being filled: blocks placed so far, and blocks whose hash a pack being sealed has still to set (flagged). */
interface OpenWindow extends MapWindow {
  placed: number;
  pending: number;
  waiting: Uint8Array;
}

/**
 * Windows a map keeps open at most: past it, the oldest whose blocks are all placed is written with the hashes still
 * to come left as zeros, each written in its place when it comes. A sparse daily push leaves a block or two of each
 * window in a pack that stays open until the end, which would otherwise keep the whole map in memory.
 */
const OPEN_WINDOWS = 8;

/**
 * Writes one file's block map into a spool as blocks are placed. A block given to a pack has its hash set (in the
 * view {@linkcode hashView} returned) only once the pack is sealed: a window is written out once every block of it is
 * placed and hashed (or, past {@linkcode OPEN_WINDOWS}, once placed), so memory is a few windows per file.
 */
export class MapBuilder {
  /** The region the map is written to. */
  readonly region: MapRegion;
  private readonly open = new Map<number, OpenWindow>();
  /** Blocks of windows written before their hashes came: each hash is written in its place when it comes. */
  private readonly late = new Set<number>();

  /** A map of `count` blocks cut at `block`, in room of its own in `spool`. */
  constructor(spool: Spool, count: number, block: number) {
    this.region = spool.region(count, block);
  }

  /** The 32 bytes block `index`'s hash goes in: valid until the block is placed and hashed. */
  hashView(index: number): Uint8Array {
    const window = this.windowOf(index);
    const at = (index - window.from) * 32;
    return window.hashes.subarray(at, at + 32);
  }

  /** Record where block `index` is; `pending`: its hash is set later, then {@linkcode hashed} is called. */
  place(index: number, pack: number, offset: number, pending: boolean): void {
    const window = this.windowOf(index);
    window.packs[index - window.from] = pack;
    window.offsets[index - window.from] = offset;
    window.placed += 1;
    if (pending) {
      window.pending += 1;
      window.waiting[index - window.from] = 1;
    }
    this.writeWhenDone(window);
  }

  /** The hash of block `index`, placed as pending, is set: `hash` (its view from {@linkcode hashView}). */
  hashed(index: number, hash: Uint8Array): void {
    if (this.late.delete(index)) {
      this.region.file.write(positions(this.region, index)[0], hash);
      return;
    }
    const window = this.windowOf(index);
    window.pending -= 1;
    window.waiting[index - window.from] = 0;
    this.writeWhenDone(window);
  }

  /** The finished map's region; throws when a block was never placed or hashed (a bug, not an outside fault). */
  finish(): MapRegion {
    const left = this.open.size + this.late.size;
    if (left > 0) throw new Error(`block map with ${left} windows or hashes left unfinished`);
    return this.region;
  }

  private windowOf(index: number): OpenWindow {
    const from = index - index % WINDOW_BLOCKS;
    let window = this.open.get(from);
    if (!window) {
      const length = Math.min(WINDOW_BLOCKS, this.region.count - from);
      window = { from, length, placed: 0, pending: 0, waiting: new Uint8Array(length), ...windowArrays(length) };
      this.open.set(from, window);
    }
    return window;
  }

  private writeWhenDone(window: OpenWindow): void {
    if (window.placed === window.length && window.pending === 0) this.write(window);
    if (this.open.size <= OPEN_WINDOWS) return;
    const placed = [...this.open.values()].find((open) => open.placed === open.length);
    if (!placed) return;
    placed.waiting.forEach((waits, at) => waits && this.late.add(placed.from + at));
    this.write(placed);
  }

  private write(window: OpenWindow): void {
    writeBlocks(this.region, window.from, window);
    this.open.delete(window.from);
  }
}
