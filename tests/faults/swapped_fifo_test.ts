/**
 * The service's user, writer of the backup folder and owner of the live store, swaps a snapshot's file or the live
 * database for a FIFO after a root push, validate or create looked at it and before it opened it: strace holds that
 * look for 3 s while the swap is made. The run goes on or judges at once, never waiting in open(2) for a writer of the
 * FIFO (a SIGTERM would not end that wait).
 *
 * @module
 */
import assert from "node:assert/strict";
import { closeSync, constants, openSync } from "node:fs";
import { join } from "node:path";
import { cliProcess, type CliRun, cliRunOf, createdStamp, storeEnv, tempStore, toolFor } from "../_helpers.ts";
import { runHeld } from "../_faults.ts";
import { remoteNames, remoteStore } from "../_remote_cli.ts";

/** How long the test waits before it opens the FIFO for writing itself, ending a run that waits on it. */
const RESCUE_MS = 20_000;

/**
 * Run `args` with strace holding its `when`-th look at `file` (of `calls`) while it is swapped for a FIFO: the run, failing the test
 * when it was not held or waited on the FIFO until the test opened it.
 */
async function runWithFifoSwapped(
  args: string[],
  env: Record<string, string>,
  file: string,
  when: number,
  calls = "statx,newfstatat",
): Promise<CliRun> {
  let rescue: ReturnType<typeof setTimeout> | undefined;
  const started = Date.now();
  const held = { held: file, calls, after: true, when };
  const { output, held: wasHeld } = await runHeld(args, env, held, () => {
    Deno.renameSync(file, `${file}-aside`);
    new Deno.Command("mkfifo", { args: [file] }).outputSync();
    rescue = setTimeout(() => closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK)), RESCUE_MS);
  });
  clearTimeout(rescue);
  const run = cliRunOf(output);
  assert.ok(wasHeld, `the run ended before it looked at ${file}: ${run.stderr}`);
  assert.ok(Date.now() - started < RESCUE_MS, `the run waited on the FIFO until the test opened it: ${run.stderr}`);
  return run;
}

/** A Chroma segment's file of the snapshot at `root`: read by path after a look, as no database is. */
function segmentFile(root: string): string {
  const segment = [...Deno.readDirSync(join(root, "chroma"))].find((entry) => entry.isDirectory)!.name;
  return join(root, "chroma", segment, "length.bin");
}

Deno.test("a snapshot's file swapped for a FIFO after a push looked at it is refused, not waited on (needs strace)", async () => {
  if (!toolFor("strace", "a snapshot's file swapped while a push is held")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 91 });
  const stamp = await createdStamp(r.env);
  const file = segmentFile(join(r.store.backupDir, "snapshots", stamp));
  const run = await runWithFifoSwapped(["push", stamp], r.env, file, 1); // the push's look is the file's first
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`snapshot ${stamp} failed validation .*nothing of it is listed|nothing was pushed`),
  );
  assert.deepEqual(await remoteNames(r.env), []);
});

Deno.test("a snapshot's file swapped for a FIFO after validate looked at it is reported, not waited on (needs strace)", async () => {
  if (!toolFor("strace", "a snapshot's file swapped while validate is held")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 92 });
  const stamp = await createdStamp(r.env);
  const file = segmentFile(join(r.store.backupDir, "snapshots", stamp));
  const run = await runWithFifoSwapped(["validate", stamp], r.env, file, 2); // the manifest check's look is its second
  assert.equal(run.code, 1, run.stderr);
  const errors = (run.json as { errors: string[] }).errors.join("; ");
  assert.match(
    errors,
    /manifest_file_unreadable \(not a regular file \((FIFO|replaced while being opened)\)\): chroma\//,
  );
});

Deno.test("a live database swapped for a FIFO once SQLite opened it, before create reads its first page: no wait (needs strace)", async () => {
  if (!toolFor("strace", "a live database swapped while create is held")) return;
  using store = tempStore({ dbMiB: 1 });
  // SQLite's own looks at it, by path, after its open: the third is the last before create reads the first page
  const run = await runWithFifoSwapped(["create"], storeEnv(store), store.db, 3, "newfstatat");
  assert.equal(run.code, 0, run.stderr);
  assert.equal((run.json as { validated: boolean }).validated, true);
});

/**
 * Run a drill of `stamp` stopped (SIGSTOP) once its `db_integrity` check is told, the snapshot's database swapped for
 * a FIFO meanwhile: the run's exit code and stderr, failing the test when it waited on the FIFO until the test opened it.
 */
async function drillWithFifoAtRowCounts(env: Record<string, string>, stamp: string, db: string): Promise<CliRun> {
  const drill = cliProcess(["drill", stamp], { env, stdout: "null" }).spawn();
  const lines = drill.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  while (!stderr.includes('"name":"db_integrity"')) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`the drill ended before its db_integrity check: ${stderr}`);
    stderr += value;
  }
  Deno.kill(drill.pid, "SIGSTOP");
  Deno.renameSync(db, `${db}-aside`);
  new Deno.Command("mkfifo", { args: [db] }).outputSync();
  Deno.kill(drill.pid, "SIGCONT");
  const started = Date.now();
  const rescue = setTimeout(() => closeSync(openSync(db, constants.O_WRONLY | constants.O_NONBLOCK)), RESCUE_MS);
  for (let read = await lines.read(); !read.done; read = await lines.read()) stderr += read.value;
  const { code } = await drill.status;
  clearTimeout(rescue);
  assert.ok(Date.now() - started < RESCUE_MS, `the drill waited on the FIFO until the test opened it: ${stderr}`);
  return { code, stdout: "", stderr, json: undefined };
}

Deno.test("a snapshot's database swapped for a FIFO before a drill counts its rows: failed at once, not waited on", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const db = join(store.backupDir, "snapshots", stamp, "db", "atocore.db");
  const run = await drillWithFifoAtRowCounts(storeEnv(store), stamp, db);
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`"row_counts: unable to open database file ${db} \\(not a regular file \\(FIFO\\)`),
  );
});
