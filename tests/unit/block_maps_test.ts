import assert from "node:assert/strict";
import { join } from "node:path";
import { MapBuilder, MapFile, MapReader, readWindow, Spool, WINDOW_BLOCKS } from "../../src/repo/block_maps.ts";
import { tempDir } from "../_helpers.ts";

Deno.test("block maps: a window is written once every block is placed and hashed, in any order; a hole is a bug", () => {
  using dir = tempDir();
  using file = MapFile.spool(join(dir.path, "spool"));
  const spool = new Spool(file);
  const count = 2 * WINDOW_BLOCKS + 3;
  const before = spool.region(1, 4096); // room of its own: the map after it must not overwrite it
  const builder = new MapBuilder(spool, count, 4096);
  const late: number[] = [];
  for (let index = 0; index < count; index++) {
    const pending = index % 3 === 0; // given to a pack: its hash comes when the pack is sealed
    if (!pending) builder.hashView(index).fill(index % 256);
    builder.place(index, pending ? -1 - index : 7, index * 10, pending);
    if (pending) late.push(index);
  }
  assert.throws(() => builder.finish(), /left unfinished/, "hashes still to come");
  for (const index of late.reverse()) { // packs sealed out of order
    const hash = builder.hashView(index).fill(index % 256);
    builder.hashed(index, hash);
  }
  const region = builder.finish();
  assert.equal(region.at, 40, "after the first map's 40 bytes");
  const all = readWindow(region, 0, count);
  for (const index of [0, 1, 3, WINDOW_BLOCKS, count - 1]) {
    assert.ok(all.hashes.subarray(index * 32, index * 32 + 32).every((byte) => byte === index % 256), `${index}`);
    assert.equal(all.packs[index], index % 3 === 0 ? -1 - index : 7);
    assert.equal(all.offsets[index], index * 10);
  }
  assert.deepEqual(readWindow(before, 0, 1).packs, new Int32Array(1), "untouched");
  const reader = new MapReader({ ...region, packOf: (pack) => pack < 0 ? -1 : pack });
  assert.equal(reader.at(count - 1).from, 2 * WINDOW_BLOCKS);
  assert.equal(reader.at(count - 1).packs[2], 7);
  assert.equal(reader.at(3).packs[3], -1);
});

Deno.test("block maps: sparse blocks still waiting for their packs keep few windows open; their hashes land late", () => {
  using dir = tempDir();
  using file = MapFile.spool(join(dir.path, "spool"));
  const windows = 20;
  const count = windows * WINDOW_BLOCKS;
  const builder = new MapBuilder(new Spool(file), count, 4096);
  const waiting: [number, Uint8Array][] = [];
  for (let index = 0; index < count; index++) {
    const view = builder.hashView(index);
    const pending = index % WINDOW_BLOCKS === 7; // one block a window in a pack that stays open to the end
    if (!pending) view.fill(1);
    builder.place(index, pending ? -1 : 3, index, pending);
    if (pending) waiting.push([index, view]);
    assert.ok((builder as unknown as { open: Map<number, unknown> }).open.size <= 9, `${index}: windows held`);
  }
  assert.throws(() => builder.finish(), /left unfinished/);
  for (const [index, view] of waiting) {
    view.fill(0xee); // the pack is sealed: its hash is set in the view given when placed
    builder.hashed(index, view);
  }
  const all = readWindow(builder.finish(), 0, count);
  for (const [index] of waiting) {
    assert.ok(all.hashes.subarray(index * 32, index * 32 + 32).every((byte) => byte === 0xee), `${index}`);
    assert.equal(all.packs[index], -1);
  }
  assert.ok(all.hashes.subarray(0, 32).every((byte) => byte === 1));
});
