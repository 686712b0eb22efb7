/**
 * Fills packs of blocks (one open pack per compression class), seals each full pack (on a worker when given one,
 * hashing there its blocks) and uploads it while the next one fills, with a small bound on packs in flight so memory
 * stays a few packs whatever the store's size.
 *
 * @module
 */
import type { Boundary, Compression, PackInfo, PackSealing } from "./boundary.ts";
import { collectGarbage } from "../sys/collect_garbage.ts";
import { PACK_BUFFER_BYTES, PACK_MAX_BYTES, PACK_TARGET_BYTES } from "./document.ts";
import { hashRanges } from "./seal_jobs.ts";

/**
 * Packs between two full garbage collections of the thread that seals them (64 MiB of plaintext): sealing leaves
 * cipher and hash contexts V8 does not count (see `sys/collect_garbage.ts`).
 */
export const GC_EVERY_PACKS = 8;
/**
 * The same when a worker seals them: this thread then only fills packs, and a collection here (about 14 ms, twice
 * over) every 8 packs cost a first push about half a second.
 */
const GC_EVERY_PACKS_SEALED_ELSEWHERE = 32;
/**
 * When a worker seals, this thread hashes the blocks of every other compressed pack itself: zstd makes the worker the
 * slower of the two (on the small-row store it was busy 3.45 s of a 4.1 s first push, this thread 2.2 s).
 */
const HASH_HERE_EVERY_ZSTD_PACKS = 2;

/** The file a block comes from: its path, the block size it is cut at, and its size. */
export interface TaggedFile {
  path: string;
  block: number;
  size: number;
}

/**
 * What a block placed in a pack is, so a journal can tell the next push where it went. `hash` (32 bytes) is set from
 * the pack's plaintext once the pack is sealed, before the pack is reported stored.
 */
export interface BlockTag {
  file: TaggedFile;
  index: number;
  hash: Uint8Array;
}

/** Where a block went: the pack's slot number (its id is known once sealed) and the offset in its plaintext. */
export interface Placement {
  slot: number;
  offset: number;
}

/** Options of {@linkcode PackWriter}. */
export interface PackWriterOptions {
  /** Uploads in flight at most (default 2). */
  parallel?: number;
  /** Plaintext bytes a pack is filled to (default 8 MiB). */
  targetBytes?: number;
  /** Called once a pack is stored, with its slot and what it holds (for the journal). */
  onStored?: (slot: number, pack: PackInfo, tags: BlockTag[], offsets: number[]) => void;
  /** Seals packs elsewhere (a worker); inline when absent. */
  sealer?: PackSealing["sealer"];
}

interface OpenPack {
  slot: number;
  buffer: Uint8Array;
  used: number;
  tags: BlockTag[];
  offsets: number[];
}

/** Packs blocks and uploads them through the boundary. */
export class PackWriter {
  /** The stored pack of each slot, once its upload finished. */
  readonly stored: (PackInfo | null)[] = [];
  /** Plaintext bytes placed in packs so far. */
  plaintextBytes = 0;
  private readonly open: Record<Compression, OpenPack | null> = { zstd: null, none: null };
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | null = null;
  /**
   * A pack buffer given back once sealed, and buffers sealed into given back once written: reused, so that memory is
   * the open packs and one sealed pack per upload in flight whatever the snapshot's size.
   */
  private readonly free: Uint8Array[] = [];
  private readonly outs: Uint8Array[] = [];
  private readonly parallel: number;
  private readonly target: number;
  private yielded = performance.now();
  private zstdPacks = 0;

  /** A writer storing packs through `io`. */
  constructor(private readonly io: Boundary, private readonly options: PackWriterOptions = {}) {
    this.parallel = Math.max(1, options.parallel ?? 2);
    this.target = Math.min(options.targetBytes ?? PACK_TARGET_BYTES, PACK_TARGET_BYTES);
  }

  /** Copy `bytes` into the open pack of its class (closing it first when it would overflow); where it went. */
  add(bytes: Uint8Array, compression: Compression, tag: BlockTag): Placement {
    let pack = this.open[compression];
    if (pack && pack.used + bytes.length > this.target) {
      this.close(compression);
      pack = null;
    }
    if (!pack) {
      const buffer = this.free.pop() ?? new Uint8Array(PACK_MAX_BYTES);
      pack = { slot: this.stored.length, buffer, used: 0, tags: [], offsets: [] };
      this.stored.push(null);
      this.open[compression] = pack;
    }
    const offset = pack.used;
    pack.buffer.set(bytes, offset);
    pack.used += bytes.length;
    pack.tags.push(tag);
    pack.offsets.push(offset);
    this.plaintextBytes += bytes.length;
    return { slot: pack.slot, offset };
  }

  /**
   * Wait until fewer uploads than the bound are in flight; rethrows the first upload's failure once the other uploads
   * have ended (so that none is cut off half-written when the process exits on the error).
   */
  async drain(limit = this.parallel - 1): Promise<void> {
    await this.yieldNow();
    while (this.inFlight.size > limit && !this.failure) await Promise.race(this.inFlight);
    if (this.failure) {
      await Promise.all(this.inFlight); // uploads never reject: each records its failure instead
      throw this.failure.error;
    }
  }

  /**
   * Let the event loop run every 50 ms at least: reading is synchronous, and a signal (Ctrl-C) or a timer is only
   * handled when the loop runs.
   */
  private async yieldNow(): Promise<void> {
    if (performance.now() - this.yielded < 50) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.yielded = performance.now();
  }

  /** Wait for every upload in flight to end, however it ends (after a push stopped: none is cut off half-written). */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight); // uploads never reject: each records its failure instead
  }

  /** Close the open packs and wait for every upload; returns the stored pack of every slot. */
  async finish(): Promise<PackInfo[]> {
    this.close("zstd");
    await this.drain(); // still at most the bound in flight
    this.close("none");
    await this.drain(0);
    return this.stored.map((pack, slot) => {
      if (!pack) throw new Error(`pack slot ${slot} was never stored`);
      return pack;
    });
  }

  private close(compression: Compression): void {
    const pack = this.open[compression];
    this.open[compression] = null;
    if (!pack || pack.used === 0) return;
    const every = this.options.sealer ? GC_EVERY_PACKS_SEALED_ELSEWHERE : GC_EVERY_PACKS;
    if (pack.slot % every === every - 1) collectGarbage();
    const keep = (into: Uint8Array[], size: number, most: number) => (buffer: Uint8Array) => {
      if (buffer.buffer.byteLength === size && into.length < most) into.push(new Uint8Array(buffer.buffer));
    };
    const ranges = blockRanges(pack);
    const here = this.options.sealer && compression === "zstd" &&
        this.zstdPacks++ % HASH_HERE_EVERY_ZSTD_PACKS === 0
      ? hashRanges(pack.buffer.subarray(0, pack.used), ranges)
      : null;
    const upload = this.io.putPack(pack.buffer.subarray(0, pack.used), compression, {
      out: this.outs.pop() ?? new Uint8Array(PACK_BUFFER_BYTES),
      recycle: keep(this.free, PACK_MAX_BYTES, 1),
      release: keep(this.outs, PACK_BUFFER_BYTES, this.parallel),
      sealer: this.options.sealer,
      ranges: here ? new Uint32Array(0) : ranges,
    }).then((sealed) => {
      const [info, hashes] = [sealed.info, here ?? sealed.hashes];
      pack.tags.forEach((tag, at) => tag.hash.set(hashes.subarray(at * 32, at * 32 + 32)));
      this.stored[pack.slot] = info;
      this.options.onStored?.(pack.slot, info, pack.tags, pack.offsets);
    }).catch((error) => {
      this.failure ??= { error };
    });
    const tracked = upload.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }
}

/** The ranges of a pack's plaintext to hash while sealing: each block, `[offset, length]` flat. */
function blockRanges(pack: OpenPack): Uint32Array {
  const { offsets, used } = pack;
  const ranges = new Uint32Array(offsets.length * 2);
  offsets.forEach((offset, at) => {
    ranges[at * 2] = offset;
    ranges[at * 2 + 1] = (at + 1 < offsets.length ? offsets[at + 1] : used) - offset;
  });
  return ranges;
}
