/**
 * `--junit` and `--metrics-file` (issue 10, point 17): a path that could not be written after the work is refused
 * before it (exit 2), so a passed drill or a made snapshot never ends in exit 1 for want of somewhere to report it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { killAfter } from "../_faults.ts";
import { bindReadOnly } from "../_mount.ts";
import { cliProcess, cliRunOf, createdStamp, runCli, skipBecause, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { assertVerified, createAndPush, oneErrorLine, remoteStore } from "../_remote_cli.ts";
import { statOrNull } from "../../src/fs/probe.ts";

/** Bound on a run that must not block (a FIFO opened for reading waits for a writer forever). */
const HANG_GUARD_MS = 120_000;

Deno.test("an output file in a folder that does not exist, or that is a folder, is refused before any work (exit 2)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using out = tempDir();
  const env = storeEnv(store);
  const missing = join(out.path, "no-such-folder", "out");

  const create = await runCli(["create", "--metrics-file", `${missing}.prom`], { env });
  assert.equal(create.code, 2, create.stderr);
  assert.match(create.stderr, /error: --metrics-file .*no-such-folder\/out\.prom cannot be written \(not found\)/);
  assert.equal([...Deno.readDirSync(store.dataDir)].some((entry) => entry.name === "backups"), false, "no snapshot");

  await createdStamp(env);
  const drill = await runCli(["drill", "--latest", "--junit", `${missing}.xml`], { env });
  assert.equal(drill.code, 2, drill.stderr);
  assert.match(drill.stderr, /error: --junit .*no-such-folder\/out\.xml cannot be written/);
  assert.doesNotMatch(drill.stderr, /drill_check/, "the drill did not run");

  const folder = await runCli(["validate", "--all", "--metrics-file", out.path], { env });
  assert.equal(folder.code, 2, folder.stderr);
  assert.match(folder.stderr, /--metrics-file .* cannot be written \(is a directory\)/);

  const ok = await runCli(["drill", "--latest", "--junit", join(out.path, "drill.xml")], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual([...Deno.readDirSync(out.path)].map((entry) => entry.name), ["drill.xml"], "no probe left");
});

Deno.test("an output file in a read-only folder is refused before the drill runs (exit 2) (root)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using out = tempDir();
  const env = storeEnv(store);
  await createdStamp(env);
  const mounted = bindReadOnly(out.path);
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  for (const flag of ["--junit", "--metrics-file"]) {
    const run = await runCli(["drill", "--latest", flag, join(out.path, "result")], { env });
    assert.equal(run.code, 2, `${flag}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`error: ${flag} .* cannot be written`));
    assert.doesNotMatch(run.stderr, /drill_check/, "the drill did not run");
  }
});

Deno.test("a FIFO as --metrics-file is refused at once (exit 2), not read and waited on", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using out = tempDir();
  const env = storeEnv(store);
  await createdStamp(env);
  const fifo = join(out.path, "metrics.prom");
  new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
  const child = cliProcess(["validate", "--all", "--metrics-file", fifo], { env }).spawn();
  const output = child.output();
  const code = await killAfter(child, HANG_GUARD_MS);
  const run = cliRunOf(await output);
  assert.notEqual(code, null, "validate blocked on the FIFO and was killed");
  assert.equal(code, 2, run.stderr);
  assert.match(run.stderr, /--metrics-file .* cannot be written \(not a regular file \(FIFO\)\)/);
});

Deno.test("an output file that would overwrite the live store or a snapshot's file is refused, and they are untouched (exit 2)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const snapshotDb = join(store.backupDir, "snapshots", stamp, "db", "atocore.db");
  const before = [store.db, store.registry, snapshotDb].map((path) => Deno.readFileSync(path));
  const link = join(store.dataDir, "report.xml");
  Deno.symlinkSync(store.registry, link); // named as given, and where it leads
  const cases: [string[], RegExp][] = [
    [["validate", "--all", "--quick", "--metrics-file", store.db], /would overwrite the database /],
    [
      ["drill", stamp, "--junit", link],
      new RegExp(`--junit ${link} \\(which leads to ${store.registry}\\) would overwrite the registry `),
    ],
    [["drill", stamp, "--junit", store.registry], /would overwrite the registry /],
    [["drill", stamp, "--metrics-file", snapshotDb], /would overwrite the backup folder's .*snapshots /],
    [["create", "--metrics-file", `${store.db}-wal`], /would overwrite the database's -wal /],
    [
      ["drill", stamp, "--junit", join(store.dataDir, ".atocore.db.restore-intent.json")],
      /would overwrite the record of a restore in progress /,
    ],
    [
      ["drill", stamp, "--metrics-file", join(store.backupDir, "integrity", `${stamp}.json`)],
      /would overwrite the backup folder's .*integrity /,
    ],
    [
      ["validate", "--all", "--metrics-file", join(store.chromaDir, "metrics.prom")],
      /would overwrite the Chroma folder /,
    ],
  ];
  for (const [args, message] of cases) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.match(run.stderr, /nothing was done; give a file outside the store/);
  }
  assert.deepEqual([store.db, store.registry, snapshotDb].map((path) => Deno.readFileSync(path)), before);
  assert.equal([...Deno.readDirSync(store.chromaDir)].some((entry) => entry.name === "metrics.prom"), false);
});

Deno.test("an output file at the backup folder's own path, in a folder repository, or both outputs one file: exit 2", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = (await createAndPush(r.env)).stamp;
  const missing = join(r.work, "typo-backups"); // a backup folder not made yet
  const config = join(r.repoDir, "config");
  const before = Deno.readFileSync(config);
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["validate", "--all", "--metrics-file", missing], { ATOCORE_BACKUP_DIR: missing }, /overwrite the backup folder /],
    [["push", "--latest", "--metrics-file", config], {}, /would overwrite the folder repository /],
    [["create", "--metrics-file", join(r.repoDir, "x.prom")], {}, /would overwrite the folder repository /],
    [["drill", stamp, "--junit", "j.xml", "--metrics-file", "./j.xml"], {}, /--junit \S+j\.xml and --metrics-file /],
    [
      ["drill", stamp, "--junit", "j.xml", "--metrics-file", "link.prom"],
      {},
      new RegExp(`--metrics-file ${r.work}/link\\.prom \\(which leads to ${r.work}/j\\.xml\\) name the same file`),
    ],
  ];
  Deno.symlinkSync(join(r.work, "j.xml"), join(r.work, "link.prom")); // a link to the report, named as given
  for (const [args, extra, message] of cases) {
    const run = await runCli(args, { env: { ...r.env, ...extra }, cwd: r.work });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
  assert.deepEqual(Deno.readFileSync(config), before, "the repository's config untouched");
  assert.equal(statOrNull(missing), null, "no file where the backup folder goes");
  assert.equal(statOrNull(join(r.work, "j.xml")), null);
});

Deno.test("an output file at a key file given (identity, auth key) is refused, and a scratch folder or a restore's --to in the repository", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { push } = await createAndPush(r.env);
  const identity = Deno.readFileSync(r.key.keyFile);
  const authKey = Deno.readFileSync(r.authKeyFile);
  const cases: [string[], RegExp][] = [
    [
      ["drill", "--from-remote", "--latest", "--junit", r.key.keyFile],
      /--junit \S+ would overwrite the identity file /,
    ],
    [["push", "--latest", "--metrics-file", r.authKeyFile], /would overwrite the authentication key file /],
    [
      ["drill", "--from-remote", push.snapshot, "--scratch-dir", join(r.repoDir, "scratch")],
      /--scratch-dir \S+ lies in the folder repository \S+, where the decrypted copy would lie among the encrypted /,
    ],
    [
      ["restore", push.snapshot, "--from-remote", "--to", join(r.work, "to"), "--scratch-dir", r.repoDir],
      /--scratch-dir \S+ lies in the folder repository /,
    ],
    [
      ["restore", push.snapshot, "--from-remote", "--to", join(r.repoDir, "packs", "zz")],
      /--to \S+ lies in the folder repository \S+, where the decrypted store would lie among the encrypted objects/,
    ],
    [
      ["restore", push.snapshot, "--from-remote", "--to", r.work, "--force"],
      /--to \S+ holds the folder repository \S+, which the restore's files there could replace; nothing was done/,
    ],
  ];
  for (const [args, message] of cases) {
    const run = await runCli(args, { env: r.envWithIdentity });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(oneErrorLine(run, args[0]), message);
  }
  // another setting wrong (the run would fail on it and report that): the key file still counts
  const bogus = { ...r.envWithIdentity, ATOCORE_BACKUP_STALL_TIMEOUT: "bogus", ATOCORE_S3_ADDRESSING: "bogus" };
  for (
    const args of [["create", "--metrics-file", r.key.keyFile], ["push", "--latest", "--metrics-file", r.key.keyFile]]
  ) {
    const run = await runCli(args, { env: bogus });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(oneErrorLine(run, args[0]), /--metrics-file \S+ would overwrite the identity file /);
  }
  const drill = await runCli(["drill", "--from-remote", "--latest"], {
    env: { ...r.envWithIdentity, TMPDIR: r.repoDir },
  });
  assert.equal(drill.code, 2, drill.stderr);
  assert.match(oneErrorLine(drill, "TMPDIR"), /the temporary folder \S+ \(TMPDIR\), .* lies in the folder repository /);
  assert.deepEqual([Deno.readFileSync(r.key.keyFile), Deno.readFileSync(r.authKeyFile)], [identity, authKey]);
  await assertVerified(r.envWithIdentity, [], "nothing written in the repository");
});

Deno.test("an output file that is a symbolic link is written through: the link stays, its file holds the report", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using out = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  Deno.mkdirSync(join(out.path, "collector"));
  for (const [flag, name] of [["--metrics-file", "atocore.prom"], ["--junit", "drill.xml"]]) {
    const real = join(out.path, "collector", name);
    Deno.writeTextFileSync(real, "old");
    const link = join(out.path, name);
    Deno.symlinkSync(real, link);
    const run = await runCli(["drill", stamp, flag, link], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(Deno.lstatSync(link).isSymlink, `${flag}: the link is kept`);
    assert.match(Deno.readTextFileSync(real), flag === "--junit" ? /<testsuite/ : /atocore_backup_last_run_success/);
  }
});
