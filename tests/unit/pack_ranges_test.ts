/**
 * The ranges verify gathers per pack: distinct ranges in pack order, a range recorded by many snapshots held once, and
 * two hashes recorded for one range both kept (verify reports it).
 */
import assert from "node:assert/strict";
import { PackRanges } from "../../src/repo/pack_ranges.ts";

const hashA = "a".repeat(64);
const hashB = "0123456789abcdef".repeat(4);

Deno.test("ranges come out sorted, each once, however often they were added", () => {
  const ranges = new PackRanges("zstd");
  for (let round = 0; round < 50; round++) { // past several compactions and growths
    for (let at = 9; at >= 0; at--) ranges.add(at * 4096, 4096, hashA);
    ranges.add(1 << 23, 65536, hashB);
  }
  const found = ranges.ranges();
  assert.equal(found.length, 11);
  assert.deepEqual(found[0], { offset: 0, length: 4096, hashes: [hashA] });
  assert.deepEqual(found.at(-1), { offset: 1 << 23, length: 65536, hashes: [hashB] });
  assert.deepEqual(found.map((range) => range.offset), [...found.map((range) => range.offset)].sort((a, b) => a - b));
  assert.equal(ranges.compression, "zstd");
});

Deno.test("one range with two hashes keeps both, and the same offset with another length is another range", () => {
  const ranges = new PackRanges("none");
  ranges.add(100, 10, hashB);
  ranges.add(100, 10, hashA);
  ranges.add(100, 10, hashB);
  ranges.add(100, 11, hashA);
  assert.deepEqual(ranges.ranges(), [
    { offset: 100, length: 10, hashes: [hashB, hashA] },
    { offset: 100, length: 11, hashes: [hashA] },
  ]);
});

Deno.test("thousands of distinct ranges are all kept", () => {
  const ranges = new PackRanges("zstd");
  for (let at = 0; at < 5000; at++) ranges.add(at * 512, 512, at.toString(16).padStart(64, "0"));
  ranges.trim();
  ranges.add(0, 512, "f".repeat(64)); // grows again after a trim
  const found = ranges.ranges();
  assert.equal(found.length, 5000);
  assert.deepEqual(found[0].hashes, ["0".repeat(64), "f".repeat(64)]);
  assert.equal(found[4321].hashes[0], (4321).toString(16).padStart(64, "0"));
});
