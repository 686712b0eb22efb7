/**
 * Restores and drills from a repository whose network goes away for good in the middle (every connection reset, every
 * connection stalled, every connection refused), through the tests' TCP proxy in front of a real sshd or radosgw:
 * each ends by itself in bounded time with one line, nothing live changed, no scratch copy left, and succeeds once the
 * network is back. Seeded (`FAULT_SEED`): the moment the network goes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, faultSeed, ledgerState, liveDigest, seededRandom, treeDigest, trialLabel } from "../_faults.ts";
import { changeLive } from "../_live.ts";
import { type ActedRun, afterBytes, runUntil } from "../_network.ts";
import { type FaultProxy, startProxy } from "../_proxy.ts";
import { ageKeyPair, authKeyEnv, oneErrorLine } from "../_remote_cli.ts";
import { networkTargets, type RemoteTarget } from "../_targets.ts";

/** The stall timeout of these runs: short, so that a stalled link is given up within the test's time. */
const SHORT_STALL = "2s";
/** The most a run may take: six attempts of a 2 s timeout plus at most about 8 s of backoff, with room for a slow host. */
const BOUND_MS = 120_000;
/** The link's speed while a run is watched: slow enough that the moment falls inside the transfer. */
const WATCHED_LINK = { kind: "throttle" as const, bytesPerSecond: 4 * 1024 * 1024 };

/** How the network goes away, for good. */
type Outage = "reset" | "stall" | "refused";

/** One target's fixture: a store pushed through the proxy, then changed, and the environment to restore with. */
interface Fixture {
  target: RemoteTarget;
  proxy: FaultProxy;
  store: ReturnType<typeof tempStore>;
  stamp: string;
  /** The repository through the proxy, with the identity and the short stall timeout. */
  env: Record<string, string>;
  /** The same repository through a port nothing listens on. */
  refusedEnv: Record<string, string>;
  /** Bytes a whole fetch of the snapshot moves through the proxy. */
  wireBytes: number;
  random: () => number;
  seed: number;
}

/** A port of 127.0.0.1 that nothing listens on now (taken, then given back). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Run `args` over a watched (throttled) link and take the network away for good once a seeded share of a whole fetch
 * has gone through (`refused`: from the start, through a closed port); the link is given back afterwards.
 */
async function runWithOutage(f: Fixture, args: string[], outage: Outage, trial: number) {
  const share = 0.1 + 0.6 * f.random();
  const when = outage === "refused" ? "from the start" : `after ${share.toFixed(2)} of it`;
  const label = trialLabel(f.seed, trial, `${f.target.label}: ${args[0]}, ${outage} ${when}`);
  if (outage === "refused") {
    const run = await runUntil(args, f.refusedEnv, () => false, () => {}, BOUND_MS);
    return { ...run, label };
  }
  f.proxy.setFault(WATCHED_LINK);
  const result = await runUntil(args, f.env, afterBytes(f.proxy, Math.round(f.wireBytes * share)), () => {
    f.proxy.setFault({ kind: outage === "reset" ? "cut" : "stall", afterBytes: 0 });
    if (outage === "reset") f.proxy.cutOpen();
    else f.proxy.stallOpen();
  }, BOUND_MS);
  f.proxy.setFault({ kind: "pass" });
  f.proxy.cutOpen(); // the stalled connections the CLI abandoned
  assert.ok(result.acted, `the run ended before the network went ${label}: ${result.run.stderr}`);
  return { ...result, label };
}

/** A run that failed as it must: by itself, exit 1, one line naming the repository and the next step. */
function assertFailedCleanly(result: ActedRun & { label: string }, location: RegExp): string {
  const { run, killed, label } = result;
  assert.ok(!killed, `still running after ${BOUND_MS / 1000} s ${label}`);
  assert.equal(run.code, 1, `${label}: ${run.stderr}`);
  const line = oneErrorLine(run, label);
  assert.match(line, location, `names no repository ${label}`);
  assert.match(line, /reachable/, `names no next step about the network ${label}`);
  assert.doesNotMatch(line, /pick another snapshot|remote verify/, `blames the snapshot ${label}`);
  return line;
}

/** Fetch scratch folders (`.atocore-fetch-*`, `.atocore-fetching-*`) in `folder`. */
function scratchIn(folder: string): string[] {
  return entryNames(folder).filter((name) => name.startsWith(".atocore-fetch"));
}

/** The live store's state: files by content, the ledger, the local snapshots. */
async function liveState(f: Fixture) {
  return {
    files: liveDigest(f.store),
    ledger: await ledgerState(f.store.db),
    snapshots: entryNames(join(f.store.backupDir, "snapshots")),
  };
}

/** Live restore, the network reset for good mid-download: exit 1, nothing live changed, no scratch left; then restored. */
async function liveRestore(f: Fixture, location: RegExp): Promise<string> {
  const before = await liveState(f);
  const args = ["restore", f.stamp, "--from-remote", "--confirm-service-stopped"];
  const failed = await runWithOutage(f, args, "reset", 0);
  const line = assertFailedCleanly(failed, location);
  assert.match(line, /packs\/|snapshots\//, `names no object ${failed.label}`);
  assert.deepEqual(await liveState(f), before, `live data changed by a failed restore ${failed.label}`);
  assert.deepEqual(scratchIn(dirname(f.store.db)), [], `a scratch copy left beside the database ${failed.label}`);
  const next = await runCli(args, { env: f.env });
  assert.equal(next.code, 0, `the restore with the network back failed ${failed.label}: ${next.stderr}`);
  const snapshot = join(f.store.backupDir, "snapshots", f.stamp);
  assert.deepEqual(
    await ledgerState(f.store.db),
    await ledgerState(join(snapshot, "db", "atocore.db"), { immutable: true }),
  );
  assert.deepEqual(treeDigest(f.store.chromaDir), treeDigest(join(snapshot, "chroma")), failed.label);
  assert.deepEqual(scratchIn(dirname(f.store.db)), [], failed.label);
  return line;
}

/** `restore --to DIR`, the network stalled for good mid-download: exit 1, no DIR, no scratch beside it; then restored. */
async function restoreTo(f: Fixture, location: RegExp): Promise<string> {
  using work = tempDir("atocore-to-");
  const to = join(work.path, "restored");
  const live = await liveState(f);
  const args = ["restore", f.stamp, "--from-remote", "--to", to];
  const failed = await runWithOutage(f, args, "stall", 1);
  const line = assertFailedCleanly(failed, location);
  assert.match(line, /no (answer|progress)|timed? ?out|2 s/i, `does not say it stalled ${failed.label}: ${line}`);
  assert.deepEqual(entryNames(work.path), [], `DIR or a scratch copy left beside it ${failed.label}`);
  assert.deepEqual(await liveState(f), live, `live data changed by a restore --to ${failed.label}`);
  const next = await runCli(args, { env: f.env });
  assert.equal(next.code, 0, `the restore --to with the network back failed ${failed.label}: ${next.stderr}`);
  assert.deepEqual(entryNames(work.path), ["restored"], failed.label);
  return line;
}

/**
 * `drill --from-remote` with the network reset mid-download (a failed drill: exit 1, its first check naming the cause),
 * then refused from the start (one error line, exit 1); then the drill passes.
 */
async function drill(f: Fixture, location: RegExp): Promise<string[]> {
  using scratch = tempDir("atocore-drill-scratch-");
  const live = await liveState(f);
  const args = ["drill", "--from-remote", f.stamp, "--scratch-dir", scratch.path];
  const reset = await runWithOutage(f, args, "reset", 2);
  assert.ok(!reset.killed, `still running after ${BOUND_MS / 1000} s ${reset.label}`);
  assert.equal(reset.run.code, 1, `${reset.label}: ${reset.run.stderr}`);
  const errors = (reset.run.json as { errors: string[] }).errors;
  assert.equal(errors.length, 1, reset.label);
  assert.match(errors[0], /^snapshot_valid: .*packs\//, reset.label);
  assert.match(errors[0], location, reset.label);
  assert.match(errors[0], /reachable/, `names no next step about the network ${reset.label}`);
  assert.doesNotMatch(errors[0], /pick another snapshot|remote verify|intact/, `blames the snapshot ${reset.label}`);
  assert.deepEqual(entryNames(scratch.path), [], `a scratch copy left ${reset.label}`);
  const refused = await runWithOutage(f, args, "refused", 3);
  const line = assertFailedCleanly(refused, location);
  assert.deepEqual(entryNames(scratch.path), [], refused.label);
  assert.deepEqual(await liveState(f), live, `a drill changed live data ${refused.label}`);
  const next = await runCli(args, { env: f.env });
  assert.equal(next.code, 0, `the drill with the network back failed: ${next.stdout}${next.stderr}`);
  assert.deepEqual(entryNames(scratch.path), []);
  return [errors[0], line];
}

/** A clean `restore --to` through the proxy: the bytes a whole fetch moves (the moments are spread over them). */
async function wholeFetch(proxy: FaultProxy, env: Record<string, string>, stamp: string): Promise<number> {
  using work = tempDir("atocore-to-");
  const before = proxy.stats.bytes;
  const run = await runCli(["restore", stamp, "--from-remote", "--to", join(work.path, "whole")], { env });
  assert.equal(run.code, 0, run.stderr);
  return proxy.stats.bytes - before;
}

async function pushedFixture(target: RemoteTarget, store: ReturnType<typeof tempStore>, keys: string) {
  const key = ageKeyPair(keys);
  const created = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  const proxy = startProxy(target.server!);
  const direct = target.fresh("outage");
  const base = { ...storeEnv(store), ATOCORE_BACKUP_STALL_TIMEOUT: SHORT_STALL };
  const env = {
    ...base,
    ...target.server!.through(direct, proxy.port),
    ...authKeyEnv(key),
    ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile,
  };
  const refusedEnv = { ...env, ...target.server!.through(direct, closedPort()) };
  for (const args of [["remote", "init", "--recipient", key.recipient], ["push", stamp]]) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
  }
  return { proxy, stamp, env, refusedEnv, wireBytes: await wholeFetch(proxy, env, stamp) };
}

for (const target of await networkTargets("restores through a network gone for good")) {
  Deno.test(`network gone for good (${target.label}): restore and drill from the repository end in one line`, async (t) => {
    await using _target = target;
    const seed = faultSeed();
    using store = tempStore({ dbMiB: 12, chromaMiB: 1, segments: 2, seed: 43 });
    using keys = tempDir("atocore-keys-");
    const pushed = await pushedFixture(target, store, keys.path);
    await using _proxy = pushed.proxy;
    await changeLive(store);
    const f: Fixture = { target, store, ...pushed, random: seededRandom(seed + 13 * target.label.length), seed };
    const location = target.label === "s3" ? /s3:\/\/targets\/outage/ : /sftp:\/\/[^ ]*outage/;
    const lines: string[] = [];
    await t.step("live restore, every connection reset mid-download", async () => {
      lines.push(await liveRestore(f, location));
    });
    await changeLive(store);
    await t.step("restore --to DIR, every connection stalled mid-download", async () => {
      lines.push(await restoreTo(f, location));
    });
    await t.step("drill --from-remote, reset mid-download, then refused", async () => {
      lines.push(...await drill(f, location));
    });
    for (const line of lines) console.log(`${target.label}, network gone: ${line} (seed ${seed})`);
  });
}
