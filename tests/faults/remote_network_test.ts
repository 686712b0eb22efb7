/**
 * The network cut, stalled and slowed between the CLI and a real sshd or radosgw, through the tests' own TCP proxy
 * (`tests/_proxy.ts`), and the server restarted in the middle of a push. Seeded (`FAULT_SEED`): where the cut or stall
 * falls and how many connections it takes. A push retries within its limits and succeeds, or fails in one line naming
 * the object and the cause with nothing listed; the next one reuses what was sent; `remote verify --read-data` is clean.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliRun, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { afterBytes, retries, runUntil } from "../_network.ts";
import { faultSeed, ledgerState, liveDigest, runAndSignal, seededRandom, treeDigest, trialLabel } from "../_faults.ts";
import { changeLive, putBack } from "../_live.ts";
import { type FaultProxy, startProxy } from "../_proxy.ts";
import { ageKeyPair, assertVerified, authKeyEnv, oneErrorLine, type PushedJson, remoteNames } from "../_remote_cli.ts";
import { backendOf, networkTargets, type RemoteTarget, type TargetServer } from "../_targets.ts";

/** The stall timeout the stall cases set: short, so that a stalled connection is given up within the test's time. */
const SHORT_STALL = "2s";

/** One target's fixture: a store with one snapshot, a key pair, and a proxy in front of the server. */
interface Fixture {
  target: RemoteTarget;
  server: TargetServer;
  proxy: FaultProxy;
  store: ReturnType<typeof tempStore>;
  stamp: string;
  keyFile: string;
  recipient: string;
  /** The environment that gives pushes the key's auth key. */
  authKey: Record<string, string>;
  random: () => number;
  seed: number;
}

/** A new repository reached through the proxy: the CLI's environment for it, and with the identity. */
async function freshRepository(f: Fixture, name: string, extra: Record<string, string> = {}) {
  const direct = f.target.fresh(name);
  const env = { ...storeEnv(f.store), ...f.server.through(direct, f.proxy.port), ...f.authKey, ...extra };
  f.proxy.setFault({ kind: "pass" });
  const init = await runCli(["remote", "init", "--recipient", f.recipient], { env });
  assert.equal(init.code, 0, init.stderr);
  return { env, withKey: { ...env, ATOCORE_BACKUP_IDENTITY_FILE: f.keyFile }, direct };
}

function pushed(run: CliRun): PushedJson {
  return (run.json as { pushed: PushedJson[] }).pushed[0];
}

/** A clean push through the proxy: the bytes a whole push moves on the wire, and what it sends. */
async function baseline(f: Fixture): Promise<{ wireBytes: number; sent: number }> {
  const { env, withKey } = await freshRepository(f, "baseline");
  const before = f.proxy.stats.bytes;
  const run = await runCli(["push", f.stamp], { env });
  const wireBytes = f.proxy.stats.bytes - before;
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(retries(run), [], "no retry on a clean link");
  await assertVerified(withKey, ["--read-data"], "baseline");
  return { wireBytes, sent: pushed(run).bytes_sent };
}

/** (a) Cut after N bytes on the first K connections: retried within the limits, the push succeeds and verifies. */
async function cutSomeConnections(f: Fixture, trial: number): Promise<void> {
  const { env, withKey } = await freshRepository(f, `cut-some-${trial}`);
  const connections = 1 + Math.floor(f.random() * 3);
  const afterBytes = 32 * 1024 + Math.floor(f.random() * 2 * 1024 * 1024);
  const label = trialLabel(f.seed, trial, `${f.target.label}: cut after ${afterBytes} bytes on ${connections}`);
  f.proxy.setFault({ kind: "cut", afterBytes }, connections);
  const faultedBefore = f.proxy.stats.faulted;
  const run = await runCli(["push", f.stamp], { env });
  f.proxy.setFault({ kind: "pass" });
  assert.equal(run.code, 0, `push failed ${label}: ${run.stderr}`);
  assert.equal(f.proxy.stats.faulted - faultedBefore, connections, label);
  // over S3 the HTTP client may itself send a request again when a reused connection breaks, unseen by the tool
  if (f.target.label !== "s3") assert.ok(retries(run).length >= 1, `no remote_retry warning ${label}: ${run.stderr}`);
  assert.equal((await remoteNames(env)).length, 1, label);
  await assertVerified(withKey, ["--read-data"], label);
}

/**
 * (b) Every connection cut once the first pack is stored (over a 4 MiB/s link), and a seeded moment later: the push fails in one line naming
 * the object and the cause (exit 1), nothing is listed, and the next push (the link back) sends less than a whole push.
 */
async function cutEveryConnection(f: Fixture, whole: { sent: number }): Promise<void> {
  const { env, withKey, direct } = await freshRepository(f, "cut-all");
  const delayMs = Math.floor(f.random() * 150);
  const label = trialLabel(f.seed, 0, `${f.target.label}: every connection cut ${delayMs} ms after the first pack`);
  const storage = backendOf(direct);
  f.proxy.setFault({ kind: "throttle", bytesPerSecond: 4 * 1024 * 1024 }); // so that packs are still on their way
  const { run, acted } = await runUntil(["push", f.stamp], env, async () => {
    return (await storage.list("packs/")).length > 0;
  }, async () => {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    f.proxy.setFault({ kind: "cut", afterBytes: 0 });
    f.proxy.cutOpen();
  });
  f.proxy.setFault({ kind: "pass" });
  assert.ok(acted, `the push ended before the cut ${label}`);
  assert.equal(run.code, 1, `${label}: ${run.stderr}`);
  const line = oneErrorLine(run, label);
  assert.match(line, /(packs|snapshots|refs|index|locks|leases|config)\/?[0-9a-z_-]*/, `names no object ${label}`);
  assert.match(line, /after \d+ attempts/, `says nothing of the attempts ${label}`);
  assert.match(
    line,
    /; \d{8}T\d{6}Z is not listed, and the \d+ new packs? sent (is|are) kept for the next push to reuse$/,
    label,
  );
  console.log(`${f.target.label}, every connection cut: ${line}`);
  assert.deepEqual(await remoteNames(env), [], `listed after a failed push ${label}`);
  await assertVerified(env, [], label);
  const next = await runCli(["push", f.stamp], { env });
  assert.equal(next.code, 0, `the next push failed ${label}: ${next.stderr}`);
  assert.ok(pushed(next).bytes_sent < whole.sent, `nothing reused ${label}: ${pushed(next).bytes_sent}`);
  await assertVerified(withKey, ["--read-data"], label);
}

/** (f) Every connection cut, and SIGTERM once the first retry is warned of: the retries stop, exit 143, nothing listed. */
async function signalWhileRetrying(f: Fixture): Promise<void> {
  const { env } = await freshRepository(f, "signal-retrying");
  f.proxy.setFault({ kind: "cut", afterBytes: 0 });
  const run = await runAndSignal(["push", f.stamp], env, "SIGTERM", 0, { afterEvent: "remote_retry" });
  f.proxy.setFault({ kind: "pass" });
  assert.ok(run.sent, `the push ended before the signal: ${run.stderr}`);
  assert.equal(run.code, 143, run.stderr);
  assert.match(run.stderr, /interrupted by SIGTERM/);
  assert.ok(run.stderr.split('"event":"remote_retry"').length - 1 < 5, "the retries went on after the signal");
  assert.deepEqual(await remoteNames(env), []);
}

/** (c) One connection stalled past the (short) stall timeout: dropped, retried on a new one, warned about. */
async function stallOneConnection(f: Fixture): Promise<void> {
  const { env, withKey } = await freshRepository(f, "stall", { ATOCORE_BACKUP_STALL_TIMEOUT: SHORT_STALL });
  // S3 gives an upload its time at 256 KiB/s on top of the stall timeout (fetch shows no upload progress): the stall
  // falls in the first exchanges there, before any pack; over SFTP anywhere in the first 4 MiB
  const afterBytes = f.target.label === "s3"
    ? 200 + Math.floor(f.random() * 1500)
    : 16 * 1024 + Math.floor(f.random() * 4 * 1024 * 1024);
  const label = trialLabel(f.seed, 0, `${f.target.label}: stall after ${afterBytes} bytes`);
  f.proxy.setFault({ kind: "stall", afterBytes }, 1);
  const run = await runCli(["push", f.stamp], { env });
  f.proxy.setFault({ kind: "pass" });
  f.proxy.cutOpen(); // the stalled connection, which the CLI abandoned
  assert.equal(run.code, 0, `push failed ${label}: ${run.stderr}`);
  const warned = retries(run);
  assert.ok(warned.length >= 1, `no remote_retry warning ${label}: ${run.stderr}`);
  assert.match(warned[0], /no (answer|progress)|2 s/, `the warning does not say it stalled ${label}: ${warned[0]}`);
  await assertVerified(withKey, ["--read-data"], label);
}

/**
 * (e) Every connection closed by the other side soon after its login, the stall timeout long: `remote list` fails in
 * one line after its attempts, none of which waited for the stall timeout (a closed connection fails its requests).
 */
async function closedEarly(f: Fixture): Promise<void> {
  const { env } = await freshRepository(f, "closed", { ATOCORE_BACKUP_STALL_TIMEOUT: "10m" });
  f.proxy.setFault({ kind: "cut", afterBytes: 5000 });
  const run = await runCli(["remote", "list"], { env });
  f.proxy.setFault({ kind: "pass" });
  assert.notEqual(run.code, 0, run.stderr);
  oneErrorLine(run, `${f.target.label}: connections closed early`);
  for (const warning of retries(run)) assert.doesNotMatch(warning, /600 s|10 min/, `waited out the stall timeout`);
  assert.doesNotMatch(run.stderr, /600 s|10 min/);
}

/** (d) A 2 MiB/s link, the stall timeout at 10 s: the push completes without a timeout or a retry. */
async function slowLink(f: Fixture): Promise<void> {
  const { env, withKey } = await freshRepository(f, "slow", { ATOCORE_BACKUP_STALL_TIMEOUT: "10s" });
  f.proxy.setFault({ kind: "throttle", bytesPerSecond: 2 * 1024 * 1024 });
  const run = await runCli(["push", f.stamp], { env });
  f.proxy.setFault({ kind: "pass" });
  assert.equal(run.code, 0, `push over a slow link failed (${f.target.label}): ${run.stderr}`);
  assert.deepEqual(retries(run), [], `a spurious timeout on a slow link (${f.target.label})`);
  await assertVerified(withKey, ["--read-data"], `slow link (${f.target.label})`);
}

/**
 * `restore --from-remote` with the download cut after N bytes on the first K connections, then stalled once: each
 * restores exactly (retried) or fails in one line with nothing live changed.
 */
async function restoreThroughFaults(f: Fixture, env: Record<string, string>): Promise<string[]> {
  const outcomes: string[] = [];
  using saved = tempDir("atocore-saved-");
  const snapshot = join(f.store.backupDir, "snapshots", f.stamp);
  const expected = { ledger: await ledgerState(f.store.db), chroma: treeDigest(join(snapshot, "chroma")) };
  const registry = Deno.readTextFileSync(f.store.registry); // the live store is as the snapshot took it
  await changeLive(f.store);
  const copy = new Deno.Command("cp", { args: ["-a", f.store.db, f.store.registry, f.store.chromaDir, saved.path] });
  assert.equal(copy.outputSync().code, 0);
  const faults = [
    { kind: "cut" as const, afterBytes: 64 * 1024 + Math.floor(f.random() * 4 * 1024 * 1024) },
    { kind: "stall" as const, afterBytes: 64 * 1024 + Math.floor(f.random() * 4 * 1024 * 1024) },
  ];
  for (const [trial, fault] of faults.entries()) {
    const connections = fault.kind === "stall" ? 1 : 1 + Math.floor(f.random() * 3);
    const label = trialLabel(f.seed, trial, `${f.target.label}: ${fault.kind} after ${fault.afterBytes} bytes`);
    const live = liveDigest(f.store);
    f.proxy.setFault(fault, connections);
    const args = ["restore", f.stamp, "--from-remote", "--confirm-service-stopped", "--no-pre-snapshot"];
    const run = await runCli(args, { env: { ...env, ATOCORE_BACKUP_STALL_TIMEOUT: SHORT_STALL } });
    f.proxy.setFault({ kind: "pass" });
    f.proxy.cutOpen();
    if (run.code !== 0) {
      outcomes.push(`${fault.kind}: failed (${oneErrorLine(run, label)})`);
      assert.deepEqual(liveDigest(f.store), live, `live data changed by a failed restore ${label}`);
    } else {
      assert.deepEqual(await ledgerState(f.store.db), expected.ledger, `not restored ${label}`);
      assert.equal(Deno.readTextFileSync(f.store.registry), registry, `registry not restored ${label}`);
      assert.deepEqual(treeDigest(f.store.chromaDir), expected.chroma, `Chroma not restored ${label}`);
      assert.ok(retries(run).length >= 1, `no remote_retry warning ${label}: ${run.stderr}`);
      outcomes.push(`${fault.kind}: restored after ${retries(run).length} retries`);
    }
    putBack(saved.path, f.store);
  }
  return outcomes;
}

/**
 * The server stopped at a seeded point of a push and started again a seeded moment later (sshd with its sessions;
 * radosgw's gateway): the push completes through its retries or fails in one line; nothing is half listed; the next
 * push succeeds and `remote verify --read-data` is clean.
 */
async function serverRestarted(f: Fixture, whole: { wireBytes: number }): Promise<string> {
  const { env, withKey } = await freshRepository(f, "restart");
  const at = Math.round(whole.wireBytes * (0.2 + 0.6 * f.random()));
  const downMs = Math.round(200 + f.random() * 1500);
  const label = trialLabel(f.seed, 0, `${f.target.label}: stopped at byte ${at}, for ${downMs} ms`);
  const { run, acted } = await runUntil(["push", f.stamp], env, afterBytes(f.proxy, at), async () => {
    await f.server.stop();
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await f.server.start();
  });
  assert.ok(acted, `the push ended before the server stopped ${label}`);
  if (run.code !== 0) {
    assert.equal(run.code, 1, `${label}: ${run.stderr}`);
    oneErrorLine(run, label);
  }
  const listed = await remoteNames(env);
  assert.ok(listed.length <= 1, label);
  await assertVerified(env, [], `after the restart ${label}`);
  const next = await runCli(["push", f.stamp], { env });
  assert.equal(next.code, 0, `the push after the restart failed ${label}: ${next.stderr}`);
  assert.equal((await remoteNames(env)).length, 1, label);
  await assertVerified(withKey, ["--read-data"], label);
  return run.code === 0 ? `completed after ${retries(run).length} retries` : "failed cleanly";
}

for (const target of await networkTargets("network faults through a proxy")) {
  Deno.test(`network faults (${target.label}): cut, stalled, slowed and restarted mid-transfer`, async (t) => {
    await using _target = target;
    const seed = faultSeed();
    using store = tempStore({ dbMiB: 12, chromaMiB: 1, segments: 2, seed: 41 });
    using keys = tempDir("atocore-keys-");
    const key = ageKeyPair(keys.path);
    const created = await runCli(["create", "--chroma"], { env: storeEnv(store) });
    assert.equal(created.code, 0, created.stderr);
    const server = target.server!;
    await using proxy = startProxy(server);
    const f: Fixture = {
      target,
      server,
      proxy,
      store,
      stamp: (created.json as { stamp: string }).stamp,
      keyFile: key.keyFile,
      recipient: key.recipient,
      authKey: authKeyEnv(key),
      random: seededRandom(seed + target.label.length),
      seed,
    };
    const whole = await baseline(f);
    for (let trial = 0; trial < 3; trial++) {
      await t.step(`cut after N bytes on the first K connections (${trial})`, () => cutSomeConnections(f, trial));
    }
    await t.step(
      "every connection cut: one line, nothing listed, the next push reuses",
      () => cutEveryConnection(f, whole),
    );
    await t.step("a stall past the stall timeout: retried and warned about", () => stallOneConnection(f));
    await t.step("a 2 MiB/s link: no spurious timeout", () => slowLink(f));
    await t.step("SIGTERM while retrying: the retries stop, exit 143", () => signalWhileRetrying(f));
    if (target.label === "sftp") { // over S3 a request fits in what the proxy lets through: it passes
      await t.step(
        "every connection closed after login: each attempt fails when it closes, not at the stall timeout",
        () => closedEarly(f),
      );
    }
    await t.step("restore --from-remote with the download cut, then stalled", async () => {
      const { env, withKey } = await freshRepository(f, "restore");
      assert.equal((await runCli(["push", f.stamp], { env })).code, 0);
      console.log(`${target.label} restore --from-remote: ${(await restoreThroughFaults(f, withKey)).join("; ")}`);
    });
    await t.step("the server restarted during a push", async () => {
      console.log(`${target.label} restarted mid-push: ${await serverRestarted(f, whole)} (seed ${seed})`);
    });
  });
}
