/**
 * A writer of the Chroma folder, or of the snapshot, against a restore run by another user: set-id bits on its own files
 * are not given to the copies, the staged copy swapped for a link to an empty folder does not leave Chroma empty, and a
 * snapshot link changed while it is copied is refused.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, createdStamp, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { restoreStoppedAt, treeDigest } from "../_faults.ts";

Deno.test("set-user and set-group bits a writer put on its live Chroma files are not given to the restored copies", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 2, seed: 61 });
  const stamp = await createdStamp(storeEnv(store));
  const segment = [...Deno.readDirSync(store.chromaDir)].find((entry) => entry.isDirectory)!.name;
  const file = [...Deno.readDirSync(join(store.chromaDir, segment))].find((entry) => entry.isFile)!.name;
  Deno.chmodSync(join(store.chromaDir, "chroma.sqlite3"), 0o4755);
  Deno.chmodSync(join(store.chromaDir, segment, file), 0o2750);
  Deno.chmodSync(join(store.chromaDir, segment), 0o2775);
  const run = await cliProcess(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) }).output();
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  assert.equal(Deno.statSync(join(store.chromaDir, "chroma.sqlite3")).mode! & 0o7777, 0o755);
  assert.equal(Deno.statSync(join(store.chromaDir, segment, file)).mode! & 0o7777, 0o750);
  assert.equal(Deno.statSync(join(store.chromaDir, segment)).mode! & 0o7777, 0o2775, "a folder's setgid is kept");
});

Deno.test("the staged copy swapped for a link to an empty folder before the swap: Chroma is the snapshot's, or unchanged", async () => {
  using store = tempStore({ dbMiB: 8, chromaMiB: 2, segments: 3, seed: 67 });
  using outside = tempDir();
  const stamp = await createdStamp(storeEnv(store));
  const snapshotChroma = treeDigest(join(store.backupDir, "snapshots", stamp, "chroma"));
  Deno.writeTextFileSync(join(store.chromaDir, "after-snapshot"), "live");
  const before = treeDigest(store.chromaDir);
  const run = await restoreStoppedAt(store, [stamp, "--confirm-service-stopped"], "restore_chroma_staged", () => {
    const staged = [...Deno.readDirSync(store.chromaDir)].find((entry) => entry.name.startsWith(".atocore-restore-"))!;
    const path = join(store.chromaDir, staged.name);
    Deno.renameSync(path, join(store.chromaDir, "zz-renamed-by-writer"));
    Deno.symlinkSync(outside.path, path);
  });
  const after = treeDigest(store.chromaDir, ["zz-renamed-by-writer"]);
  if (run.code === 0) {
    for (const [path, digest] of Object.entries(snapshotChroma)) {
      assert.equal(after[path], digest, `${path} is not the snapshot's after a restore that said so: ${run.stderr}`);
    }
  } else {
    assert.deepEqual(after, before, run.stderr);
  }
});

Deno.test("a snapshot's Chroma link changed while the restore copies it is refused (exit 3), Chroma unchanged", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 71 });
  Deno.writeFileSync(join(store.chromaDir, "a-big"), new Uint8Array(48 << 20).fill(7));
  Deno.symlinkSync("a-big", join(store.chromaDir, "z-link"));
  const stamp = await createdStamp(storeEnv(store));
  const snapshotLink = join(store.backupDir, "snapshots", stamp, "chroma", "z-link");
  const before = treeDigest(store.chromaDir);
  const run = await restoreStoppedAt(store, [stamp, "--confirm-service-stopped"], "restore_chroma_staging", () => {
    Deno.removeSync(snapshotLink);
    Deno.symlinkSync("/etc/shadow", snapshotLink);
  });
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /z-link no longer links to a-big, as the manifest says/);
  assert.deepEqual(treeDigest(store.chromaDir), before);
  assert.equal(Deno.readLinkSync(join(store.chromaDir, "z-link")), "a-big");
});
