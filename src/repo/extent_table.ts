/**
 * A file's extents held as typed arrays, 52 bytes an extent instead of a small JS array and a 64-character hex string
 * (about 170 bytes): the push cache keeps a store's whole history of split extents between pushes.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { hexHashInto } from "./blocks.ts";

/** `[fileOffset, packIndex, packOffset, length, sha256 of those bytes]`: an extent as a document's JSON holds it. */
export type Extent = [number, number, number, number, string];

/** Extents in order: file offset, pack index, pack offset, length, and the SHA-256 of those bytes (32 bytes each). */
export interface ExtentTable {
  at: Float64Array<ArrayBuffer>;
  packs: Int32Array<ArrayBuffer>;
  offsets: Uint32Array<ArrayBuffer>;
  lengths: Uint32Array<ArrayBuffer>;
  hashes: Uint8Array<ArrayBuffer>;
}

/** Whether `value` is a table (as the document reader makes them), not a value of JSON. */
export function isExtentTable(value: unknown): value is ExtentTable {
  return (value as Partial<ExtentTable> | null)?.at instanceof Float64Array;
}

/** An empty table with room for `count` extents. */
export function emptyExtentTable(count: number): ExtentTable {
  return {
    at: new Float64Array(count),
    packs: new Int32Array(count),
    offsets: new Uint32Array(count),
    lengths: new Uint32Array(count),
    hashes: new Uint8Array(count * 32),
  };
}

/** The table of `extents` (their hashes are 64 lowercase hex, as documents and pushes make them). */
export function toExtentTable(extents: readonly Extent[]): ExtentTable {
  const table = emptyExtentTable(extents.length);
  extents.forEach(([at, pack, offset, length, hash], index) => {
    table.at[index] = at;
    table.packs[index] = pack;
    table.offsets[index] = offset;
    table.lengths[index] = length;
    hexHashInto(hash, table.hashes, index * 32);
  });
  return table;
}

/** The table's arrays as bytes, in the order {@linkcode extentTableFrom} takes them back. */
export function extentTableBytes(table: ExtentTable): Uint8Array[] {
  return [table.at, table.packs, table.offsets, table.lengths, table.hashes].map((array) =>
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength)
  );
}

/** A table of `count` extents read back with `take(bytes)`, which returns a fresh buffer of the next bytes. */
export function extentTableFrom(count: number, take: (bytes: number) => ArrayBuffer): ExtentTable {
  return {
    at: new Float64Array(take(count * 8)),
    packs: new Int32Array(take(count * 4)),
    offsets: new Uint32Array(take(count * 4)),
    lengths: new Uint32Array(take(count * 4)),
    hashes: new Uint8Array(take(count * 32)),
  };
}

/** The extents `start` to `end` (exclusive) of `table` as a document writes them. */
export function extentsOf(table: ExtentTable, start: number, end: number): Extent[] {
  const out: Extent[] = [];
  for (let index = start; index < Math.min(end, table.at.length); index++) {
    const hash = Buffer.from(table.hashes.buffer, table.hashes.byteOffset + index * 32, 32).toString("hex");
    out.push([table.at[index], table.packs[index], table.offsets[index], table.lengths[index], hash]);
  }
  return out;
}

/** A table filled one extent at a time, doubling its arrays as it grows. */
export class ExtentTableBuilder {
  private table: ExtentTable;
  private count = 0;

  /** A table with room for `expected` extents before it first grows. */
  constructor(expected = 64) {
    this.table = emptyExtentTable(Math.max(1, expected));
  }

  /** Append an extent; `hash` is its 32-byte SHA-256, or its 64 lowercase hex digits (a document's). */
  push(at: number, pack: number, offset: number, length: number, hash: Uint8Array | string): void {
    if (this.count === this.table.at.length) this.table = grown(this.table, this.count * 2);
    const { count, table } = this;
    [table.at[count], table.packs[count], table.offsets[count], table.lengths[count]] = [at, pack, offset, length];
    if (typeof hash === "string") hexHashInto(hash, table.hashes, count * 32);
    else table.hashes.set(hash, count * 32);
    this.count += 1;
  }

  /** How many extents were pushed. */
  get length(): number {
    return this.count;
  }

  /** The extents pushed so far (views of the arrays, which are not written again). */
  finish(): ExtentTable {
    const { table, count } = this;
    return {
      at: table.at.subarray(0, count),
      packs: table.packs.subarray(0, count),
      offsets: table.offsets.subarray(0, count),
      lengths: table.lengths.subarray(0, count),
      hashes: table.hashes.subarray(0, count * 32),
    };
  }
}

function grown(table: ExtentTable, count: number): ExtentTable {
  const bigger = emptyExtentTable(count);
  bigger.at.set(table.at);
  bigger.packs.set(table.packs);
  bigger.offsets.set(table.offsets);
  bigger.lengths.set(table.lengths);
  bigger.hashes.set(table.hashes);
  return bigger;
}
