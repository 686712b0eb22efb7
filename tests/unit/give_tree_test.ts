/**
 * What a root run gives the backup folder's owner: its own entries only, each opened without following a link; a
 * link, a hard link to another file, or another user's entry put in their place keeps its owner.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { giveEntriesLike, giveTreeLike } from "../../src/fs/give_tree.ts";
import { skipBecause, tempDir } from "../_helpers.ts";

const NOBODY = 65534;

function owner(path: string): number | null {
  return Deno.lstatSync(path).uid;
}

Deno.test("entries given to the folder's owner are this user's own files and folders, never a link's target", () => {
  if (Deno.uid() !== 0) return skipBecause("not root: cannot give files away");
  using temp = tempDir("atocore-give-");
  const outside = join(temp.path, "outside"); // root's, as /etc is
  Deno.mkdirSync(join(outside, "inner"), { recursive: true });
  Deno.writeTextFileSync(join(outside, "file"), "root's");
  const folder = join(temp.path, "backups");
  Deno.mkdirSync(join(folder, "mine"), { recursive: true });
  Deno.writeTextFileSync(join(folder, "mine", "record.json"), "{}");
  Deno.writeTextFileSync(join(folder, "theirs"), "another user's");
  Deno.chownSync(join(folder, "theirs"), 1234, 1234);
  Deno.symlinkSync(outside, join(folder, "linked")); // swapped in for a folder the run made
  Deno.linkSync(join(outside, "file"), join(folder, "hard")); // for a file it made
  Deno.chownSync(folder, NOBODY, NOBODY);

  giveEntriesLike(folder, ["mine", "mine/record.json", "theirs", "linked", "linked/inner", "linked/file", "hard"]);
  assert.deepEqual([owner(join(folder, "mine")), owner(join(folder, "mine", "record.json"))], [NOBODY, NOBODY]);
  assert.equal(owner(join(folder, "theirs")), 1234);
  assert.deepEqual([outside, join(outside, "inner"), join(outside, "file")].map(owner), [0, 0, 0]);

  const tree = join(folder, "tree");
  Deno.mkdirSync(tree);
  Deno.linkSync(join(outside, "file"), join(tree, "hard"));
  Deno.writeTextFileSync(join(tree, "copied"), "made by the run");
  giveTreeLike(tree, folder);
  assert.deepEqual([owner(tree), owner(join(tree, "copied")), owner(join(outside, "file"))], [NOBODY, NOBODY, 0]);
});

Deno.test("without libc's calls (no FFI), a tree given by path is never reached through a link put in its place", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: cannot give files away");
  using temp = tempDir("atocore-give-");
  const outside = join(temp.path, "outside"); // root's, as /etc is
  Deno.mkdirSync(join(outside, "inner"), { recursive: true });
  Deno.writeTextFileSync(join(outside, "inner", "file"), "root's");
  const folder = join(temp.path, "backups");
  Deno.mkdirSync(folder);
  Deno.chownSync(folder, NOBODY, NOBODY);
  const tree = join(folder, "tree");
  Deno.symlinkSync(outside, tree); // swapped in for the folder the run made
  const script = join(temp.path, "give.ts");
  const module = new URL("../../src/fs/give_tree.ts", import.meta.url).href;
  Deno.writeTextFileSync(
    script,
    `import { giveTreeLike } from ${JSON.stringify(module)};
giveTreeLike(${JSON.stringify(tree)}, ${JSON.stringify(folder)});`,
  );
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", script], // no --allow-ffi: the by-path way
  }).output();
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  const inside = [outside, join(outside, "inner"), join(outside, "inner", "file")];
  assert.deepEqual(inside.map(owner), [0, 0, 0], "a link's target was given away");
});
