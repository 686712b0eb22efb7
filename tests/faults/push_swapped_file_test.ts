/**
 * A writer of the backup folder (the service's user) swaps a snapshot's file for a FIFO after a root push looked at
 * it and before it opened it: strace holds the push's first look for 3 s while the swap is made. The push refuses the
 * snapshot at once, never waiting in open(2) for a writer of the FIFO (a SIGTERM would not end that wait).
 *
 * @module
 */
import assert from "node:assert/strict";
import { closeSync, constants, openSync } from "node:fs";
import { join } from "node:path";
import { cliRunOf, createdStamp, toolFor } from "../_helpers.ts";
import { runHeld } from "../_faults.ts";
import { remoteNames, remoteStore } from "../_remote_cli.ts";

/** How long the test waits before it opens the FIFO for writing itself, ending a push that waits on it. */
const RESCUE_MS = 20_000;

Deno.test("a snapshot's file swapped for a FIFO after a push looked at it is refused, not waited on (needs strace)", async () => {
  if (!toolFor("strace", "a snapshot's file swapped while a push is held")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 91 });
  const stamp = await createdStamp(r.env);
  const root = join(r.store.backupDir, "snapshots", stamp);
  const segment = [...Deno.readDirSync(join(root, "chroma"))].find((entry) => entry.isDirectory)!.name;
  const file = join(root, "chroma", segment, "length.bin"); // a Chroma segment's file: the push's look is its first
  let rescue: ReturnType<typeof setTimeout> | undefined;
  const started = Date.now();
  const held = { held: file, calls: "statx,newfstatat", after: true };
  const { output, held: wasHeld } = await runHeld(["push", stamp], r.env, held, () => {
    Deno.renameSync(file, `${file}-aside`);
    new Deno.Command("mkfifo", { args: [file] }).outputSync();
    rescue = setTimeout(() => closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK)), RESCUE_MS);
  });
  clearTimeout(rescue);
  const run = cliRunOf(output);
  assert.ok(wasHeld, `the push ended before it looked at ${file}: ${run.stderr}`);
  assert.ok(Date.now() - started < RESCUE_MS, `the push waited on the FIFO until the test opened it: ${run.stderr}`);
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`snapshot ${stamp} failed validation .*nothing of it is listed|nothing was pushed`),
  );
  assert.deepEqual(await remoteNames(r.env), []);
});
