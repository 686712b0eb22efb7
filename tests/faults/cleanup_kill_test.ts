/**
 * `cleanup --confirm` killed with SIGKILL at seeded random moments: no snapshot is
 * ever half-deleted (what is under `snapshots/` validates), no snapshot the policy
 * keeps is touched, and the next run recovers `.trash/` and the lock and finishes
 * the job.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { relocateSnapshot, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, faultSeed, runAndKill, seededRandom, timeRun, trialLabel } from "../_faults.ts";

const TRIALS = 12;
/** One snapshot a day through most of January 2026: the default policy removes 14 of them. */
const STAMPS = Array.from({ length: 24 }, (_, day) => `202601${String(day + 1).padStart(2, "0")}T010000Z`);

/** Hard-link a copy of the master snapshot under every stamp that is missing (cheap; cleanup only unlinks). */
function fillSnapshots(master: string, snapshots: string): void {
  const present = entryNames(snapshots);
  for (const stamp of STAMPS.filter((stamp) => !present.includes(stamp))) {
    const copy = new Deno.Command("cp", { args: ["-al", master, join(snapshots, stamp)] }).outputSync();
    assert.equal(copy.code, 0);
    relocateSnapshot(join(snapshots, stamp));
  }
}

Deno.test("cleanup --confirm killed at random moments never half-deletes a snapshot, and the next run finishes", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed);
  using store = tempStore({ dbMiB: 30, chromaMiB: 8, segments: 3, seed: 17 });
  using outside = tempDir("atocore-master-");
  const env = storeEnv(store);
  const snapshots = join(store.backupDir, "snapshots");
  const created = await runCli(["create", "--chroma"], { env });
  assert.equal(created.code, 0, created.stderr);
  const master = join(outside.path, "master");
  Deno.renameSync((created.json as { backup_root: string }).backup_root, master);
  fillSnapshots(master, snapshots);
  const plan = await runCli(["cleanup"], { env });
  const keep = (plan.json as { kept_snapshots: { stamp: string }[] }).kept_snapshots.map((kept) => kept.stamp).sort();
  assert.equal(keep.length, STAMPS.length - 14, `the policy changed: keeps ${keep}`);
  const duration = await timeRun(["cleanup", "--confirm"], env);
  const outcomes: string[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    fillSnapshots(master, snapshots);
    const aimed = trial % 2 === 1;
    const delay = Math.round(aimed ? random() * 4 : random() * duration);
    const label = trialLabel(seed, trial, `kill ${delay} ms after ${aimed ? "the first removal" : "start"}`);
    const killed = await runAndKill(["cleanup", "--confirm"], env, delay, aimed ? "snapshot_removed" : undefined);
    if (killed.code !== null) assert.equal(killed.code, 0, `cleanup ran to its end but failed ${label}`);
    const left = entryNames(snapshots);
    const trash = entryNames(join(store.backupDir, ".trash"));
    if (killed.code === null) outcomes.push(`${STAMPS.length - left.length}${trash.length ? "+trash" : ""}`);

    const validated = await runCli(["validate", "--all", "--quick"], { env });
    assert.equal(validated.code, 0, `a half-deleted snapshot is listed ${label}: ${validated.stdout}`);
    assert.deepEqual(keep.filter((stamp) => !left.includes(stamp)), [], `a kept snapshot was removed ${label}`);

    const next = await runCli(["cleanup", "--confirm"], { env });
    assert.equal(next.code, 0, `the cleanup after the kill failed ${label}: ${next.stderr}`);
    if (trash.length) assert.match(next.stderr, /stale_leftover_removed/, `stale trash not reported ${label}`);
    assert.deepEqual(entryNames(snapshots), keep, `the next run did not finish the job ${label}`);
    assert.deepEqual(entryNames(join(store.backupDir, ".trash")), [], `.trash not recovered ${label}`);
  }
  const validated = await runCli(["validate", "--all"], { env });
  assert.equal(validated.code, 0, `kept snapshots do not validate deeply (seed ${seed}): ${validated.stdout}`);
  console.log(
    `cleanup: ${TRIALS} trials (seed ${seed}); snapshots gone when killed (+trash: one was mid-removal): ${
      outcomes.join(", ")
    }`,
  );
});
