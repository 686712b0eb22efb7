/**
 * Moving an entry between two folders of one folder: by name between the two held open, the target's folder made when
 * missing, an existing target never replaced, a folder that is a link refused and its target untouched.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { moveBetweenFolders, NotPlainFolderError } from "../../src/fs/move_between.ts";
import { entriesBelow } from "../_faults.ts";
import { tempDir } from "../_helpers.ts";

/** A backup folder holding `.staging/one/file`, and a folder outside it. */
function layout(path: string): { home: string; staged: string; outside: string } {
  const home = join(path, "backups");
  const staged = join(home, ".staging", "one");
  Deno.mkdirSync(staged, { recursive: true });
  Deno.writeTextFileSync(join(staged, "file"), "staged");
  const outside = join(path, "outside");
  Deno.mkdirSync(outside);
  return { home, staged, outside };
}

Deno.test("an entry moves by name into a folder made for it", () => {
  using temp = tempDir("atocore-move-");
  const { home, staged } = layout(temp.path);
  moveBetweenFolders(home, staged, join(home, "snapshots", "two"));
  assert.deepEqual(entriesBelow(home), [".staging", "snapshots", "snapshots/two", "snapshots/two/file"]);
});

Deno.test("an existing target is refused with the caller's error: both entries stay as they were", () => {
  using temp = tempDir("atocore-move-");
  const { home, staged } = layout(temp.path);
  Deno.mkdirSync(join(home, "snapshots", "two"), { recursive: true }); // empty: a plain rename would replace it
  const refuseExisting = (path: string) => new RangeError(`taken: ${path}`);
  assert.throws(() => moveBetweenFolders(home, staged, join(home, "snapshots", "two"), { refuseExisting }), /taken:/);
  assert.deepEqual(entriesBelow(home), [".staging", ".staging/one", ".staging/one/file", "snapshots", "snapshots/two"]);
});

Deno.test("a folder that is a symbolic link is refused, naming it: nothing moves into or out of its target", () => {
  using temp = tempDir("atocore-move-");
  const { home, staged, outside } = layout(temp.path);
  Deno.symlinkSync(outside, join(home, "snapshots"));
  const named = (error: unknown) => error instanceof NotPlainFolderError && error.path === join(home, "snapshots");
  assert.throws(() => moveBetweenFolders(home, staged, join(home, "snapshots", "two")), named);
  assert.deepEqual(entriesBelow(outside), []);
  Deno.removeSync(join(home, "snapshots"));
  Deno.renameSync(join(home, ".staging"), join(temp.path, "staging"));
  Deno.symlinkSync(join(temp.path, "staging"), join(home, ".staging"));
  assert.throws(() => moveBetweenFolders(home, staged, join(home, "snapshots", "two")), NotPlainFolderError);
  assert.deepEqual(entriesBelow(join(temp.path, "staging")), ["one", "one/file"]);
});
