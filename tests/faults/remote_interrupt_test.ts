/**
 * Ctrl-C (SIGINT) and SIGTERM sent to the CLI at seeded moments of `push`, `create --push`, `remote cleanup`,
 * `restore --from-remote` and `drill --from-remote`: each stops at a safe point with exit 130 or 143 and one line saying
 * it was interrupted and what the next run does (or, signalled too late, finishes); nothing half is listed, no lease
 * remains, `remote verify --read-data` is clean, live data is untouched, and the next run succeeds reusing what was sent.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { relocateSnapshot, runCli } from "../_helpers.ts";
import {
  entryNames,
  faultSeed,
  liveDigest,
  runAndSignal,
  seededRandom,
  type SignalledRun,
  trialLabel,
} from "../_faults.ts";
import {
  ageMarkers,
  assertVerified,
  linkCopy,
  oneErrorLine,
  remoteNames,
  remoteStore,
  snapshotSeries,
  timeEvent,
} from "../_remote_cli.ts";

const CODES = { SIGINT: 130, SIGTERM: 143 } as const;

function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** The signal of trial `trial`: SIGINT and SIGTERM in turn. */
function signalOf(trial: number): "SIGINT" | "SIGTERM" {
  return trial % 2 === 0 ? "SIGINT" : "SIGTERM";
}

/** Check a run that was signalled: it finished (exit 0) or stopped with the signal's code and one line saying so. */
function stoppedOrFinished(run: SignalledRun, signal: "SIGINT" | "SIGTERM", what: string, label: string): boolean {
  if (run.code === 0 || run.killed) return false; // killed: the signal came once the work was done (checked after)
  assert.equal(run.code, CODES[signal], `${what} ${label}: ${run.stderr}`);
  const line = oneErrorLine({ code: run.code, stdout: "", stderr: run.stderr, json: undefined }, `${what} ${label}`);
  assert.match(line, new RegExp(`interrupted by ${signal}: `), label);
  return true;
}

Deno.test("push stopped by SIGINT or SIGTERM lists nothing half, keeps no lease, and the next push reuses what it sent", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed);
  using r = await remoteStore({ dbMiB: 12, chromaMiB: 2, segments: 2, seed: 41 });
  const created = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const snapshots = join(r.store.backupDir, "snapshots");
  const master = join(snapshots, (created.json as { stamp: string }).stamp);
  const remotes = join(r.store.backupDir, "remotes");
  const { afterEvent: pushMs } = await timeEvent(["push", "--latest"], r.env, "push_started");
  const outcomes: string[] = [];
  for (let trial = 0; trial < 8; trial++) {
    const stamp = `202602${String(trial + 1).padStart(2, "0")}T010000Z`;
    assert.equal(new Deno.Command("cp", { args: ["-al", master, join(snapshots, stamp)] }).outputSync().code, 0);
    relocateSnapshot(join(snapshots, stamp));
    for (const key of entryNames(remotes)) Deno.removeSync(join(remotes, key, "push-cache"), { recursive: true });
    const signal = signalOf(trial);
    const delay = Math.round(random() * pushMs);
    const label = trialLabel(seed, trial, `${signal} ${delay} ms after push_started`);
    const run = await runAndSignal(["push", stamp], r.env, signal, delay, { afterEvent: "push_started" });
    const stopped = stoppedOrFinished(run, signal, "push", label);
    assert.deepEqual(entryNames(join(r.repoDir, "leases")), [], `a lease remains ${label}`);
    const listed = (await remoteNames(r.env)).filter((name) => name.startsWith(`${stamp}_`));
    assert.equal(listed.length, stopped ? 0 : 1, `listed ${listed.length} times ${label}`);
    await assertVerified(r.env, [], `after the signal ${label}`);
    const sent = stopped ? Number(/the (\d+) new packs? sent (?:is|are) kept/.exec(run.stderr)?.[1] ?? NaN) : 0;
    assert.ok(!stopped || sent >= 0, `no count of packs sent ${label}: ${run.stderr}`);
    if (stopped) assert.match(run.stderr, /is not listed( and its lease is removed)?; .* push again, it reuses them/);
    outcomes.push(stopped ? `stopped (${sent} packs sent)` : "finished");

    const next = await runCli(["push", stamp], { env: r.env });
    assert.equal(next.code, 0, `the push after the signal failed ${label}: ${next.stderr}`);
    const pushed = (next.json as { pushed: { packs_reused: number }[] }).pushed[0];
    assert.ok(pushed.packs_reused >= sent, `the next push reused ${pushed.packs_reused} of ${sent} packs ${label}`);
    await assertVerified(r.envWithIdentity, ["--read-data"], label);
  }
  assert.ok(outcomes.some((outcome) => outcome.startsWith("stopped")), `no trial stopped: ${outcomes.join(", ")}`);
  console.log(`push: 8 trials (seed ${seed}) over ${Math.round(pushMs)} ms: ${outcomes.join(", ")}`);
});

Deno.test("create --push stopped by a signal keeps the new snapshot, lists nothing half, and says how to push it", async () => {
  using r = await remoteStore({ dbMiB: 12, chromaMiB: 2, seed: 43 });
  for (const [trial, signal] of (["SIGINT", "SIGTERM"] as const).entries()) {
    const label = `(trial ${trial}; ${signal} at runtime_backup_created)`;
    const run = await runAndSignal(["create", "--chroma", "--push"], r.env, signal, 0, {
      afterEvent: "runtime_backup_created",
    });
    assert.ok(stoppedOrFinished(run, signal, "create --push", label), `it pushed all the same ${label}`);
    const stamp = /push it with: atocore-backup push (\d{8}T\d{6}Z)/.exec(run.stderr)?.[1];
    assert.ok(stamp, `no stamp to push in ${run.stderr}`);
    assert.ok(entryNames(join(r.store.backupDir, "snapshots")).includes(stamp), `snapshot ${stamp} not kept ${label}`);
    assert.deepEqual(entryNames(join(r.repoDir, "leases")), [], `a lease remains ${label}`);
    await assertVerified(r.env, [], label);
    const pushed = await runCli(["push", stamp], { env: r.env });
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  assert.equal((await remoteNames(r.env)).length, 2);
  await assertVerified(r.envWithIdentity, ["--read-data"]);
});

Deno.test("remote cleanup stopped by a signal leaves every listed snapshot whole; the next run finishes", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed + 1);
  using r = await remoteStore({ dbMiB: 4, chromaMiB: 1, seed: 47 });
  await snapshotSeries(r, 8);
  assert.equal((await runCli(["push", "--all"], { env: r.env })).code, 0);
  const keep = (days: string) => ["remote", "cleanup", "--confirm", "--keep-daily", days, "--keep-weekly", "0"];
  const first = await runCli([...keep("6"), "--keep-monthly", "0"], { env: r.env });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(ageMarkers(r.repoDir, 48, r.store.backupDir), 1);
  const master = join(r.work, "master");
  linkCopy(r.repoDir, master);
  const args = [...keep("3"), "--keep-monthly", "0"];
  const planned = (await runCli(args.filter((arg) => arg !== "--confirm"), { env: r.env })).json as { kept: string[] };
  const { afterEvent } = await timeEvent(args, r.env, "remote_cleanup_started");
  const outcomes: string[] = [];
  for (let trial = 0; trial < 8; trial++) {
    linkCopy(master, r.repoDir);
    const signal = signalOf(trial);
    const delay = Math.round(random() * afterEvent);
    const label = trialLabel(seed + 1, trial, `${signal} ${delay} ms after remote_cleanup_started`);
    const run = await runAndSignal(args, r.env, signal, delay, { afterEvent: "remote_cleanup_started" });
    const stopped = stoppedOrFinished(run, signal, "remote cleanup", label);
    if (stopped) assert.match(run.stderr, /every snapshot still listed has all its objects; run it again to finish/);
    outcomes.push(stopped ? "stopped" : "finished");
    const left = await remoteNames(r.env);
    assert.deepEqual(planned.kept.filter((name) => !left.includes(name)), [], `a kept snapshot was removed ${label}`);
    await assertVerified(r.env, [], `after the signal ${label}`);
    const next = await runCli(args, { env: r.env });
    assert.equal(next.code, 0, `the cleanup after the signal failed ${label}: ${next.stderr}`);
    assert.deepEqual(await remoteNames(r.env), planned.kept, `the next run did not finish the job ${label}`);
    await assertVerified(r.envWithIdentity, ["--read-data"], label);
  }
  console.log(`remote cleanup: 8 trials (seed ${seed + 1}) over ${Math.round(afterEvent)} ms: ${outcomes.join(", ")}`);
});

Deno.test("restore and drill --from-remote stopped by a signal change nothing live and leave no scratch or report", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed + 2);
  using r = await remoteStore({ dbMiB: 16, chromaMiB: 2, segments: 2, seed: 53 });
  const created = await runCli(["create", "--chroma", "--push"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const scratch = join(r.work, "scratch");
  Deno.mkdirSync(scratch);
  let before = liveDigest(r.store);
  const name = (await remoteNames(r.env))[0];
  const to = join(r.work, "to");
  const restoreTo = ["restore", name, "--from-remote", "--scratch-dir", scratch, "--to", to];
  const { afterEvent: fetchMs } = await timeEvent(restoreTo, r.envWithIdentity, "remote_fetch_started");
  Deno.removeSync(to, { recursive: true });
  const live = ["restore", name, "--from-remote", "--scratch-dir", scratch, "--confirm-service-stopped"];
  const drill = ["drill", name, "--from-remote", "--scratch-dir", scratch, "--junit", join(r.work, "drill.xml")];
  const outcomes: string[] = [];
  for (let trial = 0; trial < 6; trial++) {
    const args = [restoreTo, live, drill][trial % 3];
    const signal = signalOf(trial);
    const delay = Math.round(random() * fetchMs);
    const label = trialLabel(
      seed + 2,
      trial,
      `${args[0]} ${args.includes("--to") ? "--to" : ""}; ${signal} ${delay} ms`,
    );
    const run = await runAndSignal(args, r.envWithIdentity, signal, delay, { afterEvent: "remote_fetch_started" });
    const stopped = stoppedOrFinished(run, signal, args[0], label);
    outcomes.push(stopped ? "stopped" : "finished");
    assert.deepEqual(entryNames(scratch), [], `a scratch copy remains ${label}`);
    if (stopped) {
      assert.match(run.stderr, /(nothing was changed|changed nothing in|nothing was drilled)/, label);
      assert.deepEqual(liveDigest(r.store), before, `the live store changed ${label}`);
      assert.deepEqual(entryNames(to), [], `--to was written ${label}`);
      assert.ok(!entryNames(r.work).includes("drill.xml"), `a report was written ${label}`);
    } else if (args === live) {
      before = liveDigest(r.store); // restored: the snapshot's rows, in the backup's bytes
    }
    for (const made of [to, join(r.work, "drill.xml")]) removeIfThere(made);
  }
  console.log(`restore/drill: 6 trials (seed ${seed + 2}) over ${Math.round(fetchMs)} ms: ${outcomes.join(", ")}`);
});

Deno.test("a restore signalled while it replaces the live store runs to its end and says the signal came too late", async () => {
  // a database large enough that the signal sent once its replacing begins comes before the restore ends, under load
  using r = await remoteStore({ dbMiB: 128, chromaMiB: 8, segments: 2, seed: 59 });
  const created = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  const args = ["restore", stamp, "--confirm-service-stopped"];
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const run = await runAndSignal(args, r.env, signal, 0, { afterEvent: "restore_db_replacing" });
    assert.ok(run.sent && !run.killed, `${signal}: sent ${run.sent}, killed ${run.killed}: ${run.stderr}`);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`"event":"interrupt_came_too_late","command":"restore","signal":"${signal}"`));
    assert.match(run.stderr, /"event":"runtime_backup_restored"/);
  }
});

Deno.test("a local drill stopped by a signal ends between its checks, removes its scratch copy and writes no report", async () => {
  using r = await remoteStore({ dbMiB: 16, chromaMiB: 2, segments: 2, seed: 61 });
  const created = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const scratch = join(r.work, "scratch");
  Deno.mkdirSync(scratch);
  const junit = join(r.work, "drill.xml");
  const args = ["drill", "--latest", "--scratch-dir", scratch, "--junit", junit];
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const run = await runAndSignal(args, r.env, signal, 0, { afterEvent: "drill_check" });
    assert.ok(run.sent && !run.killed, `${signal}: sent ${run.sent}, killed ${run.killed}: ${run.stderr}`);
    assert.equal(run.code, CODES[signal], run.stderr);
    assert.match(run.stderr, /error: drill of \d{8}T\d{6}Z interrupted by SIG(TERM|INT): nothing was drilled/);
    assert.deepEqual(entryNames(scratch), [], `${signal}: a scratch copy remains`);
    assert.ok(!entryNames(r.work).includes("drill.xml"), `${signal}: a report was written`);
  }
});

Deno.test("a local drill signalled during its restore step stops before its next check: exit 143, no report", async () => {
  using r = await remoteStore({ dbMiB: 32, chromaMiB: 2, segments: 2, seed: 61 });
  const created = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const scratch = join(r.work, "scratch");
  Deno.mkdirSync(scratch);
  const report = join(r.work, "drill.xml");
  const args = ["drill", "--latest", "--scratch-dir", scratch, "--junit", report];
  const run = await runAndSignal(args, r.env, "SIGTERM", 0, { afterEvent: "restore_db_replacing" });
  assert.ok(run.sent, "the drill ended before the signal");
  assert.equal(run.code, 143, run.stderr);
  assert.match(run.stderr, /nothing was drilled and no report written/);
  assert.ok(!entryNames(r.work).includes("drill.xml"), "no report");
  assert.deepEqual(entryNames(scratch), [], "no scratch copy left");
});
