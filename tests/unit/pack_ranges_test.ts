/**
 * The ranges verify gathers per pack: distinct ranges in pack order, a range recorded by many snapshots held once, two
 * hashes recorded for one range both kept (verify reports it), and one range hashed two ways (by documents of two
 * formats) kept as two.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { PackRanges } from "../../src/repo/pack_ranges.ts";

const hashA = "a".repeat(64);
const hashB = "0123456789abcdef".repeat(4);

/** Add a range whose hash is given as hex, placed at a varying offset of a larger buffer as a document's table is. */
function add(ranges: PackRanges, offset: number, length: number, hash: string, unit = 0): void {
  const row = offset % 7;
  const hashes = new Uint8Array(32 * (row + 1));
  hashes.set(Buffer.from(hash, "hex"), row * 32);
  ranges.add(offset, length, unit, hashes, row * 32);
}

/** The distinct ranges of `ranges` as objects, each with its hashes as hex. */
function rangesOf(ranges: PackRanges) {
  const { triples, first, hashes } = ranges.distinct();
  return Array.from({ length: first.length - 1 }, (_, range) => ({
    offset: triples[3 * range],
    length: triples[3 * range + 1],
    unit: triples[3 * range + 2],
    hashes: Array.from(
      { length: first[range + 1] - first[range] },
      (_, entry) =>
        Buffer.from(hashes.subarray(32 * (first[range] + entry), 32 * (first[range] + entry + 1))).toString("hex"),
    ),
  }));
}

Deno.test("ranges come out sorted, each once, however often they were added", () => {
  const ranges = new PackRanges("zstd");
  for (let round = 0; round < 50; round++) { // past several compactions and growths
    for (let at = 9; at >= 0; at--) add(ranges, at * 4096, 4096, hashA);
    add(ranges, 1 << 23, 65536, hashB);
  }
  const found = rangesOf(ranges);
  assert.equal(found.length, 11);
  assert.deepEqual(found[0], { offset: 0, length: 4096, unit: 0, hashes: [hashA] });
  assert.deepEqual(found.at(-1), { offset: 1 << 23, length: 65536, unit: 0, hashes: [hashB] });
  assert.deepEqual(found.map((range) => range.offset), [...found.map((range) => range.offset)].sort((a, b) => a - b));
  assert.equal(ranges.compression, "zstd");
});

Deno.test("one range with two hashes keeps both, and the same offset with another length is another range", () => {
  const ranges = new PackRanges("none");
  add(ranges, 100, 10, hashB);
  add(ranges, 100, 10, hashA);
  add(ranges, 100, 10, hashB);
  add(ranges, 100, 11, hashA);
  assert.deepEqual(rangesOf(ranges), [
    { offset: 100, length: 10, unit: 0, hashes: [hashB, hashA] },
    { offset: 100, length: 11, unit: 0, hashes: [hashA] },
  ]);
});

Deno.test("one range hashed whole and by pieces is two ranges, each with its own hash", () => {
  const ranges = new PackRanges("zstd");
  for (let round = 0; round < 3; round++) {
    add(ranges, 8192, 16384, hashB, 4096);
    add(ranges, 8192, 16384, hashA);
  }
  assert.deepEqual(rangesOf(ranges), [
    { offset: 8192, length: 16384, unit: 0, hashes: [hashA] },
    { offset: 8192, length: 16384, unit: 4096, hashes: [hashB] },
  ]);
});

Deno.test("thousands of distinct ranges are all kept", () => {
  const ranges = new PackRanges("zstd");
  for (let at = 0; at < 5000; at++) add(ranges, at * 512, 512, at.toString(16).padStart(64, "0"));
  ranges.trim();
  add(ranges, 0, 512, "f".repeat(64)); // grows again after a trim
  const found = rangesOf(ranges);
  assert.equal(found.length, 5000);
  assert.deepEqual(found[0].hashes, ["0".repeat(64), "f".repeat(64)]);
  assert.equal(found[4321].hashes[0], (4321).toString(16).padStart(64, "0"));
});
