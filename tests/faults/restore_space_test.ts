/**
 * A restore onto a small disk whose live database holds committed rows only in its `-wal`: refused before anything
 * is touched (exit 3) with the numbers, every row kept, with and without the pre-restore snapshot; what killed runs
 * left beside the database (a restore's link to the old database, a fetch's scratch copy) counts as freed. A
 * checkpoint that runs out of space keeps the WAL. A staging step that fails (no inodes left) says exactly what it
 * changed.
 *
 * Needs root (to mount); skipped with a printed reason where mounting is not permitted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSampleStore, type SampleStore } from "../../scripts/sample_store.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { type Change, clearWal, WalKeptError } from "../../src/ops/restore_wal.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { createdStamp, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, ledgerState, liveDigest, skipBecause, sqliteIntegrity } from "../_faults.ts";
import { mountTmpfs } from "../_mount.ts";

const MiB = 1024 * 1024;
/** Rows committed into the live `-wal` (each with a 3 kB chunk, so the checkpoint grows the database). */
const WAL_ROWS = 400;

/** Commit `rows` ledger rows, each with a chunk, one transaction each, and leave them all in the `-wal`. */
function commitRowsInWal(db: string, rows: number): void {
  const python = new Deno.Command("python3", {
    args: [
      "-c",
      "import os, sqlite3, sys\n" +
      "db = sqlite3.connect(sys.argv[1]); db.execute('PRAGMA wal_autocheckpoint=0')\n" +
      "for i in range(int(sys.argv[2])):\n" +
      "    db.execute('INSERT INTO ledger (amount) VALUES (?)', (i + 1,))\n" +
      "    db.execute('UPDATE ledger_total SET total = total + ? WHERE id = 1', (i + 1,))\n" +
      "    db.execute('INSERT INTO chunks (document_id, ord, content) VALUES (1, ?, randomblob(3000))', (i,))\n" +
      "    db.commit()\n" +
      "os._exit(0)",
      db,
      String(rows),
    ],
  }).outputSync();
  assert.equal(python.code, 0, new TextDecoder().decode(python.stderr));
}

/** Bytes free on the filesystem of `path`, as `df` says. */
function freeBytes(path: string): number {
  const output = new Deno.Command("df", { args: ["-B1", "--output=avail", path], stdout: "piped" }).outputSync();
  return Number(new TextDecoder().decode(output.stdout).trim().split("\n")[1]);
}

/** Fill the filesystem of `folder` with one file until `leave` bytes are free. */
function fillUntilFree(folder: string, leave: number): void {
  const fill = Math.floor((freeBytes(folder) - leave) / 4096) * 4096;
  if (fill <= 0) return;
  const output = new Deno.Command("fallocate", { args: ["-l", String(fill), join(folder, "filler")] }).outputSync();
  assert.ok(output.success, "fallocate failed");
}

/** Environment pointing the CLI at `live` for the store and at `store`'s backup folder. */
function liveEnv(store: SampleStore, live: SampleStore): Record<string, string> {
  return {
    ...storeEnv(store),
    ATOCORE_DB_PATH: live.db,
    ATOCORE_PROJECT_REGISTRY_PATH: live.registry,
    ATOCORE_CHROMA_PATH: live.chromaDir,
  };
}

function errorLine(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(lines.length, 1, `not one line: ${stderr}`);
  return lines[0];
}

for (const preSnapshot of [true, false]) {
  const label = preSnapshot ? "with the pre-restore snapshot" : "--no-pre-snapshot";
  Deno.test(`restore onto 1.5 MiB free with ${WAL_ROWS} rows only in the -wal (${label}): exit 3 first, every row kept`, async () => {
    using store = tempStore({ dbMiB: 12, chromaMiB: 1 });
    const stamp = await createdStamp(storeEnv(store));
    using disk = tempDir("atocore-small-disk-");
    const mounted = mountTmpfs(disk.path, "16m");
    if (typeof mounted === "string") return skipBecause(mounted);
    using _mount = mounted;
    const live = makeSampleStore(join(disk.path, "data"), { dbMiB: 2, chromaMiB: 1, seed: 2 });
    commitRowsInWal(live.db, WAL_ROWS);
    fillUntilFree(disk.path, 1.5 * MiB);
    const ledger = await ledgerState(live.db);
    assert.ok(ledger.rows >= WAL_ROWS && ledger.sum === ledger.total, `unexpected ledger ${JSON.stringify(ledger)}`);
    const wal = Deno.readFileSync(`${live.db}-wal`);

    const args = ["restore", stamp, "--confirm-service-stopped", ...(preSnapshot ? [] : ["--no-pre-snapshot"])];
    const run = await runCli(args, { env: liveEnv(store, live) });
    assert.equal(run.code, 3, `exit ${run.code}: ${run.stderr}`);
    const error = errorLine(run.stderr);
    assert.match(error, /not enough free space/);
    assert.ok(error.includes(live.dataDir), `the message does not name the folder: ${error}`);
    assert.match(error, /needs [\d.]+ MiB \(database copy [\d.]+ MiB, checkpoint of [^)]*-wal [\d.]+ MiB/);
    assert.match(error, /has 1\.5 MiB free; nothing was changed/);
    assert.deepEqual(Deno.readFileSync(`${live.db}-wal`), wal, "the -wal was changed or removed");
    assert.equal(await sqliteIntegrity(live.db), "ok");
    assert.deepEqual(await ledgerState(live.db), ledger, "committed rows were lost");
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp], "a pre-restore snapshot was made");
    console.log(`${label}: ${error}`);
  });
}

for (const name of ["ffi", "builtin"] as const) {
  Deno.test(`${name}: a checkpoint that runs out of space keeps the -wal, and the database keeps every row`, async () => {
    using disk = tempDir("atocore-small-disk-");
    const mounted = mountTmpfs(disk.path, "16m");
    if (typeof mounted === "string") return skipBecause(mounted);
    using _mount = mounted;
    const live = makeSampleStore(join(disk.path, "data"), { dbMiB: 2, chromaMiB: 1, seed: 3 });
    commitRowsInWal(live.db, WAL_ROWS);
    const ledger = await ledgerState(live.db);
    fillUntilFree(disk.path, 512 * 1024);
    const changes: Change[] = [];
    assert.throws(() => clearWal(openDriver(name), live.db, SILENT, changes), (error: unknown) => {
      assert.ok(error instanceof WalKeptError, String(error));
      assert.match(error.message, /disk (is )?full.*-wal was kept, so the live database keeps every committed row/);
      return true;
    });
    assert.deepEqual(changes, []);
    assert.ok(Deno.statSync(`${live.db}-wal`).size > 0, "the -wal was removed");
    Deno.removeSync(join(disk.path, "filler"));
    assert.equal(await sqliteIntegrity(live.db), "ok");
    assert.deepEqual(await ledgerState(live.db), ledger, "committed rows were lost");
  });
}

/** Remount the tmpfs at `path` with only `spare` inodes more than it uses now. */
function leaveInodes(path: string, spare: number): string {
  const stat = new Deno.Command("stat", { args: ["-f", "--format=%c %d", path], stdout: "piped" }).outputSync();
  const [total, free] = new TextDecoder().decode(stat.stdout).trim().split(" ").map(Number);
  const remount = new Deno.Command("mount", {
    args: ["-o", `remount,nr_inodes=${total - free + spare}`, path],
    stderr: "piped",
  }).outputSync();
  return remount.success
    ? ""
    : `cannot remount a tmpfs with fewer inodes (${new TextDecoder().decode(remount.stderr)})`;
}

Deno.test("a failed staging step says what it changed: leftovers of a killed restore removed from Chroma", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  using disk = tempDir("atocore-few-inodes-");
  const mounted = mountTmpfs(disk.path, "32m");
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const live = makeSampleStore(join(disk.path, "data"), { dbMiB: 1, chromaMiB: 1, seed: 2 });
  const leftover = join(live.chromaDir, ".atocore-old-4242-0badcafe");
  Deno.mkdirSync(leftover);
  Deno.writeTextFileSync(join(leftover, "header.bin"), "an old entry a killed restore moved aside");
  const failure = leaveInodes(disk.path, 2);
  if (failure) return skipBecause(failure);
  const before = liveDigest(live);

  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: liveEnv(store, live) });
  assert.equal(run.code, 1, `exit ${run.code}: ${run.stderr}`);
  const error = errorLine(run.stderr);
  assert.match(error, /restore failed while staging the Chroma copy/);
  assert.ok(error.includes(`removed 1 leftover(s) of a killed restore from ${live.chromaDir}`), error);
  assert.match(error, /the database's rows, the registry and Chroma's contents were not changed/);
  assert.doesNotMatch(error, /the database, registry and Chroma were not changed/);
  delete before["chroma/.atocore-old-4242-0badcafe/header.bin"];
  assert.equal(Object.keys(before).length, Object.keys(liveDigest(live)).length);
  assert.deepEqual(liveDigest(live), before, "live data changed");
  console.log(error);
});

Deno.test("a failed staging step says what it changed: the Chroma folder it created", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  using disk = tempDir("atocore-few-inodes-");
  const mounted = mountTmpfs(disk.path, "32m");
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const live = makeSampleStore(join(disk.path, "data"), { dbMiB: 1, chromaMiB: 1, seed: 2 });
  Deno.removeSync(live.chromaDir, { recursive: true });
  const failure = leaveInodes(disk.path, 3);
  if (failure) return skipBecause(failure);

  const args = ["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"];
  const run = await runCli(args, { env: liveEnv(store, live) });
  assert.equal(run.code, 1, `exit ${run.code}: ${run.stderr}`);
  const error = errorLine(run.stderr);
  assert.ok(error.includes(`created the empty Chroma folder ${live.chromaDir}`), error);
  assert.deepEqual(entryNames(live.chromaDir), [], "the created Chroma folder is not empty");
  console.log(error);
});

/**
 * The state a restore killed just after it renamed the snapshot's database over the live one leaves: its record, and
 * a hard link `.atocore.db.tmp-*` to the old database, now that file's only name in the store.
 */
function killedAfterRename(live: SampleStore, restored: string, record: Record<string, unknown>): string {
  const link = join(live.dataDir, ".atocore.db.tmp-4242-0badcafe");
  Deno.linkSync(live.db, link);
  Deno.copyFileSync(restored, join(live.dataDir, ".copy"));
  Deno.renameSync(join(live.dataDir, ".copy"), live.db);
  Deno.writeTextFileSync(join(live.dataDir, ".atocore.db.restore-intent.json"), JSON.stringify(record));
  return link;
}

Deno.test("going back from a restore killed once its database was renamed, on a full disk: the old database's link counts as freed", async () => {
  using store = tempStore({ dbMiB: 8, chromaMiB: 1, seed: 5 });
  using disk = tempDir("atocore-small-disk-");
  const mounted = mountTmpfs(disk.path, "64m");
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const live = makeSampleStore(join(disk.path, "data"), { dbMiB: 8, chromaMiB: 4, seed: 2 });
  const env = liveEnv(store, live);
  const pre = await createdStamp(env);
  const stamp = await createdStamp(storeEnv(store));
  const ledger = await ledgerState(live.db);
  const link = killedAfterRename(live, join(store.backupDir, "snapshots", stamp, "db", "atocore.db"), {
    format: 1,
    stamp,
    backup_dir: store.backupDir,
    chroma_dir: live.chromaDir,
    chroma: true,
    pre_restore_snapshot: pre,
    started_at: new Date().toISOString(),
    pid: 4242,
    swap: null,
  });
  fillUntilFree(disk.path, 6 * MiB); // the copies need about 13 MiB: less once the link's 8 MiB count as freed

  const run = await runCli(["restore", pre, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  assert.ok(run.stderr.includes(`"event":"stale_leftover_removed","path":"${link}"`), run.stderr);
  assert.match(
    run.stderr,
    /"event":"restore_free_space_checked","path":"[^"]*","needed":\d+,"available":\d+,"leftovers_cleared_first":\d+/,
  );
  assert.deepEqual(
    entryNames(live.dataDir).filter((name) => name.startsWith(".")),
    [],
    "a leftover or the record is left",
  );
  assert.deepEqual(await ledgerState(live.db), ledger, "the old database is not back");
});

Deno.test("a killed fetch's scratch copy beside the live database goes first in a local restore, counted as freed", async () => {
  using store = tempStore({ dbMiB: 8, chromaMiB: 1, seed: 5 });
  const stamp = await createdStamp(storeEnv(store));
  using disk = tempDir("atocore-small-disk-");
  const mounted = mountTmpfs(disk.path, "64m");
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const live = makeSampleStore(join(disk.path, "data"), { dbMiB: 8, chromaMiB: 4, seed: 2 });
  const scratch = join(live.dataDir, ".atocore-fetch-killed"); // as a fetch killed with -9 leaves it: unlocked
  Deno.mkdirSync(join(scratch, "snapshots", stamp, "db"), { recursive: true });
  Deno.copyFileSync(
    join(store.backupDir, "snapshots", stamp, "db", "atocore.db"),
    join(scratch, "snapshots", stamp, "db", "atocore.db"),
  );
  fillUntilFree(disk.path, 6 * MiB); // the copies need about 9 MiB: less once the scratch copy counts as freed

  const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], {
    env: liveEnv(store, live),
  });
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  assert.ok(run.stderr.includes(`"event":"stale_leftover_removed","path":"${scratch}"`), run.stderr);
  assert.match(
    run.stderr,
    /"event":"restore_free_space_checked","path":"[^"]*","needed":\d+,"available":\d+,"leftovers_cleared_first":\d+/,
  );
  assert.deepEqual(entryNames(live.dataDir).filter((name) => name.startsWith(".")), [], "the scratch copy is left");
});
