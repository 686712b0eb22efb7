/**
 * A create whose snapshot was published but whose snapshots folder could not be flushed (EIO injected into that
 * folder's fsync by strace): the validate it prints runs as printed, on the backup folder the create was given.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, printedCommand, runCliInShell, runPrinted, storeEnv, tempStore, toolFor } from "../_helpers.ts";
import { entryNames } from "../_faults.ts";

Deno.test("the validate a create whose published snapshot was not flushed prints runs on its --backup-dir (needs strace)", async () => {
  if (!toolFor("strace", "a flush failure injected into create")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 91 });
  const env = storeEnv(store);
  await createdStamp(env); // the snapshots folder is there before the run, so its only fsync is after the publish
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits, and not the folder of the environment
  Deno.renameSync(store.backupDir, backupDir);
  const snapshots = join(backupDir, "snapshots");
  const failFlush = `exec strace -f -qq -o /dev/null -P '${snapshots}' -e trace=fsync -e inject=fsync:error=EIO "$@"`;

  const run = await runCliInShell(failFlush, ["create", "--backup-dir", backupDir], env);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /was published at .* but flushing its folder failed/);
  assert.equal(entryNames(snapshots).length, 2, run.stderr);
  const printed = printedCommand(run.stderr, "validate it with");
  assert.ok(printed !== null, run.stderr);
  const validated = await runPrinted(printed, env); // pasted into a shell as it is
  assert.equal(validated.code, 0, `${printed}: ${validated.stderr}`);
});
