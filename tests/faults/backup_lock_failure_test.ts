/**
 * The backup folder's lock file, or the live store's folder, whose lock cannot be taken (ENOLCK, as on a filesystem
 * that keeps no locks, injected into the run's own flock by strace): the run stops in one line naming it and what to do.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCliInShell, skipBecause, storeEnv, tempDir, tempStore, toolFor } from "../_helpers.ts";
import { entryNames, liveDigest } from "../_faults.ts";
import { bindReadOnly } from "../_mount.ts";

/** strace failing the run's `when`-th flock with ENOLCK. */
const noLocks = (when: number) =>
  `exec strace -f -qq -o /dev/null -e trace=flock -e inject=flock:error=ENOLCK:when=${when} "$@"`;

/** The line a lock file that cannot be locked is named in. */
const cannotLock = (lock: string) =>
  `atocore-backup: error: cannot lock the backup folder through its lock file ${lock} (No locks available (os error ` +
  "37)); put the backup folder on a filesystem that keeps locks (--backup-dir or ATOCORE_BACKUP_DIR), then run again";

Deno.test("a backup folder whose lock file cannot be locked stops create in one line naming it (needs strace)", async () => {
  if (!toolFor("strace", "a lock failure injected into create")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 77 });
  const env = storeEnv(store);
  await createdStamp(env);
  const snapshots = entryNames(join(store.backupDir, "snapshots"));

  const run = await runCliInShell(noLocks(1), ["create"], env); // a create's first flock is the backup folder's
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stderr.trim().split("\n").at(-1), cannotLock(join(store.backupDir, ".lock")));
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots);
});

Deno.test("a read-only backup folder whose lock file cannot be locked stops restore --to in one line (needs strace)", async () => {
  if (!toolFor("strace", "a lock failure injected into restore --to")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 78 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const live = liveDigest(store);
  const mounted = bindReadOnly(store.backupDir);
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  using target = tempDir();
  const to = join(target.path, "to");

  // the folder may not be written, so its .lock is opened read-only and locked: that is the run's first flock
  const run = await runCliInShell(noLocks(1), ["restore", stamp, "--to", to], env);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stderr.trim().split("\n").at(-1), cannotLock(join(store.backupDir, ".lock")));
  assert.deepEqual(entryNames(target.path), []);
  assert.deepEqual(liveDigest(store), live);
});

Deno.test("a live store whose folder cannot be locked stops create in one line naming it (needs strace)", async () => {
  if (!toolFor("strace", "a lock failure injected into create")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 80 });
  const env = storeEnv(store);
  await createdStamp(env);
  const snapshots = entryNames(join(store.backupDir, "snapshots"));

  const run = await runCliInShell(noLocks(2), ["create"], env); // the live store's lock comes after the backup folder's
  assert.equal(run.code, 1, run.stderr);
  assert.equal(
    run.stderr.trim().split("\n").at(-1),
    `atocore-backup: error: cannot lock the live store's folder ${store.dataDir} (No locks available (os error 37)); ` +
      "put the live store on a filesystem that keeps locks, then run again",
  );
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots);
});
