/**
 * A push and a `remote cleanup --confirm` running together, in the case that matters: the push's cache points at packs
 * that the cleanup deletes (their marker is older than the grace) while the push may reuse them. Started at seeded
 * offsets from the same repository each round; afterwards every listed snapshot restores.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, type CliRun, cliRunOf, relocateSnapshot, runCli } from "../_helpers.ts";
import { faultSeed, seededRandom, treeDigest, trialLabel } from "../_faults.ts";
import {
  ageMarkers,
  assertVerified,
  linkCopy,
  remoteNames,
  remoteStore,
  snapshotAsStore,
  snapshotSeries,
} from "../_remote_cli.ts";

const ROUNDS = 4;
const KEEP_4 = ["--keep-daily", "4", "--keep-weekly", "0", "--keep-monthly", "0"];

/** Run the CLI with `args` after `delayMs`. */
async function runLater(args: string[], env: Record<string, string>, delayMs: number): Promise<CliRun> {
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  return cliRunOf(await cliProcess(args, { env }).output());
}

Deno.test("a push and a remote cleanup --confirm running together lose nothing: every listed snapshot restores", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed);
  using r = await remoteStore({ dbMiB: 4, chromaMiB: 1, seed: 37 });
  const stamps = await snapshotSeries(r, 6);
  for (const stamp of [...stamps.slice(1), stamps[0]]) { // the oldest last: the push cache points at its packs
    const pushed = await runCli(["push", stamp], { env: r.env });
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  const first = await runCli(["remote", "cleanup", "--confirm", ...KEEP_4.with(1, "5")], { env: r.env });
  assert.ok((first.json as { packs_condemned: number }).packs_condemned > 0, first.stdout);
  ageMarkers(r.repoDir, 48, r.store.backupDir);
  const snapshots = join(r.store.backupDir, "snapshots");
  const again = "20260120T010000Z"; // the oldest snapshot's content under a new stamp: what the cache knows
  const copy = new Deno.Command("cp", { args: ["-al", join(snapshots, stamps[0]), join(snapshots, again)] });
  assert.equal(copy.outputSync().code, 0);
  relocateSnapshot(join(snapshots, again));
  const master = join(r.work, "master");
  const remotes = join(r.store.backupDir, "remotes");
  const masterRemotes = join(r.work, "master-remotes");
  linkCopy(r.repoDir, master);
  new Deno.Command("cp", { args: ["-a", remotes, masterRemotes] }).outputSync();
  let restored = 0;
  const rounds: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    linkCopy(master, r.repoDir);
    Deno.removeSync(remotes, { recursive: true });
    new Deno.Command("cp", { args: ["-a", masterRemotes, remotes] }).outputSync();
    // odd rounds give the cleanup a head start long enough, even on a loaded machine, to delete before the push's lease
    const [pushDelay, cleanupDelay] = round % 2
      ? [100 + Math.round(random() * 400), 0]
      : [0, Math.round(random() * 60)];
    const label = trialLabel(seed, round, `push after ${pushDelay} ms, cleanup after ${cleanupDelay} ms`);
    const [push, cleanup] = await Promise.all([
      runLater(["push", again], r.env, pushDelay),
      runLater(["remote", "cleanup", "--confirm", ...KEEP_4], r.env, cleanupDelay),
    ]);
    assert.equal(push.code, 0, `push ${label}: ${push.stderr}`);
    assert.equal(cleanup.code, 0, `cleanup ${label}: ${cleanup.stderr}`);
    const reused = (push.json as { pushed: { packs_reused: number }[] }).pushed[0].packs_reused;
    const deleted = (cleanup.json as { packs_deleted: number }).packs_deleted;
    rounds.push(`push reused ${reused} packs, cleanup deleted ${deleted}`);
    const listed = await remoteNames(r.env);
    assert.ok(listed.some((name) => name.startsWith(`${again}_`)), `the pushed snapshot is not listed ${label}`);
    await assertVerified(r.envWithIdentity, ["--read-data"], label);
    for (const name of listed) {
      const to = join(r.work, `restored-${round}-${name}`);
      const run = await runCli(["restore", name, "--from-remote", "--to", to], { env: r.envWithIdentity });
      assert.equal(run.code, 0, `${name} does not restore ${label}: ${run.stderr}`);
      const stamp = name.split("_")[0];
      assert.deepEqual(treeDigest(to), snapshotAsStore(join(snapshots, stamp)), `${name} ${label}`);
      Deno.removeSync(to, { recursive: true });
      restored += 1;
    }
  }
  console.log(`push with remote cleanup: ${ROUNDS} rounds (seed ${seed}): ${rounds.join("; ")}; ${restored} restored`);
  assert.ok(rounds.some((round) => !round.endsWith(" 0")), "no round deleted a pack: the race was not run");
});

/** The pack files of the folder repository at `repoDir`, by path. */
function packFiles(repoDir: string): string[] {
  const root = join(repoDir, "packs");
  const found: string[] = [];
  for (const folder of [...safeEntries(root)].filter((entry) => entry.isDirectory)) {
    for (const file of safeEntries(join(root, folder.name))) found.push(join(root, folder.name, file.name));
  }
  return found;
}

function safeEntries(path: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(path)];
  } catch {
    return [];
  }
}

Deno.test("a pack of a paused push deleted by a cleaner whose clock jumped: the push lists nothing, names it", async () => {
  using r = await remoteStore({ dbMiB: 48, chromaMiB: 1, seed: 61 });
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const child = cliProcess(["push", "--latest"], { env: r.env }).spawn();
  const output = child.output();
  let first: string | undefined;
  for (let waited = 0; first === undefined && waited < 60_000; waited += 2) {
    first = packFiles(r.repoDir)[0];
    if (first === undefined) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.ok(first !== undefined, "no pack was written");
  child.kill("SIGSTOP");
  Deno.removeSync(first); // what a cleanup does once its marker is older than the grace by a clock that jumped
  child.kill("SIGCONT");
  const run = cliRunOf(await output);
  assert.equal(run.code, 1, run.stderr);
  const name = first.slice(r.repoDir.length + 1);
  assert.match(
    run.stderr,
    new RegExp(`error: push of .*: ${name} was acknowledged by .* but is not there when listed`),
  );
  assert.deepEqual(await remoteNames(r.env), [], "a snapshot was listed with a pack missing");
  const again = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(again.code, 0, again.stderr);
  await assertVerified(r.envWithIdentity, ["--read-data"], "the next push");
});
