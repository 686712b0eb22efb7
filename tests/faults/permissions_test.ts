/**
 * Permission denied on the backup folder, the database and the registry: one-line
 * errors that name the path, exit 1, nothing published, no staging left. On a Chroma
 * file: the database and registry are still published, without Chroma, exit 1.
 * Root ignores file modes, so the CLI runs as `nobody` (through `setpriv`);
 * skipped with a printed reason where that cannot be done.
 */
import assert from "node:assert/strict";
import { lchownSync } from "node:fs";
import { join } from "node:path";
import {
  cliCommand,
  cliEnv,
  type CliRun,
  cliRunOf,
  relocateSnapshot,
  runCli,
  skipOutsideCi,
  storeEnv,
  tempDir,
  tempStore,
  toolFor,
} from "../_helpers.ts";
import { statOrNull } from "../../src/fs/probe.ts";
import {
  chownToNobody,
  entryNames,
  liveDigest,
  NOBODY_GID,
  NOBODY_UID,
  restoreStoppedAt,
  skipBecause,
  unprivilegedCli,
} from "../_faults.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";
import { bindReadOnly } from "../_mount.ts";
import { generateIdentity } from "../../src/crypto/age.ts";
import { walkTree } from "../../src/fs/tree.ts";
import { restoreIntentPath } from "../../src/snapshot/layout.ts";

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

Deno.test("a restore as root gives its pre-restore snapshot to the backup folder's owner: validate, drill and cleanup as that user work", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = await nobodysStore();
  const env = storeEnv(store);
  const [stamp] = entryNames(join(store.backupDir, "snapshots"));
  Deno.chmodSync(store.db, 0o640); // as a service's database is: its copy is then nobody else's to read
  const restored = await runCli(["restore", stamp, "--confirm-service-stopped", "--chroma"], { env });
  assert.equal(restored.code, 0, restored.stderr);
  const pre = entryNames(join(store.backupDir, "snapshots")).find((name) => name !== stamp)!;
  const root = join(store.backupDir, "snapshots", pre);
  const owners = new Set([root, ...walkTree(root).map((entry) => join(root, entry.path))].map((path) => {
    const info = Deno.lstatSync(path);
    return info.isSymlink ? `${NOBODY_UID}:${NOBODY_GID}` : `${info.uid}:${info.gid}`;
  }));
  assert.deepEqual([...owners], [`${NOBODY_UID}:${NOBODY_GID}`], `the pre-restore snapshot ${pre} is not nobody's`);
  const record = Deno.lstatSync(join(store.backupDir, "integrity", `${pre}.json`));
  assert.deepEqual(
    [record.uid, record.gid],
    [NOBODY_UID, NOBODY_GID],
    `the integrity record of ${pre} is not nobody's`,
  );
  const validated = await cli.run(["validate", "--all"], env);
  assert.equal(validated.code, 0, `validate --all: ${validated.stdout} ${validated.stderr}`);
  const drilled = await cli.run(["drill", "--latest"], env);
  assert.equal(drilled.code, 0, `drill --latest: ${drilled.stderr}`);
  assert.equal((drilled.json as { stamp: string }).stamp, pre);
  const created = await cli.run(["create"], env);
  assert.equal(created.code, 0, created.stderr);
  const retention = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0", "--keep-pre-restore-days", "0"];
  const cleaned = await cli.run(["cleanup", "--confirm", ...retention], env);
  assert.equal(cleaned.code, 0, `cleanup --confirm: ${cleaned.stderr}`);
  assert.ok(!entryNames(join(store.backupDir, "snapshots")).includes(pre), "the pre-restore snapshot was kept");
});

Deno.test("a root restore of a live store whose files are gone gives what it makes to their folders' owner, not root", async () => {
  if (Deno.uid() !== 0) return skipBecause("not running as root: the files would be this user's anyway");
  using store = await nobodysStore();
  const [stamp] = entryNames(join(store.backupDir, "snapshots"));
  for (const path of [store.db, store.registry, store.chromaDir]) Deno.removeSync(path, { recursive: true });
  const run = await runCli([`restore`, stamp, "--confirm-service-stopped", "--no-pre-snapshot"], {
    env: storeEnv(store),
  });
  assert.equal(run.code, 0, run.stderr);
  const made = [
    store.db,
    store.registry,
    store.chromaDir,
    ...entryNames(store.chromaDir).map((name) => join(store.chromaDir, name)),
  ];
  for (const path of made) {
    const info = Deno.lstatSync(path);
    assert.equal(
      `${info.uid}:${info.gid}`,
      `${NOBODY_UID}:${NOBODY_GID}`,
      `${path} is not nobody's (the service's user writes it)`,
    );
  }
});

Deno.test("a restore as root gives its records, beside the database and in the backup folder, to their folders' owner", async () => {
  if (Deno.uid() !== 0) return skipBecause("not running as root: the records would be this user's anyway");
  using store = await nobodysStore();
  const [stamp] = entryNames(join(store.backupDir, "snapshots"));
  const owners: Record<string, string> = {};
  const run = await restoreStoppedAt(store, [stamp, "--confirm-service-stopped"], "restore_db_replacing", () => {
    const needs = entryNames(store.backupDir).filter((name) => name.startsWith(".restore-needs-"));
    for (const path of [restoreIntentPath(store.db), ...needs.map((name) => join(store.backupDir, name))]) {
      const info = Deno.lstatSync(path);
      owners[path] = `${info.uid}:${info.gid}`;
    }
  });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(Object.keys(owners).length, 2, `the intent and the needs record while the restore ran: ${run.stderr}`);
  for (const [path, owner] of Object.entries(owners)) {
    assert.equal(owner, `${NOBODY_UID}:${NOBODY_GID}`, `${path} is not nobody's (the service's user finishes it)`);
  }
});

Deno.test("a snapshot nobody may not read whole: validate, restore, push and drill name the path, not a verdict (exit 1)", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = await nobodysStore();
  const good = entryNames(join(store.backupDir, "snapshots"))[0];
  const damaged = "20200101T000000Z";
  const root = join(store.backupDir, "snapshots", damaged);
  new Deno.Command("cp", { args: ["-a", join(store.backupDir, "snapshots", good), root] }).outputSync();
  relocateSnapshot(root);
  const segment = entryNames(join(root, "chroma")).find((name) => name.includes("-"))!;
  const file = join(root, "chroma", segment, "data_level0.bin");
  const modeOf = (path: string) => Deno.statSync(path).mode! & 0o777;
  const fileMode = modeOf(file);
  Deno.chmodSync(file, 0o000);
  const env = storeEnv(store);
  const validated = await cli.run(["validate", "--all"], env);
  assert.equal(validated.code, 1, validated.stderr);
  const results = (validated.json as { results: { stamp: string; valid: boolean; unreadable?: string }[] }).results;
  const byStamp = Object.fromEntries(results.map((result) => [result.stamp, result]));
  assert.ok(byStamp[good].valid, `the readable snapshot was not validated: ${JSON.stringify(byStamp[good])}`);
  assert.equal(byStamp[damaged].unreadable, file, JSON.stringify(byStamp[damaged]));
  Deno.chmodSync(file, fileMode);
  const before = liveDigest(store);
  using repoDir = tempDir("atocore-repo-");
  chownToNobody(repoDir.path);
  const repo = join(repoDir.path, "repository"); // nobody's, as the store is
  const init = await cli.run(["remote", "init", "--remote", repo, "--recipient", generateIdentity().recipient], env);
  assert.equal(init.code, 0, init.stderr);
  const push = ["push", damaged, "--remote", repo, "--allow-unauthenticated"];
  // each says what it may not read and what to do, and claims no verdict on what it did not read
  for (const [closed, named] of [[file, file], [join(root, "db"), join(root, "db")], [root, root]]) {
    const mode = modeOf(closed);
    Deno.chownSync(closed, 0, 0); // root's alone
    Deno.chmodSync(closed, 0o700);
    const said = new RegExp(
      `^atocore-backup: error: snapshot ${damaged} was not validated: this user may not read ${named} ` +
        `\\(permission denied\\); (nothing was (changed|pushed); )?run as the user that owns the backups, or fix the ` +
        "permissions",
    );
    for (const args of [["validate", damaged], ["restore", damaged, "--confirm-service-stopped"], push]) {
      const run = await cli.run(args, env);
      assert.equal(run.code, 1, `${args[0]} with ${closed} closed: ${run.stderr}`);
      assert.match(errorLine(run), said);
    }
    const drill = await cli.run(["drill", damaged], env);
    assert.equal(drill.code, 1, drill.stderr);
    const errors = (drill.json as { errors: string[] }).errors;
    assert.ok(errors[0].includes(`may not read ${named} (permission denied)`), errors.join("; "));
    const quick: CliRun = await cli.run(["validate", "--all", "--quick"], env);
    const listed = (quick.json as { results: { stamp: string; unreadable?: string }[] }).results;
    const expected = closed === file ? undefined : named; // --quick reads no Chroma segment file
    assert.equal(listed.find((result) => result.stamp === damaged)?.unreadable, expected, quick.stdout);
    Deno.chownSync(closed, NOBODY_UID, NOBODY_GID);
    Deno.chmodSync(closed, mode);
  }
  assert.deepEqual(liveDigest(store), before, "live store changed");
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

Deno.test("what a create --push as root makes in nobody's empty backup folder and folder repository is nobody's: its own create, push, cleanup and remote cleanup go on", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  chownToNobody(store.dataDir);
  Deno.mkdirSync(store.backupDir);
  Deno.chownSync(store.backupDir, NOBODY_UID, NOBODY_GID); // empty: all that is in it after, the root run made
  using repoDir = tempDir("atocore-repo-");
  chownToNobody(repoDir.path);
  const remote = ["--remote", join(repoDir.path, "repository")];
  const repo = [...remote, "--allow-unauthenticated"];
  const env = storeEnv(store);
  const init = await cli.run(["remote", "init", "--recipient", generateIdentity().recipient, ...remote], env);
  assert.equal(init.code, 0, init.stderr);
  const created = await runCli(["create", "--chroma", "--push", ...repo], { env }); // as root
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  assert.deepEqual(notNobodys(store.backupDir), [], "what root made is not nobody's");
  assert.deepEqual(notNobodys(repoDir.path), [], "what root made in the repository is not nobody's");

  const again = await cli.run(["create", "--chroma", "--push", ...repo], env);
  assert.equal(again.code, 0, `create --push as nobody: ${again.stderr} ${again.stdout}`);
  const retention = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const cleaned = await cli.run(["cleanup", "--confirm", ...retention], env);
  assert.equal(cleaned.code, 0, `cleanup --confirm as nobody: ${cleaned.stderr}`);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [(again.json as { stamp: string }).stamp]);
  assert.ok(!entryNames(join(store.backupDir, "integrity")).includes(`${stamp}.json`), "root's record was kept");
  const remoteCleaned = await cli.run(["remote", "cleanup", "--confirm", ...retention, ...repo], env);
  assert.equal(remoteCleaned.code, 0, `remote cleanup --confirm as nobody: ${remoteCleaned.stderr}`);
  const listed = await cli.run(["remote", "list", ...remote], env);
  assert.equal(listed.code, 0, listed.stderr);
  const names = (listed.json as { snapshots: { snapshot: string }[] }).snapshots.map((entry) => entry.snapshot);
  assert.deepEqual(names.map((name) => name.split("_")[0]), [(again.json as { stamp: string }).stamp], listed.stderr);
});

Deno.test("a repository pin nobody may not read: the remote commands say to run as its user, not to remove it (exit 1)", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = await nobodysStore();
  using repoDir = tempDir("atocore-repo-");
  chownToNobody(repoDir.path);
  const remote = ["--remote", join(repoDir.path, "repository")];
  const env = storeEnv(store);
  const init = await cli.run(["remote", "init", "--recipient", generateIdentity().recipient, ...remote], env);
  assert.equal(init.code, 0, init.stderr);
  const pushed = await cli.run(["push", "--latest", ...remote, "--allow-unauthenticated"], env);
  assert.equal(pushed.code, 0, pushed.stderr);
  const [key] = entryNames(join(store.backupDir, "remotes"));
  const pin = join(store.backupDir, "remotes", key, "pin.json");
  Deno.chmodSync(pin, 0o000); // another user's pin, as a root run of old could leave
  for (const args of [["remote", "list"], ["push", "--latest", "--allow-unauthenticated"], ["remote", "cleanup"]]) {
    const run = await cli.run([...args, ...remote], env);
    assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
    const error = errorLine(run);
    assert.match(error, /pin\.json cannot be read by this user \(permission denied\); run as the user that owns/);
    assert.doesNotMatch(error, /remove it/, "removing the pin would make this folder a new source");
  }
});

Deno.test("a push and a remote cleanup run as root leave nothing in nobody's backup folder that nobody's own runs cannot update", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  chownToNobody(store.dataDir);
  Deno.mkdirSync(store.backupDir);
  Deno.chownSync(store.backupDir, NOBODY_UID, NOBODY_GID);
  using repoDir = tempDir("atocore-repo-");
  chownToNobody(repoDir.path);
  const remote = ["--remote", join(repoDir.path, "repository")];
  const repo = [...remote, "--allow-unauthenticated"];
  const env = storeEnv(store);
  const init = await cli.run(["remote", "init", "--recipient", generateIdentity().recipient, ...remote], env);
  assert.equal(init.code, 0, init.stderr);
  const retention = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const cleaned = await runCli(["remote", "cleanup", "--confirm", ...retention, ...repo], { env }); // as root, first
  assert.equal(cleaned.code, 0, cleaned.stderr);
  assert.deepEqual(notNobodys(store.backupDir), [], "what root's remote cleanup made is not nobody's");
  const made = await cli.run(["create", "--chroma"], env);
  assert.equal(made.code, 0, made.stderr);
  const pushed = await runCli(["push", "--latest", ...repo], { env }); // as root
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.deepEqual(notNobodys(store.backupDir), [], "what root's push made is not nobody's");
  const again = await cli.run(["create", "--chroma", "--push", ...repo], env);
  assert.equal(again.code, 0, `create --push as nobody: ${again.stderr} ${again.stdout}`);
  const nobodysCleanup = await cli.run(["remote", "cleanup", "--confirm", ...retention, ...repo], env);
  assert.equal(nobodysCleanup.code, 0, `remote cleanup --confirm as nobody: ${nobodysCleanup.stderr}`);
});

/** The entries below `root` (links aside) that are not nobody's, each with its owner and group. */
function notNobodys(root: string): string[] {
  return walkTree(root).filter((entry) => entry.kind !== "symlink").map((entry) => {
    const info = Deno.lstatSync(join(root, entry.path));
    return `${entry.path} ${info.uid}:${info.gid}`;
  }).filter((owned) => !owned.endsWith(` ${NOBODY_UID}:${NOBODY_GID}`));
}

Deno.test("an ATOCORE_SQLITE_LIB another user could change is never loaded: auto warns and uses the built-in driver, ffi is refused", async () => {
  if (Deno.uid() !== 0) return skipOutsideCi("not running as root, so no library can belong to another user");
  const system = ["/usr/lib/x86_64-linux-gnu/libsqlite3.so.0", "/lib/x86_64-linux-gnu/libsqlite3.so.0"]
    .find((path) => statOrNull(path) !== null);
  if (system === undefined) return skipOutsideCi("no libsqlite3.so.0 where Debian puts it, to copy");
  using dir = tempDir();
  const folder = join(dir.path, "lib");
  Deno.mkdirSync(folder, { mode: 0o755 });
  const library = join(folder, "libsqlite3.so");
  Deno.copyFileSync(system, library);
  Deno.chmodSync(library, 0o644);
  const driverWith = async (lib: string) => {
    const env = { ATOCORE_SQLITE_LIB: lib, ATOCORE_DATA_DIR: dir.path };
    const auto = await runCli(["config", "--json"], { env });
    assert.equal(auto.code, 0, auto.stderr);
    return { driver: (auto.json as { sqlite: { driver: string } }).sqlite.driver, stderr: auto.stderr, env };
  };
  assert.equal((await driverWith(library)).driver, "ffi", "root's own copy loads");

  const cases: [string, () => void, RegExp][] = [
    ["another user's", () => Deno.chownSync(library, NOBODY_UID, NOBODY_GID), /belongs to user 65534/],
    [
      "one others may write",
      () => Deno.chmodSync(library, 0o646),
      /may be written by its group or others, or users an ACL names \(mode 646\)/,
    ],
    [
      "one in a folder others may write",
      () => Deno.chmodSync(folder, 0o777),
      /its folder \S+ may be written by its group or others, or users an ACL names \(mode 777\)/,
    ],
  ];
  const setfacl = (...args: string[]) => new Deno.Command("setfacl", { args }).outputSync();
  if (toolFor("setfacl", "a library an ACL lets another user write")) {
    cases.push([
      "one an ACL lets another user write",
      () => setfacl("-m", "u:nobody:rw", library),
      /users an ACL names/,
    ]);
  }
  using elsewhere = tempDir();
  Deno.chownSync(elsewhere.path, NOBODY_UID, NOBODY_GID);
  const link = join(elsewhere.path, "libsqlite3.so");
  Deno.symlinkSync(library, link);
  lchownSync(link, NOBODY_UID, NOBODY_GID);
  for (const [what, make, reason] of cases) {
    make();
    const auto = await driverWith(library);
    assert.equal(auto.driver, "builtin", `${what}: ${auto.stderr}`);
    assert.match(auto.stderr, /"event":"sqlite_library_not_loaded"/, what);
    assert.match(auto.stderr, reason, what);
    const ffi = await runCli(["config", "--sqlite-driver", "ffi"], { env: auto.env });
    assert.equal(ffi.code, 2, `${what}: ${ffi.stderr}`);
    assert.ok(ffi.stderr.includes(`${library}: not loaded: `), `${what}: ${ffi.stderr}`);
    Deno.chownSync(library, 0, 0);
    Deno.chmodSync(library, 0o644);
    Deno.chmodSync(folder, 0o755);
    if (what.includes("ACL")) setfacl("-b", library);
  }
  // another user's link to root's own library: that user would choose which of root's libraries runs
  const linked = await driverWith(link);
  assert.equal(linked.driver, "builtin", linked.stderr);
  assert.match(linked.stderr, /the symbolic link \S+ on its way belongs to user 65534/);
});
