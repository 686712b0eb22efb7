/**
 * Two hosts (two backup folders) pushing to one repository at once while a `remote cleanup --confirm` runs: every
 * snapshot either host has listed restores to its host's snapshot byte for byte, and retention counts each host's
 * snapshots apart (one host's newer stamps never push the other's out).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import {
  cliProcess,
  type CliRun,
  cliRunOf,
  relocateSnapshot,
  runCli,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { faultSeed, seededRandom, treeDigest, trialLabel } from "../_faults.ts";
import { ageKeyPair, assertVerified, authKeyEnv, remoteNames, snapshotAsStore } from "../_remote_cli.ts";
import { updateRows } from "../_repo.ts";
import { allTargets, type RemoteTarget } from "../_targets.ts";

const ROUNDS = 3;
const KEEP_3 = ["--keep-daily", "3", "--keep-weekly", "0", "--keep-monthly", "0"];

/** One host: its backup folder's snapshots and the CLI environment that points at the shared repository. */
interface Host {
  db: string;
  snapshots: string;
  env: Record<string, string>;
  hour: string;
}

/** Make the snapshots of `days` on `host`, each stamped at the host's own hour of that day. */
async function makeDays(host: Host, days: number[]): Promise<void> {
  for (const day of days) {
    updateRows(host.db, 0.1, day);
    const run = await runCli(["create", "--chroma"], { env: host.env });
    assert.equal(run.code, 0, run.stderr);
    const stamp = `202601${String(day).padStart(2, "0")}T${host.hour}0000Z`;
    Deno.renameSync(join(host.snapshots, (run.json as { stamp: string }).stamp), join(host.snapshots, stamp));
    relocateSnapshot(join(host.snapshots, stamp)); // it records the stamp it now has
  }
}

async function runLater(args: string[], env: Record<string, string>, delayMs: number): Promise<CliRun> {
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  return cliRunOf(await cliProcess(args, { env }).output());
}

async function twoHosts(target: RemoteTarget): Promise<void> {
  const seed = faultSeed();
  const random = seededRandom(seed + 11);
  using work = tempDir("atocore-two-hosts-");
  using one = tempStore({ dbMiB: 3, chromaMiB: 1, seed: 41 });
  using other = tempStore({ dbMiB: 3, chromaMiB: 1, seed: 43 });
  const remote = target.fresh("two-hosts");
  const key = ageKeyPair(work.path);
  const hosts: Host[] = [one, other].map((store, index) => ({
    db: store.db,
    snapshots: join(store.backupDir, "snapshots"),
    env: { ...storeEnv(store), ...remote, ...authKeyEnv(key) },
    hour: `0${index + 1}`,
  }));
  const r = { env: hosts[0].env, work: work.path };
  const init = await runCli(["remote", "init", "--recipient", key.recipient], { env: r.env });
  assert.equal(init.code, 0, init.stderr);
  const identity = { ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile };
  const rounds: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const days = [2 * round + 1, 2 * round + 2];
    for (const host of hosts) await makeDays(host, days);
    const delays = [0, 1, 2].map(() => Math.round(random() * 80));
    const label = trialLabel(seed, round, `starts after ${delays.join(", ")} ms (host 1, host 2, cleanup)`);
    const runs = await Promise.all([
      ...hosts.map((host, index) => runLater(["push", "--all"], host.env, delays[index])),
      runLater(["remote", "cleanup", "--confirm", ...KEEP_3], r.env, delays[2]),
    ]);
    for (const run of runs) assert.equal(run.code, 0, `${label}: ${run.stderr}`);
    const listed = await remoteNames(r.env);
    rounds.push(`${listed.length} listed`);
    await assertVerified({ ...r.env, ...identity }, ["--read-data"], label);
    for (const name of listed) {
      const stamp = name.split("_")[0];
      const host = hosts.find((one) => stamp.endsWith(`T${one.hour}0000Z`))!;
      const to = join(r.work, `restored-${round}-${name}`);
      const run = await runCli(["restore", name, "--from-remote", "--to", to], { env: { ...host.env, ...identity } });
      assert.equal(run.code, 0, `${name} does not restore ${label}: ${run.stderr}`);
      assert.deepEqual(treeDigest(to), snapshotAsStore(join(host.snapshots, stamp)), `${name} ${label}`);
      Deno.removeSync(to, { recursive: true });
    }
  }
  const settled = await runCli(["remote", "cleanup", "--confirm", ...KEEP_3], { env: r.env });
  assert.equal(settled.code, 0, settled.stderr);
  const left = (await remoteNames(r.env)).map((name) => name.split("_")[0]);
  for (const host of hosts) {
    const mine = left.filter((stamp) => stamp.endsWith(`T${host.hour}0000Z`));
    assert.deepEqual(mine, ["04", "05", "06"].map((day) => `202601${day}T${host.hour}0000Z`), "each host keeps 3 days");
  }
  console.log(`two hosts with remote cleanup (${target.label}): ${ROUNDS} rounds (seed ${seed}): ${rounds.join("; ")}`);
}

for (const target of await allTargets("two hosts pushing at once")) {
  Deno.test(`two hosts push to one repository (${target.label}) while a cleanup runs: every listed snapshot of both restores`, async () => {
    await using _target = target;
    await twoHosts(target);
  });
}

Deno.test("a copied backup folder pushing under the same source id: its snapshot of the same second is sent, and named", async () => {
  using work = tempDir("atocore-cloned-host-");
  using one = tempStore({ dbMiB: 2, chromaMiB: 1, seed: 51 });
  using clone = tempStore({ dbMiB: 2, chromaMiB: 1, seed: 53 });
  const key = ageKeyPair(work.path);
  const remote = { ATOCORE_BACKUP_REMOTE: join(work.path, "repo") };
  const hosts: Host[] = [one, clone].map((store) => ({
    db: store.db,
    snapshots: join(store.backupDir, "snapshots"),
    env: { ...storeEnv(store), ...remote, ...authKeyEnv(key) },
    hour: "01", // the same timer on both: the same stamps
  }));
  assert.equal((await runCli(["remote", "init", "--recipient", key.recipient], { env: hosts[0].env })).code, 0);
  await makeDays(hosts[0], [1]);
  assert.equal((await runCli(["push", "--all"], { env: hosts[0].env })).code, 0);
  Deno.mkdirSync(clone.backupDir, { recursive: true }); // the host was cloned after its first push: its pin too
  const copied = new Deno.Command("cp", { args: ["-a", join(one.backupDir, "remotes"), clone.backupDir] }).outputSync();
  assert.ok(copied.success, "cp -a remotes/");
  await makeDays(hosts[0], [2]);
  await makeDays(hosts[1], [2]);
  assert.equal((await runCli(["push", "--all"], { env: hosts[0].env })).code, 0);
  const pushed = await runCli(["push", "--all"], { env: hosts[1].env });
  assert.equal(pushed.code, 0, pushed.stderr);
  const result = (pushed.json as { pushed: { stamp: string; already_pushed: boolean }[] }).pushed;
  assert.deepEqual(result.map((entry) => [entry.stamp, entry.already_pushed]), [["20260102T010000Z", false]]);
  assert.match(
    pushed.stderr,
    /"push_warning".*carries this backup folder's source id but another snapshot of 20260102T010000Z.*remove .*pin\.json/,
  );
  const listed = (await remoteNames(hosts[0].env)).filter((name) => name.startsWith("20260102T010000Z"));
  assert.equal(listed.length, 2, "both hosts' snapshots of that second are in the repository");
  const identity = { ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile };
  for (const [index, host] of hosts.entries()) {
    const mine = [];
    for (const name of listed) {
      const to = join(work.path, `restored-${index}-${name}`);
      const run = await runCli(["restore", name, "--from-remote", "--to", to], { env: { ...host.env, ...identity } });
      assert.equal(run.code, 0, run.stderr);
      if (isDeepStrictEqual(treeDigest(to), snapshotAsStore(join(host.snapshots, "20260102T010000Z")))) mine.push(name);
    }
    assert.equal(mine.length, 1, `host ${index + 1}'s snapshot is not in the repository once`);
  }
});
