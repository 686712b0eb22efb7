/**
 * A snapshot removed while `validate --all` or `drill --latest` reads it, as a scheduled `cleanup --confirm` does:
 * each run is stopped (SIGSTOP) at the moment it holds the snapshot's database open, the snapshot is removed, and the
 * run continued (SIGCONT). And `list` leaves out a folder gone between reading `snapshots/` and its metadata.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { listEntries } from "../../src/ops/list.ts";
import { cliProcess, cliRunOf, createdStamp, runCli, storeEnv, tempStore } from "../_helpers.ts";

/**
 * Stop `child` with SIGSTOP as soon as it has a file under `folder` open; `false` when it ended first. The caller
 * sends SIGCONT (or SIGKILL) afterwards.
 */
async function stopWhenOpen(child: Deno.ChildProcess, folder: string): Promise<boolean> {
  let ended = false;
  child.status.then(() => ended = true);
  while (!ended) {
    for (const link of openFiles(child.pid)) {
      if (!link.startsWith(`${folder}/`)) continue;
      Deno.kill(child.pid, "SIGSTOP");
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return false;
}

/** The paths a process has open, as `/proc/PID/fd` shows them (none once it is gone). */
function openFiles(pid: number): string[] {
  const links: string[] = [];
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        links.push(Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`));
      } catch {
        // closed between the listing and the read
      }
    }
  } catch {
    // the process is gone
  }
  return links;
}

/** Start the CLI with `args`, stop it when it holds a file of `folder`, run `meanwhile`, continue it, and wait. */
async function stoppedWhileReading(
  args: string[],
  env: Record<string, string>,
  folder: string,
  meanwhile: () => Promise<void>,
) {
  const child = cliProcess(args, { env }).spawn();
  const output = child.output();
  try {
    assert.ok(await stopWhenOpen(child, folder), `${args.join(" ")} ended before it opened a file in ${folder}`);
    await meanwhile();
  } finally {
    try {
      Deno.kill(child.pid, "SIGCONT");
    } catch {
      // already ended
    }
  }
  return cliRunOf(await output);
}

Deno.test("validate --all while cleanup --confirm removes the snapshot it is reading: reported as removed, the run goes on", async () => {
  using store = tempStore({ dbMiB: 128 });
  const env = storeEnv(store);
  const stamps = [await createdStamp(env, []), await createdStamp(env, []), await createdStamp(env, [])];
  const snapshots = join(store.backupDir, "snapshots");
  const run = await stoppedWhileReading(["validate", "--all"], env, join(snapshots, stamps[1]), async () => {
    const cleanup = await runCli([
      "cleanup",
      "--confirm",
      "--keep-daily",
      "1",
      "--keep-weekly",
      "0",
      "--keep-monthly",
      "0",
    ], {
      env,
    });
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.deepEqual((cleanup.json as { deleted_snapshots: string[] }).deleted_snapshots, [stamps[1], stamps[0]]);
  });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as {
    valid: boolean;
    results: { stamp: string; valid: boolean }[];
    removed_during_validation: string[];
  };
  assert.deepEqual(result.results.map((one) => [one.stamp, one.valid]), [[stamps[0], true], [stamps[2], true]]);
  assert.deepEqual(result.removed_during_validation, [stamps[1]]);
  assert.equal(result.valid, true);
  const warned = run.stderr.trim().split("\n").map((line) => JSON.parse(line))
    .filter((event) => event.event === "snapshot_removed_during_validation");
  assert.deepEqual(warned.map((event) => event.stamp), [stamps[1]]);
});

Deno.test("drill --latest whose snapshot is removed while it reads it fails that check saying so, and cleans up", async () => {
  using store = tempStore({ dbMiB: 128 });
  const env = storeEnv(store);
  await createdStamp(env, []);
  const stamp = await createdStamp(env, []);
  const folder = join(store.backupDir, "snapshots", stamp);
  const scratch = join(store.dataDir, "scratch");
  Deno.mkdirSync(scratch);
  const run = await stoppedWhileReading(["drill", "--latest", "--scratch-dir", scratch], env, folder, async () => {
    // What cleanup does: out of snapshots/ with one rename into .trash/ (which create made), then deleted.
    const trashed = join(store.backupDir, ".trash", `${stamp}.test`);
    Deno.renameSync(folder, trashed);
    await Deno.remove(trashed, { recursive: true });
  });
  assert.equal(run.code, 1, run.stderr);
  const result = run.json as { stamp: string; ok: boolean; checks: { name: string; status: string; detail: string }[] };
  assert.equal(result.stamp, stamp);
  const failed = result.checks.filter((check) => check.status === "failed");
  assert.equal(failed.length, 1, JSON.stringify(result.checks));
  assert.match(
    failed[0].detail,
    /^the snapshot was removed while the drill ran \(by a cleanup\?\): .*; drill another one/,
  );
  assert.deepEqual([...Deno.readDirSync(scratch)], [], "the scratch folder was removed");
});

Deno.test("list leaves out a snapshot folder that is gone by the time its metadata is read", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store), []);
  const entries = listEntries(store.backupDir, [stamp, "20200101T000000Z"], new Date());
  assert.deepEqual(entries.map((entry) => entry.stamp), [stamp]);
});
