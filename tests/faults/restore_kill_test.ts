/**
 * `restore --confirm-service-stopped` (with Chroma, with and without the pre-restore
 * snapshot) killed with SIGKILL at seeded random moments: every snapshot still
 * validates, the live database is whole and holds the state before or the state
 * after, the registry is one or the other, and the next run recovers the leftovers
 * and the lock and restores exactly the snapshot. Killed during `restore --to`,
 * the live store is untouched and the next run (with `--force`: the folder is
 * not empty) rebuilds the folder exactly.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { removeQuietly } from "../../src/fs/durable.ts";
import { changeLive, putBack, withoutStaging } from "../_live.ts";
import {
  entryNames,
  faultSeed,
  ledgerState,
  liveDigest,
  runAndKill,
  seededRandom,
  sqliteIntegrity,
  timeRun,
  treeDigest,
  trialLabel,
} from "../_faults.ts";

const TRIALS = 16;
const TO_TRIALS = 8;

/**
 * Where the kills are aimed, in turn: anywhere in a run (with and without the
 * pre-restore snapshot), and within a few milliseconds after the step that begins
 * replacing live data (the Chroma copy staged) and the database replaced.
 */
const AIMS: { preSnapshot: boolean; afterEvent?: string; windowMs: number }[] = [
  { preSnapshot: true, windowMs: 0 },
  { preSnapshot: false, windowMs: 0 },
  { preSnapshot: true, afterEvent: "restore_chroma_staged", windowMs: 60 },
  { preSnapshot: false, afterEvent: "restore_db_replaced", windowMs: 15 },
];
const LIVE_NAMES = ["atocore.db", "backups", "chroma", "project-registry.json"];

/** The live state before and after the restore of the kill trials, and how to run it. */
interface RestoreWorld {
  store: ReturnType<typeof tempStore>;
  env: Record<string, string>;
  restore: string[];
  before: { ledger: unknown; registry: string };
  after: { ledger: unknown; registry: string };
  afterChroma: Record<string, string>;
  beforeChroma: string;
}

/**
 * After a kill: every snapshot validates, the live database is whole and old or new, the registry one or the other.
 * Returns which state the database and Chroma are in (an outcome to count when the run was killed).
 */
async function assertWholeAfterKill(w: RestoreWorld, label: string): Promise<string> {
  const { store, env, before, after } = w;
  const validated = await runCli(["validate", "--all"], { env });
  assert.equal(validated.code, 0, `a snapshot does not validate after the kill ${label}: ${validated.stdout}`);
  assert.equal(await sqliteIntegrity(store.db), "ok", `live database damaged ${label}`);
  const ledger = await ledgerState(store.db);
  assert.ok(
    [before.ledger, after.ledger].some((state) => JSON.stringify(state) === JSON.stringify(ledger)),
    `live database holds neither the old nor the new state ${label}: ${JSON.stringify(ledger)}`,
  );
  const registry = Deno.readTextFileSync(store.registry);
  assert.ok([before.registry, after.registry].includes(registry), `registry torn ${label}`);
  const replaced = JSON.stringify(ledger) === JSON.stringify(after.ledger);
  const chroma = JSON.stringify(withoutStaging(treeDigest(store.chromaDir)));
  const chromaState = chroma === JSON.stringify(w.afterChroma) ? "new" : chroma === w.beforeChroma ? "old" : "mixed";
  return `${replaced ? "new" : "old"} database, ${chromaState} Chroma`;
}

/** The next run of the restore succeeds and restores exactly the snapshot, leaving nothing behind. */
async function assertNextRunRecovers(w: RestoreWorld, label: string): Promise<void> {
  const { store, env, after } = w;
  const next = await runCli(w.restore, { env });
  assert.equal(next.code, 0, `the restore after the kill failed ${label}: ${next.stderr}`);
  assert.deepEqual(await ledgerState(store.db), after.ledger, `not restored ${label}`);
  assert.equal(Deno.readTextFileSync(store.registry), after.registry, `registry not restored ${label}`);
  assert.deepEqual(treeDigest(store.chromaDir), w.afterChroma, `Chroma not restored exactly ${label}`);
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], `staging left behind ${label}`);
  const leftovers = entryNames(store.dataDir).filter((name) => !LIVE_NAMES.includes(name) && !/-(wal|shm)$/.test(name));
  assert.deepEqual(leftovers, [], `temporary files left beside the live store ${label}`);
  const revalidated = await runCli(["validate", "--all"], { env });
  assert.equal(revalidated.code, 0, `snapshots do not validate after the next run ${label}: ${revalidated.stdout}`);
}

Deno.test("restore killed at random moments: live database old or new and whole, snapshots valid, next run recovers", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed);
  using store = tempStore({ dbMiB: 30, chromaMiB: 8, segments: 3, seed: 13 });
  using saved = tempDir("atocore-saved-");
  const env = storeEnv(store);
  const snapshots = join(store.backupDir, "snapshots");
  const stamp = await createdStamp(env);
  const after = { ledger: await ledgerState(store.db), registry: Deno.readTextFileSync(store.registry) };
  const afterChroma = treeDigest(join(snapshots, stamp, "chroma"));
  await changeLive(store);
  const before = { ledger: await ledgerState(store.db), registry: Deno.readTextFileSync(store.registry) };
  const copy = new Deno.Command("cp", { args: ["-a", store.db, store.registry, store.chromaDir, saved.path] })
    .outputSync();
  assert.equal(copy.code, 0);
  const restore = ["restore", stamp, "--confirm-service-stopped"];
  const durations = {
    pre: await timeRun(restore, env),
    none: (putBack(saved.path, store), await timeRun([...restore, "--no-pre-snapshot"], env)),
  };
  const beforeChroma = JSON.stringify(treeDigest(join(saved.path, "chroma")));
  const outcomes: string[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    for (const name of entryNames(snapshots)) if (name !== stamp) removeQuietly(join(snapshots, name));
    putBack(saved.path, store);
    const aim = AIMS[trial % AIMS.length];
    const args = aim.preSnapshot ? restore : [...restore, "--no-pre-snapshot"];
    const delay = Math.round(
      aim.afterEvent ? random() * aim.windowMs : random() * (aim.preSnapshot ? durations.pre : durations.none),
    );
    const label = trialLabel(seed, trial, `kill ${delay} ms after ${aim.afterEvent ?? "start"}; ${args.join(" ")}`);
    const killed = await runAndKill(args, env, delay, aim.afterEvent);
    if (killed.code !== null) assert.equal(killed.code, 0, `restore ran to its end but failed ${label}`);

    const world = { store, env, restore, before, after, afterChroma, beforeChroma };
    const outcome = await assertWholeAfterKill(world, label);
    if (killed.code === null) outcomes.push(outcome);
    await assertNextRunRecovers(world, label);
  }
  const counts = Object.entries(Object.groupBy(outcomes, (outcome) => outcome)).map(([key, list]) =>
    `${list!.length} ${key}`
  );
  console.log(`restore: ${TRIALS} trials (seed ${seed}); killed with ${counts.join(", ")}`);
});

Deno.test("restore --to killed at random moments: the live store is untouched and the next run rebuilds the folder", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed + 1);
  using store = tempStore({ dbMiB: 30, chromaMiB: 8, segments: 3, seed: 19 });
  using scratch = tempDir("atocore-restore-to-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const expected = treeDigest(join(store.backupDir, "snapshots", stamp, "chroma"));
  const live = liveDigest(store);
  const to = join(scratch.path, "drill");
  const duration = await timeRun(["restore", stamp, "--to", to], env);
  for (let trial = 0; trial < TO_TRIALS; trial++) {
    const delay = Math.round(random() * duration);
    const label = trialLabel(seed + 1, trial, `kill after ${delay} ms`);
    // The folder holds the earlier run's store: --force restores over it (without, it is refused).
    const killed = await runAndKill(["restore", stamp, "--to", to, "--force"], env, delay);
    if (killed.code !== null) assert.equal(killed.code, 0, `restore --to ran to its end but failed ${label}`);
    assert.deepEqual(liveDigest(store), live, `the live store changed ${label}`);
    const next = await runCli(["restore", stamp, "--to", to, "--force"], { env });
    assert.equal(next.code, 0, `the run after the kill failed ${label}: ${next.stderr}`);
    assert.equal(await sqliteIntegrity(join(to, "atocore.db")), "ok", `rebuilt database damaged ${label}`);
    assert.deepEqual(treeDigest(join(to, "chroma")), expected, `rebuilt Chroma differs ${label}`);
  }
});

Deno.test("the Chroma copy a killed restore staged is never backed up: create refuses until the restore is finished", async () => {
  using store = tempStore({ dbMiB: 4, chromaMiB: 4, seed: 23 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const restore = ["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"];
  const killed = await runAndKill(restore, env, 0, "restore_chroma_staged");
  assert.equal(killed.code, null, "restore finished before the kill");
  assert.ok(entryNames(store.chromaDir).some((name) => name.startsWith(".atocore-restore-")), "nothing was staged");
  const refused = await runCli(["create", "--chroma"], { env });
  assert.equal(refused.code, 3, `create ran over an unfinished restore: ${refused.stderr}`);
  assert.ok(refused.stderr.includes(`finish it with: atocore-backup restore ${stamp} --confirm-service-stopped;`));
  const finished = await runCli(restore, { env });
  assert.equal(finished.code, 0, finished.stderr);
  const second = await runCli(["create", "--chroma"], { env });
  assert.equal(second.code, 0, second.stderr);
  const { backup_root: root, stamp: secondStamp } = second.json as { backup_root: string; stamp: string };
  const firstChroma = join(store.backupDir, "snapshots", stamp, "chroma");
  assert.deepEqual(entryNames(join(root, "chroma")), entryNames(firstChroma), "the staged copy was backed up");
  const restored = await runCli(["restore", secondStamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(restored.code, 0, restored.stderr);
  assert.ok(!entryNames(store.chromaDir).some((name) => name.startsWith(".atocore-restore-")), "stale copy restored");
});
