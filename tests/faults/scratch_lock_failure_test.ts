/**
 * A scratch folder a killed fetch left, whose lock cannot be taken (ENOLCK, as on a filesystem that keeps no locks,
 * injected into the restore's own flock by strace): the restore stops before any change, naming the folder, with FFI
 * (the lock taken through the parent's descriptor) and without (by path) alike.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cliEnv,
  type CliRun,
  cliRunOf,
  COMPILE_PERMISSIONS,
  createdStamp,
  ROOT,
  runCliInShell,
  storeEnv,
  tempStore,
  toolFor,
} from "../_helpers.ts";
import { entryNames, liveDigest } from "../_faults.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";

/** What the restore says of the leftover scratch folder `scratch` it cannot lock. */
const cannotTell = (scratch: string) =>
  `atocore-backup: error: cannot tell whether a fetch still uses the scratch folder ${scratch}: locking it failed ` +
  `(No locks available (os error 37): flock '${scratch}'); nothing was changed; if no fetch is running, remove ` +
  "that folder, then run again (a fetch needs a filesystem that keeps locks: give --scratch-dir DIR on one)";

/** The CLI with `args` under strace failing its `when`-th flock with ENOLCK; `ffi: false` drops `--allow-ffi`. */
async function runWithoutLocks(
  args: string[],
  env: Record<string, string>,
  when: number,
  ffi: boolean,
): Promise<CliRun> {
  const permissions = COMPILE_PERMISSIONS.filter((flag) => ffi || flag !== "--allow-ffi");
  const inject = ["-f", "-qq", "-o", "/dev/null", "-e", "trace=flock", "-e", `inject=flock:error=ENOLCK:when=${when}`];
  const command = new Deno.Command("strace", {
    args: [...inject, Deno.execPath(), "run", ...permissions, join(ROOT, "main.ts"), ...args],
    env: cliEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  return cliRunOf(await command.output());
}

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
  assert.equal(run.stderr.trim().split("\n").at(-1), cannotTell(scratch));
  assert.deepEqual(liveDigest(store), live);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots);
  assert.ok(Deno.statSync(scratch).isDirectory, "the scratch folder was removed");
});

Deno.test("a leftover in --scratch-dir that cannot be locked stops the fetch in the same line with FFI and without (needs strace)", async () => {
  if (!toolFor("strace", "a lock failure injected into a fetch")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 79 });
  const { stamp } = await createAndPush(r.env);
  const scratchDir = join(r.work, "scratch");
  const leftover = join(scratchDir, ".atocore-fetch-killed"); // as a fetch killed with -9 leaves it: unlocked
  Deno.mkdirSync(leftover, { recursive: true });
  const to = join(r.work, "rebuilt");
  const args = ["restore", stamp, "--from-remote", "--to", to, "--scratch-dir", scratchDir];

  for (const ffi of [true, false]) {
    // a fetch's second flock is the leftover's: the backup folder's lock comes first
    const run = await runWithoutLocks(args, r.envWithIdentity, 2, ffi);
    assert.equal(run.code, 1, `${ffi ? "with" : "without"} FFI: ${run.stderr}`);
    assert.equal(run.stderr.trim().split("\n").at(-1), cannotTell(leftover), `${ffi ? "with" : "without"} FFI`);
    assert.deepEqual(entryNames(scratchDir), [".atocore-fetch-killed"]);
    assert.deepEqual(entryNames(r.work).includes("rebuilt"), false);
  }
});
