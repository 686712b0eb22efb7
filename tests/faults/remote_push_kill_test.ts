/**
 * `push` killed with SIGKILL at seeded random moments: a snapshot is listed whole or not at all (`remote verify` finds
 * every object of every listed snapshot), the next push succeeds, and `remote verify --read-data` is clean. Half the
 * trials start without the push cache (the push sends everything anew), half with it and the journals of killed ones.
 * On every target that runs here: a folder, sshd and radosgw (a smaller store over the network, to bound the time).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { relocateSnapshot, runCli } from "../_helpers.ts";
import { entryNames, faultSeed, runAndKill, seededRandom, treeDigest, trialLabel } from "../_faults.ts";
import { timeEvent } from "../_remote_cli.ts";
import { assertVerified, remoteNames, remoteStore, snapshotAsStore } from "../_remote_cli.ts";
import { allTargets, type RemoteTarget } from "../_targets.ts";

const TRIALS = 12;

function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function pushKills(target: RemoteTarget): Promise<void> {
  const seed = faultSeed();
  const random = seededRandom(seed);
  const network = target.label !== "folder";
  const sizes = network ? { dbMiB: 4, chromaMiB: 1 } : { dbMiB: 10, chromaMiB: 2 };
  using r = await remoteStore({ ...sizes, segments: 2, seed: 23 }, target.fresh("push-kill"));
  const created = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const snapshots = join(r.store.backupDir, "snapshots");
  const master = join(snapshots, (created.json as { stamp: string }).stamp);
  const remotes = join(r.store.backupDir, "remotes");
  const { total: duration, afterEvent: pushMs } = await timeEvent(["push", "--latest"], r.env, "push_started");
  const outcomes: string[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    const stamp = `202601${String(trial + 1).padStart(2, "0")}T010000Z`;
    const copy = new Deno.Command("cp", { args: ["-al", master, join(snapshots, stamp)] }).outputSync();
    assert.equal(copy.code, 0);
    relocateSnapshot(join(snapshots, stamp));
    const cold = trial % 2 === 0;
    if (cold) {
      // none when the pushes since the last removal were killed before writing it, or sent nothing (already listed)
      for (const key of entryNames(remotes)) removeIfThere(join(remotes, key, "push-cache"));
    }
    const aimed = trial % 4 >= 2;
    const delay = Math.round(random() * (aimed ? (cold ? pushMs : 40) : duration));
    const label = trialLabel(
      seed,
      trial,
      `${target.label}; ${cold ? "cold" : "warm"}; kill ${delay} ms after ${aimed ? "push_started" : "start"}`,
    );
    const killed = await runAndKill(["push", stamp], r.env, delay, aimed ? "push_started" : undefined);
    if (killed.code !== null) assert.equal(killed.code, 0, `push ran to its end but failed ${label}`);
    const listed = await remoteNames(r.env);
    const mine = listed.filter((name) => name.startsWith(`${stamp}_`));
    assert.ok(mine.length <= 1, `listed twice ${label}`);
    outcomes.push(killed.code !== null ? "finished" : mine.length ? "listed" : "not listed");
    await assertVerified(r.env, [], `after the kill ${label}`);

    const next = await runCli(["push", stamp], { env: r.env });
    assert.equal(next.code, 0, `the push after the kill failed ${label}: ${next.stderr}`);
    const after = await remoteNames(r.env);
    assert.equal(after.filter((name) => name.startsWith(`${stamp}_`)).length, 1, `not listed once ${label}`);
    if (mine.length) assert.deepEqual(after, listed, `a listed snapshot was pushed again ${label}`);
    await assertVerified(r.envWithIdentity, ["--read-data"], label);
  }
  const last = (await remoteNames(r.env)).at(-1)!;
  const to = join(r.work, "to");
  const restored = await runCli(["restore", last, "--from-remote", "--to", to], { env: r.envWithIdentity });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(treeDigest(to), snapshotAsStore(master));
  console.log(
    `push (${target.label}): ${TRIALS} trials (seed ${seed}); push ${Math.round(pushMs)} of ${
      Math.round(duration)
    } ms; the snapshot when killed: ${outcomes.join(", ")}`,
  );
}

for (const target of await allTargets("push killed at random moments")) {
  Deno.test(`push killed at random moments (${target.label}) never lists half a snapshot; the next push succeeds and verifies`, async () => {
    await using _target = target;
    await pushKills(target);
  });
}
