/**
 * A restore killed while moving the new Chroma entries in, after which the Chroma path leads to another folder (the
 * volume not mounted, or a link swapped in): the next restore refuses (exit 3) and changes nothing, keeping the record;
 * once the folder is back, it settles the swap.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, skipBecause, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { bindMount } from "../_mount.ts";
import { chownToNobody, entryNames, treeDigest, unprivilegedCli } from "../_faults.ts";
import type { SampleStore } from "../../scripts/sample_store.ts";

const INTENT = ".atocore.db.restore-intent.json";
const OLD = ".atocore-old-1-00000000";
const STAGED = ".atocore-restore-1-00000000";

/**
 * Leave `store`'s Chroma folder as a restore of `stamp` killed in "moving-new-in" leaves it: every old entry aside, a
 * new entry in; the record names the folder's identity as the swap recorded it (none with `identity` false, as an
 * older version wrote it).
 */
function killedSwap(store: SampleStore, stamp: string, identity = true): void {
  const chroma = store.chromaDir;
  const names = entryNames(chroma);
  Deno.mkdirSync(join(chroma, OLD));
  for (const name of names) Deno.renameSync(join(chroma, name), join(chroma, OLD, name));
  Deno.mkdirSync(join(chroma, STAGED));
  Deno.writeTextFileSync(join(chroma, "new-entry.bin"), "moved in before the kill");
  const { dev, ino } = Deno.statSync(chroma);
  const record = {
    format: 1,
    stamp,
    backup_dir: store.backupDir,
    chroma_dir: chroma,
    chroma: true,
    pre_restore_snapshot: null,
    started_at: new Date().toISOString(),
    pid: 1,
    swap: { phase: "moving-new-in", old: OLD, staged: STAGED, ...(identity ? { folder: { dev, ino } } : {}) },
  };
  Deno.writeTextFileSync(join(store.dataDir, INTENT), JSON.stringify(record));
}

/** A restore of `stamp` that must be refused, leaving `folders` and the record as they were. */
async function assertRefused(store: SampleStore, stamp: string, folders: string[]): Promise<void> {
  const before = folders.map((folder) => treeDigest(folder));
  const intent = Deno.readTextFileSync(join(store.dataDir, INTENT));
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
  assert.equal(run.code, 3, run.stderr);
  const line = `the Chroma folder ${store.chromaDir} is not the folder the unfinished restore recorded in ` +
    `${join(store.dataDir, INTENT)} was swapping`;
  const errors = run.stderr.split("\n").filter((text) => text.includes(line));
  assert.equal(errors.length, 1, run.stderr);
  assert.match(errors[0], /nothing was changed; mount the volume or put that folder back at .*, then run the restore/);
  assert.deepEqual(folders.map((folder) => treeDigest(folder)), before, "a folder changed");
  assert.equal(Deno.readTextFileSync(join(store.dataDir, INTENT)), intent, "the record changed");
}

/** The restore of `stamp` once the folder is back: the swap is undone, then the restore finishes. */
async function assertSettled(store: SampleStore, stamp: string): Promise<void> {
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /restore_chroma_swap_undone/);
  assert.doesNotMatch(run.stderr, /"entries_moved_back":0/);
  assert.ok(!entryNames(store.dataDir).includes(INTENT), "the record was kept");
  const names = entryNames(store.chromaDir);
  assert.ok(!names.includes("new-entry.bin") && !names.some((name) => name.startsWith(".atocore-")), String(names));
}

Deno.test("an unfinished swap of a Chroma volume not mounted now is refused, nothing changed; mounted, it settles", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  using volume = tempDir();
  new Deno.Command("cp", { args: ["-a", `${store.chromaDir}/.`, volume.path] }).outputSync();
  for (const name of entryNames(store.chromaDir)) Deno.removeSync(join(store.chromaDir, name), { recursive: true });
  let mounted = bindMount(volume.path, store.chromaDir);
  if (typeof mounted === "string") return skipBecause(mounted);
  killedSwap(store, stamp);
  mounted[Symbol.dispose]();
  await assertRefused(store, stamp, [store.chromaDir, volume.path]);
  mounted = bindMount(volume.path, store.chromaDir);
  if (typeof mounted === "string") throw new Error(mounted);
  using _mount = mounted;
  await assertSettled(store, stamp);
});

Deno.test("an unfinished swap whose Chroma folder was swapped for a link is refused; the link's target is kept", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  killedSwap(store, stamp);
  using other = tempDir();
  Deno.writeTextFileSync(join(other.path, "precious"), "another folder's");
  const aside = `${store.chromaDir}-aside`;
  Deno.renameSync(store.chromaDir, aside);
  Deno.symlinkSync(other.path, store.chromaDir);
  await assertRefused(store, stamp, [other.path, aside]);
  Deno.removeSync(store.chromaDir);
  Deno.renameSync(aside, store.chromaDir);
  await assertSettled(store, stamp);
});

Deno.test("an unfinished swap recorded by an older version, with no folder identity, settles by the path", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  killedSwap(store, stamp, false);
  await assertSettled(store, stamp);
});

Deno.test("an unfinished swap whose folder of old entries is not the one it made stops the restore before any entry goes", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  killedSwap(store, stamp);
  const old = join(store.chromaDir, OLD);
  const kept = `${store.chromaDir}-old-kept`;
  Deno.renameSync(old, kept);
  Deno.symlinkSync(kept, old); // a link where the old entries were: nothing is moved through it
  const before = treeDigest(store.chromaDir);
  const run = await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, new RegExp(`${OLD} is not the folder this restore made`));
  assert.match(run.stderr, /this run changed none of the store's data/);
  assert.deepEqual(treeDigest(store.chromaDir), before, "the Chroma folder changed, though the run says it did not");
  assert.ok(entryNames(store.chromaDir).includes("new-entry.bin"), "an entry moved in was removed");
  Deno.removeSync(old);
  Deno.renameSync(kept, old);
  await assertSettled(store, stamp);
});

Deno.test("an unfinished swap a root restore left is not undone by the service user's restore, which says to run it as root", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using nobody = cli;
  chownToNobody(store.dataDir); // the service user's store and backups
  killedSwap(store, stamp); // by root: its folder of old entries is root's
  const before = treeDigest(store.chromaDir);
  const run = await nobody.run(["restore", stamp, "--confirm-service-stopped"], storeEnv(store));
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`${OLD} belongs to uid 0, not to this run's user: .*run the restore again as that user`),
  );
  assert.match(run.stderr, /this run changed none of the store's data/);
  assert.deepEqual(treeDigest(store.chromaDir), before, "the Chroma folder changed");
  await assertSettled(store, stamp); // root's run settles it
});
