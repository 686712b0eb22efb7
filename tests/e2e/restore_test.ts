/**
 * `restore` end to end through the CLI: round trips, the reference module in both
 * directions, every refusal (exit code, nothing changed), `--to`, a restore in the
 * same second as the snapshot it restores, and the Chroma folder kept in place.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { acquireLock, lockLiveStore } from "../../src/ops/lock.ts";
import { formatStamp, parseStamp } from "../../src/snapshot/stamp.ts";
import {
  changeMarkerInWal,
  createdStamp,
  moduleSnapshot,
  printedCommand,
  projectMarker,
  referenceFor,
  relocateSnapshot,
  runCli,
  runPrinted,
  runReference,
  sqlite3Json,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { entryNames, liveDigest, skipBecause, sqliteIntegrity, treeDigest } from "../_faults.ts";
import { bindMount, bindReadOnly, mountTmpfs, readOnlyBindMount } from "../_mount.ts";

const RESULT_KEYS = [
  "stamp",
  "pre_restore_snapshot",
  "target_db",
  "db_restored",
  "registry_restored",
  "chroma_restored",
  "restored_integrity_ok",
  "target_registry",
  "target_chroma",
  "chroma_files_restored",
  "chroma_bytes_restored",
  "to",
  "open_files_checked",
  "restored_integrity_checked",
  "validation",
];

type Store = ReturnType<typeof tempStore>;

/** Change the live store: the database (left in its -wal, as a running service leaves it), registry and Chroma. */
function changeLiveStore(store: Store): void {
  changeMarkerInWal(store.db);
  assert.ok(Deno.statSync(`${store.db}-wal`).size > 0, "the change should sit in the -wal");
  Deno.writeTextFileSync(store.registry, '{"projects": []}\n');
  Deno.writeTextFileSync(join(store.chromaDir, "added-after-snapshot.bin"), "new");
  const segment = entryNames(store.chromaDir).find((name) => name.includes("-5e9a-"))!;
  Deno.writeFileSync(join(store.chromaDir, segment, "header.bin"), new Uint8Array(100));
}

function snapshotChroma(store: Store, stamp: string): string {
  return join(store.backupDir, "snapshots", stamp, "chroma");
}

Deno.test("restore round trip: live data, registry and Chroma are as at create; the pre-restore snapshot undoes it", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const segment = entryNames(store.chromaDir).find((name) => name.includes("-5e9a-"))!;
  Deno.symlinkSync(`${segment}/header.bin`, join(store.chromaDir, "header-link"));
  const registryAtCreate = Deno.readTextFileSync(store.registry);
  const stamp = await createdStamp(storeEnv(store));
  const chromaAtCreate = treeDigest(snapshotChroma(store, stamp));
  changeLiveStore(store);
  const changed = liveDigest(store);
  const chromaInode = Deno.statSync(store.chromaDir).ino;

  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as Record<string, unknown>;
  assert.deepEqual(Object.keys(result), RESULT_KEYS);
  assert.equal(result.stamp, stamp);
  assert.equal(result.target_db, store.db);
  assert.equal(result.restored_integrity_ok, true);
  assert.equal(result.restored_integrity_checked, true, "a local restore copies the database and checks the copy");
  assert.equal(result.registry_restored, true);
  assert.equal(result.chroma_restored, true);
  assert.equal(result.chroma_files_restored, Object.values(chromaAtCreate).filter((v) => !v.startsWith("->")).length);
  assert.equal((result.validation as { manifest_ok: boolean }).manifest_ok, true);

  assert.equal(await projectMarker(store.db), "atlas");
  assert.equal(await sqliteIntegrity(store.db), "ok");
  assert.equal(Deno.readTextFileSync(store.registry), registryAtCreate);
  assert.deepEqual(treeDigest(store.chromaDir), chromaAtCreate);
  assert.ok(Deno.lstatSync(join(store.chromaDir, "header-link")).isSymlink, "a symbolic link must stay a link");
  assert.equal(Deno.statSync(store.chromaDir).ino, chromaInode, "the Chroma folder itself must stay");
  assert.deepEqual(entryNames(store.chromaDir).filter((name) => name.startsWith(".")), []);
  assert.deepEqual(entryNames(store.dataDir).filter((name) => name.startsWith(".")), []);

  const pre = result.pre_restore_snapshot as string;
  assert.ok(parseStamp(pre) && pre > stamp, `pre-restore stamp ${pre} should follow ${stamp}`);
  assert.equal((await runCli(["validate", pre], { env })).code, 0);
  assert.ok(entryNames(snapshotChroma(store, pre)).includes("added-after-snapshot.bin"), "pre-restore lacks Chroma");

  const undo = await runCli(["restore", pre, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(undo.code, 0, undo.stderr);
  assert.equal((undo.json as { pre_restore_snapshot: unknown }).pre_restore_snapshot, null);
  assert.equal(await projectMarker(store.db), "changed");
  assert.deepEqual(withoutDatabases(liveDigest(store)), withoutDatabases(changed));
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp, pre].sort());
});

Deno.test("restore prints a readable summary naming the pre-restore stamp", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store), []);
  const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-chroma"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  const pre = (run.json as { pre_restore_snapshot: string }).pre_restore_snapshot;
  assert.match(run.stderr, new RegExp(`"event":"pre_restore_snapshot_created","stamp":"${pre}"`));
  assert.match(run.stderr, /"event":"runtime_backup_restored"/);
});

Deno.test("a snapshot made by the reference module restores with this tool", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await moduleSnapshot(store, "restore of a module snapshot");
  const chromaAtCreate = treeDigest(snapshotChroma(store, stamp));
  changeLiveStore(store);

  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as { validation: { manifest_ok: unknown }; chroma_restored: boolean };
  assert.equal(result.validation.manifest_ok, null, "a module snapshot has no manifest");
  assert.equal(result.chroma_restored, true);
  assert.equal(await projectMarker(store.db), "atlas");
  assert.deepEqual(treeDigest(store.chromaDir), chromaAtCreate);
});

Deno.test("a snapshot made by this tool restores with the reference module", async () => {
  if (!referenceFor("a snapshot made by this tool restores with the reference module")) return;
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const chromaAtCreate = treeDigest(snapshotChroma(store, stamp));
  changeLiveStore(store);
  // The module's own pre-restore snapshot would overwrite a snapshot of the same second (its known weakness).
  while (formatStamp(new Date()) === stamp) await new Promise((resolve) => setTimeout(resolve, 50));

  const run = await runReference(["restore", stamp, "--confirm-service-stopped"], store);
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as Record<string, unknown>;
  assert.equal(result.restored_integrity_ok, true);
  assert.equal(result.chroma_restored, true);
  assert.equal(await projectMarker(store.db), "atlas");
  assert.deepEqual(treeDigest(store.chromaDir), chromaAtCreate);
});

Deno.test("restore refuses without --confirm-service-stopped, exit 3, nothing changed", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  changeLiveStore(store);
  const before = liveDigest(store);
  const run = await runCli(["restore", stamp], { env: storeEnv(store) });
  assert.equal(run.code, 3);
  assert.match(run.stderr, /--confirm-service-stopped/);
  assert.match(run.stderr, /--to DIR/);
  assert.equal(run.stdout, "");
  assert.deepEqual(liveDigest(store), before);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp]);
});

Deno.test("restore refuses while this test holds the database open, naming its pid; --ignore-open-files overrides, its hold still named after", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  changeLiveStore(store);
  const before = liveDigest(store);
  const held = new DatabaseSync(store.db);
  try {
    held.prepare("SELECT count(*) FROM projects").get();
    const refused = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, new RegExp(`process(es)? [0-9, ]*\\b${Deno.pid}\\b`));
    assert.ok(refused.stderr.includes(store.db), refused.stderr);
    assert.deepEqual(liveDigest(store), before);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp]);

    const noAck = await runCli(["restore", stamp, "--ignore-open-files"], { env });
    assert.equal(noAck.code, 3, "--ignore-open-files must not stand in for the acknowledgment");
    assert.match(noAck.stderr, /--confirm-service-stopped/);

    const forced = await runCli(["restore", stamp, "--confirm-service-stopped", "--ignore-open-files"], { env });
    assert.equal(forced.code, 1, `the holder of the old database must still be named: ${forced.stderr}`);
    const warned = new RegExp(
      `"event":"restore_store_opened_during_restore","holders":"process(es)? [0-9, ]*\\b${Deno.pid}\\b[^"]* the replaced database`,
    );
    assert.match(forced.stderr, warned);
    assert.equal((forced.json as { opened_during_restore?: string }).opened_during_restore !== undefined, true);
  } finally {
    held.close();
  }
  assert.equal(await projectMarker(store.db), "atlas");
});

Deno.test("restore refuses a snapshot that fails deep validation, listing the errors, exit 3, nothing changed", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  const segment = entryNames(snapshotChroma(store, stamp)).find((name) => name.includes("-5e9a-"))!;
  const damaged = join(snapshotChroma(store, stamp), segment, "header.bin");
  const bytes = Deno.readFileSync(damaged);
  bytes[0] ^= 0xff;
  Deno.writeFileSync(damaged, bytes);
  changeLiveStore(store);
  const before = liveDigest(store);

  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, new RegExp(`manifest_sha256_mismatch: chroma/${segment}/header.bin`));
  assert.match(run.stderr, /nothing was changed/);
  assert.deepEqual(liveDigest(store), before);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp]);

  const missing = await runCli(["restore", "20200101T000000Z", "--confirm-service-stopped"], { env });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no snapshot 20200101T000000Z in .*; see 'list'/);
  assert.deepEqual(liveDigest(store), before);
});

Deno.test("the list a restore's refusal of an invalid snapshot prints runs as printed, on the --backup-dir given", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits, and not the folder the environment names
  Deno.renameSync(store.backupDir, backupDir);
  Deno.writeFileSync(join(backupDir, "snapshots", stamp, "db", "atocore.db"), new Uint8Array(8192).fill(0x41));
  const before = liveDigest(store);
  const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--backup-dir", backupDir], { env });
  assert.equal(run.code, 3, run.stderr);
  assert.deepEqual(liveDigest(store), before);
  const printed = printedCommand(run.stderr, "pick another snapshot, listed by");
  assert.ok(printed !== null, run.stderr);
  const listed = await runPrinted(printed, env); // pasted into a shell as it is
  assert.equal(listed.code, 0, `${printed}: ${listed.stderr}`);
  assert.match(listed.stdout, new RegExp(stamp), `${printed} lists the folder given`);
});

Deno.test("restore over a damaged live database keeps its -wal aside with it, so none of it reaches the restored one", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  changeLiveStore(store);
  const wal = Deno.readFileSync(`${store.db}-wal`);
  Deno.writeFileSync(store.db, new Uint8Array(8192).fill(0x41));
  const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /restore_wal_set_aside/);
  assert.equal(await projectMarker(store.db), "atlas");
  assert.equal(await sqliteIntegrity(store.db), "ok");
  const kept = entryNames(store.dataDir).filter((name) => name.startsWith("atocore.db.kept-"));
  assert.equal(kept.length, 2, `the damaged database and its -wal should be kept: ${kept}`);
  const [keptDb, keptWal] = kept;
  assert.equal(`${keptDb}-wal`, keptWal);
  assert.deepEqual(Deno.readFileSync(join(store.dataDir, keptWal)), wal, "the kept -wal is not the old one");
  assert.deepEqual(Deno.readFileSync(join(store.dataDir, keptDb)), new Uint8Array(8192).fill(0x41));
});

Deno.test("restore usage errors exit 2 and touch nothing", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  const before = liveDigest(store);
  for (
    const args of [
      ["restore"],
      ["restore", "../..", "--confirm-service-stopped"],
      ["restore", stamp, "--confirm-service-stopped", "--chroma", "--no-chroma"],
      ["restore", stamp, "--confirm-service-stopped", "--bogus"],
      ["restore", stamp, "extra", "--confirm-service-stopped"],
    ]
  ) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
  }
  assert.deepEqual(liveDigest(store), before);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp]);
});

Deno.test("restore --chroma of a snapshot without Chroma is refused (exit 3), nothing changed; without it, done", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []); // create without --chroma: the snapshot holds no Chroma copy
  changeLiveStore(store);
  const before = liveDigest(store);
  const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--chroma"], { env });
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`error: snapshot ${stamp} holds no Chroma copy, and --chroma asks for one; nothing`),
  );
  assert.deepEqual(liveDigest(store), before);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp], "a pre-restore snapshot was taken");
  const plain = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal((plain.json as { chroma_restored: boolean }).chroma_restored, false);
});

Deno.test("restore through a --db that is a symbolic link handles the real database's -wal (no old frames left)", async () => {
  using store = tempStore({ dbMiB: 1 });
  using elsewhere = tempDir("atocore-db-link-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const crash =
    "import sqlite3, os, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('PRAGMA wal_autocheckpoint = 0')\n" +
    "c.execute('CREATE TABLE written_after (x)')\nc.commit()\nos._exit(0)\n"; // dies with its frames in the -wal
  const wrote = new Deno.Command("python3", { args: ["-c", crash, store.db] }).outputSync();
  assert.ok(wrote.success && Deno.statSync(`${store.db}-wal`).size > 0, "no -wal with frames to leave behind");
  const link = join(elsewhere.path, "atocore.db");
  Deno.symlinkSync(store.db, link);
  const args = ["restore", stamp, "--db", link, "--confirm-service-stopped", "--no-pre-snapshot"];
  const run = await runCli(args, { env });
  assert.equal(run.code, 0, run.stderr);
  const tables = await sqlite3Json(store.db, "SELECT name FROM sqlite_master WHERE name = 'written_after'");
  assert.deepEqual(tables, [], "the old -wal's frames are applied over the restored database");
});

Deno.test("a pre-restore snapshot that fails says to run the restore again, not create", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const chromaDb = join(store.chromaDir, "chroma.sqlite3");
  Deno.renameSync(chromaDb, `${chromaDb}.real`);
  Deno.symlinkSync(`${chromaDb}.real`, chromaDb); // never followed by create: the pre-restore snapshot fails
  const before = liveDigest(store);
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /error: pre-restore snapshot failed, so nothing was restored or changed: .*run the restore again/,
  );
  assert.doesNotMatch(run.stderr, /run create again/);
  assert.deepEqual(liveDigest(store), before);
});

Deno.test("a live database too damaged for the pre-restore snapshot: the error says --no-pre-snapshot, which restores it", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const size = Deno.statSync(store.db).size;
  Deno.writeFileSync(store.db, crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)))); // no database at all
  const before = liveDigest(store);
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /error: pre-restore snapshot failed, so nothing was restored or changed: .*; to restore over a live database that cannot be copied, copy its files aside, then add --no-pre-snapshot\n$/,
  );
  assert.deepEqual(liveDigest(store), before);
  const again = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await sqlite3Json(store.db, "PRAGMA integrity_check"))[0].integrity_check, "ok");
});

Deno.test("restore waits for nobody: another operation's lock makes it exit 4, nothing changed", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  changeLiveStore(store);
  const before = liveDigest(store);
  using _lock = acquireLock(store.backupDir, "test");
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
  assert.equal(run.code, 4, run.stderr);
  assert.deepEqual(liveDigest(store), before);
});

Deno.test("the live store is locked whatever the backup folder: a restore excludes creates and restores (exit 4)", async () => {
  using store = tempStore({ dbMiB: 1 });
  using other = tempDir("atocore-other-backups-"); // an offsite copy of the backups, mounted elsewhere
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  Deno.mkdirSync(join(other.path, "snapshots"));
  copyTree(join(store.backupDir, "snapshots", stamp), join(other.path, "snapshots", stamp));
  changeLiveStore(store);
  const before = liveDigest(store);
  const elsewhere = ["--backup-dir", other.path];
  { // as a restore of another run holds it: exclusive
    using _held = lockLiveStore(store.db, "restore");
    for (const args of [["restore", stamp, "--confirm-service-stopped", ...elsewhere], ["create", ...elsewhere]]) {
      const run = await runCli(args, { env });
      assert.equal(run.code, 4, `${args[0]}: ${run.stderr}`);
      assert.match(run.stderr, new RegExp(`error: the live store in ${store.dataDir} is in use by a .*wait for it`));
    }
    assert.deepEqual(liveDigest(store), before);
  }
  { // as a create of another run holds it: shared
    using _held = lockLiveStore(store.db, "create");
    assert.equal((await runCli(["create", ...elsewhere], { env })).code, 0, "creates share the live store");
    const afterCreate = liveDigest(store); // its connection's close may checkpoint the -wal into the database
    const restore = await runCli(["restore", stamp, "--confirm-service-stopped", ...elsewhere], { env });
    assert.equal(restore.code, 4, restore.stderr);
    assert.deepEqual(liveDigest(store), afterCreate);
    using target = tempDir("atocore-drill-");
    const to = await runCli(["restore", stamp, "--to", join(target.path, "drill"), ...elsewhere], { env });
    assert.equal(to.code, 0, `restore --to writes no live file and takes no live lock: ${to.stderr}`);
  }
});

Deno.test("restore onto a store whose database is gone: refused with a pre-snapshot, done with --no-pre-snapshot", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  for (const name of entryNames(store.dataDir).filter((name) => name.startsWith("atocore.db"))) {
    Deno.removeSync(join(store.dataDir, name));
  }
  const refused = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /--no-pre-snapshot/);
  assert.deepEqual(entryNames(store.dataDir).includes("atocore.db"), false);

  const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(await projectMarker(store.db), "atlas");
});

Deno.test("restore --to rebuilds the store elsewhere without acknowledgment, the live store untouched", async () => {
  using store = tempStore({ dbMiB: 1 });
  using target = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  const chromaAtCreate = treeDigest(snapshotChroma(store, stamp));
  const registryAtCreate = Deno.readTextFileSync(store.registry);
  changeLiveStore(store);
  const before = liveDigest(store);
  const to = join(target.path, "drill");

  const run = await runCli(["restore", stamp, "--to", to], { env });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as Record<string, unknown>;
  assert.deepEqual(Object.keys(result), RESULT_KEYS);
  assert.equal(result.to, to);
  assert.equal(result.pre_restore_snapshot, null);
  assert.equal(result.target_db, join(to, "atocore.db"));
  assert.equal(result.target_registry, join(to, "project-registry.json"));
  assert.equal(result.target_chroma, join(to, "chroma"));
  assert.equal(await projectMarker(join(to, "atocore.db")), "atlas");
  assert.equal(Deno.readTextFileSync(join(to, "project-registry.json")), registryAtCreate);
  assert.deepEqual(treeDigest(join(to, "chroma")), chromaAtCreate);
  assert.deepEqual(liveDigest(store), before);
  assert.equal(await projectMarker(store.db), "changed");
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp]);

  const refused = await runCli(["restore", stamp, "--to", to, "--no-chroma"], { env });
  assert.equal(refused.code, 3, `a --to folder that holds files must be refused: ${refused.stderr}`);
  const again = await runCli(["restore", stamp, "--to", to, "--no-chroma", "--force"], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.json as { chroma_restored: boolean }).chroma_restored, false);

  for (const folder of [store.dataDir, store.chromaDir, join(store.backupDir, "snapshots", stamp)]) {
    const onLive = await runCli(["restore", stamp, "--to", folder], { env });
    assert.equal(onLive.code, 3, `--to ${folder} must be refused: ${onLive.stderr}`);
    assert.match(onLive.stderr, /live store or backups/);
  }
  assert.deepEqual(liveDigest(store), before);
  assert.equal((await runCli(["validate", stamp], { env })).code, 0);
});

/** A sample store whose database and registry are renamed to `dbName` and `registryName`, each in a folder of its own. */
function renamedStore(store: Store, dbName: string, registryName: string) {
  const db = join(store.dataDir, "db-folder", dbName);
  const registry = join(store.dataDir, "registry-folder", registryName);
  for (const path of [db, registry]) Deno.mkdirSync(join(path, ".."));
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      Deno.renameSync(`${store.db}${suffix}`, `${db}${suffix}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  Deno.renameSync(store.registry, registry);
  return { db, registry, flags: ["--db", db, "--registry", registry] };
}

Deno.test("restore --to keeps a database and a registry whose names collide apart, each in a folder of its own", async () => {
  const collisions = [
    ["atocore.db", "atocore.db"],
    ["atocore.db", "atocore.db-wal"],
    ["atocore.db", "atocore.db-journal"],
    ["atocore.db", "chroma"],
    ["chroma", "project-registry.json"],
  ];
  for (const [dbName, registryName] of collisions) {
    using store = tempStore({ dbMiB: 1 });
    using target = tempDir();
    const env = storeEnv(store);
    const live = renamedStore(store, dbName, registryName);
    const stamp = await createdStamp(env, ["--chroma", ...live.flags]);
    const registryAtCreate = Deno.readTextFileSync(live.registry);
    const to = join(target.path, "rebuilt");

    const run = await runCli(["restore", stamp, "--to", to, ...live.flags], { env });
    assert.equal(run.code, 0, `${dbName} and ${registryName}: ${run.stderr}`);
    const result = run.json as Record<string, unknown>;
    assert.equal(result.target_db, join(to, "database", dbName));
    assert.equal(result.target_registry, join(to, "registry", registryName));
    assert.equal(await projectMarker(join(to, "database", dbName)), "atlas");
    assert.equal(Deno.readTextFileSync(join(to, "registry", registryName)), registryAtCreate);
    assert.deepEqual(treeDigest(join(to, "chroma")), treeDigest(snapshotChroma(store, stamp)));
    assert.deepEqual(entryNames(to), ["chroma", "database", "registry"]);

    using elsewhere = tempDir();
    const linked = join(target.path, "linked");
    Deno.mkdirSync(linked);
    Deno.symlinkSync(elsewhere.path, join(linked, "database"));
    const refused = await runCli(["restore", stamp, "--to", linked, "--force", ...live.flags], { env });
    assert.equal(refused.code, 3, `a linked folder of its own must be refused: ${refused.stderr}`);
    assert.deepEqual(entryNames(elsewhere.path), []);

    const file = join(target.path, "file");
    Deno.mkdirSync(file);
    Deno.writeTextFileSync(join(file, "registry"), "someone's");
    const notFolder = await runCli(["restore", stamp, "--to", file, "--force", ...live.flags], { env });
    assert.equal(notFolder.code, 3, notFolder.stderr);
    assert.match(
      notFolder.stderr,
      /^atocore-backup: error: --to \S+ holds \S+\/registry, which is not a folder, .*$/m,
    );
    assert.equal(Deno.readTextFileSync(join(file, "registry")), "someone's");
  }
});

Deno.test("restore --to --force refuses a folder whose -wal or -shm is a hard link of the live one's, rows kept", async () => {
  using store = tempStore({ dbMiB: 1 });
  using target = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const writer = new DatabaseSync(store.db); // its committed rows stay in the -wal while it is open
  try {
    writer.exec("PRAGMA wal_autocheckpoint = 0; CREATE TABLE only_in_wal (x); INSERT INTO only_in_wal VALUES (42);");
    for (const suffix of ["-wal", "-shm"]) {
      const to = join(target.path, `linked${suffix}`);
      Deno.mkdirSync(to);
      Deno.linkSync(`${store.db}${suffix}`, join(to, `atocore.db${suffix}`));
      const walBefore = Deno.readFileSync(`${store.db}-wal`);
      const run = await runCli(["restore", stamp, "--to", to, "--force"], { env });
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, new RegExp(`would write over ${store.db}${suffix} \\(live store or backups\\)`));
      assert.deepEqual(Deno.readFileSync(`${store.db}-wal`), walBefore, "the live -wal changed");
    }
    const reader = new DatabaseSync(store.db, { readOnly: true });
    assert.deepEqual(reader.prepare("SELECT x FROM only_in_wal").all().map((row) => row.x), [42]);
    reader.close();
  } finally {
    writer.close();
  }
});

Deno.test("restore --to --force refuses a -wal or -shm there that is a hard link of any file, a live Chroma one too", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using target = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const chromaDb = join(store.chromaDir, "chroma.sqlite3");
  const snapshotDb = join(store.backupDir, "snapshots", stamp, "db", "atocore.db");
  for (const [suffix, victim] of [["-wal", chromaDb], ["-shm", snapshotDb]]) {
    const to = join(target.path, `linked${suffix}`);
    Deno.mkdirSync(to);
    Deno.linkSync(victim, join(to, `atocore.db${suffix}`));
    const before = Deno.readFileSync(victim);
    const run = await runCli(["restore", stamp, "--to", to, "--force"], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /holds .*atocore\.db-(wal|shm), a file with more than one name \(a hard link\)/);
    assert.deepEqual(Deno.readFileSync(victim), before, `${victim} changed`);
  }
  assert.equal((await runCli(["validate", stamp], { env })).code, 0);
});

Deno.test("restore right after create, in the same second: every snapshot stays, the pre-restore stamp is new", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  const snapshots = join(store.backupDir, "snapshots");
  // Occupy the next seconds too, so the pre-restore snapshot meets taken stamps whenever it runs.
  const taken = [1, 2].map((seconds) => formatStamp(new Date(parseStamp(stamp)!.getTime() + seconds * 1000)));
  for (const name of taken) {
    copyTree(join(snapshots, stamp), join(snapshots, name));
    relocateSnapshot(join(snapshots, name)); // a copy records its own stamp, or it does not validate
  }
  const digests = Object.fromEntries([stamp, ...taken].map((name) => [name, treeDigest(join(snapshots, name))]));

  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 0, run.stderr);
  const pre = (run.json as { pre_restore_snapshot: string }).pre_restore_snapshot;
  assert.ok(![stamp, ...taken].includes(pre), `pre-restore snapshot took a used stamp ${pre}`);
  assert.deepEqual(entryNames(snapshots), [stamp, ...taken, pre].sort());
  for (const name of [stamp, ...taken]) assert.deepEqual(treeDigest(join(snapshots, name)), digests[name], name);
  const validated = await runCli(["validate", "--all"], { env });
  assert.equal(validated.code, 0, validated.stdout);
});

Deno.test("restore into a Chroma folder that is a mount point keeps the mount and its inode", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const original = join(store.dataDir, "chroma-original");
  Deno.renameSync(store.chromaDir, original);
  Deno.mkdirSync(store.chromaDir);
  const mount = mountTmpfs(store.chromaDir, "16m");
  if (typeof mount === "string") {
    skipBecause(mount);
    return;
  }
  using _mount = mount;
  copyTree(original, store.chromaDir, true);
  Deno.removeSync(original, { recursive: true });
  const stamp = await createdStamp(storeEnv(store));
  const chromaAtCreate = treeDigest(snapshotChroma(store, stamp));
  changeLiveStore(store);
  const inode = Deno.statSync(store.chromaDir).ino;

  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(Deno.statSync(store.chromaDir).ino, inode);
  assert.deepEqual(treeDigest(store.chromaDir), chromaAtCreate);
});

Deno.test("restore refuses a Chroma folder with a filesystem mounted inside it (live and --to), nothing changed", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using outside = tempDir("atocore-precious-");
  Deno.writeTextFileSync(join(outside.path, "keep.txt"), "precious");
  const stamp = await createdStamp(storeEnv(store));
  const to = join(store.dataDir, "..", "rebuilt");
  const deep = [join(store.chromaDir, "segment", "extra"), join(to, "chroma", "sub", "mnt")];
  for (const [index, point] of deep.entries()) {
    Deno.mkdirSync(point, { recursive: true });
    const mount = bindMount(outside.path, point);
    if (typeof mount === "string") return skipBecause(mount);
    using _mount = mount;
    const before = liveDigest(store);
    const args = index === 0 ? ["--confirm-service-stopped"] : ["--to", to, "--force"];
    const run = await runCli(["restore", stamp, ...args], { env: storeEnv(store) });
    assert.equal(run.code, 3, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `error: a filesystem is mounted at ${point}, inside the Chroma folder .*nothing was changed; unmount it`,
      ),
    );
    assert.deepEqual(entryNames(outside.path), ["keep.txt"], "the mounted filesystem was emptied");
    assert.deepEqual(liveDigest(store), before, "the live store changed");
  }
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp], "a pre-restore snapshot was taken");
});

Deno.test("a registry or database that is a file mount point: restore refuses before any change (exit 3)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  for (const [path, what] of [[store.registry, "registry"], [store.db, "database"]]) {
    const mount = bindMount(path, path); // a file mounted over itself, as compose mounts one file
    if (typeof mount === "string") return skipBecause(mount);
    using _mount = mount;
    const before = liveDigest(store);
    const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, new RegExp(`error: the ${what} ${path} is a mount point .*nothing was changed`));
    assert.deepEqual(liveDigest(store), before, "the live store changed");
  }
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp], "a pre-restore snapshot was taken");
});

Deno.test("a restore that fails part way exits 1 and names the pre-restore stamp to go back to", async () => {
  using store = tempStore({ dbMiB: 1 });
  const configDir = join(store.dataDir, "config");
  Deno.mkdirSync(configDir);
  const registry = join(configDir, "project-registry.json");
  Deno.renameSync(store.registry, registry);
  const env = { ...storeEnv(store), ATOCORE_PROJECT_REGISTRY_PATH: registry };
  const stamp = await createdStamp(env);
  changeLiveStore(store);
  const mount = bindReadOnly(configDir);
  if (typeof mount === "string") {
    skipBecause(mount);
    return;
  }
  let pre: string;
  {
    using _mount = mount;
    const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /restore failed while replacing the registry/);
    assert.ok(
      run.stderr.includes(
        `changed so far: replaced the database ${store.db} with the snapshot's; ` +
          `not changed: the registry ${registry}, the Chroma folder ${store.chromaDir}`,
      ),
      `the message does not say exactly what changed: ${run.stderr}`,
    );
    pre = entryNames(join(store.backupDir, "snapshots")).find((name) => name !== stamp)!;
    assert.ok(run.stderr.includes(`atocore-backup restore ${pre} --confirm-service-stopped`), run.stderr);
    assert.ok(entryNames(store.chromaDir).includes("added-after-snapshot.bin"), "Chroma must not be swapped");
    assert.deepEqual(entryNames(store.chromaDir).filter((name) => name.startsWith(".")), []);
  }
  const undo = await runCli(["restore", pre, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(undo.code, 0, undo.stderr);
  assert.equal(await projectMarker(store.db), "changed");
});

Deno.test("restore keeps the live files' owner and mode, and gives restored Chroma files the folder's owner", async () => {
  if (Deno.uid() !== 0) {
    skipBecause("changing owners needs root");
    return;
  }
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const [uid, gid] = [4321, 4322];
  for (const path of [store.db, store.registry, store.chromaDir]) Deno.chownSync(path, uid, gid);
  Deno.chmodSync(store.db, 0o640);
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  const db = Deno.statSync(store.db);
  assert.deepEqual([db.uid, db.gid, db.mode! & 0o777], [uid, gid, 0o640]);
  const registry = Deno.statSync(store.registry);
  assert.deepEqual([registry.uid, registry.gid], [uid, gid]);
  const restored = treeDigest(store.chromaDir);
  assert.ok(Object.keys(restored).length > 0);
  for (const path of Object.keys(restored)) {
    const info = Deno.statSync(join(store.chromaDir, path));
    assert.deepEqual([info.uid, info.gid], [uid, gid], path);
  }
});

Deno.test("old Chroma entries a killed restore moved aside are not backed up by create, and the next restore removes them", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  const chromaAtCreate = treeDigest(snapshotChroma(store, stamp));
  const leftover = join(store.chromaDir, ".atocore-old-4242-0badcafe");
  Deno.mkdirSync(join(leftover, "00000000-old-segment"), { recursive: true });
  Deno.writeTextFileSync(join(leftover, "00000000-old-segment", "header.bin"), "an old entry moved aside");
  const second = await createdStamp(storeEnv(store));
  assert.deepEqual(entryNames(snapshotChroma(store, second)), entryNames(snapshotChroma(store, stamp)));
  const run = await runCli(["restore", second, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.ok(run.stderr.includes(leftover), `the leftover's removal is not reported: ${run.stderr}`);
  assert.deepEqual(treeDigest(store.chromaDir), chromaAtCreate);
});

// The swap renames the old entries aside before the new ones come in and removes them
// last: an old entry that cannot be removed (here an immutable file) no longer stops the
// swap half way with Chroma partly deleted.
Deno.test("restore swaps Chroma by renames: an old entry that cannot be removed is a warning, Chroma is whole", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(storeEnv(store));
  const chromaAtCreate = treeDigest(snapshotChroma(store, stamp));
  changeLiveStore(store);
  const pinned = join(store.chromaDir, "ffffffff-pinned-segment", "header.bin");
  Deno.mkdirSync(join(store.chromaDir, "ffffffff-pinned-segment"));
  Deno.writeTextFileSync(pinned, "cannot be removed");
  const chattr = new Deno.Command("chattr", { args: ["+i", pinned], stderr: "piped" }).outputSync();
  if (!chattr.success) return skipBecause(`chattr +i: ${new TextDecoder().decode(chattr.stderr).trim()}`);
  try {
    const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
    assert.equal(run.code, 0, run.stderr);
    const [old, ...more] = entryNames(store.chromaDir).filter((name) => name.startsWith("."));
    assert.match(old, /^\.atocore-old-/);
    assert.deepEqual(more, []);
    assert.deepEqual(treeDigest(store.chromaDir, [old]), chromaAtCreate, "Chroma is not the snapshot's");
    assert.equal(
      Deno.readTextFileSync(join(store.chromaDir, old, "ffffffff-pinned-segment", "header.bin")),
      "cannot be removed",
    );
    assert.match(run.stderr, /restore_old_chroma_not_removed/);
  } finally {
    // Wherever the restore left the pinned file, unpin it so the temporary store can be removed.
    const old = entryNames(store.chromaDir).find((name) => name.startsWith(".atocore-old-"));
    const path = old ? join(store.chromaDir, old, "ffffffff-pinned-segment", "header.bin") : pinned;
    new Deno.Command("chattr", { args: ["-i", path] }).outputSync();
  }
  const again = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(treeDigest(store.chromaDir), chromaAtCreate);
  assert.deepEqual(entryNames(store.chromaDir).filter((name) => name.startsWith(".")), [], "leftover not removed");
});

Deno.test("restore --to a file exits 2 naming it; --to a folder that holds files is refused (exit 3) unless --force", async () => {
  using store = tempStore({ dbMiB: 1 });
  using target = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const file = join(target.path, "a-file");
  Deno.writeTextFileSync(file, "not a folder");
  for (const to of [file, join(file, "below")]) {
    const run = await runCli(["restore", stamp, "--to", to], { env });
    assert.equal(run.code, 2, `--to ${to}: exit ${run.code}: ${run.stderr}`);
    const error = errorLine(run.stderr);
    assert.ok(error.includes(`--to ${to}`), `the message does not name the path: ${error}`);
    assert.match(error, /not a folder; give a folder that is empty or does not exist yet/);
    assert.doesNotMatch(error, /os error/);
  }
  assert.equal(Deno.readTextFileSync(file), "not a folder");
  for (const flag of ["--db", "--registry", "--chroma-dir"]) {
    const below = join(file, "below");
    const run = await runCli(["restore", stamp, "--confirm-service-stopped", flag, below], { env });
    assert.equal(run.code, 2, `${flag} ${below}: exit ${run.code}: ${run.stderr}`);
    assert.ok(errorLine(run.stderr).includes(`${below} lies under a file, not a folder; check ${flag}`), run.stderr);
  }

  const other = join(target.path, "other");
  Deno.mkdirSync(other);
  const mine = new DatabaseSync(join(other, "atocore.db"));
  mine.exec("CREATE TABLE mine (x); INSERT INTO mine VALUES (42)");
  mine.close();
  const before = treeDigest(other);
  const refused = await runCli(["restore", stamp, "--to", other], { env });
  assert.equal(refused.code, 3, refused.stderr);
  assert.ok(errorLine(refused.stderr).includes(`--to ${other} already holds atocore.db`), refused.stderr);
  assert.match(refused.stderr, /nothing was changed.*--force/);
  assert.deepEqual(treeDigest(other), before, "the other database was touched");
  const forced = await runCli(["restore", stamp, "--to", other, "--force"], { env });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(await projectMarker(join(other, "atocore.db")), "atlas");

  const empty = join(target.path, "empty");
  Deno.mkdirSync(empty);
  const intoEmpty = await runCli(["restore", stamp, "--to", empty], { env });
  assert.equal(intoEmpty.code, 0, intoEmpty.stderr);
  const forceAlone = await runCli(["restore", stamp, "--confirm-service-stopped", "--force"], { env });
  assert.equal(forceAlone.code, 2, forceAlone.stderr);
  assert.match(forceAlone.stderr, /--force goes with --to/);
});

Deno.test("a live registry that is not JSON does not block the default restore: the pre-restore snapshot keeps it as is", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const registryAtCreate = Deno.readTextFileSync(store.registry);
  const broken = '{"projects": [{"id": "half-written"';
  Deno.writeTextFileSync(store.registry, broken);
  const create = await runCli(["create"], { env });
  assert.equal(create.code, 1, "create must still refuse a registry that is not JSON");
  assert.match(create.stderr, /registry is not JSON/);

  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(Deno.readTextFileSync(store.registry), registryAtCreate);
  assert.match(run.stderr, /"event":"pre_restore_registry_kept_invalid"/);
  const pre = (run.json as { pre_restore_snapshot: string }).pre_restore_snapshot;
  const preRoot = join(store.backupDir, "snapshots", pre);
  assert.equal(Deno.readTextFileSync(join(preRoot, "config", "project-registry.json")), broken, "not kept as it was");
  const metadata = JSON.parse(Deno.readTextFileSync(join(preRoot, "backup-metadata.json")));
  assert.match(metadata.registry_kept_invalid, /JSON/);
  const validated = await runCli(["validate", pre], { env });
  assert.equal(validated.code, 0, validated.stdout);
  assert.deepEqual((validated.json as { errors: string[] }).errors, []);
  assert.equal((validated.json as { registry_ok: boolean }).registry_ok, false);
  const drilled = await runCli(["drill", pre], { env });
  assert.equal(drilled.code, 0, drilled.stdout);

  const undo = await runCli(["restore", pre, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(undo.code, 0, undo.stderr);
  assert.equal(Deno.readTextFileSync(store.registry), broken, "the undo must give the file back as it was");
});

Deno.test("from a read-only backup folder restore --to and --no-pre-snapshot work, and wait for a lock held elsewhere", async () => {
  using store = tempStore({ dbMiB: 1 });
  using target = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  changeLiveStore(store);
  const mount = readOnlyBindMount(store.backupDir);
  if (typeof mount === "string") return skipBecause(mount);
  using readOnly = mount;
  const roEnv = { ...env, ATOCORE_BACKUP_DIR: readOnly.path };

  const rebuilt = await runCli(["restore", stamp, "--to", join(target.path, "first")], { env: roEnv });
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.match(rebuilt.stderr, /"event":"backup_dir_locked_read_only"/);
  assert.equal(await projectMarker(join(target.path, "first", "atocore.db")), "atlas");
  {
    // A cleanup through a writable path to the same folder holds the lock: the read-only run waits for nobody.
    using _lock = acquireLock(store.backupDir, "cleanup");
    const locked = await runCli(["restore", stamp, "--to", join(target.path, "second")], { env: roEnv });
    assert.equal(locked.code, 4, locked.stderr);
    assert.deepEqual(entryNames(join(target.path, "second")), []);
  }
  const withPre = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: roEnv });
  assert.equal(withPre.code, 1, "the pre-restore snapshot needs a backup folder it may write");
  assert.match(withPre.stderr, /lock file/);
  assert.equal(await projectMarker(store.db), "changed");

  const live = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env: roEnv });
  assert.equal(live.code, 0, live.stderr);
  assert.match(live.stderr, /"event":"restore_needs_not_recorded"/, "no record of what it needs, and says so");
  assert.equal(await projectMarker(store.db), "atlas");

  Deno.removeSync(join(store.backupDir, ".lock"));
  const unlocked = await runCli(["restore", stamp, "--to", join(target.path, "third")], { env: roEnv });
  assert.equal(unlocked.code, 0, unlocked.stderr);
  assert.match(unlocked.stderr, /"event":"backup_dir_not_locked"/);
});

Deno.test("restore --to and --no-pre-snapshot leave a killed run's leftovers in .staging/ and .trash/ to the next that writes there", async () => {
  using store = tempStore({ dbMiB: 1 });
  using target = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const leftovers = [join(store.backupDir, ".staging", "20200101T000000Z"), join(store.backupDir, ".trash", "x")];
  for (const path of leftovers) Deno.mkdirSync(join(path, "db"), { recursive: true });
  const runs = [["--to", join(target.path, "to")], ["--confirm-service-stopped", "--no-pre-snapshot"]];
  for (const args of runs) {
    const run = await runCli(["restore", stamp, ...args], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /stale_leftover_removed/, args.join(" "));
    for (const path of leftovers) assert.ok(existsSync(join(path, "db")), `${args.join(" ")} removed ${path}`);
  }
  const create = await runCli(["create"], { env });
  assert.equal(create.code, 0, create.stderr);
  for (const path of leftovers) assert.ok(!existsSync(path), `create left ${path}`);
});

/** Python holding a read transaction on a database (its snapshot reads the -wal) until its stdin closes. */
const READER = "import sqlite3, sys\n" +
  "db = sqlite3.connect(sys.argv[1], isolation_level=None); db.execute('BEGIN')\n" +
  "db.execute('SELECT name FROM projects WHERE id = 1').fetchone()\n" +
  "print('reading', flush=True); sys.stdin.read()";

Deno.test("a checkpoint a reader keeps from finishing stops the restore, the -wal kept with every committed row", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  changeLiveStore(store);
  const changed = liveDigest(store);
  const reader = new Deno.Command("python3", { args: ["-c", READER, store.db], stdin: "piped", stdout: "piped" })
    .spawn();
  try {
    const first = await reader.stdout.pipeThrough(new TextDecoderStream()).getReader().read();
    assert.equal(first.value?.trim(), "reading");
    const args = ["restore", stamp, "--confirm-service-stopped", "--ignore-open-files"];
    const run = await runCli(args, { env });
    assert.equal(run.code, 1, run.stderr);
    const error = errorLine(run.stderr);
    assert.match(error, /restore failed while checkpointing the database .*the checkpoint could not finish/);
    assert.ok(error.includes(`${store.db}-wal was kept, so the live database keeps every committed row`), error);
    assert.match(error, /the database, registry and Chroma were not changed; fix the cause and run again/);
    assert.match(error, /the pre-restore snapshot \d{8}T\d{6}Z is kept/);
    assert.ok(Deno.statSync(`${store.db}-wal`).size > 0, "the -wal was removed");
  } finally {
    await reader.stdin.close();
    await reader.status;
  }
  assert.equal(await projectMarker(store.db), "changed");
  assert.equal(await sqliteIntegrity(store.db), "ok");
  assert.deepEqual(withoutDatabases(liveDigest(store)), withoutDatabases(changed));
});

/** The one line of a CLI's stderr that is not a JSON log line. */
function errorLine(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(lines.length, 1, `not one line: ${stderr}`);
  return lines[0];
}

/** A digest without the SQLite files, whose bytes a backup-API copy does not keep. */
function withoutDatabases(digest: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(digest).filter(([path]) => !/\.(db|sqlite3)$/.test(path)));
}

/** Copy a folder tree (files and folders only) into `to`, which exists when `into` is set. */
function copyTree(from: string, to: string, into = false): void {
  if (!into) Deno.mkdirSync(to);
  for (const entry of Deno.readDirSync(from)) {
    if (entry.isDirectory) copyTree(join(from, entry.name), join(to, entry.name));
    else if (entry.isSymlink) Deno.symlinkSync(Deno.readLinkSync(join(from, entry.name)), join(to, entry.name));
    else Deno.copyFileSync(join(from, entry.name), join(to, entry.name));
  }
}

Deno.test("a live -wal that is a folder is never emptied by restore: what it holds is kept", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store), []);
  const wal = `${store.db}-wal`;
  try {
    Deno.removeSync(wal);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  } // none there after create's checkpoint, or an empty one
  Deno.mkdirSync(wal);
  Deno.writeTextFileSync(join(wal, "precious.txt"), "keep me");
  const run = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-chroma"], { env: storeEnv(store) });
  assert.notEqual(run.code, 0, "a folder where the -wal should be stops the restore");
  assert.equal(Deno.readTextFileSync(join(wal, "precious.txt")), "keep me");
});

Deno.test("restore --to a folder it cannot make or write in (a read-only mount) names that failure and claims no partial rebuild", async () => {
  if (Deno.uid() !== 0) return skipBecause("a read-only bind mount needs root");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  using empty = tempDir();
  const mounted = readOnlyBindMount(empty.path);
  if (typeof mounted === "string") return skipBecause(mounted);
  using mount = mounted;
  for (const [target, what] of [[join(mount.path, "x"), "make"], [mount.path, "write in"]]) {
    const run = await runCli(["restore", stamp, "--to", target], { env: storeEnv(store) });
    assert.equal(run.code, 1, run.stderr);
    const line = run.stderr.trim().split("\n").at(-1)!;
    assert.ok(line.includes(`cannot ${what} ${target}`), line);
    assert.match(line, /read-only file system/i);
    assert.doesNotMatch(line, /partly rebuilt|staging the Chroma copy|--force/);
  }
});
