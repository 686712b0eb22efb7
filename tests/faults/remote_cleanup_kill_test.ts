/**
 * `remote cleanup --confirm` killed with SIGKILL at seeded random moments, on a repository where it removes snapshots,
 * deletes the packs of a marker older than the grace and condemns others: every snapshot still listed has all its
 * objects (`remote verify`), none the policy keeps is touched, the next run finishes the job, and `remote verify
 * --read-data` is clean. Each trial starts from the same repository (its objects put back as they were). On every target
 * that runs here: a folder, sshd and radosgw.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli } from "../_helpers.ts";
import { faultSeed, runAndKill, seededRandom, trialLabel } from "../_faults.ts";
import {
  ageSightings,
  assertVerified,
  remoteNames,
  type RemoteStore,
  remoteStore,
  snapshotSeries,
  timeEvent,
} from "../_remote_cli.ts";
import { ageMarkersOf, allTargets, backendOf, type RemoteTarget, resetObjects, saveObjects } from "../_targets.ts";

const TRIALS = 12;
const KEEP_3 = ["--keep-daily", "3", "--keep-weekly", "0", "--keep-monthly", "0"];

/**
 * Eight snapshots pushed, a first cleanup that leaves a marker older than the grace and sightings as old, and the plan
 * of a second (three snapshots to delete, packs to delete and to condemn) with the repository's objects saved to put
 * back before each trial.
 */
async function condemningRepository(r: RemoteStore) {
  const backend = backendOf(r.env);
  await snapshotSeries(r, 8);
  const pushed = await runCli(["push", "--all"], { env: r.env });
  assert.equal(pushed.code, 0, pushed.stderr);
  const first = await runCli([
    "remote",
    "cleanup",
    "--confirm",
    "--keep-daily",
    "6",
    "--keep-weekly",
    "0",
    "--keep-monthly",
    "0",
  ], {
    env: r.env,
  });
  assert.equal(first.code, 0, first.stderr);
  assert.ok((first.json as { packs_condemned: number }).packs_condemned > 0, "the two oldest leave packs to condemn");
  assert.equal(await ageMarkersOf(backend, 48), 1);
  ageSightings(r.store.backupDir, 48);
  const master = await saveObjects(backend);
  const all = await remoteNames(r.env);
  const plan = await runCli(["remote", "cleanup", ...KEEP_3], { env: r.env });
  const planned = plan.json as {
    kept: string[];
    would_delete: string[];
    packs_deleted: number;
    packs_condemned: number;
  };
  assert.deepEqual([planned.kept.length, planned.would_delete.length], [3, 3]);
  assert.ok(planned.packs_deleted > 0 && planned.packs_condemned > 0, JSON.stringify(planned));
  return { backend, master, all, planned };
}

async function cleanupKills(target: RemoteTarget): Promise<void> {
  const seed = faultSeed();
  const random = seededRandom(seed);
  using r = await remoteStore({ dbMiB: 4, chromaMiB: 1, seed: 31 }, target.fresh("cleanup-kill"));
  const { backend, master, all, planned } = await condemningRepository(r);
  const { total, afterEvent } = await timeEvent(
    ["remote", "cleanup", "--confirm", ...KEEP_3],
    r.env,
    "remote_cleanup_started",
  );
  const outcomes: string[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    await resetObjects(backend, master);
    const aimed = trial % 2 === 1;
    const delay = Math.round(random() * (aimed ? afterEvent : total));
    const label = trialLabel(
      seed,
      trial,
      `${target.label}; kill ${delay} ms after ${aimed ? "remote_cleanup_started" : "start"}`,
    );
    const args = ["remote", "cleanup", "--confirm", ...KEEP_3];
    const killed = await runAndKill(args, r.env, delay, aimed ? "remote_cleanup_started" : undefined);
    if (killed.code !== null) assert.equal(killed.code, 0, `cleanup ran to its end but failed ${label}`);
    const left = await remoteNames(r.env);
    outcomes.push(killed.code === null ? `${all.length - left.length} gone` : "finished");
    assert.deepEqual(planned.kept.filter((name) => !left.includes(name)), [], `a kept snapshot was removed ${label}`);
    assert.deepEqual(left.filter((name) => !all.includes(name)), [], `a snapshot appeared ${label}`);
    await assertVerified(r.env, [], `after the kill ${label}`);

    const next = await runCli(args, { env: r.env });
    assert.equal(next.code, 0, `the cleanup after the kill failed ${label}: ${next.stderr}`);
    assert.deepEqual(await remoteNames(r.env), planned.kept, `the next run did not finish the job ${label}`);
    await assertVerified(r.envWithIdentity, ["--read-data"], label);
  }
  console.log(
    `remote cleanup (${target.label}): ${TRIALS} trials (seed ${seed}); run ${Math.round(afterEvent)} of ${
      Math.round(total)
    } ms; when killed: ${outcomes.join(", ")}`,
  );
}

for (const target of await allTargets("remote cleanup --confirm killed at random moments")) {
  Deno.test(`remote cleanup --confirm killed at random moments (${target.label}) never leaves a listed snapshot without its objects`, async () => {
    await using _target = target;
    await cleanupKills(target);
  });
}
