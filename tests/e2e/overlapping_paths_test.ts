/**
 * Paths that overlap (issue 10, point 2): every command refuses them with exit 2 before touching anything, checked
 * on real paths (links resolved, missing paths through their deepest existing parent, bind mounts by identity);
 * `config` lists them.
 */
import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { resolveConfig } from "../../src/config.ts";
import { pathOverlaps } from "../../src/path_overlap.ts";
import { restoreIntentPath } from "../../src/snapshot/layout.ts";
import { treeDigest } from "../_faults.ts";
import { createdStamp, runCli, skipBecause, storeEnv, tempDir, tempStore } from "../_helpers.ts";

Deno.test("a backup folder moved inside the Chroma folder: restore and create --chroma refuse (exit 2), nothing is deleted", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const moved = join(store.chromaDir, "backups");
  Deno.renameSync(store.backupDir, moved);
  const env = { ...storeEnv(store), ATOCORE_BACKUP_DIR: moved };
  const before = treeDigest(store.dataDir);

  const commands = [
    ["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"],
    ["create", "--chroma"],
    ["create"],
    ["cleanup", "--confirm", "--keep-daily", "1"],
    ["list"],
    ["validate", "--all"],
    ["drill", "--latest"],
  ];
  for (const args of commands) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")} must refuse: ${run.stderr}`);
    const errors = run.stderr.trim().split("\n");
    assert.equal(errors.length, 1, run.stderr);
    assert.match(errors[0], /paths overlap: the backup folder .* is inside the Chroma folder /);
    assert.ok(errors[0].includes(moved) && errors[0].includes("ATOCORE_BACKUP_DIR"), errors[0]);
    assert.deepEqual(treeDigest(store.dataDir), before, `${args.join(" ")} changed nothing`);
  }
  assert.ok(Deno.statSync(join(moved, "snapshots", stamp, "backup-metadata.json")).isFile);

  const config = await runCli(["config", "--json"], { env });
  assert.equal(config.code, 2, "config reports the overlap and exits 2");
  const overlaps = (config.json as { overlaps: string[] }).overlaps;
  assert.equal(overlaps.length, 1, JSON.stringify(overlaps));
  assert.match(overlaps[0], /^the backup folder .* is inside the Chroma folder /);
});

Deno.test("a registry at the record a restore keeps beside the database is refused (exit 2): restore removed it", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const env = { ...storeEnv(store), ATOCORE_PROJECT_REGISTRY_PATH: restoreIntentPath(store.db) };
  Deno.copyFileSync(store.registry, env.ATOCORE_PROJECT_REGISTRY_PATH);
  const before = treeDigest(store.dataDir);
  for (const args of [["restore", stamp, "--confirm-service-stopped"], ["create"]]) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr.trim(), /^atocore-backup: error: paths overlap: the record of a restore in progress /);
    assert.deepEqual(treeDigest(store.dataDir), before, `${args[0]} changed nothing`);
  }
});

Deno.test("overlaps are found through symbolic links and for paths that do not exist yet", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using outside = tempDir();
  const link = join(outside.path, "backups-link");
  Deno.symlinkSync(store.chromaDir, link);
  const throughLink = await runCli(["list"], { env: { ...storeEnv(store), ATOCORE_BACKUP_DIR: join(link, "b") } });
  assert.equal(throughLink.code, 2, throughLink.stderr);
  assert.match(throughLink.stderr, /the backup folder .* is inside the Chroma folder /);
  assert.equal([...Deno.readDirSync(store.chromaDir)].some((entry) => entry.name === "b"), false);

  const missing = join(link, "not", "yet", "there");
  const notYet = await runCli(["create", "--chroma", "--backup-dir", missing], { env: storeEnv(store) });
  assert.equal(notYet.code, 2, notYet.stderr);
  assert.match(notYet.stderr, /--backup-dir\) is inside the Chroma folder/);
  assert.equal([...Deno.readDirSync(store.chromaDir)].some((entry) => entry.name === "not"), false, "nothing made");

  const dangling = join(outside.path, "dangling");
  Deno.symlinkSync(join(store.chromaDir, "made-later"), dangling);
  const config = resolveConfig({ backupDir: dangling }, { ATOCORE_DATA_DIR: store.dataDir }, outside.path);
  assert.match(pathOverlaps(config)[0] ?? "", /^the backup folder .* is inside the Chroma folder /);
});

Deno.test("every pair of parts that overlap is found; a sound store has none", () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const overlapsOf = (env: Record<string, string>) =>
    pathOverlaps(resolveConfig({}, { ATOCORE_DATA_DIR: store.dataDir, ...env }, store.dataDir));
  assert.deepEqual(overlapsOf({}), []);
  const record = restoreIntentPath(store.db);
  const cases: [Record<string, string>, RegExp][] = [
    [{ ATOCORE_DB_PATH: join(store.backupDir, "atocore.db") }, /^the database .* is inside the backup folder /],
    [{ ATOCORE_PROJECT_REGISTRY_PATH: join(store.backupDir, "r.json") }, /^the registry .* inside the backup folder/],
    [{ ATOCORE_DB_PATH: join(store.chromaDir, "atocore.db") }, /^the database .* is inside the Chroma folder /],
    [{ ATOCORE_PROJECT_REGISTRY_PATH: join(store.chromaDir, "r.json") }, /^the registry .* inside the Chroma folder/],
    [{ ATOCORE_CHROMA_PATH: join(store.backupDir, "chroma") }, /^the Chroma folder .* is inside the backup folder /],
    [{ ATOCORE_BACKUP_DIR: store.chromaDir }, /^the Chroma folder .* is the same as the backup folder /],
    [{ ATOCORE_PROJECT_REGISTRY_PATH: store.db }, /^the database .* is the same as the registry /],
    [{ ATOCORE_PROJECT_REGISTRY_PATH: `${store.db}-wal` }, /^the database's -wal .* is the same as the registry /],
    [{ ATOCORE_BACKUP_DIR: store.dataDir }, /^the database .* is inside the backup folder /],
    [{ ATOCORE_CHROMA_PATH: store.dataDir }, /^the database .* is inside the Chroma folder /],
    [{ ATOCORE_PROJECT_REGISTRY_PATH: record }, /^the record of a restore in progress .* is the same as the registry /],
    [{ ATOCORE_CHROMA_PATH: record }, /^the record of a restore in progress .* is the same as the Chroma folder /],
    [
      { ATOCORE_PROJECT_REGISTRY_PATH: join(dirname(store.db), `.${basename(store.db)}.tmp-1-a`) },
      /^the registry .* is named as a temporary copy of the database .*, which restore removes$/,
    ],
    [
      { ATOCORE_DB_PATH: join(dirname(store.registry), `.${basename(store.registry)}.tmp-x`) },
      /^the database .* is named as a temporary copy of the registry .*, which restore removes$/,
    ],
  ];
  for (const [env, expected] of cases) {
    const found = overlapsOf(env);
    assert.ok(found.length >= 1, JSON.stringify(env));
    assert.match(found[0], expected, JSON.stringify(found));
  }
  // Nothing lies inside an existing file: a backup folder through one fails on its own (the lock names it).
  assert.deepEqual(overlapsOf({ ATOCORE_BACKUP_DIR: join(store.registry, "backups") }), []);
  // A hard link is the same file, whatever its name.
  const hardLink = join(store.dataDir, "registry-hard-link.json");
  Deno.linkSync(store.db, hardLink);
  assert.match(overlapsOf({ ATOCORE_PROJECT_REGISTRY_PATH: hardLink })[0], /is the same as the registry/);
});

Deno.test("the Chroma folder bind-mounted elsewhere is still seen: a backup folder inside the mount is refused (root)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using mountPoint = tempDir();
  const mounted = new Deno.Command("mount", { args: ["--bind", store.chromaDir, mountPoint.path], stderr: "piped" })
    .outputSync();
  if (!mounted.success) {
    return skipBecause(`mount --bind not permitted here (${new TextDecoder().decode(mounted.stderr).trim()})`);
  }
  try {
    const backupDir = join(mountPoint.path, "backups");
    const run = await runCli(["create", "--chroma"], { env: { ...storeEnv(store), ATOCORE_BACKUP_DIR: backupDir } });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /the backup folder .* is inside the Chroma folder /);
    assert.equal([...Deno.readDirSync(store.chromaDir)].some((entry) => entry.name === "backups"), false);
  } finally {
    new Deno.Command("umount", { args: [mountPoint.path] }).outputSync();
  }
});

Deno.test("a live database or registry hard-linked to a snapshot's file is refused (exit 2); the snapshot stays valid", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const snapshot = join(store.backupDir, "snapshots", stamp);
  for (
    const [live, copy] of [[store.db, join(snapshot, "db", "atocore.db")], [
      store.registry,
      join(snapshot, "config", "project-registry.json"),
    ]]
  ) {
    const saved = `${live}.saved`;
    Deno.renameSync(live, saved);
    Deno.linkSync(copy, live);
    const config = await runCli(["config"], { env });
    assert.equal(config.code, 2, config.stdout);
    assert.match(config.stdout, new RegExp(`is a hard link of the snapshot file ${copy.replaceAll(".", "\\.")}`));
    const create = await runCli(["create"], { env });
    assert.equal(create.code, 2, create.stderr);
    assert.match(create.stderr, /paths overlap: .* is a hard link of the snapshot file /);
    Deno.removeSync(live);
    Deno.renameSync(saved, live);
  }
  assert.equal((await runCli(["validate", stamp], { env })).code, 0);
});

Deno.test("config lists a backup folder inside a snapshot as a problem (exit 2), as every other command refuses it", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const inside = join(store.backupDir, "snapshots", stamp, "x");
  const env = { ...storeEnv(store), ATOCORE_BACKUP_DIR: inside };
  const config = await runCli(["config", "--json"], { env });
  assert.equal(config.code, 2, config.stderr);
  const problems = (config.json as { overlaps: string[] }).overlaps;
  assert.deepEqual(problems.map((problem) => problem.split(",")[0]), [
    `the backup folder ${inside} is in the snapshot ${join(store.backupDir, "snapshots", stamp)}`,
  ]);
  const list = await runCli(["list"], { env });
  assert.equal(list.code, 2, list.stderr);
});
