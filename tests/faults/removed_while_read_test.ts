/**
 * A snapshot removed (by a cleanup) while `validate` or `drill` reads it, made deterministic by strace holding the
 * run's first open of its metadata while the test removes it: the `list` each prints reaches the --backup-dir given.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type CliRun,
  cliRunOf,
  createdStamp,
  printedCommand,
  runPrinted,
  storeEnv,
  tempStore,
  toolFor,
} from "../_helpers.ts";
import { runHeld } from "../_faults.ts";

/**
 * Run `command STAMP --backup-dir DIR` on a new snapshot of a backup folder given by flag only (another snapshot
 * stays there), removing the snapshot as the run first opens its metadata; then the `list` it printed after `words`,
 * pasted into a shell as it is. Both runs, and the snapshot that stays.
 */
async function removedWhileRead(
  command: string,
  words: string,
  message: (run: CliRun) => string,
): Promise<{ run: CliRun; listed: CliRun; printed: string; stays: string }> {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store); // its backup folder is not there: a list run without the flag fails
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits
  const stays = await createdStamp(env, ["--backup-dir", backupDir]);
  const stamp = await createdStamp(env, ["--backup-dir", backupDir]);
  const root = join(backupDir, "snapshots", stamp);
  const held = { held: join(root, "backup-metadata.json"), calls: "openat,open" };
  const args = [command, stamp, "--backup-dir", backupDir];
  const { output, held: wasHeld } = await runHeld(args, env, held, () => Deno.removeSync(root, { recursive: true }));
  assert.ok(wasHeld, "strace did not hold the metadata's open");
  const run = cliRunOf(output);
  const printed = printedCommand(message(run), words);
  assert.ok(printed !== null, `no '${words}' in:\n${run.stdout}\n${run.stderr}`);
  return { run, listed: await runPrinted(printed, env), printed, stays };
}

/** The detail of a drill's first failed check, from its JSON. */
function drillDetail(run: CliRun): string {
  const checks = (run.json as { checks: { status: string; detail: string }[] }).checks;
  return checks.find((check) => check.status === "failed")?.detail ?? "";
}

/** The stamps a `list` run printed in its JSON. */
function listedStamps(listed: CliRun): string[] {
  return (listed.json as { backups: { stamp: string }[] }).backups.map((snapshot) => snapshot.stamp);
}

Deno.test("validate STAMP of a snapshot removed while it is validated prints a list of the --backup-dir given (needs strace)", async () => {
  if (!toolFor("strace", "a snapshot removed while it is validated")) return;
  const { run, listed, printed, stays } = await removedWhileRead(
    "validate",
    "see the snapshots with",
    (run) => run.stderr,
  );
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /was removed while it was being validated \(by a cleanup\?\), so it was not checked; see /);
  assert.equal(listed.code, 0, `${printed}: ${listed.stderr}`);
  assert.deepEqual(listedStamps(listed), [stays], printed);
});

Deno.test("drill STAMP of a snapshot removed while it is drilled prints a list of the --backup-dir given (needs strace)", async () => {
  if (!toolFor("strace", "a snapshot removed while it is drilled")) return;
  const { run, listed, printed, stays } = await removedWhileRead("drill", "drill another one, listed by", drillDetail);
  assert.equal(run.code, 1, run.stderr);
  assert.match(drillDetail(run), /^the snapshot was removed while the drill ran \(by a cleanup\?\): /);
  assert.equal(listed.code, 0, `${printed}: ${listed.stderr}`);
  assert.deepEqual(listedStamps(listed), [stays], printed);
});
