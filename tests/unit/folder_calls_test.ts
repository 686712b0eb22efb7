/**
 * libc's calls inside held folders, on real folders and descriptors: a listing that readdir fails part way is an error
 * naming the folder, never a shorter list.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cString } from "../../src/sys/c_string.ts";
import { removeHeld } from "../../src/fs/held_remove.ts";
import { errnoCell } from "../../src/sys/errno.ts";
import { FolderCalls, folderCalls, folderSymbols, type Symbols } from "../../src/sys/folder_calls.ts";
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

/**
 * `symbols` with `name` wrapped so that its first `times` failures leave EAGAIN in errno, as the runtime's own code was
 * seen to between a failed call and the read of its errno (a `statx` of a missing entry read as EAGAIN: CI, stop 42).
 */
function clobbering<K extends keyof Symbols>(
  symbols: Symbols,
  name: K,
  times: number,
): { libc: Symbols; made(): number } {
  const cell = errnoCell(symbols);
  const wrapped = symbols[name] as (...args: unknown[]) => unknown;
  let made = 0;
  let failed = 0;
  const call = (...args: unknown[]) => {
    made += 1;
    const result = wrapped(...args);
    if ((result === null || (typeof result !== "object" && Number(result) < 0)) && failed++ < times) cell[0] = 11;
    return result;
  };
  return { libc: { ...symbols, [name]: call }, made: () => made };
}

Deno.test("a missing entry is missing though errno reads EAGAIN after the failed call: the call is made again", () => {
  using dir = tempDir();
  const { libc, made } = clobbering(folderSymbols()!, "statx", 1);
  const calls = new FolderCalls(libc);
  const fd = calls.openFolder(dir.path);
  try {
    assert.equal(calls.entry(fd, "missing", join(dir.path, "missing")), null);
    assert.equal(made(), 2);
    assert.equal(removeHeld(calls, fd, "missing", join(dir.path, "missing")), false, "removing it finds none");
  } finally {
    calls.close(fd);
  }
});

Deno.test("a listing whose end reads EAGAIN in errno is the whole folder, not a failure", () => {
  using dir = tempDir();
  for (const name of ["a", "b"]) Deno.writeTextFileSync(join(dir.path, name), name);
  const { libc, made } = clobbering(folderSymbols()!, "readdir", 1);
  const calls = new FolderCalls(libc);
  const fd = calls.openFolder(dir.path);
  try {
    assert.deepEqual(calls.names(fd, dir.path).sort(), ["a", "b"]);
    assert.equal(made(), 6, ". .. a b, the end, the end again");
  } finally {
    calls.close(fd);
  }
});

Deno.test("a call still failing with EAGAIN after its repeats is an error naming the path", () => {
  using dir = tempDir();
  const { libc, made } = clobbering(folderSymbols()!, "statx", 99);
  const calls = new FolderCalls(libc);
  const fd = calls.openFolder(dir.path);
  try {
    assert.throws(() => calls.entry(fd, "missing", join(dir.path, "missing")), /os error 11\): statx '.*missing'/);
    assert.equal(made(), 5);
  } finally {
    calls.close(fd);
  }
});
