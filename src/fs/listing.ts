/**
 * A folder's listing that is whole or fails: Deno's `readDirSync` leaves out what it could not read (an I/O error part
 * way gives a shorter folder, and a partial Chroma copy looked whole), where libc's `readdir` tells a failure from the
 * end. Without FFI, Deno's listing is all there is.
 *
 * @module
 */
import { join } from "node:path";
import { folderCalls } from "../sys/folder_calls.ts";

/**
 * The names in the folder at `path` (links on the way followed, as `Deno.readDirSync` does), not `.` and `..`.
 *
 * @throws {Error} as `Deno.readDirSync` would (`NotFound`, `NotADirectory`, ...), and on a read that fails part way.
 */
export function listNames(path: string): string[] {
  const calls = folderCalls();
  if (calls === null) return [...Deno.readDirSync(path)].map((entry) => entry.name);
  let fd: number;
  try {
    fd = calls.openFolder(path);
  } catch {
    // errno is read by a second call, which what ran between may have changed (EAGAIN for a folder that is not there,
    // under load): Deno's own open says why it fails; should it not fail, the folder is there now: once more
    Deno.readDirSync(path);
    fd = calls.openFolder(path);
  }
  try {
    return calls.names(fd, path);
  } finally {
    calls.close(fd);
  }
}

/**
 * The entries of the folder at `path` as {@linkcode listNames} finds them, each looked at without following a link; an
 * entry gone between the listing and the look is left out, as a later listing would.
 */
export function listEntries(path: string): Deno.DirEntry[] {
  const entries: Deno.DirEntry[] = [];
  for (const name of listNames(path)) {
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(join(path, name));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    entries.push({ name, isFile: info.isFile, isDirectory: info.isDirectory, isSymlink: info.isSymlink });
  }
  return entries;
}
