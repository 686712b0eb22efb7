/**
 * Symbolic links in the Chroma folder that point outside it (to a file, to a
 * folder, relative, dangling) are kept as links and never followed: not on
 * backup, not on restore (over the live folder or `--to`), and not when restore
 * clears the live folder's old contents. What they point to is never read into a
 * snapshot, written or removed.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, treeDigest } from "../_faults.ts";

/** The links put in the live Chroma folder, by name, with their targets. */
function linkTargets(outside: string, chromaDir: string): Record<string, string> {
  return {
    "link-to-file": join(outside, "secret.txt"),
    "link-to-folder": join(outside, "folder"),
    "relative-link": relative(chromaDir, join(outside, "secret.txt")),
    "dangling-link": join(outside, "not-there"),
  };
}

function readLinks(folder: string, names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((name) => {
    assert.ok(Deno.lstatSync(join(folder, name)).isSymlink, `${name} is not a link in ${folder}`);
    return [name, Deno.readLinkSync(join(folder, name))];
  }));
}

Deno.test("links in the Chroma folder pointing outside are kept as links, never followed, on backup and restore", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using outside = tempDir("atocore-outside-");
  using scratch = tempDir("atocore-restore-to-");
  const env = storeEnv(store);
  Deno.writeTextFileSync(join(outside.path, "secret.txt"), "outside the store\n");
  Deno.mkdirSync(join(outside.path, "folder"));
  Deno.writeTextFileSync(join(outside.path, "folder", "inner.bin"), "inner\n");
  const links = linkTargets(outside.path, store.chromaDir);
  for (const [name, target] of Object.entries(links)) Deno.symlinkSync(target, join(store.chromaDir, name));
  const outsideBefore = treeDigest(outside.path);

  const created = await runCli(["create", "--chroma"], { env });
  assert.equal(created.code, 0, created.stderr);
  const result = created.json as { stamp: string; backup_root: string; manifest: Record<string, unknown>[] };
  const snapshotChroma = join(result.backup_root, "chroma");
  assert.deepEqual(readLinks(snapshotChroma, Object.keys(links)), links, "the snapshot's links point elsewhere");
  for (const [name, target] of Object.entries(links)) {
    assert.ok(result.manifest.some((entry) => entry.path === `chroma/${name}` && entry.symlink === target), name);
  }
  assert.ok(!result.manifest.some((entry) => String(entry.path).startsWith("chroma/link-to-folder/")));
  const validated = await runCli(["validate", result.stamp], { env });
  assert.equal(validated.code, 0, validated.stdout);

  // The live links (and a segment folder) now point at an outside folder: restore removes links, not what they point to.
  for (const name of Object.keys(links)) {
    Deno.removeSync(join(store.chromaDir, name));
    Deno.symlinkSync(join(outside.path, "folder"), join(store.chromaDir, name));
  }
  const segment = entryNames(store.chromaDir).find((name) => name.includes("-5e9a-"))!;
  Deno.removeSync(join(store.chromaDir, segment), { recursive: true });
  Deno.symlinkSync(join(outside.path, "folder"), join(store.chromaDir, segment));
  const restored = await runCli(["restore", result.stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(readLinks(store.chromaDir, Object.keys(links)), links, "restored links point elsewhere");
  assert.ok(Deno.lstatSync(join(store.chromaDir, segment)).isDirectory, "the segment folder was not restored");
  const rebuilt = await runCli(["restore", result.stamp, "--to", scratch.path], { env });
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.deepEqual(readLinks(join(scratch.path, "chroma"), Object.keys(links)), links, "--to links point elsewhere");

  assert.deepEqual(treeDigest(outside.path), outsideBefore, "a file outside the store was changed or removed");
  assert.deepEqual(entryNames(outside.path), ["folder", "secret.txt"], "something was created outside the store");
});
