/**
 * A hot rollback journal (`<db>-journal` of a process killed mid-transaction) beside the database a restore replaces:
 * it is rolled back into the old database (or kept aside), never played back into the restored one; beside the
 * database create copies, in a folder the user may not write, it is named as the cause.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { changeMarkerInWal, createdStamp, projectMarker, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, NOBODY_GID, NOBODY_UID, skipBecause, unprivilegedCli } from "../_faults.ts";
import { createHash } from "node:crypto";

/**
 * Switch the database to DELETE journal mode, rewrite every chunk and rename project 1 to `"uncommitted"` in one
 * transaction with a tiny page cache (so the database file itself is written), then exit without committing: the
 * `-journal` stays, hot.
 */
function leaveHotJournal(db: string): void {
  const python = new Deno.Command("python3", {
    args: [
      "-c",
      "import os, sqlite3, sys\n" +
      "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n" +
      "db.execute('PRAGMA journal_mode=DELETE'); db.execute('PRAGMA cache_size=5'); db.execute('BEGIN')\n" +
      "db.execute(\"UPDATE projects SET name = 'uncommitted' WHERE id = 1\")\n" +
      "db.execute('UPDATE chunks SET content = randomblob(length(content))')\n" +
      "os._exit(0)",
      db,
    ],
  }).outputSync();
  assert.equal(python.code, 0, new TextDecoder().decode(python.stderr));
  assert.ok(Deno.statSync(`${db}-journal`).size > 0, "the -journal should stay beside the database");
}

/** `PRAGMA integrity_check` by the `sqlite3` shell opened read-write: the open a service makes, which plays journals. */
async function integrityReadWrite(db: string): Promise<string> {
  const output = await new Deno.Command("sqlite3", { args: [db, "PRAGMA integrity_check;"], stdout: "piped" })
    .output();
  return new TextDecoder().decode(output.stdout).trim();
}

function sha256OfFile(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

function assertNoJournal(db: string): void {
  assert.ok(!entryNames(join(db, "..")).includes(`${basename(db)}-journal`), `a -journal is left beside ${db}`);
}

for (const preSnapshot of [true, false]) {
  Deno.test(`restore over a hot -journal ${preSnapshot ? "with" : "without"} a pre-restore snapshot`, async () => {
    using store = tempStore({ dbMiB: 1 });
    const env = storeEnv(store);
    const stamp = await createdStamp(env, []);
    changeMarkerInWal(store.db);
    leaveHotJournal(store.db);
    const args = ["restore", stamp, "--confirm-service-stopped", "--no-chroma"];
    const run = await runCli(preSnapshot ? args : [...args, "--no-pre-snapshot"], { env });
    assert.equal(run.code, 0, run.stderr);
    const result = run.json as { restored_integrity_ok: boolean; pre_restore_snapshot: string | null };
    assert.equal(result.restored_integrity_ok, true);
    assertNoJournal(store.db);
    assert.equal(await integrityReadWrite(store.db), "ok");
    assert.equal(await projectMarker(store.db), "atlas", "the restored database does not hold the snapshot's rows");
    if (preSnapshot) {
      const pre = join(store.backupDir, "snapshots", result.pre_restore_snapshot!, "db", basename(store.db));
      assert.equal(await projectMarker(pre), "changed", "the pre-restore snapshot is not the rolled-back state");
      assert.equal((await runCli(["validate", result.pre_restore_snapshot!], { env })).code, 0);
    }
  });
}

Deno.test("restore --to --force over a stray -journal in DIR leaves none beside the restored database", async () => {
  using store = tempStore({ dbMiB: 1 });
  using target = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const db = join(target.path, basename(store.db));
  Deno.copyFileSync(store.db, db);
  leaveHotJournal(db);
  const strayOnly = join(target.path, "other");
  Deno.mkdirSync(strayOnly);
  Deno.copyFileSync(`${db}-journal`, join(strayOnly, `${basename(store.db)}-journal`));
  for (const folder of [target.path, strayOnly]) {
    const run = await runCli(["restore", stamp, "--to", folder, "--force", "--no-chroma"], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr.includes('"restore_journal_set_aside"'), folder === strayOnly, run.stderr);
    const restored = join(folder, basename(store.db));
    assertNoJournal(restored);
    assert.equal(await integrityReadWrite(restored), "ok");
    assert.equal(await projectMarker(restored), "atlas");
  }
  const kept = entryNames(strayOnly).filter((name) => name.endsWith("-journal"));
  assert.equal(kept.length, 1, `the journal without its database should be kept aside: ${entryNames(strayOnly)}`);
});

Deno.test("restore --to --force: a stray -journal is never rolled into DIR's database linked to a live or snapshot file", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const hot = join(store.dataDir, "other.db");
  Deno.copyFileSync(store.db, hot);
  leaveHotJournal(hot);
  const chromaDb = join(store.chromaDir, "chroma.sqlite3");
  const snapshotDb = join(store.backupDir, "snapshots", stamp, "db", basename(store.db));
  for (const linked of [chromaDb, snapshotDb]) {
    using target = tempDir();
    const before = sha256OfFile(linked);
    Deno.linkSync(linked, join(target.path, basename(store.db))); // the operator's slip, or a writer of DIR
    Deno.copyFileSync(`${hot}-journal`, join(target.path, `${basename(store.db)}-journal`));
    const run = await runCli(["restore", stamp, "--to", target.path, "--force"], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /"restore_journal_set_aside".*hard links/, run.stderr);
    assert.equal(sha256OfFile(linked), before, `${linked} was written through its link in --to`);
  }
  assert.equal((await runCli(["validate", stamp], { env })).code, 0);
});

Deno.test("a stray hot -journal of another database beside the live one: a failed pre-restore snapshot says it was rolled in", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  using other = tempDir();
  const python = new Deno.Command("python3", {
    args: [
      "-c",
      "import os, shutil, sqlite3, sys\n" +
      "live = sqlite3.connect(sys.argv[1], isolation_level=None); live.execute('PRAGMA journal_mode=DELETE'); live.close()\n" +
      "db = sqlite3.connect(sys.argv[2], isolation_level=None); db.execute('CREATE TABLE q(x)')\n" +
      "for _ in range(300): db.execute('INSERT INTO q VALUES (randomblob(3000))')\n" +
      "db.execute('PRAGMA cache_size=5'); db.execute('BEGIN'); db.execute('UPDATE q SET x = randomblob(3000)')\n" +
      "shutil.copy(sys.argv[2] + '-journal', sys.argv[1] + '-journal'); os._exit(0)",
      store.db,
      join(other.path, "other.db"),
    ],
  }).outputSync();
  assert.equal(python.code, 0, new TextDecoder().decode(python.stderr));
  const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-chroma"], { env });
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /pre-restore snapshot failed, so nothing was restored, but SQLite rolled .*-journal back/);
  assert.doesNotMatch(run.stderr, /nothing was restored or changed/);
});

Deno.test("a -journal that is no file (a folder, a FIFO) is kept aside with that reason, its database being there", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const journal = `${store.db}-journal`;
  for (const [make, kind] of [["mkdir", "folder"], ["mkfifo", "FIFO"]]) {
    assert.equal(new Deno.Command(make, { args: [journal] }).outputSync().code, 0);
    const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-chroma", "--no-pre-snapshot"], {
      env,
    });
    assert.equal(run.code, 0, run.stderr);
    const warning = run.stderr.split("\n").find((line) => line.includes('"restore_journal_set_aside"'));
    assert.ok(warning, `no warning that the ${kind} was kept aside: ${run.stderr}`);
    assert.equal(JSON.parse(warning).reason, `it is a ${kind}, not a file`);
    assertNoJournal(store.db);
    assert.equal(await projectMarker(store.db), "atlas");
  }
});

Deno.test("create as a user who may write the database but not its folder, over a hot -journal: the journal and the folder are named, not the storage", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = tempStore({ dbMiB: 1 });
  leaveHotJournal(store.db);
  Deno.chmodSync(store.dataDir, 0o755); // readable by all, writable by its owner (root) only
  for (const file of [store.db, `${store.db}-journal`]) Deno.chownSync(file, NOBODY_UID, NOBODY_GID);
  using backups = tempDir("atocore-backups-");
  Deno.chmodSync(backups.path, 0o777);
  const run = await cli.run(["create", "--backup-dir", backups.path], storeEnv(store));
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /create failed copying the database \S+ \(disk I\/O error\).*a -journal is beside it, which SQLite rolls back/,
  );
  assert.doesNotMatch(run.stderr, /is it readable by this user/);
});
