/**
 * The off-host repository through the CLI, as an operator and a CI job use it: keys from `age-keygen`, `remote init`,
 * `create --push` (a second push after 1 % of rows changed sends a few percent), `remote list`, `remote verify` at both
 * depths, `restore --from-remote` over the live store and with `--to`, `drill --from-remote` with JUnit and metrics,
 * `remote cleanup`; pushing with no identity anywhere; a module-made snapshot; the settings in `config`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { statOrNull } from "../../src/fs/probe.ts";
import { basename, join, relative as relativePath } from "node:path";
import {
  moduleSnapshot,
  placeValidSnapshot,
  printedCommand,
  relocateSnapshot,
  ROOT,
  runCli,
  runCliOnTerminal,
  runPrinted,
  skipBecause,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { mountTmpfs } from "../_mount.ts";
import { makeSampleStore } from "../../scripts/sample_store.ts";
import { entryNames, liveDigest, treeDigest } from "../_faults.ts";
import { updateRows } from "../_repo.ts";
import { restoreCommand } from "../../src/cli/restore.ts";
import { latestStamp } from "../../src/ops/list.ts";
import { pushCommand } from "../../src/cli/push.ts";
import { SILENT } from "../../src/report/reporter.ts";
import {
  ageKeyPair,
  assertVerified,
  authKeyFileFor,
  contentDigest,
  createAndPush,
  oneErrorLine,
  remoteNames,
  type RemoteStore,
  remoteStore,
  snapshotAsStore,
} from "../_remote_cli.ts";

/** The counts and properties of a JUnit file, read with Python's XML parser (a parser other than our writer). */
function parseJunit(
  path: string,
): { tests: number; failures: number; cases: string[]; properties: Record<string, string> } {
  const script = "import json, sys, xml.etree.ElementTree as ET\n" +
    "suite = ET.parse(sys.argv[1]).getroot().find('testsuite')\n" +
    "print(json.dumps({'tests': int(suite.get('tests')), 'failures': int(suite.get('failures')),\n" +
    "  'cases': [c.get('name') for c in suite.findall('testcase')],\n" +
    "  'properties': {p.get('name'): p.get('value') for p in suite.find('properties')}}))";
  const output = new Deno.Command("python3", { args: ["-c", script, path], stdout: "piped", stderr: "piped" })
    .outputSync();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/**
 * A store, and a new repository and a backup folder given to each command only as flags (paths a shell splits at a
 * space): a printed command that leaves one of them out fails.
 */
async function flaggedRepository(prefix: string) {
  const store = tempStore({ dbMiB: 1 });
  const work = tempDir(prefix);
  const env = storeEnv(store); // no repository and another backup folder: a command run without the flags fails
  const key = ageKeyPair(work.path);
  const backupDir = join(work.path, "back ups");
  const remote = join(work.path, "re po");
  const repository = ["--remote", remote, "--auth-key", authKeyFileFor(key)];
  const init = await runCli(["remote", "init", "--recipient", key.recipient, ...repository], { env });
  assert.equal(init.code, 0, init.stderr);
  const create = async (): Promise<string> => {
    const run = await runCli(["create", "--backup-dir", backupDir], { env });
    assert.equal(run.code, 0, run.stderr);
    return (run.json as { stamp: string }).stamp;
  };
  const dispose = () => {
    work[Symbol.dispose]();
    store[Symbol.dispose]();
  };
  return { env, work: work.path, backupDir, remote, repository, create, [Symbol.dispose]: dispose };
}

/** What `createAndPush` returns. */
type Pushed = Awaited<ReturnType<typeof createAndPush>>;

/** `restore --from-remote` of `first` over the live store: live = snapshot, the pre-restore snapshot, no scratch left. */
async function assertRestoredLive(r: RemoteStore, first: Pushed): Promise<void> {
  const snapshots = join(r.store.backupDir, "snapshots");
  const before = contentDigest(liveDigest(r.store), r.store.dataDir, false);
  const firstRoot = join(snapshots, first.stamp);
  assert.notDeepEqual(before, contentDigest(snapshotAsStore(firstRoot), firstRoot, true), "the live store changed");
  const scratch = join(r.work, "scratch");
  Deno.mkdirSync(scratch);
  const restored = await runCli(
    ["restore", first.stamp, "--from-remote", "--confirm-service-stopped", "--scratch-dir", scratch],
    { env: r.envWithIdentity },
  );
  assert.equal(restored.code, 0, restored.stderr);
  const result = restored.json as { pre_restore_snapshot: string; remote: { snapshot: string } };
  assert.equal(result.remote.snapshot, first.push.snapshot);
  const vouched = (restored.json as { validation: { integrity_checked_by_push?: string[] } }).validation;
  assert.deepEqual(vouched.integrity_checked_by_push?.toSorted(), ["chroma/chroma.sqlite3", "db/atocore.db"]);
  assert.deepEqual(
    liveDigest(r.store),
    snapshotAsStore(join(snapshots, first.stamp)),
    "live = snapshot, byte for byte",
  );
  const preRoot = join(snapshots, result.pre_restore_snapshot);
  assert.deepEqual(contentDigest(snapshotAsStore(preRoot), preRoot, true), before, "the pre-restore snapshot");
  assert.deepEqual(entryNames(scratch), [], "the scratch copy is removed");
}

/** `restore --from-remote --to` of `second`: Chroma's integrity checked, the folder = the snapshot. */
async function assertRestoredTo(r: RemoteStore, second: Pushed): Promise<void> {
  const snapshots = join(r.store.backupDir, "snapshots");
  const to = join(r.work, "rebuilt");
  const rebuilt = await runCli(["restore", second.stamp, "--from-remote", "--to", to], { env: r.envWithIdentity });
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  const checkedAgain = (rebuilt.json as { validation: { integrity_checked_by_push?: string[] } }).validation;
  assert.deepEqual(
    checkedAgain.integrity_checked_by_push,
    ["db/atocore.db"],
    "Chroma's, not read by the push, is checked",
  );
  const context = { env: r.envWithIdentity, cwd: r.work, now: new Date(), reporter: SILENT };
  const told = await restoreCommand.run({ "from-remote": true, to: join(r.work, "told") }, [second.stamp], context);
  assert.match(
    told.text,
    /^ {2}integrity: ok, as these very bytes passed the check before they were pushed \(proven by SHA-256\)$/m,
  );
  assert.deepEqual(treeDigest(to), snapshotAsStore(join(snapshots, second.stamp)));
}

/** `drill --from-remote --latest` with JUnit and metrics drills `second`, and says so in each. */
async function assertDrilledLatest(r: RemoteStore, second: Pushed): Promise<void> {
  const junit = join(r.work, "drill.xml");
  const metrics = join(r.work, "drill.prom");
  const drill = await runCli(
    ["drill", "--from-remote", "--latest", "--junit", junit, "--metrics-file", metrics],
    { env: r.envWithIdentity },
  );
  assert.equal(drill.code, 0, drill.stdout + drill.stderr);
  const drilled = drill.json as { stamp: string; recovery_time_seconds: number; remote: { fetch_seconds: number } };
  assert.equal(drilled.stamp, second.stamp);
  const checks = (drill.json as { checks: { name: string; status: string; detail: string }[] }).checks;
  const valid = checks.find((check) => check.name === "snapshot_valid")!;
  assert.match(valid.detail, /; the integrity of db\/atocore\.db as checked before the push \(the restored copy's/);
  assert.equal(checks.find((check) => check.name === "db_integrity")?.status, "passed", "the restored copy is checked");
  assert.ok(drilled.recovery_time_seconds >= drilled.remote.fetch_seconds, "the recovery time includes the fetch");
  const finished = drill.stderr.split("\n").filter((line) => line.includes('"event":"drill_finished"'));
  assert.equal(finished.length, 1, drill.stderr);
  assert.equal(JSON.parse(finished[0]).recovery_time_seconds, drilled.recovery_time_seconds, "the log line agrees");
  const parsed = parseJunit(junit);
  assert.deepEqual([parsed.tests, parsed.failures], [7, 0]);
  assert.ok(parsed.cases.includes("restore") && parsed.cases.includes("row_counts"), parsed.cases.join());
  assert.equal(Number(parsed.properties.recovery_time_seconds), drilled.recovery_time_seconds);
  assert.match(Deno.readTextFileSync(metrics), /^atocore_backup_last_run_success\{operation="drill"\} 1$/m);
}

/** `remote cleanup` keeping one daily: the dry run says `first` would go, the confirmed one removes it alone. */
async function assertCleanedUp(r: RemoteStore, first: Pushed, second: Pushed): Promise<void> {
  const policy = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const dry = await runCli(["remote", "cleanup", ...policy], { env: r.env });
  const planned = dry.json as { deleted?: string[]; would_delete: string[] };
  assert.deepEqual([planned.would_delete, planned.deleted], [[first.push.snapshot], undefined], "what would go");
  const logged = dry.stderr.split("\n").find((line) => line.includes('"event":"remote_cleanup_finished"'));
  assert.deepEqual(JSON.parse(logged!).would_delete, [first.push.snapshot], dry.stderr);
  assert.equal(JSON.parse(logged!).deleted, undefined, "nor does the log line say deleted");
  assert.equal((await remoteNames(r.env)).length, 2, "a dry run removes nothing");
  const cleaned = await runCli(["remote", "cleanup", "--confirm", ...policy], { env: r.env });
  assert.equal(cleaned.code, 0, cleaned.stderr);
  assert.deepEqual(await remoteNames(r.env), [second.push.snapshot]);
  assert.deepEqual((cleaned.json as { deleted: string[] }).deleted, [first.push.snapshot]);
  assert.equal((cleaned.json as { would_delete?: string[] }).would_delete, undefined);
}

Deno.test("remote CLI: init, create --push twice, list, verify, restore live and --to, drill from the repository, cleanup", async () => {
  using r = await remoteStore({ dbMiB: 24, chromaMiB: 4 });
  const first = await createAndPush(r.env);
  assert.ok(first.push.bytes_sent > first.push.bytes_total * 0.8, "the first push sends the store");
  assert.equal(first.push.bytes_read, first.push.bytes_total);
  updateRows(r.store.db, 0.01);
  const second = await createAndPush(r.env, ["--transfers", "1"]); // one pack at a time: what it sends is the same
  const ratio = second.push.bytes_sent / second.push.bytes_total;
  assert.ok(ratio < 0.06, `sent ${(ratio * 100).toFixed(1)}% of the store after 1% of rows changed`);
  assert.ok(second.push.bytes_deduplicated > second.push.bytes_total * 0.9, "deduplication saved most");
  assert.ok(second.push.objects_written >= 3, "packs, refs and the snapshot object");
  assert.deepEqual(await remoteNames(r.env), [first.push.snapshot, second.push.snapshot]);
  const decrypted = await runCli(["remote", "list"], { env: r.envWithIdentity });
  const entries = (decrypted.json as { snapshots: { files: number; chroma: boolean }[] }).snapshots;
  assert.deepEqual(entries.map((entry) => [entry.files > 10, entry.chroma]), [[true, true], [true, true]]);

  await assertVerified(r.env);
  const deep = await assertVerified(r.envWithIdentity, ["--read-data"]);
  assert.ok((deep.json as { packs_read: number }).packs_read >= 2, "every pack read");
  await assertVerified(r.envWithIdentity, ["--read-data-subset", "50%"]);

  await assertRestoredLive(r, first);
  await assertRestoredTo(r, second);
  await assertDrilledLatest(r, second);
  await assertCleanedUp(r, first, second);
  await assertVerified(r.envWithIdentity, ["--read-data"]);
});

Deno.test("remote CLI: a fetch's folder left before it was locked and renamed (.atocore-fetching-*) is removed once a minute old, or ahead", async () => {
  using r = await remoteStore({ dbMiB: 1 });
  const { stamp } = await createAndPush(r.env, []);
  const old = join(r.work, ".atocore-fetching-killed");
  const ahead = join(r.work, ".atocore-fetching-before-the-clock-went-back");
  const fresh = join(r.work, ".atocore-fetching-being-made"); // another fetch's, about to be locked: not taken
  for (const path of [old, ahead, fresh]) Deno.mkdirSync(path);
  const twoMinutesAgo = new Date(Date.now() - 120_000);
  Deno.utimeSync(old, twoMinutesAgo, twoMinutesAgo);
  const twoMinutesAhead = new Date(Date.now() + 120_000);
  Deno.utimeSync(ahead, twoMinutesAhead, twoMinutesAhead);
  const run = await runCli(["restore", stamp, "--from-remote", "--to", join(r.work, "rebuilt")], {
    env: r.envWithIdentity,
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /"event":"stale_leftover_removed","path":"[^"]*\.atocore-fetching-killed"/);
  assert.match(run.stderr, /"event":"stale_leftover_removed","path":"[^"]*\.atocore-fetching-before-the-clock/);
  assert.deepEqual(entryNames(r.work).filter((name) => name.startsWith(".atocore-fetch")), [basename(fresh)]);
});

Deno.test("remote CLI: restore --from-remote fetches beside the target and moves the files in; a killed fetch's leftover is removed", async () => {
  using r = await remoteStore({ dbMiB: 4, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const snapshot = snapshotAsStore(join(r.store.backupDir, "snapshots", stamp));
  const dataDir = join(r.store.db, "..");
  const leftover = join(dataDir, ".atocore-fetch-killed");
  Deno.mkdirSync(join(leftover, "snapshots"), { recursive: true }); // as a fetch killed with -9 leaves it: unlocked
  const live = await runCli(["restore", stamp, "--from-remote", "--confirm-service-stopped", "--no-pre-snapshot"], {
    env: r.envWithIdentity,
  });
  assert.equal(live.code, 0, live.stderr);
  assert.deepEqual(liveDigest(r.store), snapshot, "live = snapshot, byte for byte");
  assert.match(live.stderr, /"event":"stale_leftover_removed","path":"[^"]*\.atocore-fetch-killed"/);
  assert.deepEqual(entryNames(dataDir).filter((name) => name.startsWith(".atocore-fetch-")), [], "scratch removed");
  assert.match(live.stderr, /"event":"restore_db_replaced",[^\n]*"moved":true/, "the database moved, not copied");
  assert.match(live.stderr, /"event":"restore_chroma_staged",[^\n]*"moved":true/, "Chroma moved, not copied");
  const liveResult = live.json as { restored_integrity_ok: boolean; restored_integrity_checked: boolean };
  assert.deepEqual([liveResult.restored_integrity_ok, liveResult.restored_integrity_checked], [true, false]);

  const to = join(r.work, "rebuilt");
  const rebuilt = await runCli(["restore", stamp, "--from-remote", "--to", to], { env: r.envWithIdentity });
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.deepEqual(treeDigest(to), snapshot);
  assert.match(rebuilt.stderr, /"event":"restore_db_replaced",[^\n]*"moved":true/);
  assert.deepEqual(entryNames(r.work).filter((name) => name.startsWith(".atocore-fetch-")), [], "scratch removed");
  const validation = (rebuilt.json as { validation: { valid: boolean; bytes_hashed: number } }).validation;
  assert.deepEqual(
    validation,
    { ...validation, valid: true, bytes_hashed: 0 },
    "the manifest checked against the fetch",
  );

  // fetched on another filesystem, the database is copied into place and checked there: the text says so
  using other = tempDir("atocore-scratch-fs-");
  const mount = mountTmpfs(other.path, "64m");
  if (typeof mount === "string") {
    return skipBecause(`the copy across filesystems: ${mount}`);
  }
  using _mount = mount;
  const context = { env: r.envWithIdentity, cwd: r.work, now: new Date(), reporter: SILENT };
  const values = { "from-remote": true, to: join(r.work, "copied"), "scratch-dir": other.path };
  const copied = await restoreCommand.run(values, [stamp], context);
  assert.equal((copied.result as { restored_integrity_checked: boolean }).restored_integrity_checked, true);
  assert.match(copied.text, /^ {2}integrity check: ok$/m);
});

Deno.test("remote CLI: push needs no identity; restore, verify --read-data and drill without one: one line, exit 2", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const created = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  Deno.renameSync(r.key.keyFile, `${r.key.keyFile}.elsewhere`); // no identity anywhere on this host while it pushes
  const metrics = join(r.work, "push.prom");
  const pushed = await runCli(["push", stamp, "--metrics-file", metrics], { env: r.env });
  assert.equal(pushed.code, 0, pushed.stderr);
  const text = Deno.readTextFileSync(metrics);
  assert.match(text, /^atocore_backup_last_run_success\{operation="push"\} 1$/m);
  const sent = Number(/^atocore_backup_push_bytes_sent\{operation="push"\} (\d+)$/m.exec(text)?.[1]);
  const json = pushed.json as { pushed: { snapshot: string }[]; bytes_read: number; bytes_sent: number };
  assert.ok(json.bytes_read > 0 && json.bytes_sent > 0);
  assert.equal(sent, json.bytes_sent, "the metrics record the bytes sent");
  const again = await runCli(["push", "--latest"], { env: r.env });
  assert.equal((again.json as { pushed: { already_pushed: boolean }[] }).pushed[0].already_pushed, true);
  for (
    const args of [
      ["restore", stamp, "--from-remote", "--to", join(r.work, "to")],
      ["restore", stamp, "--from-remote", "--confirm-service-stopped"],
      ["remote", "verify", "--read-data"],
      ["remote", "verify", "--read-data-subset", "10%"],
      ["drill", "--from-remote", "--latest"],
    ]
  ) {
    const run = await runCli(args, { env: r.env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(oneErrorLine(run, args.join(" ")), /needs the identity: give --identity FILE/);
  }
  const missing = await runCli(["remote", "verify", "--read-data"], { env: r.envWithIdentity });
  assert.equal(missing.code, 2);
  assert.match(oneErrorLine(missing, "missing key file"), /cannot read the identity file .*key\.txt \(not found\)/);
});

Deno.test("remote CLI: config shows the repository settings and their sources", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const shown = await runCli(["config", "--recipient", r.key.recipient], { env: r.envWithIdentity });
  assert.equal(shown.code, 0, shown.stderr);
  const remote = (shown.json as { remote: Record<string, { source: string; from: string } | null> }).remote;
  assert.deepEqual(remote.remote, { value: `file://${r.repoDir}`, source: "env", from: "ATOCORE_BACKUP_REMOTE" });
  assert.deepEqual(remote.identityFile, { value: r.key.keyFile, source: "env", from: "ATOCORE_BACKUP_IDENTITY_FILE" });
  assert.equal(remote.recipients?.source, "flag");
  assert.deepEqual(remote.authKeyFile, { value: r.authKeyFile, source: "env", from: "ATOCORE_BACKUP_AUTH_KEY_FILE" });
});

/** The age secret key of the identity of `r`. */
function secretOf(r: RemoteStore): string {
  return Deno.readTextFileSync(r.key.keyFile).split("\n").find((line) => line.startsWith("AGE-SECRET-KEY-1"))!;
}

/** Each command of `cases`, run with its extra environment, exits 2 with one line matching its pattern, no secret shown. */
async function assertSettingsRefused(
  r: RemoteStore,
  cases: [string[], Record<string, string>, RegExp][],
): Promise<void> {
  const secret = secretOf(r);
  for (const [args, extra, pattern] of cases) {
    const run = await runCli(args, { env: { ...r.env, ...extra } });
    const what = `${args.join(" ")} ${JSON.stringify(extra)}`;
    assert.equal(run.code, 2, `${what}: ${run.stderr}`);
    assert.match(oneErrorLine(run, what), pattern, `${what}: ${run.stderr}`);
    assert.ok(!run.stderr.includes(secret.slice(16, 40)), `${what}: the secret key is echoed`);
    assert.ok(!run.stderr.includes("hunter2"), `${what}: a password is echoed`);
  }
}

Deno.test("remote CLI: empty values and age secret keys given as settings are refused", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const secret = secretOf(r);
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["push", "--latest", "--remote", ""], {}, /--remote needs a value, not an empty one/],
    [["remote", "list"], { ATOCORE_BACKUP_REMOTE: "" }, /ATOCORE_BACKUP_REMOTE is set but empty/],
    [["remote", "init", "--recipient", ""], {}, /--recipient needs a value/],
    [["remote", "verify"], { ATOCORE_BACKUP_IDENTITY_FILE: "" }, /ATOCORE_BACKUP_IDENTITY_FILE is set but empty/],
    [["push", "--latest"], { ATOCORE_BACKUP_AUTH_KEY_FILE: "" }, /ATOCORE_BACKUP_AUTH_KEY_FILE is set but empty/],
    [["push", "--latest", "--auth-key", ""], {}, /--auth-key needs a value, not an empty one/],
    [["config"], { ATOCORE_BACKUP_RECIPIENT: " " }, /ATOCORE_BACKUP_RECIPIENT is set but empty/],
    [["config", "--identity", secret], {}, /--identity was given an age secret key/],
    [["remote", "init", "--recipient", secret], {}, /--recipient was given an age secret key/],
    // without its checksum (the last 6 characters) a key's 52 others still give it whole
    [["remote", "list", "--recipient", secret.slice(0, 68)], {}, /--recipient was given an age secret key/],
    [
      ["remote", "list"],
      { ATOCORE_BACKUP_RECIPIENT: secret.slice(0, 60) },
      /ATOCORE_BACKUP_RECIPIENT was given an age/,
    ],
    [["remote", "list", "--remote", `/x/${secret.slice(0, 70)}`], {}, /--remote was given an age secret key/],
  ];
  await assertSettingsRefused(r, cases);
});

Deno.test("remote CLI: remotes, endpoints, credentials and key files that cannot be used are refused, no password shown", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["push", "--latest"], { ATOCORE_BACKUP_REMOTE: "ftp://host/x" }, /remote "ftp:\/\/…" is not supported/],
    [["config", "--remote", "s3://AKID:hunter2-secret@bucket/x"], {}, /--remote holds a password .* not shown/],
    [
      ["remote", "list"],
      { ATOCORE_BACKUP_REMOTE: "sftp://u:hunter2-secret@h/x" },
      /ATOCORE_BACKUP_REMOTE holds a password/,
    ],
    [
      ["push", "--latest"],
      { ATOCORE_BACKUP_REMOTE: "s3://bucket/x", AWS_SHARED_CREDENTIALS_FILE: join(r.work, "none") },
      /an S3 remote needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give a credentials file/,
    ],
    [["push", "--latest"], { ATOCORE_BACKUP_REMOTE: "s3://bucket/a/../b" }, /not a plain S3 prefix: "a\/\.\.\/b"/],
    [["config", "--s3-addressing", "dns"], {}, /--s3-addressing is "dns"; give path or virtual/],
    [["config"], { ATOCORE_S3_ENDPOINT: "" }, /ATOCORE_S3_ENDPOINT needs a value/],
    [["remote", "verify", "--remote", r.key.keyFile], {}, /the repository .*key\.txt is a file, not a folder; give/],
    [["remote", "init", "--remote", r.key.keyFile, "--recipient", r.key.recipient], {}, /key\.txt is a file, not a/],
    [
      ["config", "--remote", "s3://bucket/x"],
      { ATOCORE_S3_ENDPOINT: "http://ak:hunter2-secret@127.0.0.1:7480" },
      /ATOCORE_S3_ENDPOINT holds a password .* not shown/,
    ],
    [["push", "--latest", "--remote", r.repoDir, "--recipient", "age1nope"], {}, /not an age X25519 recipient/],
    [["push", "--latest", "--recipients-file", r.key.keyFile], {}, /key\.txt:\d+: an identity \(secret key\), not a/],
    [["remote", "verify", "--identity", join(r.work, "none")], {}, /cannot read the identity file .*none/],
    [
      ["remote", "list", "--remote", "s3://bucket/x"],
      { ATOCORE_S3_ENDPOINT: "http://127.0.0.1:7480/a/%2e%2e/b" },
      /ATOCORE_S3_ENDPOINT: "http:\/\/127\.0\.0\.1:7480\/a\/%2e%2e\/b" has a '\.' or '\.\.' path segment/,
    ],
  ];
  await assertSettingsRefused(r, cases);
});

Deno.test("remote CLI: flags in the wrong place or out of range, bad stamps and unusable backup folders are refused", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["restore", "20260101T000000Z", "--remote", r.repoDir], {}, /--remote goes with --from-remote/],
    [["drill", "--latest", "--identity", r.key.keyFile], {}, /--identity goes with --from-remote/],
    [["create", "--remote", r.repoDir], {}, /--remote goes with --push; add it to push to the repository$/],
    [["create", "--auth-key", r.authKeyFile], {}, /--auth-key goes with --push/],
    [["create", "--transfers", "2"], {}, /--transfers goes with --push/],
    [
      ["restore", "20260101T000000Z", "--from-remote", "--to", join(r.work, "t"), "--scratch-dir", r.store.backupDir],
      { ATOCORE_BACKUP_IDENTITY_FILE: r.key.keyFile },
      /--scratch-dir .* lies in the backup folder .*, where a scratch copy may not go; nothing was done/,
    ],
    [["create", "--push", "--transfers", "0"], {}, /--transfers must be a whole number from 1 to \d+, not "0"/],
    [["remote", "cleanup", "--grace", "1h"], {}, /not longer than a push's lease/],
    [["remote", "verify", "--read-data-subset", "0%"], {}, /percentage from 1% to 100%/],
    [["push"], {}, /push: give one of STAMP, --latest or --all/],
    [
      ["push", "--latest"],
      { ATOCORE_BACKUP_DIR: join(r.work, "typo", "deep") },
      /no backup folder at .*typo\/deep, so no/,
    ],
    ...[["remote", "list"], ["remote", "cleanup"]].map((args): [string[], Record<string, string>, RegExp] => [
      args,
      { ATOCORE_BACKUP_DIR: join(r.key.keyFile, "backups") },
      /pin .*key\.txt\/backups\/remotes\/\w+\/pin\.json cannot be reached \(a part of its path is a file\); point --backup-dir/,
    ]),
    [["restore", "../x", "--from-remote"], {}, /not a snapshot stamp: "\.\.\/x"; give STAMP or STAMP_PUSHID/],
    [["drill", "--from-remote", "x_y"], {}, /not a snapshot stamp: "x_y"/],
    [
      ["drill", "--latest", "--remote", r.repoDir],
      {},
      /--remote goes with --from-remote; add it to read from the repository$/,
    ],
    [["remote"], {}, /remote needs a command: one of init, list, verify, cleanup/],
  ];
  await assertSettingsRefused(r, cases);
  assert.equal(statOrNull(join(r.work, "typo")), null, "a mistyped backup folder is not made");
});

Deno.test("remote CLI: a STAMP that several pushes share is refused naming them; STAMP_PUSHID is accepted; --latest takes the vouched one", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { stamp, push } = await createAndPush(r.env);
  const twin = `${stamp}_${"f".repeat(16)}`; // what a concurrent push of the same stamp from elsewhere would leave
  for (const folder of ["snapshots", "refs"]) {
    Deno.copyFileSync(join(r.repoDir, folder, push.snapshot), join(r.repoDir, folder, twin));
  }
  const ambiguous = await runCli(["restore", stamp, "--from-remote", "--to", join(r.work, "a")], {
    env: r.envWithIdentity,
  });
  assert.equal(ambiguous.code, 2);
  assert.match(oneErrorLine(ambiguous, "ambiguous"), new RegExp(`2 pushes of ${stamp} .*${push.snapshot}, ${twin}`));
  const named = await runCli(["restore", push.snapshot, "--from-remote", "--to", join(r.work, "b")], {
    env: r.envWithIdentity,
  });
  assert.equal(named.code, 0, named.stderr);
  const swapped = await runCli(["restore", twin, "--from-remote", "--to", join(r.work, "c")], {
    env: r.envWithIdentity,
  });
  assert.equal(swapped.code, 3, "a copied snapshot object names another push");
  assert.match(oneErrorLine(swapped, "twin"), /cannot be read intact/);
  // --latest cannot be told which by name: of the two, it drills the one whose refs the identity's key vouches for (the twin's
  // refs name the other: altered)
  const latest = await runCli(["drill", "--from-remote", "--latest"], { env: r.envWithIdentity });
  assert.match(
    latest.stderr,
    new RegExp(`"event":"latest_pushed_more_than_once","pushes":\\["${push.snapshot}","${twin}"\\]`),
  );
  assert.match(latest.stderr, new RegExp(`"event":"drill_latest_passed_over_forged","snapshots":\\["${twin}"\\]`));
  assert.equal(latest.code, 0, latest.stderr);
  assert.equal((latest.json as { snapshot_path: string }).snapshot_path.split("/").at(-1), push.snapshot);
});

Deno.test("remote CLI: the push that push --all prints for a snapshot a remote cleanup removed runs as printed, on the --backup-dir and repository given", async () => {
  using setup = await flaggedRepository("atocore-push-removed-");
  const { env, backupDir, remote, repository } = setup;
  const stamps = [await setup.create(), await setup.create()];
  const all = await runCli(["push", "--all", "--backup-dir", backupDir, ...repository], { env });
  assert.equal(all.code, 0, all.stderr);
  const policy = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const cleanup = await runCli(
    ["remote", "cleanup", "--confirm", ...policy, "--backup-dir", backupDir, ...repository],
    {
      env,
    },
  );
  assert.equal(cleanup.code, 0, cleanup.stderr);

  const context = { env, cwd: setup.work, now: new Date(), reporter: SILENT };
  const values = { all: true, "backup-dir": backupDir, remote, "auth-key": repository[3] };
  const told = await pushCommand.run(values, [], context);
  const printed = printedCommand(told.text, "send it with");
  assert.ok(printed !== null, told.text);
  const pushed = await runPrinted(printed, env); // pasted into a shell as it is
  assert.equal(pushed.code, 0, `${printed}: ${pushed.stderr}`);
  const listed = await runCli(["remote", "list", "--remote", remote], { env });
  assert.equal(listed.code, 0, listed.stderr);
  const names = (listed.json as { snapshots: { snapshot: string }[] }).snapshots.map((entry) => entry.snapshot);
  assert.deepEqual(names.map((name) => name.split("_")[0]), stamps, `${printed} sent the removed one again`);
});

/**
 * A repository and a store with two snapshots, `older` and `newer`, none pushed; `pushAll` runs `push --all`, checks
 * both are listed, and returns whether the older was passed over as removed since pushed; `cleanup` keeps one daily
 * and checks the older is removed; `stampsListed` gives the stamps in the repository.
 */
async function twoSnapshots() {
  const r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const stamps: string[] = [];
  for (let made = 0; made < 2; made++) {
    const run = await runCli(["create", "--chroma"], { env: r.env });
    assert.equal(run.code, 0, run.stderr);
    stamps.push((run.json as { stamp: string }).stamp);
  }
  const [older, newer] = stamps;
  const pushAll = async () => {
    const run = await runCli(["push", "--all"], { env: r.env });
    assert.equal(run.code, 0, run.stderr);
    const pushed = (run.json as { pushed: { stamp: string; removed_since_pushed: boolean }[] }).pushed;
    assert.deepEqual(pushed.map((one) => one.stamp), [older, newer]);
    return pushed[0].removed_since_pushed;
  };
  const cleanup = async () => {
    const policy = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
    const run = await runCli(["remote", "cleanup", "--confirm", ...policy], { env: r.env });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await remoteNames(r.env)).map((name) => name.split("_")[0]), [newer], "the older one removed");
  };
  const stampsListed = async () => (await remoteNames(r.env)).map((name) => name.split("_")[0]);
  return { r, older, newer, pushAll, cleanup, stampsListed };
}

Deno.test("remote CLI: push --all does not send again a stamp it pushed that a remote cleanup removed; push STAMP does; a record lost or damaged, or a repository rolled back, only sends again", async () => {
  const { r, older, newer, pushAll, cleanup, stampsListed } = await twoSnapshots();
  using _ = r;
  assert.ok(!await pushAll());
  await cleanup();
  const passedOver = await pushAll();
  assert.deepEqual(await stampsListed(), [newer], "pushed before, since removed: nothing sent");
  assert.equal(passedOver, true);
  const context = { env: r.env, cwd: r.work, now: new Date(), reporter: SILENT };
  const told = await pushCommand.run({ all: true }, [], context);
  assert.match(
    told.text,
    new RegExp(
      `^${older} was pushed before as ${older}_[0-9a-f]{16}, no longer listed \\(a cleanup removed it, or someone by hand\\)`,
    ),
  );

  const remotes = join(r.store.backupDir, "remotes");
  const record = join(remotes, entryNames(remotes)[0], "pushed.json");
  for (
    const [loss, apply] of [["damaged", () => Deno.writeTextFileSync(record, "{ damaged")], [
      "lost",
      () => Deno.removeSync(record),
    ]] as const
  ) {
    apply();
    assert.ok(!await pushAll(), `a ${loss} record sends again`);
    assert.deepEqual(await stampsListed(), [older, newer]);
    await cleanup();
    assert.equal(await pushAll(), true, `the record written anew after a ${loss} one`);
  }
  const one = await runCli(["push", older], { env: r.env });
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(await stampsListed(), [older, newer], "push STAMP sends it again");

  // the repository rolled back to a copy from before the newer push: no cleanup removed it (a source's newest stays)
  for (const name of await remoteNames(r.env)) {
    if (!name.startsWith(newer)) continue;
    for (const folder of ["snapshots", "refs"]) Deno.removeSync(join(r.repoDir, folder, name));
  }
  assert.equal(await pushAll(), false);
  assert.deepEqual(await stampsListed(), [older, newer], "the newest is sent again after a rollback");
});

Deno.test("remote CLI: a snapshot made by the reference module is pushed and restored byte for byte", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await moduleSnapshot(r.store, "remote CLI push of a module snapshot");
  const pushed = await runCli(["push", stamp], { env: r.env });
  assert.equal(pushed.code, 0, pushed.stderr);
  const to = join(r.work, "rebuilt");
  const restored = await runCli(["restore", stamp, "--from-remote", "--to", to], { env: r.envWithIdentity });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(treeDigest(to), snapshotAsStore(join(r.store.backupDir, "snapshots", stamp)));
  const drill = await runCli(["drill", "--from-remote", stamp], { env: r.envWithIdentity });
  assert.equal(drill.code, 0, drill.stdout + drill.stderr);
});

Deno.test("deployment examples: every ARGS line of the units, commented or not, parses", async () => {
  const env = join(ROOT, "scripts", "deploy", "systemd", "env");
  const lines = (file: string) => [...Deno.readTextFileSync(join(env, file)).matchAll(/^#?\s*ARGS=(.*)$/gm)];
  const runs: string[][] = [];
  for (const command of ["create", "cleanup", "drill", "remote"]) {
    for (const [, args] of lines(`${command}.env`)) runs.push([command, ...args.split(/\s+/)]);
  }
  for (const wanted of [/--push/, /--from-remote/, /--metrics-file/]) {
    assert.ok(runs.some((args) => wanted.test(args.join(" "))), `no example with ${wanted}`);
  }
  for (const args of runs) {
    const parsed = await runCli([...args, "--help"]);
    assert.equal(parsed.code, 0, `${args.join(" ")}: ${parsed.stderr}`);
  }
  const timer = Deno.readTextFileSync(join(ROOT, "scripts", "deploy", "systemd", "atocore-backup-remote.timer"));
  assert.match(timer, /^Unit=atocore-backup@remote\.service$/m);
});

Deno.test("push --latest sends the snapshot published last, even when a clock set back stamped it earlier", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const older = await runCli(["create"], { env: r.env });
  assert.equal(older.code, 0, older.stderr);
  await new Promise((resolve) => setTimeout(resolve, 1100)); // a stamp a second later
  const newer = await runCli(["create"], { env: r.env });
  assert.equal(newer.code, 0, newer.stderr);
  // the older stamp made last (the clock was set back a few minutes): its sequence is the highest
  const olderStamp = (older.json as { stamp: string }).stamp;
  relocateSnapshot(join(r.store.backupDir, "snapshots", olderStamp), { sequence: 99 });
  const pushed = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.deepEqual((pushed.json as { pushed: { stamp: string }[] }).pushed.map((one) => one.stamp), [olderStamp]);
});

Deno.test("push and drill --latest order by time a snapshot whose sequence is edited by hand or no count, with a warning; create counts on past it", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const stamps: string[] = [];
  for (let made = 0; made < 3; made++) {
    if (made > 0) await new Promise((resolve) => setTimeout(resolve, 1100)); // a stamp a second later
    const created = await runCli(["create"], { env: r.env });
    assert.equal(created.code, 0, created.stderr);
    stamps.push((created.json as { stamp: string }).stamp);
  }
  const [oldest, middle, newest] = stamps;
  // the oldest edited by hand (its metadata_sha256 no longer matches), the middle one bound with a sequence of text
  const path = join(r.store.backupDir, "snapshots", oldest, "backup-metadata.json");
  const edited = { ...JSON.parse(Deno.readTextFileSync(path)), sequence: 99 };
  Deno.removeSync(path); // a file of its own
  Deno.writeTextFileSync(path, JSON.stringify(edited, null, 2) + "\n");
  relocateSnapshot(join(r.store.backupDir, "snapshots", middle), { sequence: "1000" });
  const pushed = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.deepEqual((pushed.json as { pushed: { stamp: string }[] }).pushed.map((one) => one.stamp), [newest]);
  const ignored = `"stamps":["${middle}","${oldest}"],"chosen":"${newest}"`;
  assert.ok(pushed.stderr.includes(`"event":"push_latest_sequence_ignored",${ignored}`), pushed.stderr);
  const drilled = await runCli(["drill", "--latest"], { env: r.env });
  assert.ok(drilled.stderr.includes(`"event":"drill_latest_sequence_ignored",${ignored}`), drilled.stderr);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const next = await runCli(["create"], { env: r.env }); // counts on from the sequences --latest trusts: not 100
  assert.equal(next.code, 0, next.stderr);
  const made = join(r.store.backupDir, "snapshots", (next.json as { stamp: string }).stamp, "backup-metadata.json");
  assert.equal(JSON.parse(Deno.readTextFileSync(made)).sequence, 4);
});

Deno.test("push and drill --latest take no sequence from unbound metadata (a module snapshot's, added by hand), with a warning", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const module = "20260409T010203Z";
  placeValidSnapshot(r.store.backupDir, module, { sequence: 1000 }); // the module binds nothing and records none
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const made = (created.json as { stamp: string }).stamp;
  const ignored = `"stamps":["${module}"],"chosen":"${made}"`;
  const drilled = await runCli(["drill", "--latest"], { env: r.env });
  assert.equal(drilled.code, 0, drilled.stderr);
  assert.equal((drilled.json as { stamp: string }).stamp, made);
  assert.ok(drilled.stderr.includes(`"event":"drill_latest_sequence_ignored",${ignored}`), drilled.stderr);
  const pushed = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.deepEqual((pushed.json as { pushed: { stamp: string }[] }).pushed.map((one) => one.stamp), [made]);
});

Deno.test("push --latest passes over a snapshot stamped in the future, with a warning; with only such, exit 2 naming it", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  const snapshots = join(r.store.backupDir, "snapshots");
  const future = "20990101T000000Z";
  Deno.mkdirSync(join(snapshots, future));
  const pushed = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.deepEqual((pushed.json as { pushed: { stamp: string }[] }).pushed.map((one) => one.stamp), [stamp]);
  assert.match(pushed.stderr, /"event":"push_latest_skipped_future","stamps":\["20990101T000000Z"\]/);
  Deno.removeSync(join(snapshots, stamp), { recursive: true });
  const none = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(none.code, 2, none.stderr);
  assert.match(oneErrorLine(none, "only future"), /stamped in the future \(newest 20990101T000000Z\); check the clock/);
});

Deno.test("remote CLI: restore --from-remote --no-pre-snapshot needs no backup folder on this host, and makes none", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const missing = join(r.work, "no-backups-here");
  const args = ["restore", stamp, "--from-remote", "--confirm-service-stopped", "--no-pre-snapshot"];
  const run = await runCli([...args, "--backup-dir", missing], { env: r.envWithIdentity });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(statOrNull(missing), null, "a backup folder was made");
});

Deno.test("remote CLI: restore --from-remote into a data folder that does not exist is refused before the fetch (exit 2)", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const missing = join(r.work, "not-mounted");
  const args = ["restore", stamp, "--from-remote", "--confirm-service-stopped", "--no-pre-snapshot"];
  for (const [env, given] of [[{ ATOCORE_DATA_DIR: missing }, "ATOCORE_DATA_DIR"], [{}, "--db"]] as const) {
    const flags = given === "--db" ? ["--db", join(missing, "atocore.db")] : [];
    const run = await runCli([...args, ...flags], { env: { ...r.envWithIdentity, ...env } });
    assert.equal(run.code, 2, run.stderr);
    const line = oneErrorLine(run, given);
    assert.ok(line.includes(`the folder of the live database does not exist: ${missing} (`), line);
    assert.ok(line.includes(`check ${given}`), line);
    assert.doesNotMatch(run.stderr, /remote_fetch_started/, "it fetched first");
    assert.deepEqual(entryNames(r.work).filter((name) => name.startsWith(".atocore-fetch-")), []);
  }
});

Deno.test("remote CLI: restore --from-remote of a stamp the repository lacks is a usage error (exit 2) with or without the acknowledgment, as a local one; one it holds needs the acknowledgment before any fetch (exit 3)", async () => {
  using r = await remoteStore({ dbMiB: 1 });
  const { stamp } = await createAndPush(r.env, []);
  const before = liveDigest(r.store);
  const none = "20200101T000000Z";
  for (const extra of [[], ["--confirm-service-stopped"]]) {
    for (const remote of [["--from-remote"], []]) {
      const args = ["restore", none, ...remote, ...extra];
      const run = await runCli(args, { env: r.envWithIdentity });
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(oneErrorLine(run, args.join(" ")), new RegExp(`no snapshot (of )?${none} in `));
    }
  }
  const unacknowledged = await runCli(["restore", stamp, "--from-remote"], { env: r.envWithIdentity });
  assert.equal(unacknowledged.code, 3, unacknowledged.stderr);
  assert.match(oneErrorLine(unacknowledged, "unacknowledged"), /refuses without --confirm-service-stopped/);
  assert.doesNotMatch(unacknowledged.stderr, /remote_fetch_started/, "it fetched first");
  assert.deepEqual(liveDigest(r.store), before);
});

Deno.test("remote CLI: push --latest and --all pass over a restore's pre-restore snapshot, saying so; push STAMP sends it and says what it is", async () => {
  using r = await remoteStore({ dbMiB: 1 });
  const created = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  const restored = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: r.env });
  assert.equal(restored.code, 0, restored.stderr);
  const pre = (restored.json as { pre_restore_snapshot: string }).pre_restore_snapshot;
  assert.ok(pre > stamp, "the pre-restore snapshot is the newest stamp");

  const latest = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(latest.code, 0, latest.stderr);
  const pushed = latest.json as { pushed: { stamp: string }[]; passed_over_pre_restore: string[] };
  assert.deepEqual([pushed.pushed.map((p) => p.stamp), pushed.passed_over_pre_restore], [[stamp], [pre]]);
  assert.deepEqual((await remoteNames(r.env)).map((name) => name.slice(0, 16)), [stamp], "the real snapshot is pushed");
  const context = { env: r.env, cwd: r.work, now: new Date(), reporter: SILENT };
  const told = await pushCommand.run({ all: true }, [], context);
  assert.match(told.text, new RegExp(`^passed over the pre-restore snapshots ${pre} \\(local undo points`, "m"));
  assert.deepEqual((told.result as { pushed: { stamp: string }[] }).pushed.map((p) => p.stamp), [stamp]);
  assert.deepEqual((await remoteNames(r.env)).map((name) => name.slice(0, 16)), [stamp], "--all sends it not either");

  const named = await pushCommand.run({}, [pre], context);
  assert.deepEqual((named.result as { pre_restore_pushed: string[] }).pre_restore_pushed, [pre]);
  assert.match(named.text, new RegExp(`^note: ${pre} is a pre-restore snapshot .*, pushed as asked;`, "m"));
  assert.deepEqual((await remoteNames(r.env)).map((name) => name.slice(0, 16)), [stamp, pre]);

  Deno.removeSync(join(r.store.backupDir, "snapshots", stamp), { recursive: true });
  const only = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(only.code, 2, only.stderr);
  assert.match(
    oneErrorLine(only, "only a pre-restore snapshot"),
    new RegExp(
      `is a pre-restore snapshot \\(newest ${pre}\\); push one by its stamp \\('atocore-backup push ${pre}'\\)$`,
    ),
  );
  const later = await runCli(["create"], { env: r.env });
  const laterStamp = (later.json as { stamp: string }).stamp;
  const metadataFile = join(r.store.backupDir, "snapshots", laterStamp, "backup-metadata.json");
  const edited = { ...JSON.parse(Deno.readTextFileSync(metadataFile)), kind: "pre-restore" };
  Deno.writeTextFileSync(metadataFile, JSON.stringify(edited)); // by hand: create's digest no longer matches
  const pick = latestStamp(r.store.backupDir, new Date(), true);
  assert.deepEqual([pick.stamp, pick.preRestore], [laterStamp, [pre]], "a kind added by hand passed a snapshot over");
});

Deno.test("remote CLI: the push that push --latest prints when only a pre-restore snapshot is left runs as printed, on the --backup-dir and repository given", async () => {
  using setup = await flaggedRepository("atocore-push-pre-restore-");
  const { env, backupDir, repository } = setup;
  const stamp = await setup.create();
  const restore = ["restore", stamp, "--confirm-service-stopped", "--backup-dir", backupDir];
  const restored = await runCli(restore, { env });
  assert.equal(restored.code, 0, restored.stderr);
  const pre = (restored.json as { pre_restore_snapshot: string }).pre_restore_snapshot;
  Deno.removeSync(join(backupDir, "snapshots", stamp), { recursive: true });

  const only = await runCli(["push", "--latest", "--backup-dir", backupDir, ...repository], { env });
  assert.equal(only.code, 2, only.stderr);
  const printed = printedCommand(oneErrorLine(only, "only a pre-restore snapshot"), "push one by its stamp with");
  assert.ok(printed !== null, only.stderr);
  const pushed = await runPrinted(printed, env); // pasted into a shell as it is
  assert.equal(pushed.code, 0, `${printed}: ${pushed.stderr}`);
  assert.deepEqual((pushed.json as { pre_restore_pushed: string[] }).pre_restore_pushed, [pre], printed);
});

Deno.test("remote CLI: the list and create a push refused for an invalid snapshot prints run as printed, on the --backup-dir given", async () => {
  using setup = await flaggedRepository("atocore-push-invalid-");
  const { env, backupDir, repository } = setup;
  const stamp = await setup.create();
  const db = join(backupDir, "snapshots", stamp, "db");
  const file = join(db, entryNames(db)[0]);
  const bytes = Deno.readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff; // same size: only the validation finds it
  Deno.writeFileSync(file, bytes);

  const refused = await runCli(["push", stamp, "--backup-dir", backupDir, ...repository], { env });
  assert.equal(refused.code, 3, refused.stderr);
  const line = oneErrorLine(refused, "invalid snapshot");
  const list = printedCommand(line, "push another snapshot, listed by");
  const create = printedCommand(line, "or make a new one with");
  assert.ok(list !== null && create !== null, line);
  const listed = await runPrinted(list, env); // pasted into a shell as it is
  assert.equal(listed.code, 0, `${list}: ${listed.stderr}`);
  assert.deepEqual((listed.json as { backups: { stamp: string }[] }).backups.map((one) => one.stamp), [stamp], list);
  const made = await runPrinted(create, env);
  assert.equal(made.code, 0, `${create}: ${made.stderr}`);
  assert.ok(entryNames(join(backupDir, "snapshots")).includes((made.json as { stamp: string }).stamp), create);
});

Deno.test("remote CLI: the push of a pre-restore snapshot that push --latest passed over runs as printed, on the --backup-dir and repository given", async () => {
  using setup = await flaggedRepository("atocore-push-passed-over-");
  const { env, backupDir, remote, repository } = setup;
  const stamp = await setup.create();
  const restore = ["restore", stamp, "--confirm-service-stopped", "--backup-dir", backupDir];
  const restored = await runCli(restore, { env });
  assert.equal(restored.code, 0, restored.stderr);
  const pre = (restored.json as { pre_restore_snapshot: string }).pre_restore_snapshot;

  const context = { env, cwd: setup.work, now: new Date(), reporter: SILENT };
  const values = { latest: true, "backup-dir": backupDir, remote, "auth-key": repository[3] };
  const told = await pushCommand.run(values, [], context);
  const printed = printedCommand(told.text, "push the newest with");
  assert.ok(printed !== null, told.text);
  const pushed = await runPrinted(printed, env); // pasted into a shell as it is
  assert.equal(pushed.code, 0, `${printed}: ${pushed.stderr}`);
  assert.deepEqual((pushed.json as { pre_restore_pushed: string[] }).pre_restore_pushed, [pre], printed);
});

Deno.test("remote CLI: the push drill --from-remote --latest prints for an empty repository runs as printed, on the repository given", async () => {
  using store = tempStore({ dbMiB: 1 });
  using work = tempDir("atocore-drill-empty-");
  const env = storeEnv(store); // no repository: a command run without --remote fails
  const key = ageKeyPair(work.path);
  const remote = join(work.path, "re po"); // a word a shell splits
  const init = await runCli(["remote", "init", "--recipient", key.recipient, "--remote", remote], { env });
  assert.equal(init.code, 0, init.stderr);
  const created = await runCli(["create"], { env });
  assert.equal(created.code, 0, created.stderr);
  const drill = ["drill", "--from-remote", "--remote", remote, "--identity", key.keyFile];

  const empty = await runCli([...drill, "--latest"], { env });
  assert.equal(empty.code, 1, empty.stderr);
  const push = printedCommand(oneErrorLine(empty, "empty repository"), "push one first with");
  assert.ok(push !== null, empty.stderr);
  // run where the backup folder is, whose push has its authentication key from the environment
  const pushed = await runPrinted(push, { ...env, ATOCORE_BACKUP_AUTH_KEY_FILE: authKeyFileFor(key) });
  assert.equal(pushed.code, 0, `${push}: ${pushed.stderr}`);
  const drilled = await runCli([...drill, "--latest"], { env });
  assert.equal(drilled.code, 0, drilled.stderr);
  assert.equal((drilled.json as { stamp: string }).stamp, (created.json as { stamp: string }).stamp, push);
});

Deno.test("remote CLI: the remote list and remote verify a restore of a damaged snapshot prints run as printed, on the repository and identity given", async () => {
  using store = tempStore({ dbMiB: 1 });
  using work = tempDir("atocore-restore-damaged-");
  const env = storeEnv(store); // no repository nor identity: a command run without the flags fails
  const key = ageKeyPair(work.path);
  const remote = join(work.path, "re po"); // a word a shell splits
  const init = await runCli(["remote", "init", "--recipient", key.recipient, "--remote", remote], { env });
  assert.equal(init.code, 0, init.stderr);
  const pushed = await runCli(["create", "--push", "--remote", remote, "--auth-key", authKeyFileFor(key)], { env });
  assert.equal(pushed.code, 0, pushed.stderr);
  const stamp = (pushed.json as { stamp: string }).stamp;
  for (const folder of entryNames(join(remote, "packs"))) {
    for (const pack of entryNames(join(remote, "packs", folder))) {
      const path = join(remote, "packs", folder, pack);
      const bytes = Deno.readFileSync(path);
      bytes[bytes.length >> 1] ^= 0xff; // every pack damaged: whichever the fetch reads first refuses it
      Deno.writeFileSync(path, bytes);
    }
  }

  const args = ["restore", stamp, "--from-remote", "--to", join(work.path, "to"), "--remote", remote];
  const refused = await runCli([...args, "--identity", key.keyFile], { env });
  assert.equal(refused.code, 3, refused.stderr);
  const line = oneErrorLine(refused, "damaged snapshot");
  const list = printedCommand(line, "pick another snapshot, listed by");
  const verify = printedCommand(line, "or check the repository with");
  assert.ok(list !== null && verify !== null, line);
  const listed = await runPrinted(list, env); // pasted into a shell as it is
  assert.equal(listed.code, 0, `${list}: ${listed.stderr}`);
  const verified = await runPrinted(verify, env);
  assert.notEqual(
    (verified.json as { errors: string[] } | undefined)?.errors.length ?? 0,
    0,
    `${verify}: ${verified.stderr}`,
  );
});

Deno.test("remote CLI: the remote list a restore of a snapshot its refs do not vouch for prints runs as printed, on the repository given", async () => {
  using store = tempStore({ dbMiB: 1 });
  using work = tempDir("atocore-restore-unauthentic-");
  const env = storeEnv(store); // no repository: a command run without --remote fails
  const key = ageKeyPair(work.path);
  const remote = join(work.path, "re po"); // a word a shell splits
  const init = await runCli(["remote", "init", "--recipient", key.recipient, "--remote", remote], { env });
  assert.equal(init.code, 0, init.stderr);
  const pushed = await runCli(["create", "--push", "--remote", remote, "--auth-key", authKeyFileFor(key)], { env });
  assert.equal(pushed.code, 0, pushed.stderr);
  const snapshot = (pushed.json as { push: { pushed: { snapshot: string }[] } }).push.pushed[0].snapshot;
  const copy = "20260101T000000Z_0123456789abcdef"; // renamed by a writer of the repository: its MAC no longer matches
  for (const folder of ["snapshots", "refs"]) {
    const text = Deno.readTextFileSync(join(remote, folder, snapshot));
    Deno.writeTextFileSync(join(remote, folder, copy), folder === "refs" ? text.replaceAll(snapshot, copy) : text);
  }
  const restore = ["restore", copy, "--from-remote", "--to", join(work.path, "to"), "--remote", remote];
  for (const refs of ["forged", "missing"]) {
    if (refs === "missing") Deno.removeSync(join(remote, "refs", copy));
    const refused = await runCli([...restore, "--identity", key.keyFile], { env });
    assert.equal(refused.code, 3, refused.stderr);
    const list = printedCommand(oneErrorLine(refused, `refs ${refs}`), "pick another snapshot, listed by");
    assert.ok(list !== null, refused.stderr);
    const listed = await runPrinted(list, env); // pasted into a shell as it is
    const names = (listed.json as { snapshots: { snapshot: string }[] } | undefined)?.snapshots.map((one) =>
      one.snapshot
    );
    assert.deepEqual(names, [copy, snapshot], `${list}: ${listed.stderr}`);
  }
});

Deno.test("remote CLI: the push a failed create --push says to run later carries the flags it was given, and works from another folder", async () => {
  using store = tempStore({ dbMiB: 1 });
  using work = tempDir("atocore-push-later-");
  const key = ageKeyPair(work.path);
  const authKey = authKeyFileFor(key);
  const here = join(work.path, "here");
  Deno.mkdirSync(here);
  const relative = (path: string) => relativePath(here, path);
  const flags = ["--backup-dir", relative(store.backupDir), "--db", relative(store.db)];
  const repository = ["--remote", "../repo", "--auth-key", relative(authKey)];
  const created = await runCli(["create", "--push", ...flags, ...repository], { cwd: here }); // no repository yet
  assert.equal(created.code, 1, created.stderr);
  const error = (created.json as { push_error: string }).push_error;
  const command = /push it later with: atocore-backup (push \d{8}T\d{6}Z.*)$/.exec(error)?.[1];
  assert.ok(command, error);
  const init = await runCli(["remote", "init", "--recipient", key.recipient, ...repository], { cwd: here });
  assert.equal(init.code, 0, init.stderr);
  const later = await runCli(command.split(" "), { cwd: work.path }); // another folder, no environment
  assert.equal(later.code, 0, `${command}: ${later.stderr}`);
  assert.equal((later.json as { pushed: { already_pushed: boolean }[] }).pushed[0].already_pushed, false);
  const warned = created.stderr.split("\n").find((line) => line.includes('"push_after_create_failed"'));
  assert.equal(JSON.parse(warned ?? "{}").command, `atocore-backup ${command}`, created.stderr);
});

for (const name of ["plain", "with spaces, and a quote's"]) {
  Deno.test(`remote CLI: a failed create --push prints, last, a push command a shell runs as printed (${name} paths)`, async () => {
    using work = tempDir("atocore-push-printed-");
    const base = join(work.path, name);
    const store = makeSampleStore(join(base, "store"), { dbMiB: 1 });
    const key = ageKeyPair(base);
    const flags = ["--backup-dir", store.backupDir, "--db", store.db, "--registry", store.registry];
    const repository = ["--remote", join(base, "repo"), "--auth-key", authKeyFileFor(key)];
    const created = await runCli(["create", "--push", ...flags, ...repository], { cwd: work.path }); // no repository
    assert.equal(created.code, 1, created.stderr);
    const error = (created.json as { push_error: string }).push_error;
    const printed = /push it later with: (atocore-backup push \d{8}T\d{6}Z.*)$/.exec(error)?.[1];
    assert.ok(printed, error);
    const init = await runCli(["remote", "init", "--recipient", key.recipient, ...repository]);
    assert.equal(init.code, 0, init.stderr);
    // the printed text pasted into a shell as it is
    const later = await runPrinted(printed, {});
    assert.equal(later.code, 0, `${printed}: ${later.stderr}`);
    assert.equal((later.json as { pushed: { already_pushed: boolean }[] }).pushed[0].already_pushed, false, printed);
  });
}

Deno.test("remote CLI: the push remote init prints on a terminal runs as printed: its flags quoted, a path with spaces", async () => {
  using work = tempDir("atocore-init-printed-");
  const base = join(work.path, "with spaces, and a quote's");
  const store = makeSampleStore(join(base, "store"), { dbMiB: 1 });
  const key = ageKeyPair(base);
  const created = await runCli([
    "create",
    "--backup-dir",
    store.backupDir,
    "--db",
    store.db,
    "--registry",
    store.registry,
  ]);
  assert.equal(created.code, 0, created.stderr);
  const flags = ["--backup-dir", store.backupDir, "--db", store.db, "--registry", store.registry];
  const repository = ["--remote", join(base, "repo"), "--auth-key", authKeyFileFor(key)];
  const init = await runCliOnTerminal(["remote", "init", "--recipient", key.recipient, ...flags, ...repository], {});
  assert.equal(init.code, 0, init.text);
  const printed = /push to it with: (atocore-backup push --latest.*?)\r?$/m.exec(init.text)?.[1];
  assert.ok(printed, init.text);
  // the printed text pasted into a shell as it is, from another folder and without the store's environment
  const pushed = await runPrinted(printed, {});
  assert.equal(pushed.code, 0, `${printed}: ${pushed.stderr}`);
  assert.equal((pushed.json as { pushed: { already_pushed: boolean }[] }).pushed[0].already_pushed, false, printed);
});

Deno.test("remote CLI: remote init without an authentication key prints how to make one, and the push given it: both run as printed", async () => {
  using work = tempDir("atocore-init-no-auth-");
  const store = makeSampleStore(join(work.path, "store"), { dbMiB: 1 });
  const key = ageKeyPair(work.path);
  const flags = ["--backup-dir", store.backupDir, "--db", store.db, "--registry", store.registry];
  assert.equal((await runCli(["create", ...flags])).code, 0);
  const repository = join(work.path, "repo");
  const init = await runCliOnTerminal([
    "remote",
    "init",
    "--recipient",
    key.recipient,
    "--remote",
    repository,
    ...flags,
  ], {});
  assert.equal(init.code, 0, init.text);
  const makeKey = printedCommand(init.text, "where the identity is (not on this host)");
  const push = printedCommand(init.text, "push to it with");
  assert.ok(makeKey !== null && push !== null, init.text);
  assert.match(push, / --auth-key atocore-auth\.key$/);
  // the operator names their identity file as the README does, and runs both lines in one folder
  Deno.copyFileSync(key.keyFile, join(work.path, "atocore-offsite.key"));
  const ran = await runPrinted(`cd '${work.path}' && ${makeKey} && ${push}`, {});
  assert.equal(ran.code, 0, `${makeKey}; ${push}: ${ran.stderr}`);
  assert.equal((ran.json as { pushed: { already_pushed: boolean }[] }).pushed[0].already_pushed, false);
});

Deno.test("remote CLI: a live restore of another backup folder's snapshot in a shared repository is refused (exit 3) unless --other-source; --to and this folder's own restore", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  using other = tempStore({ dbMiB: 1, chromaMiB: 1, seed: 11 });
  const env = { ...r.envWithIdentity, ATOCORE_BACKUP_IDENTITY_FILE: r.key.keyFile };
  const mine = await createAndPush(r.env);
  const theirs = await createAndPush({ ...r.env, ...storeEnv(other) }); // another host's folder, the same repository
  const before = liveDigest(r.store);
  const refused = await runCli(["restore", theirs.push.snapshot, "--from-remote", "--confirm-service-stopped"], {
    env,
  });
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(
    oneErrorLine(refused, "restore of another folder's snapshot"),
    new RegExp(
      `^atocore-backup: error: ${theirs.push.snapshot} in \\S+ was pushed by another backup folder \\(source [0-9a-f]{16}; this one's is [0-9a-f]{16}: .*; nothing was changed; .* add --other-source to restore that one here`,
    ),
  );
  assert.deepEqual(liveDigest(r.store), before, "the live store changed");
  using work = tempDir("atocore-other-source-");
  const aside = await runCli(["restore", theirs.push.snapshot, "--from-remote", "--to", join(work.path, "aside")], {
    env,
  });
  assert.equal(aside.code, 0, `--to restores it aside: ${aside.stderr}`);
  const own = await runCli(["restore", mine.push.snapshot, "--from-remote", "--confirm-service-stopped"], { env });
  assert.equal(own.code, 0, `this folder's own snapshot: ${own.stderr}`);
  const allowed = ["restore", theirs.push.snapshot, "--from-remote", "--confirm-service-stopped", "--other-source"];
  const taken = await runCli(allowed, { env });
  assert.equal(taken.code, 0, `--other-source: ${taken.stderr}`);
  assert.deepEqual(
    contentDigest(liveDigest(r.store), r.store.dataDir, false),
    contentDigest(liveDigest(other), other.dataDir, false),
    "the other folder's store is live",
  );
  // a folder that never pushed there (a rebuilt host) restores what it finds, as before
  using fresh = tempStore({ dbMiB: 1, chromaMiB: 1, seed: 12 });
  Deno.mkdirSync(fresh.backupDir); // its pre-restore snapshot goes there: a restore makes no backup folder
  const rebuilt = await runCli(["restore", theirs.push.snapshot, "--from-remote", "--confirm-service-stopped"], {
    env: { ...env, ...storeEnv(fresh) },
  });
  assert.equal(rebuilt.code, 0, `a host that never pushed there: ${rebuilt.stderr}`);
});

Deno.test("remote CLI: the remote list a restore or drill of a missing or malformed remote snapshot prints runs as printed, with the --remote given", async () => {
  using r = await remoteStore({ dbMiB: 1 });
  using elsewhere = tempDir("atocore-elsewhere-");
  await createAndPush(r.env);
  const env = { ...storeEnv(r.store), ATOCORE_BACKUP_IDENTITY_FILE: r.key.keyFile }; // the repository by flag only
  const runs: string[][] = [
    ["drill", "20200101T000000Z", "--from-remote"],
    ["restore", "20200101T000000Z_00000000000000aa", "--from-remote", "--to", join(elsewhere.path, "to")],
    ["drill", "../x", "--from-remote"],
    ["restore", "x_y", "--from-remote", "--to", join(elsewhere.path, "to")],
  ];
  for (const args of runs) {
    const run = await runCli([...args, "--remote", relativePath(r.work, r.repoDir)], { env, cwd: r.work });
    assert.equal(run.code, 2, run.stderr);
    const printed = printedCommand(oneErrorLine(run, args[0]), "see them with");
    assert.equal(printed, `atocore-backup remote list --remote ${r.repoDir}`, args[0]);
    const listed = await runPrinted(printed!, storeEnv(r.store));
    assert.equal(listed.code, 0, `${printed}: ${listed.stderr}`);
  }
});

Deno.test("remote CLI: a folder where the record of pushed stamps belongs is named once, with what to do; the push ends", async () => {
  using r = await remoteStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  await createAndPush(r.env);
  const remotes = join(r.store.backupDir, "remotes");
  const [key] = entryNames(remotes);
  const record = join(remotes, key, "pushed.json");
  Deno.removeSync(record);
  Deno.mkdirSync(record);
  const run = await runCli(["create", "--push"], { env: r.env });
  assert.equal(run.code, 0, run.stderr);
  const told = run.stderr.split("\n").filter((line) => line.includes("pushed.json"));
  assert.equal(told.length, 1, run.stderr);
  assert.match(told[0], /pushed\.json is a folder, where the record of the stamps pushed belongs: remove it/);
  assert.ok(statOrNull(record)?.isDirectory, "left as it was");
});
