/**
 * Stamps against the clock: a snapshot stamped in the future (the clock was wrong when it was made) is flagged by
 * list, validate and drill, `drill --latest` passes over it, cleanup keeps it without letting it take a day, and a
 * recovery point is never negative.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveConfig } from "../../src/config.ts";
import { drillSnapshot } from "../../src/ops/drill.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { parseStamp } from "../../src/snapshot/stamp.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import {
  createdStamp,
  placeValidSnapshot,
  printedCommand,
  runCli,
  runPrinted,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";

const FUTURE = "20990101T000000Z";

/** The JSON events on a run's stderr named `name`. */
function events(stderr: string, name: string): Record<string, unknown>[] {
  return stderr.trim().split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line))
    .filter((event) => event.event === name);
}

Deno.test("a snapshot stamped in the future is flagged by list, validate and drill; drill --latest passes over it", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  placeValidSnapshot(store.backupDir, FUTURE);

  const list = await runCli(["list"], { env });
  assert.equal(list.code, 0, list.stderr);
  const flags = (list.json as { backups: { stamp: string; stamp_in_future: boolean; age_seconds: number | null }[] })
    .backups.map((entry) => [entry.stamp, entry.stamp_in_future, entry.age_seconds !== null && entry.age_seconds >= 0]);
  assert.deepEqual(flags, [[stamp, false, true], [FUTURE, true, false]]);
  assert.deepEqual(events(list.stderr, "snapshot_stamp_in_future").map((event) => event.stamp), [FUTURE]);
  const warned = (list.json as { warnings: string[] }).warnings;
  assert.equal(warned.length, 1, JSON.stringify(warned));
  assert.match(
    warned[0],
    new RegExp(`^snapshot ${FUTURE} is stamped \\d+ s after this host's clock: check the clock$`),
  );

  const one = await runCli(["validate", FUTURE], { env });
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(
    [(one.json as { valid: boolean }).valid, (one.json as { stamp_in_future: boolean }).stamp_in_future],
    [
      true,
      true,
    ],
  );
  assert.equal(events(one.stderr, "snapshot_stamp_in_future").length, 1);
  const metrics = join(store.dataDir, "validate.prom");
  const all = await runCli(["validate", "--all", "--metrics-file", metrics], { env });
  assert.equal(all.code, 0, all.stderr);
  const results = (all.json as { results: { stamp: string; stamp_in_future: boolean }[] }).results;
  assert.deepEqual(results.map((result) => [result.stamp, result.stamp_in_future]), [[stamp, false], [FUTURE, true]]);
  const seconds = parseStamp(stamp)!.getTime() / 1000;
  assert.match(
    Deno.readTextFileSync(metrics),
    new RegExp(`^atocore_backup_snapshot_timestamp_seconds\\{operation="validate"\\} ${seconds}$`, "m"),
    "the snapshot time reported is the newest one not in the future, so a stale-backup alert still fires",
  );

  const latest = await runCli(["drill", "--latest"], { env });
  assert.equal(latest.code, 0, latest.stderr);
  const drilled = latest.json as { stamp: string; recovery_point_seconds: number; stamp_in_future: boolean };
  assert.equal(drilled.stamp, stamp, "--latest drills the newest snapshot not stamped in the future");
  assert.ok(drilled.recovery_point_seconds >= 0 && !drilled.stamp_in_future);
  assert.deepEqual(events(latest.stderr, "drill_latest_skipped_future").map((event) => [event.stamps, event.chosen]), [
    [[FUTURE], stamp],
  ]);

  const future = await runCli(["drill", FUTURE], { env });
  assert.equal(future.code, 0, future.stderr);
  const result = future.json as { ok: boolean; recovery_point_seconds: number | null; stamp_in_future: boolean };
  assert.deepEqual([result.ok, result.recovery_point_seconds, result.stamp_in_future], [true, null, true]);
  assert.equal(events(future.stderr, "snapshot_stamp_in_future").length, 1);
});

Deno.test("drill --latest with only snapshots stamped in the future fails (exit 1), naming the newest and the next step", async () => {
  using store = tempStore({ dbMiB: 1 });
  placeValidSnapshot(store.backupDir, FUTURE);
  const run = await runCli(["drill", "--latest"], { env: storeEnv(store) });
  assert.equal(run.code, 1, run.stderr);
  const errors = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.deepEqual(errors, [
    `atocore-backup: error: every snapshot in ${store.backupDir} is stamped in the future (newest ${FUTURE}); ` +
    `check the clock, then drill one by its stamp ('atocore-backup drill ${FUTURE}')`,
  ]);
});

Deno.test("the drill that drill --latest prints when every snapshot is in the future runs on the --backup-dir given", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store); // its backup folder is not there: a command run without the flag fails
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits
  placeValidSnapshot(backupDir, FUTURE);
  const run = await runCli(["drill", "--latest", "--backup-dir", backupDir], { env });
  assert.equal(run.code, 1, run.stderr);
  const printed = printedCommand(run.stderr, "check the clock, then drill one by its stamp");
  assert.ok(printed !== null, run.stderr);
  const drilled = await runPrinted(printed, env); // pasted into a shell as it is
  assert.equal(drilled.code, 0, `${printed}: ${drilled.stderr}`);
  assert.equal((drilled.json as { stamp: string }).stamp, FUTURE);
});

Deno.test("a stamp ahead of the clock within the allowed skew has a recovery point of 0, never negative", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store), []);
  const config = resolveConfig({}, { ATOCORE_DATA_DIR: store.dataDir }, store.dataDir);
  const now = new Date(parseStamp(stamp)!.getTime() - 60_000);
  const result = await drillSnapshot(config, stamp, { driver: openDriver("auto"), reporter: SILENT, now });
  assert.equal(result.ok, true, result.errors.join("; "));
  assert.deepEqual([result.recovery_point_seconds, result.stamp_in_future], [0, false]);
});

Deno.test("cleanup keeps a snapshot stamped in the future without letting it take a day: the real days stay", async () => {
  using dir = tempDir();
  const real = [2, 3, 4, 5].map((day) => `2026110${day}T010000Z`);
  for (const stamp of [...real, FUTURE]) placeValidSnapshot(dir.path, stamp);
  const policy = ["--keep-daily", "2", "--keep-weekly", "0", "--keep-monthly", "0"];
  const run = await runCli(["cleanup", "--confirm", ...policy], { env: { ATOCORE_BACKUP_DIR: dir.path } });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as { kept_snapshots: { stamp: string; reasons: { rule: string }[] }[]; deleted: number };
  assert.deepEqual(
    result.kept_snapshots.map(({ stamp, reasons }) => [stamp, reasons.map((reason) => reason.rule)]),
    [[FUTURE, ["future"]], [real[3], ["daily", "newest", "newest-valid"]], [real[2], ["daily"]]],
  );
  assert.equal(result.deleted, 2);
  assert.deepEqual([...Deno.readDirSync(join(dir.path, "snapshots"))].map((entry) => entry.name).sort(), [
    ...real.slice(2),
    FUTURE,
  ]);
});

Deno.test("a restore whose pre-restore snapshot would sort before a snapshot stamped ahead is refused (exit 3)", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  placeValidSnapshot(store.backupDir, FUTURE); // the clock is behind: the undo would look older than this one
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`error: the newest snapshot ${FUTURE} is stamped .*or restore with --no-pre-snapshot$`, "m"),
  );
  const snapshots = [...Deno.readDirSync(join(store.backupDir, "snapshots"))].map((entry) => entry.name).sort();
  assert.deepEqual(snapshots, [stamp, FUTURE], "a pre-restore snapshot was made");
  const without = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(without.code, 0, without.stderr);
});
