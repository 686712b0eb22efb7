/**
 * A throttling S3 server (503 SlowDown, 429), an upload that stalls in the middle of its body and one changed on its
 * way, through the tests' HTTP fault proxy (`tests/_http_proxy.ts`) in front of a real radosgw (which has no rate
 * limiter of its own). Seeded (`FAULT_SEED`): how many requests of each kind are throttled, where the body stalls,
 * which byte changes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, cliRunOf, runCli, tempDir } from "../_helpers.ts";
import { faultSeed, ledgerState, liveDigest, seededRandom, treeDigest, trialLabel } from "../_faults.ts";
import { type HttpRule, s3Kind, type SeenRequest } from "../_http_proxy.ts";
import { retries, runUntil } from "../_network.ts";
import { assertVerified, oneErrorLine, remoteNames } from "../_remote_cli.ts";
import { freshProxiedRepository, type ProxiedS3, proxiedS3 } from "../_proxied_s3.ts";
import { s3Target } from "../_targets.ts";

/** The stall timeout of these runs: short, so that a stalled upload is given up within the test's time. */
const SHORT_STALL_MS = 2000;
/** The slowest upload the S3 client accepts (`src/repo/s3/transport.ts`): a body's allowance on top of the timeout. */
const UPLOAD_BYTES_PER_SECOND = 256 * 1024;
/** The most a run may take: a stalled 8 MiB pack's allowance (34 s), the retries' backoff, room for a slow host. */
const BOUND_MS = 180_000;

/** The fixture: a store with one snapshot, a key, the proxy in front of radosgw. */
interface Fixture extends ProxiedS3 {
  random: () => number;
  seed: number;
}

/** A rule: the next `times` requests of `kind` answered `status` with the S3 error `code`. */
function throttle(kind: ReturnType<typeof s3Kind> | "any", status: number, code: string, times: number): HttpRule {
  return {
    match: (request) => kind === "any" || s3Kind(request) === kind,
    fault: { kind: "answer", status, code, retryAfterSeconds: status === 503 ? 1 : undefined },
    times,
  };
}

/** A new repository reached through the proxy (made with every request passed): its environment, with the identity. */
function freshRepository(f: Fixture, name: string) {
  return freshProxiedRepository(f, name, { ATOCORE_BACKUP_STALL_TIMEOUT: `${SHORT_STALL_MS / 1000}s` });
}

/** Run the CLI under `rules`, killed at the bound (asserted not to have been needed); the rules cleared after. */
async function runThrottled(f: Fixture, args: string[], env: Record<string, string>, rules: HttpRule[], label: string) {
  const answeredBefore = f.proxy.stats.answered;
  f.proxy.setRules(rules);
  const { run, killed } = await runUntil(args, env, () => false, () => {}, BOUND_MS);
  f.proxy.setRules([]);
  f.proxy.cutOpen(); // connections a stalled request left
  assert.ok(!killed, `still running after ${BOUND_MS / 1000} s ${label}`);
  return { run, answered: f.proxy.stats.answered - answeredBefore };
}

/** A push with the first K pack PUTs answered 503 SlowDown: retried, one warning each, pushed whole. */
async function pushThrottled(f: Fixture): Promise<string> {
  const { env, withKey } = await freshRepository(f, "slow-push");
  const times = 1 + Math.floor(f.random() * 4);
  const label = trialLabel(f.seed, 0, `the first ${times} pack PUTs answered 503 SlowDown`);
  const { run, answered } = await runThrottled(f, ["push", f.stamp], env, [
    throttle("pack-put", 503, "SlowDown", times),
  ], label);
  assert.equal(run.code, 0, `${label}: ${run.stderr}`);
  assert.equal(answered, times, `the throttled requests ${label}`);
  const warned = retries(run);
  assert.equal(warned.length, times, `one remote_retry warning per throttled request ${label}: ${run.stderr}`);
  for (const line of warned) assert.match(line, /packs\/.*HTTP 503 \(SlowDown/, label);
  const waits = warned.map((line) => JSON.parse(line).wait_ms as number);
  assert.ok(waits.every((ms) => ms >= 1000), `each wait follows Retry-After: 1 ${label}: ${waits}`);
  assert.equal((await remoteNames(env)).length, 1, label);
  await assertVerified(withKey, ["--read-data"], label);
  return `push: ${times} pack PUTs throttled, ${warned.length} retries`;
}

/** `restore --to` with the first K listings answered 429 and the first K pack GETs 503: retried, restored exactly. */
async function restoreThrottled(f: Fixture): Promise<string> {
  const { env, withKey } = await freshRepository(f, "slow-restore");
  assert.equal((await runCli(["push", f.stamp], { env })).code, 0);
  using work = tempDir("atocore-to-");
  const lists = 1 + Math.floor(f.random() * 2);
  const gets = 1 + Math.floor(f.random() * 4);
  const label = trialLabel(f.seed, 1, `the first ${lists} listings answered 429, the first ${gets} pack GETs 503`);
  const rules = [throttle("list", 429, "TooManyRequests", lists), throttle("pack-get", 503, "SlowDown", gets)];
  const to = join(work.path, "restored");
  const { run, answered } = await runThrottled(
    f,
    ["restore", f.stamp, "--from-remote", "--to", to],
    withKey,
    rules,
    label,
  );
  assert.equal(run.code, 0, `${label}: ${run.stderr}`);
  assert.equal(answered, lists + gets, `the throttled requests ${label}`);
  const warned = retries(run);
  assert.equal(warned.length, lists + gets, `one remote_retry warning per throttled request ${label}: ${run.stderr}`);
  assert.equal(warned.filter((line) => /HTTP 429/.test(line)).length, lists, label);
  const snapshot = join(f.store.backupDir, "snapshots", f.stamp);
  const fromSnapshot = await ledgerState(join(snapshot, "db", "atocore.db"), { immutable: true });
  assert.deepEqual(await ledgerState(join(to, "atocore.db")), fromSnapshot, label);
  assert.deepEqual(treeDigest(join(to, "chroma")), treeDigest(join(snapshot, "chroma")), label);
  await assertVerified(withKey, ["--read-data"], label);
  return `restore --to: ${lists} listings and ${gets} pack GETs throttled, restored`;
}

/**
 * Every request answered 503 beyond the retry limit once the first pack PUTs have passed: the push fails in one line
 * (exit 1) and lists nothing; a restore whose pack GETs are all throttled fails in one line with nothing live changed;
 * both succeed once the server answers.
 */
async function throttledForGood(f: Fixture): Promise<string[]> {
  const { env, withKey } = await freshRepository(f, "slow-always");
  const passed = 1 + Math.floor(f.random() * 2);
  const label = trialLabel(f.seed, 2, `every request answered 503 SlowDown after ${passed} pack PUTs`);
  let puts = 0;
  const afterPacks: HttpRule = {
    ...throttle("any", 503, "SlowDown", Infinity),
    match: (request) => (puts += s3Kind(request) === "pack-put" ? 1 : 0) > passed,
  };
  const push = await runThrottled(f, ["push", f.stamp], env, [afterPacks], label);
  assert.equal(push.run.code, 1, `${label}: ${push.run.stderr}`);
  const pushLine = oneErrorLine(push.run, label);
  assert.match(
    pushLine,
    /S3 [A-Z]+ .* in s3:\/\/targets\/slow-always .*HTTP 503 \(SlowDown.*\(after 6 attempts\)/,
    label,
  );
  assert.ok(push.answered >= 6, `${push.answered} requests answered ${label}`);
  assert.deepEqual(await remoteNames(env), [], `listed after a failed push ${label}`);
  await assertVerified(env, [], label);
  assert.equal((await runCli(["push", f.stamp], { env })).code, 0, `the push once the server answers ${label}`);

  const live = liveDigest(f.store);
  const args = ["restore", f.stamp, "--from-remote", "--confirm-service-stopped", "--no-pre-snapshot"];
  const getLabel = trialLabel(f.seed, 3, "every pack GET answered 503 SlowDown");
  const restore = await runThrottled(f, args, withKey, [throttle("pack-get", 503, "SlowDown", Infinity)], getLabel);
  assert.equal(restore.run.code, 1, `${getLabel}: ${restore.run.stderr}`);
  const restoreLine = oneErrorLine(restore.run, getLabel);
  assert.match(restoreLine, /S3 GET packs\/.*HTTP 503 \(SlowDown.*\(after 6 attempts\).*nothing was changed/, getLabel);
  assert.deepEqual(liveDigest(f.store), live, `live data changed by a failed restore ${getLabel}`);
  const next = await runCli(args, { env: withKey });
  assert.equal(next.code, 0, `the restore once the server answers ${getLabel}: ${next.stderr}`);
  await assertVerified(withKey, ["--read-data"], label);
  return [pushLine, restoreLine];
}

/**
 * A pack PUT stalled in the middle of its body: the S3 client cannot see upload progress, so the request is given up
 * after the stall timeout plus the body's allowance at 256 KiB/s (the warning says how long), sent again, and the push
 * completes and verifies.
 */
async function uploadStalled(f: Fixture): Promise<string> {
  const { env, withKey } = await freshRepository(f, "stalled-upload");
  const afterBytes = 16 * 1024 + Math.floor(f.random() * 1024 * 1024);
  const label = trialLabel(f.seed, 4, `a pack PUT stalled after ${afterBytes} bytes of its body`);
  const seenBefore = f.proxy.stats.seen.length;
  const rules: HttpRule[] = [{
    match: (r) => s3Kind(r) === "pack-put",
    fault: { kind: "stall-body", afterBytes },
    times: 1,
  }];
  const { run } = await runThrottled(f, ["push", f.stamp], env, rules, label);
  assert.equal(run.code, 0, `${label}: ${run.stderr}`);
  assert.equal(f.proxy.stats.stalled, 1, label);
  const stalled = f.proxy.stats.seen.slice(seenBefore).find((request: SeenRequest) => s3Kind(request) === "pack-put")!;
  const allowedMs = SHORT_STALL_MS + Math.ceil((stalled.bodyBytes / UPLOAD_BYTES_PER_SECOND) * 1000);
  const warned = retries(run);
  assert.equal(warned.length, 1, `${label}: ${run.stderr}`);
  assert.ok(warned[0].includes(`no progress in ${allowedMs / 1000} s`), `${label}: ${warned[0]}`);
  assert.equal((await remoteNames(env)).length, 1, label);
  await assertVerified(withKey, ["--read-data"], label);
  return `a ${stalled.bodyBytes}-byte pack PUT stalled: given up after ${allowedMs / 1000} s, sent again`;
}

/**
 * A pack PUT whose body has one byte changed on the way: the server checks the bytes against the signed SHA-256
 * (`x-amz-content-sha256`, the only digest sent) and refuses them; the push sends the pack again, warns once, and
 * the repository verifies.
 */
async function bodyChanged(f: Fixture): Promise<string> {
  const { env, withKey } = await freshRepository(f, "changed-body");
  const at = Math.floor(f.random() * 4 * 1024 * 1024);
  const label = trialLabel(f.seed, 5, `byte ${at} of a pack PUT's body changed in transit`);
  const [flippedBefore, seenBefore] = [f.proxy.stats.flipped, f.proxy.stats.seen.length];
  const rules: HttpRule[] = [{ match: (r) => s3Kind(r) === "pack-put", fault: { kind: "flip-body", at }, times: 1 }];
  const { run } = await runThrottled(f, ["push", f.stamp], env, rules, label);
  assert.equal(run.code, 0, `${label}: ${run.stderr}`);
  assert.equal(f.proxy.stats.flipped - flippedBefore, 1, label);
  const warned = retries(run);
  assert.equal(warned.length, 1, `${label}: ${run.stderr}`);
  assert.match(warned[0], /packs\/.*HTTP 400 \(XAmzContentSHA256Mismatch/, label);
  const packPuts = f.proxy.stats.seen.slice(seenBefore).filter((request) => s3Kind(request) === "pack-put");
  for (const put of packPuts) {
    assert.equal(put.contentSha256, put.path.split("/").at(-1), `a pack PUT signs its own id ${label}`);
    assert.equal(put.contentMd5, null, `no Content-MD5 ${label}`);
  }
  assert.equal((await remoteNames(env)).length, 1, label);
  await assertVerified(withKey, ["--read-data"], label);
  return `byte ${at} of a pack PUT changed in transit: refused by the server, sent again`;
}

/**
 * A pack PUT answered 200 OK by a store that keeps nothing (the proxy swallows it): the push lists the packs back
 * before it writes the refs, fails in one line naming the pack, and lists nothing; the next push stores it and verifies.
 */
async function putSwallowed(f: Fixture): Promise<string> {
  const { env, withKey } = await freshRepository(f, "swallowed-put");
  const skip = Math.floor(f.random() * 2);
  const label = trialLabel(f.seed, 6, `pack PUT ${skip + 1} answered 200 and not stored`);
  let puts = 0;
  const rules: HttpRule[] = [{
    match: (r) => s3Kind(r) === "pack-put" && puts++ === skip,
    fault: { kind: "swallow" },
    times: 1,
  }];
  const { run, answered } = await runThrottled(f, ["push", f.stamp], env, rules, label);
  assert.equal(answered, 1, label);
  assert.equal(run.code, 1, `${label}: ${run.stderr}`);
  const line = oneErrorLine(run, label);
  assert.match(
    line,
    /packs\/[0-9a-f]{2}\/[0-9a-f]+ was acknowledged by s3:.* but is not there when listed back/,
    label,
  );
  const snapshotRule: HttpRule = {
    match: (r) => r.method === "PUT" && r.path.includes("/snapshots/"),
    fault: { kind: "swallow" },
    times: 1,
  };
  const lost = await runThrottled(f, ["push", f.stamp], env, [snapshotRule], `${label}, then the snapshot object`);
  assert.equal(lost.run.code, 1, lost.run.stderr);
  assert.match(oneErrorLine(lost.run, label), /snapshots\/\S+ was acknowledged .*removed again: nothing is listed\)/);
  assert.deepEqual(await remoteNames(env), [], `listed without its object ${label}`);
  assert.match(
    line,
    /the next push sends it again\); check the server .* and push again; \d+T\d+Z is not listed/,
    label,
  );
  assert.deepEqual(await remoteNames(env), [], `listed with a pack missing ${label}`);
  const next = await runCli(["push", f.stamp], { env });
  assert.equal(next.code, 0, `the next push ${label}: ${next.stderr}`);
  assert.equal((await remoteNames(env)).length, 1, label);
  await assertVerified(withKey, ["--read-data"], label);
  return `pack PUT ${skip + 1} acknowledged and not stored: refused before listing, the next push whole`;
}

/**
 * The snapshot object's PUT stored by the server and its answer lost (the connection cut): sent again, it finds its own
 * bytes there, and the push succeeds with its snapshot listed.
 */
async function answerLost(f: Fixture): Promise<string> {
  const { env, withKey } = await freshRepository(f, "answer-lost");
  const label = trialLabel(f.seed, 7, "the snapshot object's PUT stored, its answer lost");
  const rules: HttpRule[] = [{
    match: (r) => r.method === "PUT" && r.path.includes("/snapshots/"),
    fault: { kind: "store-then-cut" },
    times: 1,
  }];
  const { run, answered } = await runThrottled(f, ["push", f.stamp], env, rules, label);
  assert.equal(answered, 1, label);
  assert.equal(run.code, 0, `${label}: ${run.stderr}`);
  assert.equal((await remoteNames(env)).length, 1, label);
  await assertVerified(withKey, ["--read-data"], label);
  return "the snapshot object's PUT stored and its answer lost: found as written, the push listed it";
}

/**
 * SIGTERM while a pack's upload is stalled: the upload is given up at once, and the lease is still removed on the way
 * out (the stop aborts requests in flight, not the tidying after it); the message says so.
 */
async function stoppedMidUpload(f: Fixture): Promise<string> {
  const { env } = await freshRepository(f, "stopped-upload");
  const label = trialLabel(f.seed, 8, "SIGTERM while a pack PUT is stalled");
  const [stalledBefore, seenBefore] = [f.proxy.stats.stalled, f.proxy.stats.seen.length];
  f.proxy.setRules([{
    match: (r) => s3Kind(r) === "pack-put",
    fault: { kind: "stall-body", afterBytes: 4096 },
    times: 1,
  }]);
  const child = cliProcess(["push", f.stamp], { env }).spawn();
  const output = child.output();
  for (let waited = 0; f.proxy.stats.stalled === stalledBefore && waited < 60_000; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  child.kill("SIGTERM");
  const run = cliRunOf(await output);
  f.proxy.setRules([]);
  f.proxy.cutOpen();
  assert.equal(run.code, 143, `${label}: ${run.stderr}`);
  assert.match(oneErrorLine(run, label), /is not listed and its lease is removed; /, label);
  const leases = f.proxy.stats.seen.slice(seenBefore).filter((r) =>
    r.method === "DELETE" && r.path.includes("/leases/")
  );
  assert.equal(leases.length, 1, `the lease's DELETE ${label}`);
  assert.deepEqual(await remoteNames(env), [], label);
  return "SIGTERM during a stalled pack PUT: exit 143, the lease removed";
}

const target = await s3Target("S3 throttling and a stalled upload through the tests' HTTP proxy");
if (target !== null) {
  Deno.test("S3 throttling, a stalled upload, a body changed: retried within bounds, or one line", async (t) => {
    await using _target = target;
    const seed = faultSeed();
    await using fixture = await proxiedS3(target, { dbMiB: 12, chromaMiB: 1, segments: 2, seed: 47 });
    const f: Fixture = Object.assign(fixture, { random: seededRandom(seed + 503), seed });
    const outcomes: string[] = [];
    await t.step("a push with the first pack PUTs answered 503 SlowDown", async () => {
      outcomes.push(await pushThrottled(f));
    });
    await t.step("a restore with listings answered 429 and pack GETs 503", async () => {
      outcomes.push(await restoreThrottled(f));
    });
    await t.step("every request answered 503: one line, nothing listed, nothing live changed", async () => {
      outcomes.push(...await throttledForGood(f));
    });
    await t.step("a pack PUT stalled mid-body: given up after its allowance, sent again", async () => {
      outcomes.push(await uploadStalled(f));
    });
    await t.step("a pack PUT changed in transit: refused by the server, sent again", async () => {
      outcomes.push(await bodyChanged(f));
    });
    await t.step("a pack PUT acknowledged and not stored: refused before anything is listed", async () => {
      outcomes.push(await putSwallowed(f));
    });
    await t.step("the snapshot object stored and its answer lost: the push finds its own object", async () => {
      outcomes.push(await answerLost(f));
    });
    await t.step("SIGTERM during a stalled upload: the lease is still removed", async () => {
      outcomes.push(await stoppedMidUpload(f));
    });
    for (const outcome of outcomes) console.log(`s3 throttled: ${outcome} (seed ${seed})`);
  });
}
