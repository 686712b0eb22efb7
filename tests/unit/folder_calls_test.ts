/**
 * libc's calls inside held folders, on real folders and descriptors: a listing that readdir fails part way is an error
 * naming the folder, never a shorter list.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cString } from "../../src/sys/c_string.ts";
import { folderCalls } from "../../src/sys/folder_calls.ts";
import { openFlags } from "../../src/sys/linux_constants.ts";
import { LIBC_NAMES } from "../../src/sys/proc_read.ts";
import { tempDir } from "../_helpers.ts";

const O_PATH = 0o10000000; // the same on x86_64 and arm64 (`asm-generic/fcntl.h`)

/** A descriptor of the folder at `path` that only names it (`O_PATH`): fdopendir takes it, readdir fails (EBADF). */
function pathOnly(path: string): number {
  const { O_DIRECTORY, O_CLOEXEC } = openFlags(Deno.build.arch);
  const libc = LIBC_NAMES.map((name) => {
    try {
      return Deno.dlopen(name, { open: { parameters: ["buffer", "i32"], result: "i32" } });
    } catch {
      return null; // not this libc
    }
  }).find((loaded) => loaded !== null)!;
  try {
    const fd = libc.symbols.open(cString(path), O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert.ok(fd >= 0, `open ${path} with O_PATH`);
    return fd;
  } finally {
    libc.close();
  }
}

Deno.test("names lists a held folder, again and again", () => {
  using dir = tempDir();
  for (const name of ["a", "b", "c"]) Deno.writeTextFileSync(join(dir.path, name), name);
  const calls = folderCalls()!;
  const fd = calls.openFolder(dir.path);
  try {
    assert.deepEqual(calls.names(fd, dir.path).sort(), ["a", "b", "c"]);
    assert.deepEqual(calls.names(fd, dir.path).sort(), ["a", "b", "c"]);
  } finally {
    calls.close(fd);
  }
});

Deno.test("a folder readdir fails on is an error naming it, not an empty listing", () => {
  using dir = tempDir();
  Deno.writeTextFileSync(join(dir.path, "entry"), "x");
  const calls = folderCalls()!;
  const fd = pathOnly(dir.path);
  try {
    assert.throws(() => calls.names(fd, dir.path), (error: Error & { code?: string; path?: string }) => {
      assert.equal(error.code, "EBADF");
      assert.equal(error.path, dir.path);
      assert.equal(error.message, `Bad file descriptor (os error 9): readdir '${dir.path}'`);
      return true;
    });
  } finally {
    calls.close(fd);
  }
});
