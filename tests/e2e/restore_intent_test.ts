/**
 * The record of an unfinished restore kept beside the live database: never opened unless a small regular file, and
 * never trusted to name a folder outside the Chroma folder's hidden ones; a run that finishes removes it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createdStamp,
  printedCommand,
  runCli,
  runPrinted,
  skipBecause,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { mountTmpfs } from "../_mount.ts";
import { ageKeyPair, createAndPush, remoteStore, snapshotAsStore } from "../_remote_cli.ts";
import { entryNames, ledgerState, liveDigest, runAndKill, treeDigest } from "../_faults.ts";
import { changeLive } from "../_live.ts";
import { makeSampleStore, type SampleStore } from "../../scripts/sample_store.ts";

const INTENT = ".atocore.db.restore-intent.json";

/** The records in a backup folder of the snapshots unfinished restores need. */
function needsRecords(backupDir: string): string[] {
  return entryNames(backupDir).filter((name) => name.startsWith(".restore-needs-"));
}

/** A record as a restore of `stamp` into `store` writes it, with `extra` fields over it. */
function intentRecord(store: SampleStore, stamp: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    format: 1,
    stamp,
    backup_dir: store.backupDir,
    chroma_dir: store.chromaDir,
    chroma: true,
    pre_restore_snapshot: null,
    started_at: new Date().toISOString(),
    pid: 1,
    swap: null,
    ...extra,
  };
}

Deno.test("a record that is a FIFO or a symbolic link is never opened: create and restore refuse, nothing changed", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const intent = join(store.dataDir, INTENT);
  const makers: [string, () => void][] = [
    ["FIFO", () => new Deno.Command("mkfifo", { args: [intent] }).outputSync()],
    ["symbolic link", () => Deno.symlinkSync(store.registry, intent)],
  ];
  for (const [kind, make] of makers) {
    make();
    const before = treeDigest(store.dataDir, ["backups", INTENT]); // the record itself is never read
    for (const args of [["create"], ["restore", stamp, "--confirm-service-stopped"]]) {
      const run = await runCli(args, { env });
      assert.equal(run.code, 3, `${kind}, ${args[0]}: exit ${run.code}: ${run.stderr}`);
      assert.ok(run.stderr.includes(`${intent} is not a small regular file`), run.stderr);
    }
    assert.deepEqual(treeDigest(store.dataDir, ["backups", INTENT]), before, `${kind}: the live store changed`);
    assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1, `${kind}: a snapshot was made`);
    Deno.removeSync(intent);
  }
});

Deno.test("a record naming a folder outside the Chroma folder's hidden ones is refused, and that folder is kept", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const outside = join(store.dataDir, "outside");
  Deno.mkdirSync(outside);
  Deno.writeTextFileSync(join(outside, "keep.txt"), "not Chroma's");
  const record = intentRecord(store, stamp, {
    swap: { phase: "moving-old-aside", old: "../outside", staged: ".atocore-restore-1-00000000" },
  });
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /is not one this tool wrote/);
  assert.deepEqual(entryNames(outside), ["keep.txt"]);
  const create = await runCli(["create"], { env });
  assert.equal(create.code, 3, create.stderr);
  Deno.removeSync(join(store.dataDir, INTENT));
  const after = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(after.code, 0, after.stderr);
  assert.ok(!entryNames(store.dataDir).includes(INTENT), "a finished restore left its record");
});

Deno.test("an unfinished restore from a repository says how to finish it from there", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const record = intentRecord(store, "20260101T000000Z", {
    remote: { snapshot: "20260101T000000Z_0123456789abcdef", location: "file:///mnt/off site" },
  });
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
  const create = await runCli(["create"], { env });
  assert.equal(create.code, 3, create.stderr);
  assert.match(
    create.stderr,
    /finish it with: atocore-backup restore 20260101T000000Z_0123456789abcdef --from-remote --remote 'file:\/\/\/mnt\/off site' --identity FILE --confirm-service-stopped;/,
  );
});

Deno.test("a restore from a repository killed part way is finished by the command it prints, identity file named", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const identity = ["--identity", r.key.keyFile]; // a flag: the environment of the next run does not have it
  const restore = ["restore", stamp, "--from-remote", ...identity, "--confirm-service-stopped", "--no-pre-snapshot"];
  const killed = await runAndKill(restore, r.env, 0, "restore_db_replaced");
  assert.equal(killed.code, null, "the restore ended before the kill");
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 3, created.stderr);
  const printed = printedCommand(created.stderr, "finish it with");
  assert.ok(printed?.includes(`--identity ${r.key.keyFile}`), created.stderr);
  const finished = await runPrinted(printed!, r.env); // pasted into a shell as it is
  assert.equal(finished.code, 0, `${printed}: ${finished.stderr}`);
  assert.deepEqual(liveDigest(r.store), snapshotAsStore(join(r.store.backupDir, "snapshots", stamp)));
});

Deno.test("an unfinished restore of a snapshot taken unauthenticated or from another backup folder says to finish it so", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const remote = { snapshot: "20260101T000000Z_0123456789abcdef", location: "file:///mnt/offsite" };
  const cases: [Record<string, unknown>, string][] = [
    [{ unauthenticated: true }, " --allow-unauthenticated"],
    [{ other_source: true }, " --other-source"],
    [{ unauthenticated: true, other_source: true }, " --allow-unauthenticated --other-source"],
  ];
  for (const [marks, flags] of cases) {
    const record = intentRecord(store, "20260101T000000Z", { remote: { ...remote, ...marks } });
    Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
    const create = await runCli(["create"], { env });
    assert.equal(create.code, 3, create.stderr);
    assert.equal(
      printedCommand(create.stderr, "finish it with"),
      `atocore-backup restore ${remote.snapshot} --from-remote --remote file:///mnt/offsite --identity FILE${flags} ` +
        "--confirm-service-stopped",
      create.stderr,
    );
  }
});

Deno.test("an unfinished restore from an S3 server other than AWS says how to finish it in words the CLI takes", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const record = intentRecord(store, "20260101T000000Z", {
    remote: { snapshot: "20260101T000000Z_0123456789abcdef", location: "s3://bucket/host-1 at http://127.0.0.1:9" },
  });
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
  const create = await runCli(["create"], { env });
  assert.equal(create.code, 3, create.stderr);
  const finish = printedCommand(create.stderr, "finish it with");
  assert.equal(
    finish,
    "atocore-backup restore 20260101T000000Z_0123456789abcdef --from-remote --remote s3://bucket/host-1 " +
      "--s3-endpoint http://127.0.0.1:9 --identity FILE --confirm-service-stopped",
    create.stderr,
  );
  // as printed, with the identity in place of FILE: the CLI takes every word and goes to that server (none listens)
  const keys = { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "secret" };
  using work = tempDir("atocore-intent-s3-");
  const { keyFile } = ageKeyPair(work.path);
  const run = await runPrinted(`${finish!.replace("FILE", keyFile)} --stall-timeout 1s`, { ...env, ...keys });
  assert.doesNotMatch(run.stderr, /not a plain S3 prefix|unknown option|usage/i, run.stderr);
  assert.match(run.stderr, /s3:\/\/bucket\/host-1 at http:\/\/127\.0\.0\.1:9/, run.stderr);
});

Deno.test("an unfinished restore is not resumed with the other choice for Chroma: refused, nothing changed", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const pre = await createdStamp(env);
  const cases: [boolean, string[], RegExp][] = [
    [false, [], /was leaving Chroma alone \(its pre-restore snapshot holds none\); this run would replace Chroma/],
    [true, ["--no-chroma"], /was restoring Chroma too; this run leaves Chroma alone \(--no-chroma/],
  ];
  for (const [chroma, flags, said] of cases) {
    const record = intentRecord(store, stamp, { chroma, pre_restore_snapshot: pre });
    Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
    const before = treeDigest(store.dataDir, ["backups"]);
    const run = await runCli(["restore", stamp, "--confirm-service-stopped", ...flags], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, said);
    const finish = `atocore-backup restore ${stamp} --confirm-service-stopped${chroma ? "" : " --no-chroma"}`;
    const next = `nothing was changed; finish it with: ${finish}; or go back to the pre-restore snapshot with`;
    assert.ok(run.stderr.includes(next), run.stderr);
    assert.deepEqual(treeDigest(store.dataDir, ["backups"]), before, "the live store or the record changed");
    const resumed = await runCli(["restore", stamp, "--confirm-service-stopped", ...(chroma ? [] : ["--no-chroma"])], {
      env,
    });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.ok(!entryNames(store.dataDir).includes(INTENT), "the same choice finishes it");
  }
  // a restore with Chroma onto a store that had none took its pre-restore snapshot without Chroma: going back works
  const noChroma = await createdStamp(env, []);
  const record = intentRecord(store, stamp, { chroma: true, pre_restore_snapshot: noChroma });
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
  const back = await runCli(["restore", noChroma, "--confirm-service-stopped"], { env });
  assert.equal(back.code, 0, back.stderr);
  assert.ok(!entryNames(store.dataDir).includes(INTENT), "going back settles it");
});

Deno.test("going back from an unfinished restore that swapped Chroma is refused with --no-chroma: nothing changed", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  await changeLive(store);
  // the databases' bytes change with the copy (a snapshot is a backup API copy): their rows are compared
  const files = () =>
    Object.entries(treeDigest(store.dataDir, ["backups", "atocore.db"])).filter(([path]) => !path.endsWith(".sqlite3"));
  const before = { files: files(), ledger: await ledgerState(store.db) };
  const restored = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(restored.code, 0, restored.stderr);
  const pre = (restored.json as { pre_restore_snapshot: string }).pre_restore_snapshot;
  // as a restore killed after its swap, before it removed its record, leaves the store
  const record = intentRecord(store, stamp, { pre_restore_snapshot: pre });
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
  const killed = treeDigest(store.dataDir, ["backups"]);

  const run = await runCli(["restore", pre, "--confirm-service-stopped", "--no-chroma"], { env });
  assert.equal(run.code, 3, run.stderr);
  const lines = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(lines.length, 1, run.stderr);
  assert.match(
    lines[0],
    /was restoring Chroma and may have swapped it; .*nothing was changed; go back without --no-chroma/,
  );
  assert.ok(
    lines[0].endsWith(`go back without --no-chroma: atocore-backup restore ${pre} --confirm-service-stopped`),
  );
  assert.deepEqual(treeDigest(store.dataDir, ["backups"]), killed, "the live store or the record changed");
  const back = await runCli(["restore", pre, "--confirm-service-stopped"], { env });
  assert.equal(back.code, 0, back.stderr);
  const after = { files: files(), ledger: await ledgerState(store.db) };
  assert.deepEqual(after, before, "going back did not bring the store back");
});

Deno.test("an unfinished restore whose leftovers fill Chroma's filesystem can still be finished (root)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  using saved = tempDir();
  new Deno.Command("cp", { args: ["-a", `${store.chromaDir}/.`, saved.path] }).outputSync();
  const chromaBytes = treeBytes(saved.path);
  const mounted = mountTmpfs(store.chromaDir, `${Math.ceil((2.5 * chromaBytes) / 1024)}k`);
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  new Deno.Command("cp", { args: ["-a", `${saved.path}/.`, store.chromaDir] }).outputSync();
  const leftover = join(store.chromaDir, ".atocore-restore-1-00000000"); // what a killed run had staged
  new Deno.Command("cp", { args: ["-a", saved.path, leftover] }).outputSync();
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(intentRecord(store, stamp, {})));
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stderr,
    /"event":"restore_free_space_checked","path":"[^"]*","needed":\d+,"available":\d+,"leftovers_cleared_first":\d+/,
  );
  assert.ok(!entryNames(store.chromaDir).some((name) => name.startsWith(".atocore-")), "the leftover is gone");
  assert.ok(!entryNames(store.dataDir).includes(INTENT), "finished");
});

/** Bytes of the files below `root`. */
function treeBytes(root: string): number {
  let bytes = 0;
  for (const entry of Deno.readDirSync(root)) {
    const path = join(root, entry.name);
    bytes += entry.isDirectory ? treeBytes(path) : entry.isFile ? Deno.statSync(path).size : 0;
  }
  return bytes;
}

Deno.test("the commands that finish or undo an unfinished restore carry the path flags the store was given by", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const record = intentRecord(store, stamp, { pre_restore_snapshot: "20260101T000000Z" });
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
  const flags = [
    "--db",
    store.db,
    "--backup-dir",
    store.backupDir,
    "--registry",
    store.registry,
    "--chroma-dir",
    store.chromaDir,
  ];
  const create = await runCli(["create", ...flags], { env: {} });
  assert.equal(create.code, 3, create.stderr);
  const where =
    ` --backup-dir ${store.backupDir} --db ${store.db} --registry ${store.registry} --chroma-dir ${store.chromaDir}`;
  assert.ok(
    create.stderr.includes(
      `finish it with: atocore-backup restore ${stamp} --confirm-service-stopped${where}; or go back to the ` +
        `pre-restore snapshot with: atocore-backup restore 20260101T000000Z --confirm-service-stopped${where}`,
    ),
    create.stderr,
  );
  const elsewhere = join(store.dataDir, "chroma elsewhere"); // the recorded Chroma folder, not this run's
  const moved = intentRecord(store, stamp, { pre_restore_snapshot: "20260101T000000Z", chroma_dir: elsewhere });
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(moved));
  const recorded = await runCli(["create", ...flags], { env: {} });
  assert.ok(recorded.stderr.includes(`--chroma-dir '${elsewhere}';`), recorded.stderr);
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
  const finish = await runCli(["restore", stamp, "--confirm-service-stopped", ...where.trim().split(" ")], { env: {} });
  assert.equal(finish.code, 0, finish.stderr);
  assert.ok(!entryNames(store.dataDir).includes(INTENT), "the printed command finished it");
});

Deno.test("cleanup keeps the snapshots an unfinished restore names; an unreadable record refuses it (exit 3)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamps = [];
  for (let made = 0; made < 3; made++) stamps.push(await createdStamp(env, []));
  const [pre, restoring, newest] = stamps;
  const record = join(store.dataDir, INTENT);
  Deno.writeTextFileSync(record, JSON.stringify(intentRecord(store, restoring, { pre_restore_snapshot: pre })));
  const keep = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const run = await runCli(["cleanup", "--confirm", ...keep], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")).sort(), [pre, restoring, newest].sort());
  assert.match(JSON.stringify(run.json), /unfinished-restore/);
  Deno.removeSync(record);
  Deno.mkdirSync(record);
  const refused = await runCli(["cleanup", "--confirm", ...keep], { env });
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /the record of an unfinished restore .* is not a small regular file/);
  assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 3, "nothing removed");
});

Deno.test("a restore killed part way records what it needs in the backup folder: a cleanup given only that folder keeps it", async () => {
  using store = tempStore({ dbMiB: 32, chromaMiB: 1 });
  using elsewhere = tempDir(); // a cron job's folder: no ./data there
  const env = storeEnv(store);
  const restoring = await createdStamp(env, []);
  const restore = ["restore", restoring, "--confirm-service-stopped"];
  let killed = false;
  for (let attempt = 0; attempt < 5 && !killed; attempt++) {
    killed = (await runAndKill(restore, env, 0, "restore_db_replacing")).code === null;
  }
  assert.ok(killed, "no run was killed before it finished");
  assert.ok(entryNames(store.dataDir).includes(INTENT), "the restore is unfinished");
  const pre = entryNames(join(store.backupDir, "snapshots")).at(-1)!;
  const [record] = needsRecords(store.backupDir);
  const needs = JSON.parse(Deno.readTextFileSync(join(store.backupDir, record)));
  assert.deepEqual([needs.db, needs.stamps], [store.db, [restoring, pre]]);

  const keep = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0", "--keep-pre-restore-days", "0"];
  const run = await runCli(["cleanup", "--confirm", "--backup-dir", store.backupDir, ...keep], {
    env: {},
    cwd: elsewhere.path,
  });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [restoring, pre].sort(), "nothing it needs removed");
  const kept = (run.json as { kept_snapshots: { stamp: string; reasons: { rule: string; bucket: string }[] }[] })
    .kept_snapshots.find((one) => one.stamp === restoring);
  assert.deepEqual(kept?.reasons, [{
    rule: "unfinished-restore",
    bucket: `needed by the unfinished restore into ${store.db} (recorded in ${record})`,
  }]);
  assert.match(run.stderr, /"event":"cleanup_live_store_not_found","path":"[^"]*\/data\/atocore\.db"/);
  assert.match(run.stderr, /"event":"cleanup_unfinished_restore_kept"/);

  const finish = await runCli(restore, { env });
  assert.equal(finish.code, 0, finish.stderr);
  assert.deepEqual(needsRecords(store.backupDir), [], "removed with the record beside the database");
  const after = await runCli(["cleanup", "--confirm", "--backup-dir", store.backupDir, ...keep], {
    env: {},
    cwd: elsewhere.path,
  });
  assert.equal(after.code, 0, after.stderr);
  assert.ok(!entryNames(join(store.backupDir, "snapshots")).includes(restoring), "no longer needed, so it goes");
  Deno.mkdirSync(join(store.backupDir, record)); // not a record this tool wrote: never guessed at
  const refused = await runCli(["cleanup", "--confirm", "--backup-dir", store.backupDir, ...keep], { env: {} });
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(
    refused.stderr,
    /the record of the snapshots an unfinished restore needs .* is not a small regular file/,
  );
});

for (const [what, folder] of [["a space, a quote", "with spaces, and a quote's"], ["a line break", "two\nlines"]]) {
  Deno.test(`the commands that finish or undo an unfinished restore run in a shell as printed (paths with ${what})`, async () => {
    await printedCommandsRun(folder);
  });
}

/** Leave a restore unfinished in a store under `folder`, then run each command create prints to finish or undo it. */
async function printedCommandsRun(folder: string): Promise<void> {
  using work = tempDir("atocore-intent-printed-");
  const store = makeSampleStore(join(work.path, folder), { dbMiB: 1, chromaMiB: 1 });
  const flags = ["--db", store.db, "--backup-dir", store.backupDir, "--registry", store.registry];
  flags.push("--chroma-dir", store.chromaDir);
  const stamp = await createdStamp({}, ["--chroma", ...flags]);
  const pre = await createdStamp({}, ["--chroma", ...flags]);
  for (const way of ["finish it with", "or go back to the pre-restore snapshot with"]) {
    const record = intentRecord(store, stamp, { pre_restore_snapshot: pre });
    Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
    const create = await runCli(["create", ...flags], { env: {} });
    assert.equal(create.code, 3, create.stderr);
    const printed = printedCommand(create.stderr, way) ?? "";
    assert.ok(printed.startsWith("atocore-backup restore "), `no command after "${way}": ${create.stderr}`);
    const run = await runPrinted(printed, {}); // pasted into a shell as it is
    assert.equal(run.code, 0, `${printed}: ${run.stderr}`);
    assert.equal((run.json as { stamp: string }).stamp, way.startsWith("finish") ? stamp : pre, printed);
    assert.ok(!entryNames(store.dataDir).includes(INTENT), `${printed} did not finish the restore`);
  }
}
