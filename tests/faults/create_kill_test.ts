/**
 * `create --chroma` killed with SIGKILL at seeded random moments: what is under
 * `snapshots/` always validates, the live store is untouched, and the next run
 * removes the stale staging folder, takes the lock and succeeds.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, storeEnv, tempStore } from "../_helpers.ts";
import {
  entryNames,
  faultSeed,
  liveDigest,
  runAndKill,
  seededRandom,
  sqliteIntegrity,
  timeRun,
  trialLabel,
} from "../_faults.ts";

const TRIALS = 16;

Deno.test("create --chroma killed at random moments never leaves a partial snapshot, and the next run recovers", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed);
  using store = tempStore({ dbMiB: 30, chromaMiB: 8, segments: 3, seed: 7 });
  const env = storeEnv(store);
  const snapshots = join(store.backupDir, "snapshots");
  const staging = join(store.backupDir, ".staging");
  const before = liveDigest(store);
  const duration = await timeRun(["create", "--chroma"], env);
  let landedMidRun = 0;
  for (let trial = 0; trial < TRIALS; trial++) {
    const delay = Math.round(random() * duration);
    const label = trialLabel(seed, trial, `kill after ${delay} ms`);
    const published = entryNames(snapshots);
    const killed = await runAndKill(["create", "--chroma"], env, delay);
    const leftovers = entryNames(staging);
    if (killed.code === null && leftovers.length > 0) landedMidRun += 1;
    if (killed.code !== null) assert.equal(killed.code, 0, `create ran to its end but failed ${label}`);

    const afterKill = await runCli(["validate", "--all"], { env });
    assert.equal(afterKill.code, 0, `a snapshot under snapshots/ does not validate ${label}: ${afterKill.stdout}`);
    const added = entryNames(snapshots).filter((name) => !published.includes(name));
    assert.ok(added.length <= 1, `more than one snapshot appeared ${label}: ${added}`);
    assert.equal(await sqliteIntegrity(store.db), "ok", `live database damaged ${label}`);
    assert.deepEqual(liveDigest(store), before, `live store changed ${label}`);

    const next = await runCli(["create", "--chroma"], { env });
    assert.equal(next.code, 0, `the run after the kill failed ${label}: ${next.stderr}`);
    if (leftovers.length > 0) {
      assert.match(next.stderr, /stale_leftover_removed/, `stale staging not reported ${label}`);
    }
    assert.deepEqual(entryNames(staging), [], `staging not recovered ${label}`);
    assert.deepEqual(entryNames(join(store.backupDir, "failed")), [], `a snapshot was set aside ${label}`);
    const afterNext = await runCli(["validate", "--all"], { env });
    assert.equal(afterNext.code, 0, `snapshots do not validate after the next run ${label}: ${afterNext.stdout}`);
    for (const name of entryNames(snapshots)) Deno.removeSync(join(snapshots, name), { recursive: true });
  }
  console.log(`create: ${TRIALS} kills (seed ${seed}), ${landedMidRun} left a staging folder behind`);
});
