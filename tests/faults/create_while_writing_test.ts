/**
 * `create` while another process commits to the live WAL database as fast as it
 * can: every snapshot is whole and holds one committed state (the ledger's sum
 * equals its running total), and the snapshots follow the writer's progress.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, runCli, storeEnv, tempStore } from "../_helpers.ts";
import { faultSeed, ledgerState, sqliteIntegrity, trialLabel } from "../_faults.ts";
import type { LedgerWriterMode } from "../_ledger_writer.ts";

const TRIALS = 12;

/**
 * Take `trials` snapshots while a writer process commits in `mode` (see `_ledger_writer.ts`); each must be whole and
 * hold a committed state, and the snapshots follow the writer's progress.
 */
async function createWhileWriting(mode: LedgerWriterMode, trials: number): Promise<void> {
  const seed = faultSeed();
  using store = tempStore({ dbMiB: 30, seed: 11 });
  const env = storeEnv(store);
  const script = join(ROOT, "tests", "_ledger_writer.ts");
  const writer = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", script, store.db, String(seed), mode],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    // a loaded machine (a CI run beside) took a fresh Deno writer more than 10 s to start and commit
    const deadline = Date.now() + 90_000;
    while ((await ledgerState(store.db)).rows === 0) {
      assert.ok(Date.now() < deadline, "the writer did not commit within 90 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    let previousRows = 0;
    for (let trial = 0; trial < trials; trial++) {
      const label = `${mode} ${trialLabel(seed, trial)}`;
      const created = await runCli(["create"], { env });
      assert.equal(created.code, 0, `create failed under writes ${label}: ${created.stderr}`);
      const snapshotDb = (created.json as { db_snapshot_path: string }).db_snapshot_path;
      assert.equal(await sqliteIntegrity(snapshotDb, { immutable: true }), "ok", `snapshot database damaged ${label}`);
      const state = await ledgerState(snapshotDb, { immutable: true });
      assert.equal(state.sum, state.total, `snapshot holds a state no commit made ${label}: ${JSON.stringify(state)}`);
      assert.ok(state.rows >= previousRows, `snapshot went back in time ${label}: ${state.rows} < ${previousRows}`);
      previousRows = state.rows;
    }
    const live = await ledgerState(store.db);
    assert.ok(live.rows > previousRows, `the writer stopped writing during the test: ${live.rows} rows`);
    const validated = await runCli(["validate", "--all"], { env });
    assert.equal(validated.code, 0, `snapshots do not validate (seed ${seed}): ${validated.stdout}`);
    console.log(`create under writes (${mode}): ${trials} snapshots (seed ${seed}), last holds ${previousRows} rows`);
  } finally {
    try {
      writer.kill("SIGKILL");
    } catch {
      // it ended by itself (a writer starved on a loaded machine): what it left is judged below, or by the test
    }
    await writer.status;
    await writer.stderr.cancel();
  }
  assert.equal(
    await sqliteIntegrity(store.db, { writable: true }),
    "ok",
    "live database damaged after the writer was killed",
  );
  const live = await ledgerState(store.db, { writable: true });
  assert.equal(live.sum, live.total, "live database lost its invariant");
}

Deno.test("every snapshot taken while a writer commits is whole and holds a committed state", async () => {
  await createWhileWriting("wal", TRIALS);
});

// create's own look at the database file must never drop SQLite's locks (a close of any descriptor of a file drops
// every POSIX lock of the process on it): the last connection to close would reset the WAL under the copy, and a
// rollback-journal writer commit in the middle of it
Deno.test("snapshots taken while a writer reconnects every 20 commits hold a committed state", async () => {
  await createWhileWriting("reconnecting", TRIALS / 2);
});

Deno.test("snapshots of a rollback-journal database taken while a writer commits hold a committed state", async () => {
  await createWhileWriting("rollback", TRIALS / 2);
});

Deno.test("a Chroma folder whose entries come and go while it is read is copied again, never reported as missing", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 8, segments: 4 });
  const churn = join(store.chromaDir, "churning");
  const churner = new Deno.Command("sh", {
    args: ["-c", `while :; do mkdir -p "$1/a/b" && : > "$1/a/b/x" && rm -rf "$1"; done`, "churn", churn],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let run = 0; run < 6; run++) {
      const created = await runCli(["create", "--chroma"], { env: storeEnv(store) });
      assert.doesNotMatch(created.stderr, /copy failed \(not found\)/, `run ${run}: a vanished entry was not retried`);
      if (created.code !== 0) assert.match(created.stderr, /kept changing during the copy/, created.stderr);
    }
  } finally {
    churner.kill("SIGKILL");
    await churner.status;
  }
});
