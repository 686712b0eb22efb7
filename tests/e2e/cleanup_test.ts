/**
 * Cleanup on real folders: the engine against the golden fixtures, and the CLI
 * end to end (dry run, --confirm, custom counts, bad counts, the lock, folders
 * that are not snapshots, and a cleanup killed part way).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cleanupSnapshots } from "../../src/ops/cleanup.ts";
import { cleanupCommand } from "../../src/cli/cleanup.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { DEFAULT_POLICY, type RetentionPolicy } from "../../src/snapshot/retention.ts";
import { isStamp } from "../../src/snapshot/stamp.ts";
import { failedDir, failedRoot, lockPath, snapshotsDir, trashRoot } from "../../src/snapshot/layout.ts";
import { sampleStorePaths } from "../../scripts/sample_store.ts";
import { cliCommand, referenceFor, ROOT, runCli, runReference, tempDir } from "../_helpers.ts";
import { entryNames } from "../_faults.ts";

const FIXTURES = join(ROOT, "tests", "fixtures", "retention");

/** One golden fixture (see scripts/make_retention_fixtures.py). */
interface Fixture {
  name: string;
  policy: RetentionPolicy;
  folders: string[];
  files: string[];
  expected: { keep: string[]; remove: string[]; unparseable: string[] };
}

function fixture(name: string): Fixture {
  return JSON.parse(Deno.readTextFileSync(join(FIXTURES, `${name}.json`)));
}

function allFixtures(): Fixture[] {
  return [...Deno.readDirSync(FIXTURES)]
    .filter((entry) => entry.name.endsWith(".json") && entry.name !== "week_numbers.json")
    .map((entry) => fixture(entry.name.replace(/\.json$/, "")));
}

/** Make a backup folder holding the fixture's folders (each with `filesEach` files, 0 for bare folders) and plain files. */
function makeBackup(backupDir: string, set: Fixture, filesEach = 2): void {
  const root = snapshotsDir(backupDir);
  Deno.mkdirSync(root, { recursive: true });
  for (const name of set.folders) {
    Deno.mkdirSync(join(root, name, filesEach ? "db" : ""), { recursive: true });
    for (let n = 0; n < filesEach; n += 1) Deno.writeTextFileSync(join(root, name, "db", `part-${n}`), name);
  }
  for (const name of set.files) Deno.writeTextFileSync(join(root, name), "a file, not a snapshot\n");
}

function fileCount(path: string): number {
  let count = 0;
  for (const entry of Deno.readDirSync(path)) {
    count += entry.isDirectory ? fileCount(join(path, entry.name)) : 1;
  }
  return count;
}

const newestFirst = (names: string[]) => [...names].sort().reverse();

Deno.test("engine: a dry run on every fixture reports the module's decisions and touches nothing", () => {
  for (const set of allFixtures()) {
    using dir = tempDir();
    makeBackup(dir.path, set, 0);
    const before = entryNames(snapshotsDir(dir.path));
    const result = cleanupSnapshots(dir.path, { policy: DEFAULT_POLICY, confirm: false, reporter: SILENT });
    assert.equal(result.kept, set.expected.keep.length, set.name);
    assert.equal(result.would_delete, set.expected.remove.length, set.name);
    assert.deepEqual(result.kept_snapshots.map((kept) => kept.stamp), set.expected.keep, set.name);
    assert.deepEqual(result.would_delete_snapshots, set.expected.remove, set.name);
    assert.deepEqual(result.unparseable, set.expected.unparseable, set.name);
    assert.deepEqual(entryNames(snapshotsDir(dir.path)), before, set.name);
    assert.deepEqual(entryNames(trashRoot(dir.path)), [], set.name);
  }
});

Deno.test("engine: a confirmed run removes exactly what the module removes, and nothing else", () => {
  for (const name of ["not_stamps_mixed", "lax_names", "hourly_bursts_1", "year_edge_2023", "only_not_stamps"]) {
    using dir = tempDir();
    const set = fixture(name);
    makeBackup(dir.path, set, 3);
    const result = cleanupSnapshots(dir.path, { policy: DEFAULT_POLICY, confirm: true, reporter: SILENT });
    assert.deepEqual(result.errors, [], name);
    assert.equal(result.deleted, set.expected.remove.length, name);
    assert.deepEqual(result.deleted_snapshots, set.expected.remove, name);
    assert.deepEqual(
      entryNames(snapshotsDir(dir.path)),
      [...set.expected.keep, ...set.expected.unparseable, ...set.files].sort(),
      name,
    );
    for (const other of set.expected.unparseable) {
      assert.equal(fileCount(join(snapshotsDir(dir.path), other)), 3, `${name}: ${other} was touched`);
    }
    assert.deepEqual(entryNames(trashRoot(dir.path)), [], name);
  }
});

Deno.test("engine: a snapshot that cannot be moved out is an error line, and it stays whole", () => {
  using dir = tempDir();
  const set = fixture("three_days");
  makeBackup(dir.path, { ...set, folders: [...set.folders, "20261101T000000Z", "20261102T000000Z"] }, 2);
  Deno.writeTextFileSync(trashRoot(dir.path), "in the way\n");
  const result = cleanupSnapshots(dir.path, {
    policy: { daily: 3, weekly: 0, monthly: 0 },
    confirm: true,
    reporter: SILENT,
  });
  assert.equal(result.deleted, 0);
  assert.deepEqual(result.deleted_snapshots, []);
  assert.equal(result.errors.length, 2);
  for (const [index, stamp] of ["20261101T000000Z", "20261102T000000Z"].entries()) {
    assert.match(
      result.errors[index],
      new RegExp(`^${stamp}: could not move .* out of snapshots/: .*run cleanup again$`),
    );
    assert.equal(fileCount(join(snapshotsDir(dir.path), stamp)), 2);
  }
});

Deno.test("engine: a missing snapshots folder is no snapshots", () => {
  using dir = tempDir();
  const result = cleanupSnapshots(join(dir.path, "absent"), {
    policy: DEFAULT_POLICY,
    confirm: true,
    reporter: SILENT,
  });
  assert.deepEqual(
    [result.kept, result.deleted, result.errors, result.unparseable, result.failed_snapshots],
    [0, 0, [], [], []],
  );
  assert.deepEqual(entryNames(dir.path), []);
});

Deno.test("engine: failed/ is bounded: the newest 2 entries are kept, older ones go when confirmed, others never", () => {
  using dir = tempDir();
  const set = fixture("daily_cron_1");
  makeBackup(dir.path, set, 1);
  const stamps = ["20261101T010000Z", "20261102T010000Z", "20261103T010000Z", "20261104T010000Z"];
  const aside = stamps.map((stamp) => failedDir(dir.path, stamp));
  for (const path of aside) {
    Deno.mkdirSync(join(path, "db"), { recursive: true });
    Deno.writeTextFileSync(join(path, "db", "atocore.db"), "kept aside");
  }
  const foreign = join(failedRoot(dir.path), "kept-by-hand");
  Deno.mkdirSync(foreign);
  Deno.writeTextFileSync(join(failedRoot(dir.path), "note.txt"), "a file, not a snapshot");
  using outside = tempDir();
  Deno.writeTextFileSync(join(outside.path, "precious"), "outside");
  Deno.symlinkSync(outside.path, join(failedRoot(dir.path), "20261001T000000Z.1-link"));
  const names = aside.map((path) => path.split("/").at(-1)!);
  const policy = { daily: 1, weekly: 0, monthly: 0 };

  const dry = cleanupSnapshots(dir.path, { policy, confirm: false, reporter: SILENT });
  assert.deepEqual(dry.failed_snapshots, [...names, "kept-by-hand"]);
  assert.deepEqual(dry.failed_would_delete, names.slice(0, 2));
  assert.deepEqual(dry.failed_kept, [...names.slice(2), "kept-by-hand"]);
  assert.equal(dry.keep_failed, 2);
  assert.equal(entryNames(failedRoot(dir.path)).length, 7, "a dry run removed something");

  const confirmed = cleanupSnapshots(dir.path, { policy, confirm: true, reporter: SILENT });
  assert.deepEqual(confirmed.errors, []);
  assert.deepEqual(confirmed.failed_deleted, names.slice(0, 2));
  assert.deepEqual(
    entryNames(failedRoot(dir.path)),
    ["20261001T000000Z.1-link", ...names.slice(2), "kept-by-hand", "note.txt"].sort(),
  );
  for (const path of aside.slice(2)) assert.equal(Deno.readTextFileSync(join(path, "db", "atocore.db")), "kept aside");
  assert.equal(Deno.readTextFileSync(join(outside.path, "precious")), "outside", "a link was followed");
  assert.deepEqual(entryNames(trashRoot(dir.path)), []);
  assert.equal(entryNames(snapshotsDir(dir.path)).filter(isStamp).length, 1, "the policy was applied");

  const none = cleanupSnapshots(dir.path, { policy, confirm: true, reporter: SILENT, keepFailed: 0 });
  assert.deepEqual(none.failed_deleted, names.slice(2));
  assert.deepEqual(entryNames(failedRoot(dir.path)), ["20261001T000000Z.1-link", "kept-by-hand", "note.txt"]);
});

Deno.test("cli: --keep-failed sets the failed/ bound and takes only a count", async () => {
  using dir = tempDir();
  const env = { ATOCORE_BACKUP_DIR: dir.path };
  for (const stamp of ["20261101T010000Z", "20261102T010000Z", "20261103T010000Z"]) {
    Deno.mkdirSync(failedDir(dir.path, stamp), { recursive: true });
  }
  const run = await runCli(["cleanup", "--confirm", "--keep-failed", "1"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.equal((run.json as { failed_deleted: string[] }).failed_deleted.length, 2);
  assert.deepEqual(entryNames(failedRoot(dir.path)).map((name) => name.split(".")[0]), ["20261103T010000Z"]);
  assert.equal((await runCli(["cleanup", "--keep-failed", "-1"], { env })).code, 2);
});

Deno.test("cli: dry run by default, the module's result keys and counts, then --confirm removes exactly those", async () => {
  using dir = tempDir();
  const backupDir = join(dir.path, "backups");
  const set = fixture("not_stamps_mixed");
  makeBackup(backupDir, set);
  const before = entryNames(snapshotsDir(backupDir));
  const env = { ATOCORE_BACKUP_DIR: backupDir, ATOCORE_DATA_DIR: dir.path };

  const dry = await runCli(["cleanup"], { env });
  assert.equal(dry.code, 0, dry.stderr);
  const result = dry.json as Record<string, unknown>;
  const moduleKeys = ["kept", "dry_run", "errors", "would_delete", "unparseable"];
  assert.deepEqual(Object.keys(result).slice(0, 5), moduleKeys, "the module's keys, in its order");
  assert.equal(result.would_delete, set.expected.remove.length);
  if (referenceFor("cleanup's dry run compared with the module's")) {
    const module = (await runReference(["cleanup"], sampleStorePaths(dir.path))).json as Record<string, unknown>;
    assert.deepEqual(Object.keys(module), moduleKeys, "the module's own keys");
    for (const key of moduleKeys) assert.deepEqual(result[key], module[key], key);
  }
  assert.deepEqual(result.unparseable, set.expected.unparseable);
  assert.deepEqual(result.would_delete_snapshots, set.expected.remove);
  assert.equal(result.deleted, undefined);
  assert.deepEqual(entryNames(snapshotsDir(backupDir)), before);
  assert.throws(() => Deno.statSync(lockPath(backupDir)), Deno.errors.NotFound, "a dry run writes nothing");

  // A symbolic link named like a stamp is not a snapshot folder: left alone, as by `list`.
  const link = join(snapshotsDir(backupDir), "20261231T010000Z");
  Deno.symlinkSync(join(snapshotsDir(backupDir), set.expected.remove[0]), link);
  const confirmed = await runCli(["cleanup", "--confirm"], { env });
  assert.equal(confirmed.code, 0, confirmed.stderr);
  const done = confirmed.json as Record<string, unknown>;
  assert.equal(done.dry_run, false);
  assert.equal(done.deleted, set.expected.remove.length);
  assert.equal(done.would_delete, undefined);
  assert.deepEqual(done.deleted_snapshots, set.expected.remove);
  assert.deepEqual(
    entryNames(snapshotsDir(backupDir)),
    [...set.expected.keep, ...set.expected.unparseable, ...set.files, "20261231T010000Z"].sort(),
  );
  assert.ok(Deno.lstatSync(link).isSymlink, "the symbolic link named like a stamp is untouched");
  assert.deepEqual(entryNames(trashRoot(backupDir)), []);

  const again = await runCli(["cleanup", "--confirm"], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.json as Record<string, unknown>).deleted, 0, "a second run finds nothing more to remove");
});

Deno.test("cli: --keep-* change the counts", async () => {
  using dir = tempDir();
  const set = fixture("daily_cron_1");
  makeBackup(dir.path, set, 1);
  const run = await runCli(
    ["cleanup", "--confirm", "--keep-daily", "20", "--keep-weekly=0", "--keep-monthly", "0"],
    { env: { ATOCORE_BACKUP_DIR: dir.path } },
  );
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as Record<string, unknown>;
  assert.deepEqual(result.policy, { keep_daily: 20, keep_weekly: 0, keep_monthly: 0 });
  const days = new Set<string>();
  const expected = newestFirst(set.folders.filter(isStamp)).filter((stamp) => {
    if (days.size >= 20 || days.has(stamp.slice(0, 8))) return false;
    days.add(stamp.slice(0, 8));
    return true;
  });
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), [...expected, ...set.expected.unparseable].sort());
});

Deno.test("cli: counts that are not non-negative integers are usage errors, and nothing is touched", async () => {
  using dir = tempDir();
  makeBackup(dir.path, fixture("daily_cron_2"), 1);
  const before = entryNames(snapshotsDir(dir.path));
  for (const args of [["--keep-daily=-1"], ["--keep-weekly", "two"], ["--keep-monthly", "1.5"], ["--keep-daily", ""]]) {
    const run = await runCli(["cleanup", "--confirm", ...args], { env: { ATOCORE_BACKUP_DIR: dir.path } });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, /--keep-/, args.join(" "));
    assert.equal(run.stderr.trim().split("\n").length, 1, "one line");
  }
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), before);
});

Deno.test("cli: a policy that keeps nothing is refused (exit 2, one line), dry run or not; nothing is touched", async () => {
  using dir = tempDir();
  makeBackup(dir.path, fixture("daily_cron_2"), 1);
  const before = entryNames(snapshotsDir(dir.path));
  const env = { ATOCORE_BACKUP_DIR: dir.path };
  const zeros = ["--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0"];
  for (const args of [zeros, ["--confirm", ...zeros]]) {
    const run = await runCli(["cleanup", ...args], { env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.equal(run.stdout, "");
    assert.match(
      run.stderr.trim(),
      /^atocore-backup: error: cleanup: .*a policy that keeps nothing would delete every snapshot; keep at least one$/,
    );
  }
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), before);
  assert.deepEqual(entryNames(dir.path), ["snapshots"], "no lock file, no trash");
  const one = await runCli(["cleanup", "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "1"], { env });
  assert.equal(one.code, 0, `a policy that keeps one month is accepted: ${one.stderr}`);
});

Deno.test("cli: --confirm refuses with exit 4 while another operation holds the lock; a dry run still reports", async () => {
  using dir = tempDir();
  const set = fixture("daily_cron_3");
  makeBackup(dir.path, set, 1);
  const before = entryNames(snapshotsDir(dir.path));
  using lock = Deno.openSync(lockPath(dir.path), { read: true, write: true, create: true });
  assert.ok(lock.tryLockSync(true));
  const env = { ATOCORE_BACKUP_DIR: dir.path };
  const refused = await runCli(["cleanup", "--confirm"], { env });
  assert.equal(refused.code, 4, refused.stderr);
  assert.match(refused.stderr, /locked/);
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), before);
  const dry = await runCli(["cleanup"], { env });
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal((dry.json as Record<string, unknown>).would_delete, set.expected.remove.length);
  lock.unlockSync();
  const freed = await runCli(["cleanup", "--confirm"], { env });
  assert.equal(freed.code, 0, freed.stderr);
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), [...set.expected.keep, ...set.expected.unparseable].sort());
});

Deno.test("cli: a cleanup killed part way leaves every snapshot in snapshots/ whole; the next run finishes", async () => {
  using dir = tempDir();
  const filesEach = 150;
  const set = fixture("random_5"); // 103 snapshots, 81 to remove
  makeBackup(dir.path, set, filesEach);
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ATOCORE_BACKUP_DIR: dir.path };
  const [program, ...args] = cliCommand(["cleanup", "--confirm"]);
  const total = set.expected.keep.length + set.expected.remove.length;
  for (const removedBeforeKill of [1, 10, 30, 55]) {
    const child = new Deno.Command(program, { args, env, clearEnv: true, stdout: "null", stderr: "null" }).spawn();
    while (entryNames(snapshotsDir(dir.path)).length > total - removedBeforeKill) {
      if (await Promise.race([child.status.then(() => true), new Promise((done) => setTimeout(done, 1, false))])) break;
    }
    try {
      child.kill("SIGKILL");
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // already ended
    }
    await child.status;
    console.log(
      removedBeforeKill,
      entryNames(trashRoot(dir.path)).map((n) => [n, fileCount(join(trashRoot(dir.path), n))]),
    );
    const present = entryNames(snapshotsDir(dir.path));
    for (const name of present) {
      assert.equal(fileCount(join(snapshotsDir(dir.path), name)), filesEach, `${name} is not whole`);
    }
    assert.ok(present.every((name) => set.folders.includes(name)));
    assert.ok(set.expected.keep.every((stamp) => present.includes(stamp)), "a kept snapshot went");
  }
  const finish = await runCli(["cleanup", "--confirm"], { env: { ATOCORE_BACKUP_DIR: dir.path } });
  assert.equal(finish.code, 0, finish.stderr);
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), [...set.expected.keep, ...set.expected.unparseable].sort());
  assert.deepEqual(entryNames(trashRoot(dir.path)), [], "leftovers of the killed runs are gone");
});

Deno.test("text: kept stamps with their rules, what would go, and what is left alone", async () => {
  using dir = tempDir();
  using work = tempDir(); // the working folder, whose ./data holds the (default) live store: not in the backup folder
  const set = fixture("first_is_sunday");
  makeBackup(dir.path, { ...set, folders: [...set.folders, "notes"] }, 1);
  const aside = failedDir(dir.path, "20261101T010000Z");
  Deno.mkdirSync(aside, { recursive: true });
  const outcome = await cleanupCommand.run({}, [], {
    env: { ATOCORE_BACKUP_DIR: dir.path },
    cwd: work.path,
    now: new Date(),
    reporter: SILENT,
  });
  const lines = outcome.text.split("\n");
  assert.match(lines[0], /^dry run of cleanup in .* \(keep 7 daily, 4 weekly, 6 monthly\)$/);
  assert.equal(lines[1], `kept ${set.expected.keep.length}:`);
  assert.ok(lines.includes("  20261101T080025Z  daily 2026-11-01, weekly 2026-W43, monthly 2026-11"), outcome.text);
  assert.ok(lines.includes(`would remove ${set.expected.remove.length}:`), outcome.text);
  assert.ok(lines.includes("not snapshot stamps, left alone: notes"), outcome.text);
  assert.ok(
    lines.includes(
      `failed validation after create, in ${failedRoot(dir.path)} (the newest 2 kept): kept ${
        aside.split("/").at(-1)
      }; would remove none`,
    ),
    outcome.text,
  );
  assert.equal(lines.at(-1), "nothing removed; run again with --confirm to remove them");
});
