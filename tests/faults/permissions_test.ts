/**
 * Permission denied on the backup folder, the database and the registry: one-line
 * errors that name the path, exit 1, nothing published, no staging left. On a Chroma
 * file: the database and registry are still published, without Chroma, exit 1.
 * Root ignores file modes, so the CLI runs as `nobody` (through `setpriv`);
 * skipped with a printed reason where that cannot be done.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cliCommand,
  cliEnv,
  type CliRun,
  cliRunOf,
  relocateSnapshot,
  runCli,
  storeEnv,
  tempStore,
} from "../_helpers.ts";
import {
  chownToNobody,
  entryNames,
  liveDigest,
  NOBODY_GID,
  NOBODY_UID,
  skipBecause,
  unprivilegedCli,
} from "../_faults.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";
import { bindReadOnly } from "../_mount.ts";

/** The one error line of a run (JSON event lines aside). */
function errorLine(run: CliRun): string {
  const lines = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(lines.length, 1, `not one line of error: ${run.stderr}`);
  assert.match(lines[0], /^atocore-backup: error: /);
  return lines[0];
}

/** A sample store owned by `nobody`, as a service account owns its store, with one snapshot. */
async function nobodysStore() {
  const store = tempStore({ dbMiB: 2, chromaMiB: 1 });
  const created = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(created.code, 0, created.stderr);
  chownToNobody(store.dataDir);
  return store;
}

function firstSegment(chromaDir: string): string {
  return join(chromaDir, entryNames(chromaDir).find((name) => !name.startsWith("chroma.sqlite3"))!);
}

/** Live paths made unreadable to `nobody`, one at a time, and what the error must name. */
const UNREADABLE = [
  { name: "the database", path: (store: { db: string }) => store.db, named: /database .*atocore\.db/ },
  { name: "the registry", path: (store: { registry: string }) => store.registry, named: /registry .*\.json/ },
];

/** Chroma paths made unreadable to `nobody`, one at a time: Chroma is left out, the rest is published. */
const UNREADABLE_CHROMA = [
  { name: "a Chroma segment file", path: (chromaDir: string) => join(firstSegment(chromaDir), "data_level0.bin") },
  { name: "a Chroma segment folder", path: (chromaDir: string) => firstSegment(chromaDir) },
  { name: "the Chroma database", path: (chromaDir: string) => join(chromaDir, "chroma.sqlite3") },
];

for (const unreadable of UNREADABLE) {
  Deno.test(`create as nobody with ${unreadable.name} unreadable: one line naming it, exit 1, nothing published`, async () => {
    const cli = unprivilegedCli();
    if (typeof cli === "string") return skipBecause(cli);
    using _cli = cli;
    using store = await nobodysStore();
    const published = entryNames(join(store.backupDir, "snapshots"));
    const path = unreadable.path(store);
    Deno.chmodSync(path, 0o000);
    const before = liveDigest(store);
    const run = await cli.run(["create", "--chroma"], storeEnv(store));
    assert.equal(run.code, 1, `exit ${run.code}: ${run.stderr}`);
    const error = errorLine(run);
    assert.match(error, unreadable.named);
    assert.match(error, /permission denied|unable to open/);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), published, "something was published");
    assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "staging left behind");
    assert.deepEqual(liveDigest(store), before, "live store changed");
  });
}

for (const unreadable of UNREADABLE_CHROMA) {
  Deno.test(`create as nobody with ${unreadable.name} unreadable: published without Chroma, saying why, exit 1`, async () => {
    const cli = unprivilegedCli();
    if (typeof cli === "string") return skipBecause(cli);
    using _cli = cli;
    using store = await nobodysStore();
    const published = entryNames(join(store.backupDir, "snapshots"));
    Deno.chmodSync(unreadable.path(store.chromaDir), 0o000);
    const before = liveDigest(store);
    const run = await cli.run(["create", "--chroma"], storeEnv(store));
    assert.equal(run.code, 1, `exit ${run.code}: ${run.stderr}`);
    const result = run.json as { stamp: string; backup_root: string; chroma_error: string };
    assert.match(result.chroma_error, /^the copy failed \((permission denied|unable to open)/);
    assert.match(run.stderr, /"event":"chroma_backup_failed"/);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [...published, result.stamp].sort());
    assert.deepEqual(entryNames(result.backup_root), ["backup-metadata.json", "config", "db"]);
    assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "staging left behind");
    assert.deepEqual(liveDigest(store), before, "live store changed");
  });
}

Deno.test("a backup folder nobody may not write: create names the lock file (exit 1); validate and list still work", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = await nobodysStore();
  new Deno.Command("chown", { args: ["-R", "0:0", store.backupDir] }).outputSync();
  const env = storeEnv(store);
  const created = await cli.run(["create"], env);
  assert.equal(created.code, 1, created.stderr);
  assert.match(errorLine(created), new RegExp(`lock file ${join(store.backupDir, ".lock")} \\(permission denied\\)`));
  assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1, "the snapshots changed");
  const validated = await cli.run(["validate", "--all"], env);
  assert.equal(validated.code, 0, `validate on a read-only backup folder: ${validated.stdout} ${validated.stderr}`);
  const listed = await cli.run(["list"], env);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal((listed.json as { backups: unknown[] }).backups.length, 1);
});

Deno.test("a backup folder nobody may not read: create, validate and list fail with one line naming it (exit 1)", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = await nobodysStore();
  new Deno.Command("chown", { args: ["-R", "0:0", store.backupDir] }).outputSync();
  Deno.chmodSync(store.backupDir, 0o700);
  const env = storeEnv(store);
  for (const args of [["create"], ["validate", "--all"], ["list"]]) {
    const run = await cli.run(args, env);
    assert.equal(run.code, 1, `${args.join(" ")}: exit ${run.code}: ${run.stderr}`);
    assert.ok(errorLine(run).includes(store.backupDir), `${args.join(" ")} does not name the folder: ${run.stderr}`);
  }
});

Deno.test("restore as nobody into a live folder it may not write: one line naming the database, exit 1, nothing changed", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = await nobodysStore();
  const stamp = entryNames(join(store.backupDir, "snapshots"))[0];
  Deno.chmodSync(store.dataDir, 0o555);
  const before = liveDigest(store);
  const run = await cli.run(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], storeEnv(store));
  assert.equal(run.code, 1, `exit ${run.code}: ${run.stderr}`);
  const error = errorLine(run);
  assert.ok(error.includes(store.db), `the message does not name the database: ${error}`);
  assert.match(error, /permission denied.*not changed/);
  Deno.chmodSync(store.dataDir, 0o755);
  assert.deepEqual(liveDigest(store), before, "live store changed");
});

Deno.test("a snapshot file nobody may not read: validate reports it and goes on (exit 1), restore refuses (exit 3)", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = await nobodysStore();
  const good = entryNames(join(store.backupDir, "snapshots"))[0];
  const damaged = "20200101T000000Z";
  new Deno.Command("cp", {
    args: ["-a", join(store.backupDir, "snapshots", good), join(store.backupDir, "snapshots", damaged)],
  })
    .outputSync();
  relocateSnapshot(join(store.backupDir, "snapshots", damaged));
  const segment = entryNames(join(store.backupDir, "snapshots", damaged, "chroma")).find((name) => name.includes("-"))!;
  Deno.chmodSync(join(store.backupDir, "snapshots", damaged, "chroma", segment, "data_level0.bin"), 0o000);
  const env = storeEnv(store);
  const validated = await cli.run(["validate", "--all"], env);
  assert.equal(validated.code, 1, validated.stderr);
  const results = (validated.json as { results: { stamp: string; valid: boolean; errors: string[] }[] }).results;
  const byStamp = Object.fromEntries(results.map((result) => [result.stamp, result]));
  assert.ok(byStamp[good].valid, `the readable snapshot was not validated: ${JSON.stringify(byStamp[good])}`);
  assert.ok(
    byStamp[damaged].errors.some((error) => /unreadable.*permission denied.*data_level0\.bin/.test(error)),
    `the unreadable file is not named: ${byStamp[damaged].errors}`,
  );
  const before = liveDigest(store);
  const restored = await cli.run(["restore", damaged, "--confirm-service-stopped"], env);
  assert.equal(restored.code, 3, restored.stderr);
  assert.deepEqual(liveDigest(store), before, "live store changed");

  const closed = join(store.backupDir, "snapshots", damaged, "db"); // a folder it may not enter: named, with a next step
  Deno.chmodSync(closed, 0o700);
  Deno.chownSync(closed, 0, 0);
  const one = await cli.run(["validate", damaged], env);
  assert.equal(one.code, 1, one.stderr);
  assert.match(
    errorLine(one),
    /[Pp]ermission denied .*db\/atocore\.db.*; check that this user may read and write that path/,
  );
  const all = await cli.run(["validate", "--all", "--quick"], env);
  const listed = (all.json as { results: { stamp: string; errors: string[] }[] }).results;
  const denied = listed.find((result) => result.stamp === damaged)!.errors;
  assert.ok(denied.some((error) => /permission denied.*db\/atocore\.db/i.test(error)), denied.join("; "));
});

Deno.test("a backup folder on a read-only mount (root too): create names the lock file (exit 1); validate works", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  assert.equal((await runCli(["create"], { env })).code, 0);
  const mounted = bindReadOnly(store.backupDir);
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const created = await runCli(["create"], { env });
  assert.equal(created.code, 1, created.stderr);
  assert.ok(errorLine(created).includes(join(store.backupDir, ".lock")), created.stderr);
  const validated = await runCli(["validate", "--all"], { env });
  assert.equal(validated.code, 0, validated.stdout);
  const cleaned = await runCli(["cleanup", "--confirm", "--keep-daily", "0"], { env });
  assert.equal(cleaned.code, 1, cleaned.stderr);
  assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1);
});

Deno.test("a pack of a folder repository this user may not read: restore --from-remote names the access (exit 1)", async () => {
  if (Deno.uid() !== 0) return skipBecause("not running as root, so cannot drop the capability to read any file");
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const packs = join(r.repoDir, "packs");
  const shard = entryNames(packs)[0];
  const pack = join(packs, shard, entryNames(join(packs, shard))[0]);
  Deno.chownSync(pack, NOBODY_UID, NOBODY_GID);
  Deno.chmodSync(pack, 0o600);
  const to = join(r.work, "to");
  const caps = "-dac_override,-dac_read_search";
  const output = await new Deno.Command("setpriv", {
    args: [
      `--bounding-set=${caps}`,
      `--inh-caps=${caps}`,
      ...cliCommand(["restore", stamp, "--from-remote", "--to", to]),
    ],
    env: cliEnv(r.envWithIdentity),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const run = cliRunOf(output);
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`error: fetching \\S+ stopped: this user may not read ${pack} \\(permission denied\\)`),
  );
  assert.doesNotMatch(run.stderr, /cannot be read intact|--scratch-dir/);
});
