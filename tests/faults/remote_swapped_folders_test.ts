/**
 * A writer of a folder repository who swaps its folders for links to another folder while pushes and cleanups run,
 * through the CLI under the binary's permissions: nothing is ever made, changed or removed in the links' target.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempDir } from "../_helpers.ts";
import { remoteStore } from "../_remote_cli.ts";
import { startSwapper } from "../_swapper.ts";
import { treeDigest } from "../_faults.ts";

Deno.test("a folder repository's folders swapped for links during pushes and cleanups: the links' target untouched", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  using victim = tempDir("atocore-victim-");
  Deno.writeTextFileSync(join(victim.path, "precious"), "not the repository's");
  Deno.mkdirSync(join(victim.path, "ab"));
  const state = () => ({ files: treeDigest(victim.path), entries: entriesBelow(victim.path) }); // empty folders too
  const before = state();
  const first = await runCli(["create", "--chroma", "--push"], { env: r.env }); // makes packs/, refs/, .tmp/ ...
  assert.equal(first.code, 0, first.stderr);
  const folders = ["packs", ".tmp", "snapshots", "refs", "leases", "condemned"].map((name) => join(r.repoDir, name));
  {
    await using _swapper = startSwapper(victim.path, folders);
    for (let round = 0; round < 8; round++) {
      await runCli(["create", "--chroma", "--push"], { env: r.env }); // refused or done: either is an answer
      await runCli(["remote", "cleanup", "--confirm", "--keep-daily", "1"], { env: r.env });
    }
  }
  assert.deepEqual(state(), before, "the links' target changed");
});

/** Every path below `root`, folders included. */
function entriesBelow(root: string, relative = ""): string[] {
  return [...Deno.readDirSync(join(root, relative))].flatMap((entry) => {
    const path = join(relative, entry.name);
    return entry.isDirectory ? [path, ...entriesBelow(root, path)] : [path];
  }).sort();
}
