/**
 * A Chroma folder with more folders than the process may hold descriptors: the restore's copy inside held folders keeps
 * only a chain of them open, so it restores under a low open-file limit.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCliInShell, storeEnv, tempStore } from "../_helpers.ts";
import { treeDigest } from "../_faults.ts";

Deno.test("a Chroma folder of 400 folders restores with at most 256 open files", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 73 });
  for (let i = 0; i < 400; i++) {
    Deno.mkdirSync(join(store.chromaDir, "many", `folder-${i}`), { recursive: true });
    Deno.writeTextFileSync(join(store.chromaDir, "many", `folder-${i}`, "data"), `${i}`);
  }
  const stamp = await createdStamp(storeEnv(store));
  const snapshot = treeDigest(join(store.backupDir, "snapshots", stamp, "chroma"));
  Deno.removeSync(join(store.chromaDir, "many"), { recursive: true });
  const run = await runCliInShell('ulimit -n 256 && exec "$@"', ["restore", stamp, "--confirm-service-stopped"], {
    ...storeEnv(store),
  });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(treeDigest(store.chromaDir), snapshot);
});
