/**
 * The ranges every snapshot takes from one pack, with the hashes they record and how (`extent_hash.ts`), held as typed
 * arrays (44 bytes an extent) and deduplicated as they grow: verify gathers them over all of a repository's history.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Compression } from "./boundary.ts";

/** Offsets and lengths are below 2^24 (a pack's plaintext is at most `PACK_MAX_BYTES`): one exact number as a key. */
const LENGTH_SPAN = 2 ** 24;

/**
 * A pack's distinct ranges, compact: range `r` is `[offset, length, unit]` at `triples[3r, 3r + 3)` (unit 0: hashed
 * whole), and the distinct hashes recorded for it are entries `[first[r], first[r + 1])` of `hashes` (32 bytes each).
 */
export interface DistinctRanges {
  triples: Uint32Array;
  first: Uint32Array;
  hashes: Uint8Array;
}

/** The extents taken from one pack: appended document by document, sorted and deduplicated when they double. */
export class PackRanges {
  private count = 0;
  private compacted = 0;
  private offsets = new Uint32Array(64);
  private lengths = new Uint32Array(64);
  private units = new Uint32Array(64);
  private hashes = new Uint8Array(64 * 32);

  /** Ranges of a pack recorded with `compression`. */
  constructor(readonly compression: Compression) {}

  /** Record that a snapshot takes `length` bytes at `offset`, hashed by pieces of `unit`, to `hashes[at, at + 32)`. */
  add(offset: number, length: number, unit: number, hashes: Uint8Array, at: number): void {
    if (this.count === this.offsets.length) this.grow();
    this.offsets[this.count] = offset;
    this.lengths[this.count] = length;
    this.units[this.count] = unit;
    this.hashes.set(hashes.subarray(at, at + 32), this.count * 32);
    this.count += 1;
  }

  /** The bytes its arrays take (room to grow included). */
  get heldBytes(): number {
    return this.offsets.length * (4 + 4 + 4 + 32);
  }

  /**
   * The distinct ranges in pack order, each with its distinct hashes, as typed arrays: a forged document may record
   * hundreds of thousands in one pack, which as objects took a verify past 800 MiB.
   */
  distinct(): DistinctRanges {
    this.compact();
    const triples = new Uint32Array(this.count * 3);
    const first = new Uint32Array(this.count + 1);
    let kept = 0;
    for (let at = 0; at < this.count; at++) {
      const [offset, length, unit] = [this.offsets[at], this.lengths[at], this.units[at]];
      const previous = 3 * (kept - 1);
      if (
        kept > 0 && triples[previous] === offset && triples[previous + 1] === length && triples[previous + 2] === unit
      ) {
        continue;
      }
      [triples[3 * kept], triples[3 * kept + 1], triples[3 * kept + 2]] = [offset, length, unit];
      first[kept++] = at;
    }
    first[kept] = this.count;
    // the hashes as held: compact() replaces the arrays and add() writes past the count, so the view stays true
    return {
      triples: triples.slice(0, 3 * kept),
      first: first.slice(0, kept + 1),
      hashes: this.hashes.subarray(0, this.count * 32),
    };
  }

  /** Drop duplicates and the arrays' room to grow: once every document is read, only what is kept stays. */
  trim(): void {
    this.compact();
    this.offsets = this.offsets.slice(0, this.count);
    this.lengths = this.lengths.slice(0, this.count);
    this.units = this.units.slice(0, this.count);
    this.hashes = this.hashes.slice(0, this.count * 32);
  }

  /** Make room: first by dropping duplicates (a range kept by many snapshots is held once), else by doubling. */
  private grow(): void {
    if (this.count >= 2 * this.compacted) this.compact();
    if (this.count * 2 <= this.offsets.length) return;
    const size = this.offsets.length * 2;
    this.offsets = resized(this.offsets, size);
    this.lengths = resized(this.lengths, size);
    this.units = resized(this.units, size);
    const hashes = new Uint8Array(size * 32);
    hashes.set(this.hashes);
    this.hashes = hashes;
  }

  /** Sort by offset, length, unit and hash, and keep one of each. */
  private compact(): void {
    const keys = new Float64Array(this.count);
    for (let at = 0; at < this.count; at++) keys[at] = this.offsets[at] * LENGTH_SPAN + this.lengths[at];
    const order = new Uint32Array(this.count).map((_, at) => at);
    const hashOf = (at: number) => this.hashes.subarray(at * 32, at * 32 + 32);
    order.sort((a, b) => keys[a] - keys[b] || this.units[a] - this.units[b] || Buffer.compare(hashOf(a), hashOf(b)));
    const offsets = new Uint32Array(this.offsets.length);
    const lengths = new Uint32Array(this.offsets.length);
    const units = new Uint32Array(this.offsets.length);
    const hashes = new Uint8Array(this.hashes.length);
    let kept = 0;
    for (const at of order) {
      const previous = kept - 1;
      const same = kept > 0 && offsets[previous] === this.offsets[at] && lengths[previous] === this.lengths[at] &&
        units[previous] === this.units[at] &&
        Buffer.compare(hashes.subarray(previous * 32, kept * 32), hashOf(at)) === 0;
      if (same) continue;
      offsets[kept] = this.offsets[at];
      lengths[kept] = this.lengths[at];
      units[kept] = this.units[at];
      hashes.set(hashOf(at), kept * 32);
      kept += 1;
    }
    [this.offsets, this.lengths, this.units, this.hashes] = [offsets, lengths, units, hashes];
    [this.count, this.compacted] = [kept, kept];
  }
}

function resized(array: Uint32Array, size: number): Uint32Array<ArrayBuffer> {
  const out = new Uint32Array(size);
  out.set(array);
  return out;
}
