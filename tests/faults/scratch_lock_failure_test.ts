/**
 * A scratch folder a killed fetch left, whose lock cannot be taken (ENOLCK, as on a filesystem that keeps no locks,
 * injected into the restore's own flock by strace): the restore stops before any change, naming the folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCliInShell, storeEnv, tempStore, toolFor } from "../_helpers.ts";
import { entryNames, liveDigest } from "../_faults.ts";

Deno.test("a leftover scratch folder that cannot be locked stops the restore in one line naming it (needs strace)", async () => {
  if (!toolFor("strace", "a lock failure injected into the restore")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 76 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const scratch = join(store.dataDir, ".atocore-fetch-killed"); // as a fetch killed with -9 leaves it: unlocked
  Deno.mkdirSync(scratch);
  const [live, snapshots] = [liveDigest(store), entryNames(join(store.backupDir, "snapshots"))];

  // a restore's third flock is the leftover's: the backup folder's lock and the live store's come first
  const inject = "strace -f -qq -o /dev/null -e trace=flock -e inject=flock:error=ENOLCK:when=3";
  const run = await runCliInShell(`exec ${inject} "$@"`, ["restore", stamp, "--confirm-service-stopped"], env);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(
    run.stderr.trim().split("\n").at(-1),
    `atocore-backup: error: cannot tell whether a fetch still uses the scratch folder ${scratch}: locking it failed ` +
      `(No locks available (os error 37): flock '${scratch}'); nothing was changed; if no fetch is running, remove ` +
      "that folder, then run again (a fetch needs a filesystem that keeps locks: give --scratch-dir DIR on one)",
  );
  assert.deepEqual(liveDigest(store), live);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots);
  assert.ok(Deno.statSync(scratch).isDirectory, "the scratch folder was removed");
});
