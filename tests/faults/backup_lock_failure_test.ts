/**
 * The backup folder's lock file, or the live store's folder, whose lock cannot be taken (ENOLCK, as on a filesystem
 * that keeps no locks, injected into the run's own flock by strace): the run stops in one line naming it and what to do.
 * A read-only folder's lock file swapped by the folder's writer between the run's look and its open: refused, never
 * waited on for ever.
 */
import assert from "node:assert/strict";
import { closeSync, constants, openSync } from "node:fs";
import { join } from "node:path";
import {
  type CliRun,
  cliRunOf,
  createdStamp,
  runCliInShell,
  skipBecause,
  storeEnv,
  tempDir,
  tempStore,
  toolFor,
} from "../_helpers.ts";
import { entryNames, liveDigest, runHeld } from "../_faults.ts";
import { bindReadOnly, readOnlyBindMount } from "../_mount.ts";

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

/**
 * `restore STAMP --to` a new folder from a read-only mount of `store`'s backup folder, strace holding the run's second
 * look at the lock file (the first is the writable lock's) while `swap` alters the lock file in the writable folder.
 */
async function restoreWithLockSwapped(swap: (lock: string) => void): Promise<{ run: CliRun; held: boolean } | string> {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 81 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const mounted = readOnlyBindMount(store.backupDir);
  if (typeof mounted === "string") return mounted;
  using readOnly = mounted;
  using target = tempDir();
  const lock = join(store.backupDir, ".lock");
  const args = ["restore", stamp, "--to", join(target.path, "to"), "--backup-dir", readOnly.path];
  const held = { held: join(readOnly.path, ".lock"), calls: "statx,newfstatat", after: true, when: 2 };
  const started = Date.now();
  let rescue: ReturnType<typeof setTimeout> | undefined;
  const { output, held: wasHeld } = await runHeld(args, env, held, () => {
    swap(lock);
    // a run that waits on a FIFO is let go after 20 s, failing the test by its time rather than holding it for ever
    if (Deno.lstatSync(lock).isFifo) {
      rescue = setTimeout(() => closeSync(openSync(lock, constants.O_WRONLY | constants.O_NONBLOCK)), 20_000);
    }
  });
  clearTimeout(rescue);
  const run = cliRunOf(output);
  assert.ok(Date.now() - started < 20_000, `the run ends soon after the open is given up: ${run.stderr}`);
  assert.deepEqual(entryNames(target.path), [], `nothing restored: ${run.stderr}`);
  return { run, held: wasHeld };
}

Deno.test("a read-only backup folder's lock file swapped for a FIFO after restore --to looked at it is refused, not waited on (needs strace)", async () => {
  if (!toolFor("strace", "a lock file swapped while restore --to is held")) return;
  const outcome = await restoreWithLockSwapped((lock) => {
    Deno.renameSync(lock, `${lock}-aside`);
    new Deno.Command("mkfifo", { args: [lock] }).outputSync();
  });
  if (typeof outcome === "string") return skipBecause(outcome);
  assert.ok(outcome.held, "the swap came while the run was held");
  assert.equal(outcome.run.code, 3, outcome.run.stderr);
  assert.match(
    outcome.run.stderr.trim().split("\n").at(-1)!,
    /^atocore-backup: error: the lock file \S+\/\.lock did not open within 10 s \(a FIFO, device or link put in its place .*have the backup folder's owner make it an empty file again, then run again$/,
  );
});

Deno.test("a read-only backup folder's lock file swapped for a link after restore --to looked at it is refused (needs strace)", async () => {
  if (!toolFor("strace", "a lock file swapped while restore --to is held")) return;
  using other = tempDir();
  const victim = join(other.path, "root-file");
  Deno.writeTextFileSync(victim, "root's\n");
  const outcome = await restoreWithLockSwapped((lock) => {
    Deno.renameSync(lock, `${lock}-aside`);
    Deno.symlinkSync(victim, lock);
  });
  if (typeof outcome === "string") return skipBecause(outcome);
  assert.ok(outcome.held, "the swap came while the run was held");
  assert.equal(outcome.run.code, 3, outcome.run.stderr);
  assert.match(outcome.run.stderr, /the lock file \S+ opened is not the file that was there a moment before/);
});
