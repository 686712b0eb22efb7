import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileLines } from "../../src/fs/lines.ts";
import { MapFile, type MapRegion, readWindow, Spool, writeBlocks } from "../../src/repo/block_maps.ts";
import { extentsOf, toExtentTable } from "../../src/repo/extent_table.ts";
import { loadJournals, loadPushCache, PushJournal, savePushCache } from "../../src/repo/push_cache.ts";
import { fileByPath, StateFolder } from "../../src/fs/state_folder.ts";
import { tempDir } from "../_helpers.ts";
import { killAfter } from "../_faults.ts";

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

Deno.test("fileLines: a 3 GiB line of zeros (a journal padded by hand) is skipped in a process that stays under 80 MiB", () => {
  using dir = tempDir();
  const path = join(dir.path, "padded");
  Deno.writeTextFileSync(path, "first\n");
  Deno.truncateSync(path, 3 * 2 ** 30); // sparse: no disk taken
  // a process of its own, whose peak (VmHWM) is this reading's alone
  const script = `import { fileLines } from ${JSON.stringify(new URL("../../src/fs/lines.ts", import.meta.url).href)};
    const lines = [...fileLines(Deno.args[0], 1 << 20)];
    console.log(JSON.stringify({ lines, peak: Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\\s+(\\d+)/)[1] }));`;
  const run = new Deno.Command(Deno.execPath(), { args: ["eval", script, path], stderr: "inherit" }).outputSync();
  assert.ok(run.success);
  const { lines, peak } = JSON.parse(new TextDecoder().decode(run.stdout));
  assert.deepEqual(lines, ["first"]);
  assert.ok(Number(peak) < 80 * 1024, `peak ${Math.round(Number(peak) / 1024)} MiB`);
});

Deno.test("fileLines: a FIFO (a journal swapped for one after its folder was read) is refused at once, never waited on", async () => {
  using dir = tempDir();
  const fifo = join(dir.path, "journal");
  assert.ok(new Deno.Command("mkfifo", { args: [fifo] }).outputSync().success);
  // a process of its own, killed if the open waits for a writer that never comes
  const script = `import { fileLines } from ${JSON.stringify(new URL("../../src/fs/lines.ts", import.meta.url).href)};
    try { console.log([...fileLines(Deno.args[0], 100)].length); } catch (error) { console.log(error.name); }`;
  const child = new Deno.Command(Deno.execPath(), { args: ["eval", script, fifo], stdout: "piped" }).spawn();
  const output = child.output();
  const code = await killAfter(child, 60_000);
  assert.notEqual(code, null, "it waited on the FIFO and was killed");
  assert.equal(new TextDecoder().decode((await output).stdout).trim(), "NotRegularFileError");
});

/** A map of `count` blocks cut at 4096 in `spool`: hashes `at % 251`, pack indexes and offsets as given (then 0). */
function mapIn(spool: Spool, count: number, packs: number[], offsets: number[]): MapRegion {
  const region = spool.region(count, 4096);
  const hashes = new Uint8Array(count * 32).map((_, at) => at % 251);
  const packTable = new Int32Array(count);
  packTable.set(packs);
  const offsetTable = new Uint32Array(count);
  offsetTable.set(offsets);
  writeBlocks(region, 0, { hashes, packs: packTable, offsets: offsetTable });
  return region;
}

function arrays(region: MapRegion) {
  const { hashes, packs, offsets } = readWindow(region, 0, region.count);
  return { hashes, packs: [...packs], offsets: [...offsets] };
}

/** Run `body` (a module's text, with `loadJournals`, `loadPushCache`, `MapFile` and `Spool` in scope) in a process of
 * its own; what it prints, and its peak memory (VmHWM) in KiB. */
function runMeasured(body: string, ...args: string[]): { printed: string; peakKiB: number } {
  const module = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const script = `import { loadJournals, loadPushCache } from ${module("../../src/repo/push_cache.ts")};
    import { MapFile, Spool } from ${module("../../src/repo/block_maps.ts")};
    ${body}
    console.log(Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\\s+(\\d+)/)[1]);`;
  const run = new Deno.Command(Deno.execPath(), { args: ["eval", script, ...args], stderr: "inherit" }).outputSync();
  assert.ok(run.success);
  const lines = new TextDecoder().decode(run.stdout).trim().split("\n");
  return { printed: lines.slice(0, -1).join("\n"), peakKiB: Number(lines.at(-1)) };
}

Deno.test("push cache and journal made costly to parse (a header of 20 MiB, a line of 8 MiB, of {},): unusable, under 150 MiB", () => {
  using dir = tempDir();
  const cache = join(dir.path, "push-cache");
  const header = Buffer.from(`{"repository_id":"${REPO}","x":[${"{},".repeat((20 << 20) / 3)}{}],"files":[]}`);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length);
  Deno.writeFileSync(cache, Buffer.concat([Buffer.from("ATOCORE-PUSH-CACHE 2\n"), length, header, Buffer.alloc(32)]));
  const loaded = runMeasured("console.log(loadPushCache(Deno.args[0], Deno.args[1]));", cache, REPO);
  assert.equal(loaded.printed, "unusable");
  assert.ok(loaded.peakKiB < 150 * 1024, `cache: peak ${Math.round(loaded.peakKiB / 1024)} MiB`);

  const journals = join(dir.path, "journal");
  Deno.mkdirSync(journals);
  const json = `{"repository_id":"${REPO}","x":[${"{},".repeat(((8 << 20) - 200) / 3)}{}]}`;
  Deno.writeTextFileSync(join(journals, "p1"), `${json} ${createHash("sha256").update(json).digest("hex")}\n`);
  const read = runMeasured(
    `using spool = MapFile.spool(Deno.args[1]);
    console.log(loadJournals(Deno.args[0], Deno.args[2], new Spool(spool)).packs.length);`,
    journals,
    join(dir.path, "spool"),
    REPO,
  );
  assert.equal(read.printed, "0");
  assert.ok(read.peakKiB < 150 * 1024, `journal: peak ${Math.round(read.peakKiB / 1024)} MiB`);
});

Deno.test("push cache file: saved and loaded part by part; cut short, padded, flipped or lying about a length, no cache", () => {
  using dir = tempDir();
  using spoolFile = MapFile.spool(join(dir.path, "spool"));
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "the spool is removed as soon as it is open");
  const spool = new Spool(spoolFile);
  const path = join(dir.path, "push-cache");
  const count = 3 * 4096 + 5; // blocks: more than one window
  const map = mapIn(spool, count, [0, 0, 1, 1], [0, 4096, 0, 4096]);
  const extents = toExtentTable([[0, 0, 0, 8192, ID], [2 ** 33, 1, 0, 4101, "0f".repeat(32)]]); // offsets past 4 GiB
  const file = { path: "db/a.db", size: count * 4096, sha256: ID, block: 4096, extents, map };
  const packs = [{ id: ID, size: 9, compression: "zstd" as const }, {
    id: "cd".repeat(32),
    size: 8,
    compression: "none" as const,
  }];
  const shifted = { ...map, packOf: (pack: number) => pack + 5 }; // saved as the reader sees it
  const cache = { repositoryId: REPO, packs, files: [file, { ...file, path: "db/b.db", map: shifted }] };
  savePushCache(fileByPath(path), cache);
  const bytes = Deno.readFileSync(path);
  const back = loadPushCache(path, REPO);
  assert.ok(back !== null && back !== "unusable");
  using _ = back.file;
  assert.deepEqual(back.files.map((entry) => entry.path), ["db/a.db", "db/b.db"]);
  assert.deepEqual(arrays(back.files[0].map), arrays(map));
  assert.deepEqual(arrays(back.files[1].map).packs.slice(0, 5), [5, 5, 6, 6, 5]);
  assert.deepEqual(extentsOf(back.files[1].extents, 0, Infinity), extentsOf(extents, 0, Infinity));
  assert.deepEqual(back.packs, packs);
  assert.equal(loadPushCache(path, "e".repeat(32)), "unusable");
  assert.equal(loadPushCache(join(dir.path, "missing"), REPO), null, "none: not a damaged one");
  const flipped = (at: number) => bytes.map((byte, index) => index === at ? byte ^ 1 : byte);
  for (const at of [0, 30, 200_000, bytes.length - 40, bytes.length - 1]) {
    Deno.writeFileSync(path, flipped(at));
    assert.equal(loadPushCache(path, REPO), "unusable", `flip at ${at}`);
  }
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

Deno.test("push cache file: one of format 1 (extents in its JSON header) is still read", () => {
  using dir = tempDir();
  const path = join(dir.path, "push-cache");
  const hashes = new Uint8Array(64).fill(3);
  const extents = [[0, 0, 0, 8192, ID]];
  const packs = [{ id: ID, size: 123, compression: "none" }];
  const header = new TextEncoder().encode(JSON.stringify({
    repository_id: REPO,
    packs,
    files: [{ path: "db/a.db", size: 8192, sha256: ID, block: 4096, extents }],
  }));
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, header.length, true);
  const body = Buffer.concat([
    new TextEncoder().encode("ATOCORE-PUSH-CACHE 1\n"),
    length,
    header,
    hashes,
    new Uint8Array(new Int32Array([0, 0]).buffer),
    new Uint8Array(new Uint32Array([0, 4096]).buffer),
  ]);
  Deno.writeFileSync(path, Buffer.concat([body, createHash("sha256").update(body).digest()]));
  const back = loadPushCache(path, REPO);
  assert.ok(back !== null && back !== "unusable");
  using _ = back.file;
  assert.deepEqual(extentsOf(back.files[0].extents, 0, Infinity), extents);
  assert.deepEqual(arrays(back.files[0].map), { hashes, packs: [0, 0], offsets: [0, 4096] });
  assert.deepEqual(back.packs, packs);
});

Deno.test("push journal: read line by line; a torn, foreign or oversized line is skipped, the others count", () => {
  using dir = tempDir();
  const journalDir = join(dir.path, "journal");
  const file = { path: "db/a.db", block: 4096, size: 8192 };
  const hash = new Uint8Array(32).fill(9);
  Deno.mkdirSync(journalDir);
  using folder = StateFolder.open(journalDir);
  using p1 = new PushJournal(() => folder, "p1", REPO);
  p1.record({ id: ID, size: 10, compression: "zstd" }, [
    { file, index: 1, hash },
  ], [4096]);
  Deno.writeTextFileSync(join(journalDir, "p1"), `${"x".repeat(9 << 20)}\n`, { append: true });
  new PushJournal(() => folder, "p2", "e".repeat(32)).record(
    { id: "cd".repeat(32), size: 5, compression: "none" },
    [
      { file, index: 0, hash },
    ],
    [0],
  );
  p1.record({ id: "ef".repeat(32), size: 11, compression: "none" }, [
    { file, index: 0, hash },
  ], [512]);
  Deno.writeTextFileSync(join(journalDir, "p1"), `{"torn`, { append: true });
  using spool = MapFile.spool(join(dir.path, "spool"));
  const content = loadJournals(journalDir, REPO, new Spool(spool));
  assert.deepEqual(content.packs.map((pack) => pack.id), [ID, "ef".repeat(32)]);
  const map = content.maps.get("db/a.db")!;
  assert.deepEqual(arrays(map), { hashes: new Uint8Array(64).fill(9), packs: [2, 1], offsets: [512, 4096] }, "+1");
});
