import assert from "node:assert/strict";
import { join } from "node:path";
import { fileLines } from "../../src/fs/lines.ts";
import { toExtentTable } from "../../src/repo/extent_table.ts";
import {
  emptyBlockMap,
  encodePushCache,
  loadJournals,
  loadPushCache,
  PushJournal,
  savePushCache,
} from "../../src/repo/push_cache.ts";
import { tempDir } from "../_helpers.ts";

const REPO = "d".repeat(32);
const ID = "ab".repeat(32);

Deno.test("fileLines: lines across chunk edges, multibyte text, no final newline; a line over the bound is skipped", () => {
  using dir = tempDir();
  const path = join(dir.path, "lines");
  const lines = ["", "one", "été ünï 字", "x".repeat(40), "", "tail"];
  Deno.writeTextFileSync(path, lines.join("\n"));
  for (const chunk of [1, 2, 3, 7, 64, 1 << 20]) {
    assert.deepEqual([...fileLines(path, 1000, chunk)], lines, `chunk ${chunk}`);
    assert.deepEqual([...fileLines(path, 39, chunk)], lines.filter((line) => line.length <= 39), `chunk ${chunk}`);
  }
  Deno.writeTextFileSync(path, "a\nb\n");
  assert.deepEqual([...fileLines(path, 10, 3)], ["a", "b"]);
});

Deno.test("push cache file: saved and loaded part by part; cut short, padded or lying about a length, no cache", () => {
  using dir = tempDir();
  const path = join(dir.path, "push-cache");
  const map = emptyBlockMap(4096, 3 * 4096 + 5);
  map.hashes.forEach((_, at) => map.hashes[at] = at % 251);
  map.packs.set([0, 0, 1, 1]);
  map.offsets.set([0, 4096, 0, 4096]);
  const extents = toExtentTable([[0, 0, 0, 8192, ID], [8192, 1, 0, 4101, "0f".repeat(32)]]);
  const file = { path: "db/a.db", size: 3 * 4096 + 5, sha256: ID, block: 4096, extents, map };
  const packs = [{ id: ID, size: 9, compression: "zstd" as const }, {
    id: "cd".repeat(32),
    size: 8,
    compression: "none" as const,
  }];
  const cache = { repositoryId: REPO, packs, files: [file, { ...file, path: "db/b.db" }] };
  savePushCache(path, cache);
  const bytes = Deno.readFileSync(path);
  assert.deepEqual(bytes, new Uint8Array(encodePushCache(cache)));
  const back = loadPushCache(path, REPO);
  assert.ok(back !== null && back !== "unusable");
  assert.deepEqual(back.files.map((entry) => entry.path), ["db/a.db", "db/b.db"]);
  assert.deepEqual(back.files[1].map, map);
  assert.deepEqual(back.files[1].extents, extents);
  assert.deepEqual(back.packs, packs);
  assert.equal(loadPushCache(path, "e".repeat(32)), "unusable");
  assert.equal(loadPushCache(join(dir.path, "missing"), REPO), null, "none: not a damaged one");
  for (const damaged of [bytes.subarray(0, bytes.length - 1), new Uint8Array([...bytes, 0]), bytes.subarray(0, 30)]) {
    Deno.writeFileSync(path, damaged);
    assert.equal(loadPushCache(path, REPO), "unusable", `${damaged.length} bytes`);
  }
  const huge = bytes.slice();
  new DataView(huge.buffer).setUint32(21, 0xfffffff0, true); // the header's length, after the magic line
  Deno.writeFileSync(path, huge);
  assert.equal(loadPushCache(path, REPO), "unusable");
  Deno.removeSync(path);
  Deno.mkdirSync(path);
  assert.equal(loadPushCache(path, REPO), "unusable", "a folder");
});

Deno.test("push journal: read line by line; a torn, foreign or oversized line is skipped, the others count", () => {
  using dir = tempDir();
  const journalDir = join(dir.path, "journal");
  const file = { path: "db/a.db", block: 4096, size: 8192 };
  const hash = new Uint8Array(32).fill(9);
  new PushJournal(join(journalDir, "p1"), REPO).record({ id: ID, size: 10, compression: "zstd" }, [
    { file, index: 1, hash },
  ], [4096]);
  Deno.writeTextFileSync(join(journalDir, "p1"), `${"x".repeat(9 << 20)}\n`, { append: true });
  new PushJournal(join(journalDir, "p2"), "e".repeat(32)).record(
    { id: "cd".repeat(32), size: 5, compression: "none" },
    [
      { file, index: 0, hash },
    ],
    [0],
  );
  new PushJournal(join(journalDir, "p1"), REPO).record({ id: "ef".repeat(32), size: 11, compression: "none" }, [
    { file, index: 0, hash },
  ], [512]);
  Deno.writeTextFileSync(join(journalDir, "p1"), `{"torn`, { append: true });
  const content = loadJournals(journalDir, REPO);
  assert.deepEqual(content.packs.map((pack) => pack.id), [ID, "ef".repeat(32)]);
  const map = content.maps.get("db/a.db")!;
  assert.deepEqual([...map.packs], [1, 0]);
  assert.deepEqual([...map.offsets], [512, 4096]);
  assert.deepEqual(map.hashes, new Uint8Array(64).fill(9));
});
