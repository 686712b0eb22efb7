/**
 * A walked tree's file, or a folder above it, swapped for a symbolic link between the walk and the copy (a Chroma
 * folder's owner racing a root create): the copy never reads through the link, and the entry is reported as changed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyEntries, walkTree } from "../../src/fs/tree.ts";
import { tempDir } from "../_helpers.ts";

/** Every file's text under `root`, by path. */
function texts(root: string): string[] {
  return walkTree(root).filter((entry) => entry.kind === "file").map((entry) =>
    Deno.readTextFileSync(join(root, entry.path))
  );
}

Deno.test("a file swapped for a link after the walk is not copied through it: the copy reports it changed", () => {
  using temp = tempDir("atocore-reached-copy-");
  const source = join(temp.path, "chroma");
  Deno.mkdirSync(join(source, "sub"), { recursive: true });
  Deno.writeTextFileSync(join(source, "sub", "data.bin"), "the tree's");
  const secret = join(temp.path, "secret");
  Deno.writeTextFileSync(secret, "only-secret-tree-31");
  const entries = walkTree(source);

  const file = join(source, "sub", "data.bin");
  Deno.renameSync(file, `${file}-aside`);
  Deno.symlinkSync(secret, file);
  const first = join(temp.path, "first");
  Deno.mkdirSync(first);
  assert.throws(() => copyEntries(source, first, entries), Deno.errors.NotFound);
  assert.ok(!texts(first).includes("only-secret-tree-31"), "copied through the link");

  Deno.removeSync(file);
  Deno.renameSync(`${file}-aside`, file);
  const other = join(temp.path, "other");
  Deno.mkdirSync(other);
  Deno.writeTextFileSync(join(other, "data.bin"), "only-secret-tree-31");
  Deno.renameSync(join(source, "sub"), join(source, "sub-aside"));
  Deno.symlinkSync(other, join(source, "sub")); // the folder above it
  const second = join(temp.path, "second");
  Deno.mkdirSync(second);
  assert.throws(() => copyEntries(source, second, entries), Deno.errors.NotFound);
  assert.ok(!texts(second).includes("only-secret-tree-31"), "copied through the folder's link");

  Deno.removeSync(join(source, "sub"));
  Deno.renameSync(join(source, "sub-aside"), join(source, "sub"));
  const third = join(temp.path, "third");
  Deno.mkdirSync(third);
  assert.deepEqual(copyEntries(source, third, entries), { files: 1, bytes: "the tree's".length });
  assert.deepEqual(texts(third), ["the tree's"]);
});
