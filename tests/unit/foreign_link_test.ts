/**
 * Which links on the way to a path another user could point anywhere: one owned by neither root, this run's user nor
 * the owner of what it leads to, wherever it sits in the path or in a chain of links.
 */
import assert from "node:assert/strict";
import { lchownSync } from "node:fs";
import { join } from "node:path";
import { foreignLinkOnTheWay } from "../../src/fs/foreign_link.ts";
import { ForeignLinkFound, reachedFile } from "../../src/fs/reached_file.ts";
import { skipBecause, tempDir } from "../_helpers.ts";

const NOBODY = 65534;

function link(target: string, path: string, owner: number): void {
  Deno.symlinkSync(target, path);
  lchownSync(path, owner, owner);
}

Deno.test("a link of another user to what that user does not own is found in a folder's path and in a chain", () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using temp = tempDir("atocore-foreign-");
  const rootOnly = join(temp.path, "root-only");
  Deno.mkdirSync(rootOnly);
  Deno.writeTextFileSync(join(rootOnly, "atocore.db"), "root's");
  const users = join(temp.path, "users");
  Deno.mkdirSync(users);
  Deno.writeTextFileSync(join(users, "atocore.db"), "the user's");
  Deno.chownSync(users, NOBODY, NOBODY);
  Deno.chownSync(join(users, "atocore.db"), NOBODY, NOBODY);

  link(rootOnly, join(temp.path, "data"), NOBODY); // the folder on the way
  const found = foreignLinkOnTheWay(join(temp.path, "data", "atocore.db"));
  assert.deepEqual(found, { link: join(temp.path, "data"), linkOwner: NOBODY, leadsTo: rootOnly, targetOwner: 0 });

  link(join(rootOnly, "atocore.db"), join(users, "second"), NOBODY); // root's link to the user's link
  link(join(users, "second"), join(temp.path, "first"), 0);
  assert.equal(foreignLinkOnTheWay(join(temp.path, "first"))?.link, join(users, "second"));

  link("atocore.db", join(users, "own"), NOBODY); // the user's link to the user's file, relative
  assert.equal(foreignLinkOnTheWay(join(users, "own")), null);
  link(join(users, "atocore.db"), join(temp.path, "roots"), 0);
  assert.equal(foreignLinkOnTheWay(join(temp.path, "roots")), null);
  assert.equal(foreignLinkOnTheWay(join(temp.path, "missing", "x")), null);
  assert.equal(foreignLinkOnTheWay(join(users, "atocore.db", "x")), null, "a file on the way: its own checks name it");
});

Deno.test("the file a live path reaches, walked through held folders, is judged link by link as the check judges it", () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using temp = tempDir("atocore-reached-");
  const rootOnly = join(temp.path, "root-only");
  Deno.mkdirSync(rootOnly);
  Deno.writeTextFileSync(join(rootOnly, "atocore.db"), "root's");
  const users = join(temp.path, "users");
  Deno.mkdirSync(join(users, "sub"), { recursive: true });
  Deno.writeTextFileSync(join(users, "atocore.db"), "the user's");
  for (const path of [users, join(users, "sub"), join(users, "atocore.db")]) Deno.chownSync(path, NOBODY, NOBODY);
  const identity = (path: string) => {
    const info = Deno.statSync(path);
    return { dev: info.dev, ino: info.ino };
  };

  link(rootOnly, join(temp.path, "data"), NOBODY); // the folder on the way
  const found = (path: string) => {
    try {
      return reachedFile(path);
    } catch (error) {
      if (error instanceof ForeignLinkFound) return error.found;
      throw error;
    }
  };
  const expected = { link: join(temp.path, "data"), linkOwner: NOBODY, leadsTo: rootOnly, targetOwner: 0 };
  assert.deepEqual(found(join(temp.path, "data", "atocore.db")), expected);
  link(join(rootOnly, "atocore.db"), join(users, "second"), NOBODY); // root's link to the user's link
  link(join(users, "second"), join(temp.path, "first"), 0);
  assert.throws(() => reachedFile(join(temp.path, "first")), ForeignLinkFound);

  link("../atocore.db", join(users, "sub", "own"), NOBODY); // the user's link to the user's file, relative, with ..
  const own = join(users, "atocore.db");
  assert.deepEqual(reachedFile(join(users, "sub", "own")), { path: own, identity: identity(own) });
  link(join(rootOnly, "atocore.db"), join(temp.path, "roots"), 0); // root's link to root's file
  assert.equal(reachedFile(join(temp.path, "roots"))?.path, join(rootOnly, "atocore.db"));
  assert.throws(() => reachedFile(join(temp.path, "missing", "x")), Deno.errors.NotFound);
});
