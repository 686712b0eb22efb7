/**
 * `restore --from-remote --confirm-service-stopped` killed with SIGKILL at seeded random moments (during the fetch,
 * and just after live data begins to change): the live database is whole and old or new, the registry one or the
 * other, the repository still verifies, and the next run restores exactly the pushed snapshot. On every target that runs
 * here: a folder, sshd and radosgw (a smaller store over the network, to bound the time).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { removeQuietly } from "../../src/fs/durable.ts";
import { runCli } from "../_helpers.ts";
import {
  entryNames,
  faultSeed,
  ledgerState,
  runAndKill,
  seededRandom,
  sqliteIntegrity,
  timeRun,
  treeDigest,
  trialLabel,
} from "../_faults.ts";
import { changeLive, putBack, withoutStaging } from "../_live.ts";
import { assertVerified, createAndPush, remoteStore } from "../_remote_cli.ts";
import { allTargets, type RemoteTarget } from "../_targets.ts";

const TRIALS = 12;

/** Where the kills are aimed, in turn: anywhere (mostly the fetch), and just after live data begins to change. */
const AIMS: { afterEvent?: string; windowMs: number }[] = [
  { windowMs: 0 },
  { windowMs: 0 },
  { afterEvent: "restore_chroma_staged", windowMs: 60 },
  { afterEvent: "restore_db_replaced", windowMs: 15 },
];

async function restoreKills(target: RemoteTarget): Promise<void> {
  const seed = faultSeed();
  const random = seededRandom(seed + 7);
  const sizes = target.label === "folder" ? { dbMiB: 20, chromaMiB: 6 } : { dbMiB: 6, chromaMiB: 2 };
  using r = await remoteStore({ ...sizes, segments: 3, seed: 17 }, target.fresh("restore-kill"));
  const saved = join(r.work, "saved");
  const { stamp } = await createAndPush(r.env);
  const snapshots = join(r.store.backupDir, "snapshots");
  const after = { ledger: await ledgerState(r.store.db), registry: Deno.readTextFileSync(r.store.registry) };
  const afterChroma = treeDigest(join(snapshots, stamp, "chroma"));
  await changeLive(r.store);
  const before = { ledger: await ledgerState(r.store.db), registry: Deno.readTextFileSync(r.store.registry) };
  Deno.mkdirSync(saved);
  const copy = new Deno.Command("cp", { args: ["-a", r.store.db, r.store.registry, r.store.chromaDir, saved] });
  assert.equal(copy.outputSync().code, 0);
  const restore = ["restore", stamp, "--from-remote", "--confirm-service-stopped", "--no-pre-snapshot"];
  const duration = await timeRun(restore, r.envWithIdentity);
  const outcomes: string[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    for (const name of entryNames(snapshots)) removeQuietly(join(snapshots, name));
    putBack(saved, r.store);
    const aim = AIMS[trial % AIMS.length];
    const delay = Math.round(random() * (aim.afterEvent ? aim.windowMs : duration));
    const label = trialLabel(seed, trial, `${target.label}; kill ${delay} ms after ${aim.afterEvent ?? "start"}`);
    const killed = await runAndKill(restore, r.envWithIdentity, delay, aim.afterEvent);
    if (killed.code !== null) assert.equal(killed.code, 0, `restore ran to its end but failed ${label}`);

    assert.equal(await sqliteIntegrity(r.store.db), "ok", `live database damaged ${label}`);
    const ledger = JSON.stringify(await ledgerState(r.store.db));
    const state = ledger === JSON.stringify(after.ledger)
      ? "new"
      : ledger === JSON.stringify(before.ledger)
      ? "old"
      : "";
    assert.ok(state, `live database holds neither the old nor the new state ${label}: ${ledger}`);
    const registry = Deno.readTextFileSync(r.store.registry);
    assert.ok([before.registry, after.registry].includes(registry), `registry torn ${label}`);
    if (killed.code === null) outcomes.push(`${state} database`);
    await assertVerified(r.env, [], `the repository after the kill ${label}`);

    const next = await runCli(restore, { env: r.envWithIdentity });
    assert.equal(next.code, 0, `the restore after the kill failed ${label}: ${next.stderr}`);
    assert.deepEqual(await ledgerState(r.store.db), after.ledger, `not restored ${label}`);
    assert.equal(Deno.readTextFileSync(r.store.registry), after.registry, `registry not restored ${label}`);
    assert.deepEqual(withoutStaging(treeDigest(r.store.chromaDir)), afterChroma, `Chroma not restored ${label}`);
    assert.deepEqual(treeDigest(r.store.chromaDir), afterChroma, `restore's staging left in Chroma ${label}`);
  }
  const counts = Object.entries(Object.groupBy(outcomes, (outcome) => outcome)).map(([key, list]) =>
    `${list!.length} ${key}`
  );
  console.log(
    `restore --from-remote (${target.label}): ${TRIALS} trials (seed ${seed}); killed with ${
      counts.join(", ") || "none"
    }`,
  );
}

for (const target of await allTargets("restore --from-remote killed at random moments")) {
  Deno.test(`restore --from-remote killed at random moments (${target.label}): live old or new and whole, the next run restores exactly`, async () => {
    await using _target = target;
    await restoreKills(target);
  });
}
