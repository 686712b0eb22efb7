/**
 * Cleanup on real folders: the engine against the golden fixtures, and the CLI
 * end to end (dry run, --confirm, custom counts, bad counts, the lock, folders
 * that are not snapshots, and a cleanup killed part way). Each backup's newest
 * snapshot is a real one (a copy of a module snapshot), so that cleanup finds a
 * valid snapshot to keep; the others are bare folders.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CleanupOptions, cleanupSnapshots } from "../../src/ops/cleanup.ts";
import { cleanupCommand } from "../../src/cli/cleanup.ts";
import { listCommand } from "../../src/cli/list.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { DEFAULT_POLICY, type RetentionPolicy } from "../../src/snapshot/retention.ts";
import { DEFAULT_PRE_RESTORE_DAYS } from "../../src/snapshot/retention_guards.ts";
import { isStamp } from "../../src/snapshot/stamp.ts";
import { failedDir, failedRoot, lockPath, snapshotsDir, trashRoot } from "../../src/snapshot/layout.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { sampleStorePaths } from "../../scripts/sample_store.ts";
import {
  cliCommand,
  createdStamp,
  placeValidSnapshot,
  printedCommand,
  referenceFor,
  relocateSnapshot,
  ROOT,
  runCli,
  runPrinted,
  runReference,
  skipBecause,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { entryNames } from "../_faults.ts";
import { bindMount } from "../_mount.ts";

const driver = openDriver("auto");

/** The engine's options: `policy`, confirmed or not, at the real time unless `now` is given. */
/**
 * A time after every fixture's stamps: the module has no clock, so to it no stamp is in the future, where this tool
 * keeps such a stamp aside (the `future` guard; several fixtures reach past today).
 */
const AFTER_EVERY_FIXTURE = new Date("2200-01-01T00:00:00Z");

function engine(policy: RetentionPolicy, confirm: boolean, now = new Date()): CleanupOptions {
  return { policy, confirm, reporter: SILENT, driver, now, preRestoreDays: DEFAULT_PRE_RESTORE_DAYS };
}

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

/**
 * Make a backup folder holding the fixture's folders (each with `filesEach` files, 0 for bare folders; the newest
 * stamp a real snapshot) and plain files.
 */
function makeBackup(backupDir: string, set: Fixture, filesEach = 2): void {
  const root = snapshotsDir(backupDir);
  Deno.mkdirSync(root, { recursive: true });
  const newest = newestStamp(set);
  if (newest) placeValidSnapshot(backupDir, newest);
  for (const name of set.folders.filter((name) => name !== newest)) {
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

/** `extra` for {@linkcode placeValidSnapshot} that binds the copy's metadata as create binds its own. */
function bound(extra: Record<string, unknown>): Record<string, unknown> {
  return { ...extra, metadata_sha256: "" }; // replaced by the digest of the rest
}

/** A policy that keeps the newest day's snapshot only. */
const KEEP_ONE_DAY = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];

/** The fixture's newest plain stamp (the folder made a real snapshot), if any. */
function newestStamp(set: Fixture): string | undefined {
  return newestFirst(set.folders.filter(isStamp))[0];
}

Deno.test("engine: a dry run on every fixture reports the module's decisions and touches nothing", async () => {
  for (const set of allFixtures()) {
    using dir = tempDir();
    makeBackup(dir.path, set, 0);
    const before = entryNames(snapshotsDir(dir.path));
    const result = await cleanupSnapshots(dir.path, engine(DEFAULT_POLICY, false, AFTER_EVERY_FIXTURE));
    assert.equal(result.kept, set.expected.keep.length, set.name);
    assert.equal(result.would_delete, set.expected.remove.length, set.name);
    assert.deepEqual(result.kept_snapshots.map((kept) => kept.stamp), set.expected.keep, set.name);
    assert.deepEqual(result.would_delete_snapshots, set.expected.remove, set.name);
    assert.deepEqual(result.unparseable, set.expected.unparseable, set.name);
    assert.deepEqual(entryNames(snapshotsDir(dir.path)), before, set.name);
    assert.deepEqual(entryNames(trashRoot(dir.path)), [], set.name);
  }
});

Deno.test("engine: a confirmed run removes exactly what the module removes, and nothing else", async () => {
  for (const name of ["not_stamps_mixed", "lax_names", "hourly_bursts_1", "year_edge_2023", "only_not_stamps"]) {
    using dir = tempDir();
    const set = fixture(name);
    makeBackup(dir.path, set, 3);
    const result = await cleanupSnapshots(dir.path, engine(DEFAULT_POLICY, true, AFTER_EVERY_FIXTURE));
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

Deno.test("engine: a snapshot that cannot be moved out is an error line, and it stays whole", async () => {
  using dir = tempDir();
  const set = fixture("three_days");
  makeBackup(dir.path, { ...set, folders: [...set.folders, "20261101T000000Z", "20261102T000000Z"] }, 2);
  Deno.writeTextFileSync(trashRoot(dir.path), "in the way\n");
  const result = await cleanupSnapshots(dir.path, engine({ daily: 3, weekly: 0, monthly: 0 }, true));
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

Deno.test("engine: a snapshot moved out but not removed (an immutable file) is no snapshot; the error says what keeps it (root)", async () => {
  if (Deno.uid() !== 0) return skipBecause("chattr +i needs root");
  using dir = tempDir();
  const set = fixture("three_days");
  makeBackup(dir.path, { ...set, folders: [...set.folders, "20261101T000000Z", "20261102T000000Z"] }, 2);
  const old = join(snapshotsDir(dir.path), "20261101T000000Z");
  const file = join(old, "db", "part-0");
  const locked = new Deno.Command("chattr", { args: ["+i", file] }).outputSync();
  if (!locked.success) return skipBecause(`chattr +i failed here: ${new TextDecoder().decode(locked.stderr).trim()}`);
  try {
    const result = await cleanupSnapshots(dir.path, engine({ daily: 3, weekly: 0, monthly: 0 }, true));
    assert.ok(!entryNames(snapshotsDir(dir.path)).includes("20261101T000000Z"), "listed still");
    const error = result.errors.find((line) => line.startsWith("20261101T000000Z: "));
    assert.match(String(error), /moved out of snapshots\/ \(no longer a snapshot\) but not removed from /);
    assert.match(
      String(error),
      /the next create or cleanup tries again, once what kept it is fixed \(an immutable file/,
    );
  } finally {
    for (const entry of Deno.readDirSync(trashRoot(dir.path))) {
      new Deno.Command("chattr", { args: ["-R", "-i", join(trashRoot(dir.path), entry.name)] }).outputSync();
    }
  }
});

Deno.test("engine: a missing snapshots folder is no snapshots", async () => {
  using dir = tempDir();
  const result = await cleanupSnapshots(join(dir.path, "absent"), engine(DEFAULT_POLICY, true));
  assert.deepEqual(
    [result.kept, result.deleted, result.errors, result.unparseable, result.failed_snapshots],
    [0, 0, [], [], []],
  );
  assert.deepEqual(entryNames(dir.path), []);
});

Deno.test("engine: failed/ is bounded: the newest 2 entries are kept, older ones go when confirmed, others never", async () => {
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

  const dry = await cleanupSnapshots(dir.path, engine(policy, false));
  assert.deepEqual(dry.failed_snapshots, [...names, "kept-by-hand"]);
  assert.deepEqual(dry.failed_would_delete, names.slice(0, 2));
  assert.deepEqual(dry.failed_kept, [...names.slice(2), "kept-by-hand"]);
  assert.equal(dry.keep_failed, 2);
  assert.equal(entryNames(failedRoot(dir.path)).length, 7, "a dry run removed something");

  const confirmed = await cleanupSnapshots(dir.path, engine(policy, true));
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

  const none = await cleanupSnapshots(dir.path, { ...engine(policy, true), keepFailed: 0 });
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
  assert.deepEqual(result.policy, { keep_daily: 20, keep_weekly: 0, keep_monthly: 0, keep_pre_restore_days: 7 });
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
  const set = fixture("daily_cron_1"); // 115 snapshots, 100 to remove, all stamped before today (the CLI's clock)
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
    for (const name of present.filter((name) => name !== newestStamp(set))) {
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
  assert.match(lines[0], /^dry run of cleanup in .* \(keep 7 daily, 4 weekly, 6 monthly, pre-restore 7 days\)$/);
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

/** Stamps at 01:00 on days `days` of November 2026 (the 1st, 8th, 15th, 22nd and 29th are Sundays). */
function november(...days: number[]): string[] {
  return days.map((day) => `202611${String(day).padStart(2, "0")}T010000Z`);
}

const GUARDED_NEWEST = [
  { rule: "newest", bucket: "by stamp" },
  { rule: "newest-valid", bucket: "passed a quick validation" },
];

Deno.test("cli: whatever the policy, the newest valid snapshot is never deleted (no Sunday for weekly, no 1st for monthly)", async () => {
  const cases: [string[], string[]][] = [
    [["--keep-daily", "0", "--keep-weekly", "4", "--keep-monthly", "0"], november(2, 3, 4, 5, 6, 7, 10)],
    [["--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "1"], november(24, 25, 26)],
  ];
  for (const [policy, stamps] of cases) {
    using dir = tempDir();
    for (const stamp of stamps) placeValidSnapshot(dir.path, stamp);
    const run = await runCli(["cleanup", "--confirm", ...policy], { env: { ATOCORE_BACKUP_DIR: dir.path } });
    assert.equal(run.code, 0, run.stderr);
    const newest = stamps.at(-1)!;
    assert.deepEqual(entryNames(snapshotsDir(dir.path)), [newest], policy.join(" "));
    const result = run.json as Record<string, unknown>;
    assert.deepEqual(result.kept_snapshots, [{ stamp: newest, reasons: GUARDED_NEWEST }], policy.join(" "));
    assert.equal(result.deleted, stamps.length - 1);
  }
});

Deno.test("cli: the validate a newer snapshot that fails a quick validation is warned with runs as printed, on the --backup-dir given", async () => {
  using dir = tempDir();
  const backupDir = join(dir.path, "back ups"); // a word a shell splits
  const stamps = november(2, 3);
  for (const stamp of stamps) placeValidSnapshot(backupDir, stamp);
  Deno.writeFileSync(join(snapshotsDir(backupDir), stamps[1], "db", "atocore.db"), new Uint8Array(8192).fill(0x41));
  const env = { ATOCORE_BACKUP_DIR: join(dir.path, "other") }; // a validate run without --backup-dir looks there
  const weeklyOnly = ["--keep-daily", "0", "--keep-weekly", "4", "--keep-monthly", "0"];
  const dry = await runCli(["cleanup", "--backup-dir", backupDir, ...weeklyOnly], { env });
  assert.equal(dry.code, 0, dry.stderr);
  const warning = dry.stderr.trim().split("\n").map((line) => JSON.parse(line))
    .find((event) => event.event === "cleanup_snapshot_invalid");
  assert.equal(warning?.stamp, stamps[1], dry.stderr);
  const printed = printedCommand(warning.next, "check it with");
  assert.ok(printed !== null, dry.stderr);
  const validated = await runPrinted(printed, env); // pasted into a shell as it is
  assert.equal(validated.code, 1, `${printed}: the snapshot is invalid: ${validated.stderr}`);
  assert.equal((validated.json as { stamp: string; valid: boolean }).valid, false, printed);
});

Deno.test("cli: newer snapshots that fail a quick validation do not count; with none valid, cleanup is refused (exit 3)", async () => {
  using dir = tempDir();
  const stamps = november(2, 3, 4, 5);
  for (const stamp of stamps) placeValidSnapshot(dir.path, stamp);
  const db = (stamp: string) => join(snapshotsDir(dir.path), stamp, "db", "atocore.db");
  Deno.writeFileSync(db(stamps[3]), new Uint8Array(8192).fill(0x41)); // not a database any more
  Deno.removeSync(join(snapshotsDir(dir.path), stamps[2], "backup-metadata.json"));
  const env = { ATOCORE_BACKUP_DIR: dir.path };
  const weeklyOnly = ["--keep-daily", "0", "--keep-weekly", "4", "--keep-monthly", "0"];

  const dry = await runCli(["cleanup", ...weeklyOnly], { env });
  assert.equal(dry.code, 0, dry.stderr);
  const result = dry.json as Record<string, unknown>;
  assert.deepEqual(result.kept_snapshots, [
    { stamp: stamps[3], reasons: [GUARDED_NEWEST[0]] },
    { stamp: stamps[1], reasons: [GUARDED_NEWEST[1]] },
  ]);
  assert.deepEqual(result.would_delete_snapshots, [stamps[2], stamps[0]]);
  const warned = dry.stderr.trim().split("\n").map((line) => JSON.parse(line))
    .filter((event) => event.event === "cleanup_snapshot_invalid").map((event) => event.stamp);
  assert.deepEqual(warned, [stamps[3], stamps[2]], "each newer snapshot that failed is reported");

  const confirmed = await runCli(["cleanup", "--confirm", ...weeklyOnly], { env });
  assert.equal(confirmed.code, 0, confirmed.stderr);
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), [stamps[1], stamps[3]]);

  Deno.writeFileSync(db(stamps[1]), new Uint8Array(8192).fill(0x42));
  for (const args of [weeklyOnly, ["--confirm", ...weeklyOnly]]) {
    const refused = await runCli(["cleanup", ...args], { env });
    assert.equal(refused.code, 3, refused.stderr);
    assert.equal(refused.stdout, "");
    const errors = refused.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
    assert.equal(errors.length, 1, refused.stderr);
    assert.match(
      errors[0],
      new RegExp(
        `^atocore-backup: error: no snapshot in ${snapshotsDir(dir.path)} passes a quick validation, .*` +
          "it would leave no valid snapshot.*run 'validate --all'",
      ),
    );
    assert.deepEqual(entryNames(snapshotsDir(dir.path)), [stamps[1], stamps[3]], "nothing was removed");
  }
});

Deno.test("cli: the commands a refusal for want of a valid snapshot prints run as printed, on the --backup-dir given", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store); // its backup folder is not there: a command run without the flag fails
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits
  const stamps = november(2, 3);
  for (const stamp of stamps) {
    placeValidSnapshot(backupDir, stamp);
    Deno.writeFileSync(join(snapshotsDir(backupDir), stamp, "db", "atocore.db"), new Uint8Array(8192).fill(0x41));
  }
  const refused = await runCli(["cleanup", ...KEEP_ONE_DAY, "--backup-dir", backupDir], { env });
  assert.equal(refused.code, 3, refused.stderr);
  const why = printedCommand(refused.stderr, "see why with");
  const create = printedCommand(refused.stderr, "then make a snapshot with");
  assert.ok(why !== null && create !== null, refused.stderr);
  const validated = await runPrinted(why, env); // pasted into a shell as it is
  assert.equal(validated.code, 1, `${why}: ${validated.stderr}`);
  for (const stamp of stamps) assert.match(validated.stdout + validated.stderr, new RegExp(stamp), why);
  const created = await runPrinted(create, env);
  assert.equal(created.code, 0, `${create}: ${created.stderr}`);
  assert.equal(entryNames(snapshotsDir(backupDir)).length, 3, `${create} made one in the folder given`);
});

Deno.test("engine: after a clock set back, the snapshot published last is kept though a newer stamp shares its day", async () => {
  using dir = tempDir();
  // Published in this order: 03:00, then 05:00 while the clock ran two hours ahead, then 04:00 once it was set
  // back. The 04:00 snapshot holds the newest data; the daily rule alone keeps only 05:00.
  placeValidSnapshot(dir.path, "20261110T030000Z", bound({ sequence: 1 }));
  placeValidSnapshot(dir.path, "20261110T050000Z", bound({ sequence: 2 }));
  placeValidSnapshot(dir.path, "20261110T040000Z", bound({ sequence: 3 }));
  const result = await cleanupSnapshots(dir.path, engine(DEFAULT_POLICY, true));
  assert.deepEqual(result.errors, []);
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), ["20261110T040000Z", "20261110T050000Z"]);
  assert.deepEqual(result.kept_snapshots.find((kept) => kept.stamp === "20261110T040000Z")?.reasons, [
    { rule: "last-published", bucket: "sequence 3" },
  ]);
  assert.deepEqual(result.deleted_snapshots, ["20261110T030000Z"]);
});

Deno.test("engine: a sequence in metadata edited since create takes no last-published guard from the real one", async () => {
  using dir = tempDir();
  placeValidSnapshot(dir.path, "20261110T030000Z", bound({ sequence: 1 }));
  placeValidSnapshot(dir.path, "20261110T050000Z", bound({ sequence: 2 }));
  placeValidSnapshot(dir.path, "20261110T040000Z", bound({ sequence: 3 }));
  const path = join(snapshotsDir(dir.path), "20261110T030000Z", "backup-metadata.json");
  Deno.writeTextFileSync(path, Deno.readTextFileSync(path).replace('"sequence": 1,', '"sequence": 99,'));
  assert.match(Deno.readTextFileSync(path), /"sequence": 99,/, "edited without binding it again");
  const result = await cleanupSnapshots(dir.path, engine(DEFAULT_POLICY, false));
  assert.deepEqual(result.would_delete_snapshots, ["20261110T030000Z"]);
  assert.deepEqual(result.kept_snapshots.find((kept) => kept.stamp === "20261110T040000Z")?.reasons, [
    { rule: "last-published", bucket: "sequence 3" },
  ]);
});

Deno.test("cli: a snapshot copied by hand under another stamp vouches for nothing: no guard, no sequence, not 'at create'", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  for (const [stamp, sequence] of [["20261110T030000Z", 1], ["20261111T030000Z", 7]] as const) {
    const made = join(snapshotsDir(store.backupDir), await createdStamp(env, []));
    const placed = join(snapshotsDir(store.backupDir), stamp);
    Deno.renameSync(made, placed);
    relocateSnapshot(placed, { sequence }); // bound again, as if made there
  }
  const copy = join(snapshotsDir(store.backupDir), "20261112T030000Z"); // a day later: the daily rule's newest
  assert.ok(
    new Deno.Command("cp", { args: ["-a", join(snapshotsDir(store.backupDir), "20261111T030000Z"), copy] })
      .outputSync().success,
  );
  const listed = await runCli(["list"], { env });
  const validation = (listed.json as { backups: { stamp: string; validation: string }[] }).backups
    .map((entry) => [entry.stamp, entry.validation]);
  assert.deepEqual(validation, [
    ["20261110T030000Z", "validated_at_create"],
    ["20261111T030000Z", "validated_at_create"],
    ["20261112T030000Z", "unknown"],
  ]);
  const cleaned = await runCli(["cleanup", ...KEEP_ONE_DAY], { env });
  assert.equal(cleaned.code, 0, cleaned.stderr);
  const kept = (cleaned.json as { kept_snapshots: { stamp: string; reasons: { rule: string }[] }[] }).kept_snapshots;
  const reasons = Object.fromEntries(kept.map((entry) => [entry.stamp, entry.reasons.map((reason) => reason.rule)]));
  assert.ok(reasons["20261111T030000Z"]?.includes("last-published"), JSON.stringify(reasons));
  assert.ok(!reasons["20261112T030000Z"]?.includes("last-published"), JSON.stringify(reasons));
  const sequence = (stamp: string) =>
    JSON.parse(Deno.readTextFileSync(join(snapshotsDir(store.backupDir), stamp, "backup-metadata.json"))).sequence;
  assert.equal(sequence(await createdStamp(env, [])), 8);
});

Deno.test("cli: create records the publication order, one above the highest sequence present", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const sequence = (stamp: string) =>
    JSON.parse(Deno.readTextFileSync(join(snapshotsDir(store.backupDir), stamp, "backup-metadata.json"))).sequence;
  const first = await createdStamp(env, []);
  const second = await createdStamp(env, []);
  assert.deepEqual([sequence(first), sequence(second)], [1, 2]);
  placeValidSnapshot(store.backupDir, "20200101T000000Z", bound({ sequence: 41 }));
  assert.equal(sequence(await createdStamp(env, [])), 42, "an older stamp with a higher sequence still counts");
});

Deno.test("a restore's pre-restore snapshot is marked, listed as such, and kept 7 days whatever the policy", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const restore = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(restore.code, 0, restore.stderr);
  const pre = (restore.json as { pre_restore_snapshot: string }).pre_restore_snapshot;
  const metadata = JSON.parse(Deno.readTextFileSync(join(snapshotsDir(store.backupDir), pre, "backup-metadata.json")));
  assert.deepEqual([metadata.kind, metadata.restoring_stamp], ["pre-restore", stamp]);
  const later = await createdStamp(env, []);

  const list = await runCli(["list"], { env });
  const kinds = (list.json as { backups: { stamp: string; kind: string; restoring_stamp: string | null }[] }).backups
    .map((entry) => [entry.stamp, entry.kind, entry.restoring_stamp]);
  assert.deepEqual(kinds, [[stamp, "snapshot", null], [pre, "pre-restore", stamp], [later, "snapshot", null]]);
  const text = (await listCommand.run({}, [], { env, cwd: store.dataDir, now: new Date(), reporter: SILENT })).text;
  assert.match(text, new RegExp(`^${pre} .* pre-restore \\(before restoring ${stamp}\\)$`, "m"));

  const dailyOnly = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const withoutGuard = await runCli(["cleanup", ...dailyOnly, "--keep-pre-restore-days", "0"], { env });
  assert.deepEqual((withoutGuard.json as Record<string, unknown>).would_delete_snapshots, [pre, stamp]);
  const inEightDays = new Date(Date.now() + 8 * 86_400_000);
  const expired = await cleanupSnapshots(
    store.backupDir,
    engine({ daily: 1, weekly: 0, monthly: 0 }, false, inEightDays),
  );
  assert.deepEqual(expired.would_delete_snapshots, [pre, stamp], "kept 7 days, not longer");

  const records = join(store.backupDir, "integrity");
  assert.deepEqual(entryNames(records), [stamp, pre, later].map((one) => `${one}.json`), "create's records");
  const run = await runCli(["cleanup", "--confirm", ...dailyOnly], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(entryNames(snapshotsDir(store.backupDir)), [pre, later]);
  assert.deepEqual(entryNames(records), [`${pre}.json`, `${later}.json`], "the removed snapshot's record goes with it");
  const kept = (run.json as { kept_snapshots: { stamp: string; reasons: { rule: string; bucket: string }[] }[] })
    .kept_snapshots.find((one) => one.stamp === pre);
  assert.equal(kept?.reasons.length, 1);
  assert.equal(kept?.reasons[0].rule, "pre-restore");
  assert.match(
    kept!.reasons[0].bucket,
    new RegExp(`^taken before restoring ${stamp}, kept until \\d{4}-\\d\\d-\\d\\d$`),
  );
});

Deno.test("cli: a mount point inside a snapshot to remove or a leftover is never removed through (root)", async () => {
  using dir = tempDir();
  const victims = [tempDir(), tempDir(), tempDir()];
  try {
    for (const victim of victims) Deno.writeTextFileSync(join(victim.path, "keep.txt"), "another filesystem's");
    const stamps = ["20261101T010000Z", "20261102T010000Z"];
    for (const stamp of stamps) placeValidSnapshot(dir.path, stamp);
    const inSnapshot = join(snapshotsDir(dir.path), stamps[0], "db", "inner");
    const inLeftover = join(trashRoot(dir.path), "20260101T000000Z.eeee", "inner");
    const failed = ["20260901T010000Z.1", "20260902T010000Z.1", "20260903T010000Z.1"].map((name) =>
      join(failedRoot(dir.path), name)
    );
    const inFailed = join(failed[0], "inner"); // the oldest of three: the default keeps two
    for (const target of [inSnapshot, inLeftover, ...failed, inFailed]) Deno.mkdirSync(target, { recursive: true });
    const mounted = [
      bindMount(victims[0].path, inSnapshot),
      bindMount(victims[1].path, inLeftover),
      bindMount(victims[2].path, inFailed),
    ];
    if (mounted.some((mount) => typeof mount === "string")) {
      mounted.forEach((mount) => typeof mount !== "string" && mount[Symbol.dispose]());
      return skipBecause(`${mounted.find((mount) => typeof mount === "string")}`);
    }
    try {
      const env = { ATOCORE_BACKUP_DIR: dir.path };
      const run = await runCli(["cleanup", "--confirm", ...KEEP_ONE_DAY], { env });
      assert.equal(run.code, 1, run.stderr);
      const errors = (run.json as { errors: string[] }).errors;
      assert.deepEqual(errors, [
        `${stamps[0]}: ${inSnapshot} is a mount point, and removing ${join(snapshotsDir(dir.path), stamps[0])} would ` +
        `delete the files of the filesystem mounted there; it is untouched; unmount it and run cleanup again`,
        `failed/20260901T010000Z.1: ${inFailed} is a mount point, and removing ${failed[0]} would delete the files ` +
        `of the filesystem mounted there; it is untouched; unmount it and run cleanup again`,
      ]);
      assert.match(run.stderr, /"event":"stale_leftover_kept".*20260101T000000Z\.eeee.*is a mount point/);
      for (const victim of victims) assert.deepEqual(entryNames(victim.path), ["keep.txt"], "removed through a mount");
      assert.deepEqual(entryNames(snapshotsDir(dir.path)), stamps, "the snapshot holding a mount point stays listed");
    } finally {
      for (const mount of mounted) if (typeof mount !== "string") mount[Symbol.dispose]();
    }
  } finally {
    for (const victim of victims) victim[Symbol.dispose]();
  }
});

Deno.test("cli: an entry of snapshots/ whose name is not UTF-8 is named by list and cleanup, never removed", async () => {
  using dir = tempDir();
  placeValidSnapshot(dir.path, "20261101T010000Z");
  const made = new Deno.Command("bash", { args: ["-c", `mkdir "$1"/2026$'\\xff'`, "-", snapshotsDir(dir.path)] })
    .outputSync();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
  const env = { ATOCORE_BACKUP_DIR: dir.path };
  const named = join(snapshotsDir(dir.path), "2026\uFFFD");
  const list = await runCli(["list"], { env });
  assert.equal(list.code, 0, list.stderr);
  assert.ok(list.stderr.includes(JSON.stringify({ path: named }).slice(1, -1)), list.stderr);
  assert.match(list.stderr, /"event":"snapshot_name_not_utf8"/);
  assert.deepEqual((list.json as { warnings: string[] }).warnings, [
    `${named} has a name that is not UTF-8: not a snapshot this tool can read`,
  ]);
  const cleanup = await runCli(["cleanup", "--confirm", ...KEEP_ONE_DAY], { env });
  assert.equal(cleanup.code, 0, cleanup.stderr);
  assert.match(cleanup.stderr, /"event":"snapshot_name_not_utf8"/);
  assert.equal(entryNames(snapshotsDir(dir.path)).length, 2, "both kept");
});

Deno.test("cli: a snapshot holding a name that is not UTF-8 is moved out of snapshots/, and what keeps it in .trash is named", async () => {
  using dir = tempDir();
  const stamps = ["20261101T010000Z", "20261102T010000Z"];
  for (const stamp of stamps) placeValidSnapshot(dir.path, stamp);
  const older = join(snapshotsDir(dir.path), stamps[0]);
  const made = new Deno.Command("bash", { args: ["-c", `touch "$1"/x$'\\xff'`, "-", older] }).outputSync();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
  const run = await runCli(["cleanup", "--confirm", ...KEEP_ONE_DAY], { env: { ATOCORE_BACKUP_DIR: dir.path } });
  const errors = (run.json as { errors: string[] }).errors;
  assert.equal(errors.length, 1, run.stderr);
  assert.match(
    errors[0],
    /not removed from .*x\uFFFD: its name is not UTF-8.*\(a name that is not UTF-8: remove that entry by hand/,
  );
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), [stamps[1]], "no longer listed");
});

Deno.test("cli: a link or a file with a stamp's name under snapshots/ is named by list and cleanup, never followed", async () => {
  using dir = tempDir();
  using elsewhere = tempDir();
  Deno.writeTextFileSync(join(elsewhere.path, "keep.txt"), "not a snapshot");
  const stamps = ["20261101T010000Z", "20261102T010000Z"];
  for (const stamp of stamps) placeValidSnapshot(dir.path, stamp);
  Deno.symlinkSync(elsewhere.path, join(snapshotsDir(dir.path), "20261001T010000Z"));
  Deno.writeTextFileSync(join(snapshotsDir(dir.path), "20261002T010000Z"), "a file");
  const env = { ATOCORE_BACKUP_DIR: dir.path };
  const strays = (stderr: string) =>
    stderr.split("\n").filter((line) => line.includes('"event":"snapshot_not_a_folder"')).map((line) =>
      JSON.parse(line)
    ).map((event) => [event.path, event.kind]);
  const expected = [
    [join(snapshotsDir(dir.path), "20261001T010000Z"), "symbolic link"],
    [join(snapshotsDir(dir.path), "20261002T010000Z"), "file"],
  ];
  const list = await runCli(["list"], { env });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(strays(list.stderr), expected);
  assert.deepEqual((list.json as { warnings: string[] }).warnings, [
    `${expected[0][0]} is a symbolic link where a snapshot's folder would be: not a snapshot`,
    `${expected[1][0]} is a file where a snapshot's folder would be: not a snapshot`,
  ], "each warning in the JSON too");
  assert.deepEqual((list.json as { backups: { stamp: string }[] }).backups.map((entry) => entry.stamp), stamps);
  const cleanup = await runCli(["cleanup", "--confirm", ...KEEP_ONE_DAY], { env });
  assert.equal(cleanup.code, 0, cleanup.stderr);
  assert.deepEqual(strays(cleanup.stderr), expected);
  assert.deepEqual(entryNames(elsewhere.path), ["keep.txt"]);
  assert.deepEqual(entryNames(snapshotsDir(dir.path)), ["20261001T010000Z", "20261002T010000Z", stamps[1]]);
});

Deno.test("text: list and cleanup show folder names with control characters escaped, each on its own line", async () => {
  using dir = tempDir();
  using work = tempDir();
  placeValidSnapshot(dir.path, "20261101T010000Z");
  const hostile = "x\u001b[2J\nFAKE-ROW";
  Deno.mkdirSync(join(snapshotsDir(dir.path), hostile));
  Deno.mkdirSync(join(failedRoot(dir.path), `20261101T010000Z.${hostile}`), { recursive: true });
  const context = { env: { ATOCORE_BACKUP_DIR: dir.path }, cwd: work.path, now: new Date(), reporter: SILENT };
  const listed = await listCommand.run({}, [], context);
  const cleaned = await cleanupCommand.run({}, [], context);
  for (const [what, outcome, lines] of [["list", listed, 5], ["cleanup", cleaned, 6]] as const) {
    assert.ok(!outcome.text.includes("\u001b"), `${what}: a raw ESC: ${JSON.stringify(outcome.text)}`);
    assert.equal(outcome.text.split("\n").length, lines, `${what}: ${outcome.text}`);
    assert.match(outcome.text, /x\\x1b\[2J\\nFAKE-ROW/, what);
  }
});
