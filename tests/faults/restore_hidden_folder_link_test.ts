/**
 * A writer of the Chroma folder who swaps the restore's hidden folders (the staged copy, the old entries moved aside)
 * for links to another folder while the restore works in them: the restore's copies, modes, owners and renames stay
 * in the folders it made, and the link's target keeps its files.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, cliRunOf, createdStamp, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { treeDigest } from "../_faults.ts";

/**
 * Once an entry whose name starts with `<prefix>` appears in `<chroma>`, stop process `<pid>`, swap that entry for a
 * link to `<victim>` (the real one kept as `<entry>-aside`), and let the process go on.
 */
const SWAPPER = `
import os, signal, sys, time
pid, chroma, prefix, victim = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
while True:
    names = [n for n in os.listdir(chroma) if n.startswith(prefix) and not n.endswith("-aside")]
    if names:
        break
    time.sleep(0.0001)
os.kill(pid, signal.SIGSTOP)
entry = os.path.join(chroma, names[0])
os.rename(entry, entry + "-aside"); os.symlink(victim, entry)
os.kill(pid, signal.SIGCONT)
`;

/** A restore of `stamp` whose hidden folder named by `prefix` is swapped for a link to `victim` once it appears. */
async function restoreWithSwappedFolder(
  store: ReturnType<typeof tempStore>,
  stamp: string,
  prefix: string,
  victim: string,
) {
  const restore = cliProcess(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) }).spawn();
  const swapper = new Deno.Command("python3", {
    args: ["-c", SWAPPER, String(restore.pid), store.chromaDir, prefix, victim],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const run = cliRunOf(await restore.output());
  const swapped = await Promise.race([swapper.status, new Promise((done) => setTimeout(done, 2000))]);
  if (swapped === undefined) swapper.kill("SIGKILL");
  await swapper.status;
  assert.ok(swapped !== undefined, `the ${prefix}* folder was never seen: nothing was swapped`);
  return run;
}

/** A folder of someone else's, holding files named as Chroma's are (a writer knows the names). */
function victimFolder(root: string, chroma: string): string {
  const victim = join(root, "victim");
  Deno.mkdirSync(victim);
  for (const entry of Deno.readDirSync(chroma)) {
    if (entry.isDirectory) Deno.mkdirSync(join(victim, entry.name));
  }
  Deno.writeTextFileSync(join(victim, "precious"), "another folder's");
  return victim;
}

for (const [what, prefix] of [["staged copy", ".atocore-restore-"], ["old entries' folder", ".atocore-old-"]]) {
  Deno.test(`the restore's ${what} swapped for a link while it works in it: the link's target is kept`, async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 8, segments: 6, seed: 59 });
    using outside = tempDir();
    const stamp = await createdStamp(storeEnv(store));
    const victim = victimFolder(outside.path, store.chromaDir);
    const before = treeDigest(victim);
    const run = await restoreWithSwappedFolder(store, stamp, prefix, victim);
    assert.deepEqual(treeDigest(victim), before, `the link's target was changed (exit ${run.code}): ${run.stderr}`);
    assert.ok(run.code === 0 || run.code === 1, run.stderr);
    if (run.code !== 0) return;
    const restored = treeDigest(store.chromaDir);
    for (const [path, digest] of Object.entries(treeDigest(join(store.backupDir, "snapshots", stamp, "chroma")))) {
      assert.equal(restored[path], digest, `${path} is not the snapshot's after a restore that said it was`);
    }
  });
}
