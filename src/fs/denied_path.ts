/**
 * The first path in a folder tree this user is denied reading: a folder it may not list or enter, a file it may not
 * open. Requires `--allow-read`.
 *
 * @module
 */
import { closeSync } from "node:fs";
import { join } from "node:path";
import { openRegularFile } from "./regular_file.ts";
import { listNames } from "./listing.ts";

/**
 * The first path at or below the folder `root` (parents first, by name) that this user may not read, or `null`: what
 * tells a tree that could not be read from a damaged one. Only regular files are opened (without blocking, never
 * through a link); an entry gone meanwhile, or another error, is left to the reader that meets it.
 */
export function deniedPath(root: string): string | null {
  let names: string[];
  try {
    names = listNames(root).sort();
  } catch (error) {
    return error instanceof Deno.errors.PermissionDenied ? root : null;
  }
  for (const name of names) {
    const denied = deniedEntry(join(root, name));
    if (denied !== null) return denied;
  }
  return null;
}

/** `path` when this user may not look at it or open it, the first such path below it for a folder, else `null`. */
function deniedEntry(path: string): string | null {
  try {
    const info = Deno.lstatSync(path);
    if (info.isDirectory) return deniedPath(path);
    if (info.isFile) closeSync(openRegularFile(path, { maxBytes: Infinity }).fd);
    return null;
  } catch (error) {
    return error instanceof Deno.errors.PermissionDenied ? path : null;
  }
}
