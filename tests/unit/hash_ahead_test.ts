/**
 * `hashAhead`: files hashed on a worker give the same SHA-256 as on this thread; what is not a regular file (a link, a
 * FIFO, a folder, nothing) is left out, unopened, for the caller's own check to name; a validation uses it for a
 * snapshot past the threshold and still names a changed file.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256File } from "../../src/fs/hash.ts";
import { hashAhead } from "../../src/fs/hash_ahead.ts";
import { HASH_AHEAD_FROM_BYTES, validateSnapshot } from "../../src/ops/validate.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { createdStamp, storeEnv, tempDir, tempStore } from "../_helpers.ts";

Deno.test("hashAhead: regular files hashed as on this thread; a link, a FIFO, a folder and a missing path left out", async () => {
  using root = tempDir();
  const path = (name: string) => join(root.path, name);
  Deno.writeFileSync(path("big"), new Uint8Array(20 << 20).map((_, at) => (at * 2654435761) >>> 24));
  Deno.writeTextFileSync(path("small"), "rows");
  Deno.writeTextFileSync(path("empty"), "");
  Deno.symlinkSync(path("big"), path("link"));
  Deno.mkdirSync(path("folder"));
  const fifo = await new Deno.Command("mkfifo", { args: [path("fifo")] }).output();
  assert.equal(fifo.code, 0, "mkfifo");
  let reported = 0;
  const names = ["big", "small", "empty", "link", "fifo", "folder", "missing"];
  const sizes: Record<string, number> = { big: 20 << 20, small: 4 };
  using ahead = hashAhead(names.map((name) => ({ path: path(name), size: sizes[name] ?? 0 })), (bytes) => {
    reported += bytes;
  });
  const digests = await ahead.digests();
  assert.deepEqual([...digests.keys()].sort(), ["big", "empty", "small"].map(path).sort());
  for (const [file, digest] of digests) assert.equal(digest, sha256File(file), file);
  assert.equal(reported, (20 << 20) + 4, "progress counts every byte read");
});

Deno.test("hashAhead: a file of another size than the one given is left out unread, a sparse file of a TiB too", async () => {
  using root = tempDir();
  const path = (name: string) => join(root.path, name);
  Deno.writeTextFileSync(path("small"), "rows");
  Deno.writeTextFileSync(path("grown"), "rows and more");
  using sparse = Deno.openSync(path("sparse"), { write: true, create: true });
  sparse.truncateSync(2 ** 40); // read to its end, a TiB of zeros would keep the worker busy for many minutes
  let reported = 0;
  const files = [{ path: path("small"), size: 4 }, { path: path("grown"), size: 4 }, { path: path("sparse"), size: 4 }];
  using ahead = hashAhead(files, (bytes) => {
    reported += bytes;
  });
  const digests = await ahead.digests();
  assert.deepEqual([...digests.keys()], [path("small")]);
  assert.equal(reported, 4, "no byte of a file of another size is read");
});

Deno.test("validate: a snapshot past the hash-ahead threshold is hashed beside its integrity checks, a changed file named", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: (HASH_AHEAD_FROM_BYTES >> 20) + 8, segments: 2 });
  const stamp = await createdStamp(storeEnv(store));
  const driver = openDriver("auto");
  const intact = await validateSnapshot(store.backupDir, stamp, { driver });
  assert.equal(intact.valid, true, intact.errors.join("; "));
  assert.ok(intact.bytes_hashed >= HASH_AHEAD_FROM_BYTES, "the snapshot is past the threshold");
  const root = join(store.backupDir, "snapshots", stamp);
  const segment = [...Deno.readDirSync(join(root, "chroma"))].find((entry) => entry.isDirectory)!;
  const victim = join("chroma", segment.name, [...Deno.readDirSync(join(root, "chroma", segment.name))][0].name);
  using file = Deno.openSync(join(root, victim), { read: true, write: true });
  const byte = new Uint8Array(1);
  file.readSync(byte);
  file.seekSync(0, Deno.SeekMode.Start);
  file.writeSync(byte.map((value) => value ^ 0xff));
  const changed = await validateSnapshot(store.backupDir, stamp, { driver });
  assert.equal(changed.valid, false);
  assert.deepEqual(changed.errors, [`manifest_sha256_mismatch: ${victim}`]);
});
