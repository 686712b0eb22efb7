/**
 * A full disk. The backup folder on a small tmpfs: `create` fails with a message
 * that says the disk is full and names the folder, exits 1, publishes nothing,
 * removes its staging folder and leaves the live store untouched. The live store
 * on a small tmpfs and a snapshot larger than its free space: `restore` refuses
 * before touching anything (exit 3) with the numbers, and the old store stays unchanged.
 *
 * Needs root (to mount); skipped with a printed reason where mounting is not permitted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSampleStore } from "../../scripts/sample_store.ts";
import { createdStamp, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, ledgerState, liveDigest, skipBecause, sqliteIntegrity } from "../_faults.ts";
import { mountTmpfs } from "../_mount.ts";

/** The tmpfs size: smaller than each sample store below. */
const TMPFS_SIZE = "8m";

/** Stores that do not fit: the database alone, and the database with Chroma. */
const STORES = [
  { name: "database larger than the disk", args: ["create"], options: { dbMiB: 30, chromaMiB: 1 } },
  {
    name: "database larger than the disk, built-in driver", // node:sqlite's backup says only SQLite's words
    args: ["create", "--sqlite-driver", "builtin"],
    options: { dbMiB: 30, chromaMiB: 1 },
  },
  { name: "Chroma overflows the disk", args: ["create", "--chroma"], options: { dbMiB: 4, chromaMiB: 12 } },
];

for (const { name, args, options } of STORES) {
  Deno.test(`disk full (${name}): create says so, exit 1, nothing published, staging removed`, async () => {
    using store = tempStore(options);
    Deno.mkdirSync(store.backupDir);
    const mounted = mountTmpfs(store.backupDir, TMPFS_SIZE);
    if (typeof mounted === "string") return skipBecause(mounted);
    using _mount = mounted;
    const before = liveDigest(store);
    const run = await runCli(args, { env: storeEnv(store) });
    assert.equal(run.code, 1, `exit ${run.code}: ${run.stderr}`);
    const error = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
    assert.equal(error.length, 1, `not one line: ${run.stderr}`);
    assert.match(error[0], /disk full/, "the message does not say the disk is full");
    assert.ok(error[0].includes(store.backupDir), `the message does not name the backup folder: ${error[0]}`);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "something was published");
    assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "staging left behind");
    assert.deepEqual(entryNames(join(store.backupDir, "failed")), [], "something was set aside");
    assert.deepEqual(liveDigest(store), before, "live store changed");
    console.log(`${name}: ${error[0]}`);
  });
}

/** Restores that do not fit: the database copy beside the live one, and the Chroma copy staged first. */
const RESTORES = [
  {
    name: "the database copy",
    extra: ["--no-chroma"],
    snapshot: { dbMiB: 30, chromaMiB: 1 },
    step: /database copy 30\.\d MiB/,
  },
  {
    name: "the Chroma copy",
    extra: ["--chroma"],
    snapshot: { dbMiB: 2, chromaMiB: 20 },
    step: /Chroma copy 2\d\.\d MiB/,
  },
];

for (const { name, extra, snapshot, step } of RESTORES) {
  Deno.test(`disk too small for a restore (${name}): refused first (exit 3) with the numbers, old store unchanged`, async () => {
    using store = tempStore(snapshot);
    const stamp = await createdStamp(storeEnv(store));
    using live = tempDir("atocore-small-disk-");
    const mounted = mountTmpfs(live.path, "16m");
    if (typeof mounted === "string") return skipBecause(mounted);
    using _mount = mounted;
    const small = makeSampleStore(join(live.path, "data"), { dbMiB: 4, chromaMiB: 1, seed: 2 });
    const env = {
      ...storeEnv(store),
      ATOCORE_DB_PATH: small.db,
      ATOCORE_PROJECT_REGISTRY_PATH: small.registry,
      ATOCORE_CHROMA_PATH: small.chromaDir,
    };
    const before = liveDigest(small);
    const ledger = await ledgerState(small.db);
    const run = await runCli(["restore", stamp, "--confirm-service-stopped", ...extra], { env });
    assert.equal(run.code, 3, `exit ${run.code}: ${run.stderr}`);
    const error = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
    assert.equal(error.length, 1, `not one line: ${run.stderr}`);
    assert.match(error[0], /not enough free space/, "the message does not say the disk is too small");
    assert.match(error[0], step, "the message does not say which copy does not fit");
    assert.match(error[0], /it needs [\d.]+ MiB .* and has [\d.]+ MiB free/, `no numbers: ${error[0]}`);
    assert.ok(error[0].includes(small.dataDir), `the message does not name the path: ${error[0]}`);
    assert.match(error[0], /nothing was changed/, `the message does not say live data is unchanged: ${error[0]}`);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp], "a pre-restore snapshot was made");
    assert.equal(await sqliteIntegrity(small.db), "ok", "the old database is damaged");
    assert.deepEqual(await ledgerState(small.db), ledger, "the old database changed");
    assert.deepEqual(liveDigest(small), before, "the live store changed (or a partial copy was left in it)");
    console.log(`restore, ${name}: ${error[0]}`);
  });
}

Deno.test("disk full beside the live database: create names that folder and SQLite's need, exit 1, nothing published", async () => {
  using dir = tempDir("atocore-live-full-");
  const mounted = mountTmpfs(dir.path, TMPFS_SIZE);
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const store = makeSampleStore(dir.path, { dbMiB: 2, chromaMiB: 1 });
  using backups = tempDir("atocore-backups-"); // the backup folder has room: only the live disk is full
  const filler = join(dir.path, "filler");
  assert.throws(() => Deno.writeFileSync(filler, new Uint8Array(16 << 20)), /No space left/); // what fits stays
  const run = await runCli(["create", "--backup-dir", backups.path], { env: storeEnv(store) });
  assert.equal(run.code, 1, run.stderr);
  const line = run.stderr.trim().split("\n").filter((text) => !text.startsWith("{"));
  assert.equal(line.length, 1, run.stderr);
  assert.match(
    line[0],
    new RegExp(`the filesystem of ${store.dataDir} is full .* SQLite needs room there for its -shm`),
  );
  assert.deepEqual(entryNames(join(backups.path, "snapshots")), [], "something was published");
});

Deno.test("disk full where the live store and the backup folder share a filesystem: create --chroma publishes nothing", async () => {
  using dir = tempDir("atocore-shared-full-");
  const mounted = mountTmpfs(dir.path, "12m");
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const store = makeSampleStore(dir.path, { dbMiB: 4, chromaMiB: 3 }); // the copy of ~7 MiB cannot fit beside it
  const run = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(run.code, 1, run.stderr);
  const line = run.stderr.trim().split("\n").filter((text) => !text.startsWith("{"));
  assert.equal(line.length, 1, run.stderr);
  assert.match(line[0], /disk full/);
  assert.ok(line[0].includes(store.backupDir), `the backup folder is not named: ${line[0]}`);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "a snapshot without Chroma was published");
});

Deno.test("a backup disk that filled up, blocks and inodes: cleanup --confirm still frees space", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  Deno.mkdirSync(store.backupDir);
  const mounted = mountTmpfs(store.backupDir, "16m,nr_inodes=200");
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const env = storeEnv(store);
  const stamps: string[] = [];
  for (let made = 0; made < 3; made++) {
    stamps.push(await createdStamp(env, []));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // one stamp a second
  }
  let filler = 0; // every inode, then every block
  try {
    for (;; filler++) Deno.writeFileSync(join(store.backupDir, `filler-${filler}`), new Uint8Array(0));
  } catch { /* no inode left */ }
  try {
    Deno.writeFileSync(join(store.backupDir, "filler-0"), new Uint8Array(32 << 20));
  } catch { /* no block left */ }
  const keep = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const run = await runCli(["cleanup", "--confirm", ...keep], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), stamps.slice(-1));
});
