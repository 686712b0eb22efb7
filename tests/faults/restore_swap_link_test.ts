/**
 * A writer of the data folder who swaps the Chroma folder for a link to another folder once the pre-restore snapshot
 * is made (once, or back and forth): the restore stages and swaps only in the folder it checked, never through the
 * link, and the link's target keeps its files.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, restoreStoppedAt, treeDigest } from "../_faults.ts";

/**
 * Once `<snapshots>` holds more than `<known>` entries (the pre-restore snapshot is published), swap `<folder>` for a
 * link to `<victim>`: once (`<mode>` "once"), or back and forth for ever.
 */
const SWAPPER = `
import os, sys, time
victim, folder, snapshots, known, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
while len(os.listdir(snapshots)) <= known:
    time.sleep(0.0002)
aside = folder + "-aside"
os.rename(folder, aside); os.symlink(victim, folder)
while mode != "once":
    try:
        time.sleep(0.002); os.unlink(folder); os.rename(aside, folder)
        time.sleep(0.001); os.rename(folder, aside); os.symlink(victim, folder)
    except OSError:
        time.sleep(0.001)
`;

/** A restore of `stamp` while the swapper runs in `mode`; the real Chroma folder is put back in place after. */
async function restoreWhileSwapping(store: ReturnType<typeof tempStore>, stamp: string, victim: string, mode: string) {
  const snapshots = join(store.backupDir, "snapshots");
  const known = String(entryNames(snapshots).length);
  const swapper = new Deno.Command("python3", {
    args: ["-c", SWAPPER, victim, store.chromaDir, snapshots, known, mode],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    return await runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) });
  } finally {
    if (mode !== "once") swapper.kill("SIGKILL");
    await swapper.status;
    if (Deno.lstatSync(store.chromaDir).isSymlink) {
      Deno.removeSync(store.chromaDir);
      Deno.renameSync(`${store.chromaDir}-aside`, store.chromaDir);
    }
  }
}

/** A folder of someone else's, with a file and a subfolder. */
function victimFolder(root: string): string {
  const victim = join(root, "victim");
  Deno.mkdirSync(join(victim, "sub"), { recursive: true });
  Deno.writeTextFileSync(join(victim, "precious"), "another folder's");
  Deno.writeTextFileSync(join(victim, "sub", "kept"), "another folder's too");
  return victim;
}

Deno.test("a Chroma folder swapped for a link after the pre-restore snapshot is refused; the link's target is kept", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 2, segments: 4, seed: 47 });
  using outside = tempDir();
  const stamp = await createdStamp(storeEnv(store));
  const victim = victimFolder(outside.path);
  const before = { victim: treeDigest(victim), chroma: treeDigest(store.chromaDir) };
  const run = await restoreWhileSwapping(store, stamp, victim, "once");
  assert.deepEqual(treeDigest(victim), before.victim, `the link's target was changed: ${run.stderr.slice(-600)}`);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /Chroma folder \S+ is no longer the folder this restore checked/);
  assert.match(run.stderr, /the database, registry and Chroma were not changed/);
  assert.deepEqual(treeDigest(store.chromaDir), before.chroma, "the real Chroma folder was changed");
});

Deno.test("a Chroma folder swapped for a link and back, over and over, during restores: the link's target is kept", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 2, segments: 4, seed: 53 });
  using outside = tempDir();
  const stamp = await createdStamp(storeEnv(store));
  const snapshotChroma = treeDigest(join(store.backupDir, "snapshots", stamp, "chroma"));
  const victim = victimFolder(outside.path);
  const before = treeDigest(victim);
  for (let trial = 0; trial < 3; trial++) {
    const run = await restoreWhileSwapping(store, stamp, victim, "loop");
    const label = `trial ${trial}: exit ${run.code}: ${run.stderr.slice(-600)}`;
    assert.deepEqual(treeDigest(victim), before, `the link's target was changed; ${label}`);
    assert.ok([0, 1].includes(run.code), label);
    if (run.code === 0) assert.deepEqual(treeDigest(store.chromaDir), snapshotChroma, `not the snapshot's; ${label}`);
  }
});

Deno.test("a Chroma folder swapped for a link while its copy is staged: the restore fails, leaving nothing in the folder it held", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 2, segments: 4, seed: 59 });
  using outside = tempDir();
  const stamp = await createdStamp(storeEnv(store));
  const victim = victimFolder(outside.path);
  const before = { victim: treeDigest(victim), chroma: treeDigest(store.chromaDir) };
  const aside = `${store.chromaDir}-aside`;
  const run = await restoreStoppedAt(store, [stamp, "--confirm-service-stopped"], "restore_chroma_staging", () => {
    Deno.renameSync(store.chromaDir, aside); // the copy goes on in the folder held open, then meets the link
    Deno.symlinkSync(victim, store.chromaDir);
  });
  Deno.removeSync(store.chromaDir);
  Deno.renameSync(aside, store.chromaDir);
  assert.equal(run.code, 1, run.stderr);
  const errors = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(errors.length, 1, run.stderr);
  assert.match(errors[0], /restore failed while staging the Chroma copy in \S+ \(the Chroma folder \S+ is no longer/);
  assert.match(errors[0], /the database, registry and Chroma were not changed; fix the cause and run again/);
  assert.deepEqual(treeDigest(victim), before.victim, "the link's target was changed");
  assert.deepEqual(entryNames(store.chromaDir).filter((name) => name.startsWith(".")), [], "a staged copy was left");
  assert.deepEqual(treeDigest(store.chromaDir), before.chroma, "the real Chroma folder was changed");
});

Deno.test("a Chroma folder swapped for a link while its contents are swapped: the swap ends in the folder held, no hidden folder left", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 2, segments: 4, seed: 61 });
  using outside = tempDir();
  const stamp = await createdStamp(storeEnv(store));
  const snapshotChroma = treeDigest(join(store.backupDir, "snapshots", stamp, "chroma"));
  const victim = victimFolder(outside.path);
  const before = treeDigest(victim);
  const aside = `${store.chromaDir}-aside`;
  const run = await restoreStoppedAt(store, [stamp, "--confirm-service-stopped"], "restore_chroma_swapping", () => {
    Deno.renameSync(store.chromaDir, aside);
    Deno.symlinkSync(victim, store.chromaDir);
  });
  Deno.removeSync(store.chromaDir);
  Deno.renameSync(aside, store.chromaDir);
  assert.deepEqual(treeDigest(victim), before, "the link's target was changed");
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(entryNames(store.chromaDir).filter((name) => name.startsWith(".")), [], "a hidden folder was left");
  assert.deepEqual(treeDigest(store.chromaDir), snapshotChroma, "the held folder does not hold the snapshot's Chroma");
});
