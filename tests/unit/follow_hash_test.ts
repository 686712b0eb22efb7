/**
 * Hashing a file behind its writer (`src/fs/follow_hash.ts`) and what the FFI driver
 * tells it (`src/sqlite/first_page.ts`): the ranges reported are final and the first
 * page is predicted right, or the file is hashed again.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { followFile } from "../../src/fs/follow_hash.ts";
import { readAt } from "../../src/fs/read_at.ts";
import { readFirstPage } from "../../src/sqlite/first_page.ts";
import { offersFollowedBackup } from "../../src/sqlite/followed_backup.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { growInWal, tempDir, tempStore } from "../_helpers.ts";

const PAGE = 4096;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Pages of distinct bytes: page `i` is filled with `i`. */
function pages(count: number): Uint8Array {
  const bytes = new Uint8Array(count * PAGE);
  for (let page = 0; page < count; page++) bytes.fill(page + 1, page * PAGE, (page + 1) * PAGE);
  return bytes;
}

/** Write `content` as SQLite's backup does: every page but the first in order, then the first. */
async function writeLikeBackup(path: string, content: Uint8Array, onStep: (bytes: number) => void): Promise<void> {
  using file = Deno.openSync(path, { write: true, create: true });
  for (let end = 8 * PAGE; end < content.length + 8 * PAGE; end += 8 * PAGE) {
    const start = Math.max(PAGE, end - 8 * PAGE);
    const stop = Math.min(end, content.length);
    file.seekSync(start, Deno.SeekMode.Start);
    file.writeSync(content.subarray(start, stop));
    onStep(stop);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  file.seekSync(0, Deno.SeekMode.Start);
  file.writeSync(content.subarray(0, PAGE));
}

Deno.test("a file followed while written front to back, first page last, gets its SHA-256", async () => {
  using dir = tempDir();
  const path = join(dir.path, "copy.db");
  const content = pages(300);
  using follower = followFile(path);
  await writeLikeBackup(path, content, (bytes) => follower.settled(content.subarray(0, PAGE), bytes));
  assert.deepEqual(await follower.finish(), { sha256: sha256(content), hashed: "behind" });
});

Deno.test("a wrong first page prediction is caught and the file hashed again", async () => {
  using dir = tempDir();
  const path = join(dir.path, "copy.db");
  const content = pages(100);
  const wrong = content.slice(0, PAGE);
  wrong[24] ^= 1;
  using follower = followFile(path);
  await writeLikeBackup(path, content, (bytes) => follower.settled(wrong, bytes));
  assert.deepEqual(await follower.finish(), { sha256: sha256(content), hashed: "again" });
});

Deno.test("a follower never told anything hashes the whole file when done", async () => {
  using dir = tempDir();
  const path = join(dir.path, "copy.db");
  const content = pages(20);
  Deno.writeFileSync(path, content);
  using follower = followFile(path);
  assert.deepEqual(await follower.finish(), { sha256: sha256(content), hashed: "after" });
});

Deno.test("ffi backup: reported ranges stay as written, and the predicted first page (from the WAL) is the copy's", async () => {
  using store = tempStore({ dbMiB: 12, chromaMiB: 0.01, segments: 1 });
  growInWal(store.db);
  using live = Deno.openSync(store.db);
  const mainFilePage = readAt(live, 0, PAGE);
  assert.notDeepEqual(
    readFirstPage(store.db),
    mainFilePage,
    "the live first page is in the WAL, newer than the file's",
  );
  using out = tempDir();
  const copy = join(out.path, "copy.db");
  const seen: { firstPage: Uint8Array; bytes: number; range: Uint8Array }[] = [];
  const driver = openDriver("ffi");
  assert.ok(offersFollowedBackup(driver), "the FFI driver offers a followed backup");
  await driver.backupFollowed(store.db, copy, (firstPage, bytes) => {
    using file = Deno.openSync(copy, { read: true });
    seen.push({ firstPage, bytes, range: readAt(file, firstPage.length, bytes - firstPage.length)! });
  });
  const final = Deno.readFileSync(copy);
  assert.ok(seen.length >= 2, `several steps were reported (${seen.length})`);
  assert.ok(seen.every((step, index) => index === 0 || step.bytes > seen[index - 1].bytes), "ranges grow");
  assert.ok(seen.at(-1)!.bytes < final.length, "the last step is not reported");
  for (const step of seen) {
    assert.deepEqual(step.firstPage, final.subarray(0, PAGE), "the first page is predicted");
    assert.ok(step.range.every((byte, index) => byte === final[PAGE + index]), `bytes up to ${step.bytes} stayed`);
  }
});
