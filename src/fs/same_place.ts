/**
 * Whether one path lies at or inside another judged by identity (device and inode), not by spelling: a bind mount of a
 * folder, or a second hard link to a file, is the same place under another name. Requires `--allow-read`.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { statOrNull } from "./probe.ts";

/**
 * Tell whether `inner` is `outer`, or lies inside it, through any mount or name: some folder on the way up from `inner`
 * is the same folder as `outer` (or as `outer`'s nearest existing folder, with the rest of the path the same).
 * Both paths should be absolute with their symbolic links already resolved.
 */
export function samePlaceOrInside(inner: string, outer: string): boolean {
  const [outerKey, outerRest] = nearestExisting(outer);
  if (outerKey === null) return false;
  let path = inner;
  let rest = "";
  for (;;) {
    const key = identityKey(path);
    if (key === outerKey && (outerRest === "" || rest === outerRest || rest.startsWith(`${outerRest}/`))) return true;
    const parent = dirname(path);
    if (parent === path) return false;
    rest = rest === "" ? basename(path) : join(basename(path), rest);
    path = parent;
  }
}

/** The identity of the nearest existing folder or file at or above `path`, and the part of `path` below it. */
function nearestExisting(path: string): [string | null, string] {
  let rest = "";
  for (let at = path;; at = dirname(at)) {
    const key = identityKey(at);
    if (key !== null) return [key, rest];
    if (dirname(at) === at) return [null, rest];
    rest = rest === "" ? basename(at) : join(basename(at), rest);
  }
}

/** `DEVICE:INODE` of what is at `path` (following links), or `null` when nothing is there or it cannot be known. */
function identityKey(path: string): string | null {
  let info: Deno.FileInfo | null;
  try {
    info = statOrNull(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return null; // not a folder, or not ours to look into: judged from the folders above it
  }
  return info?.dev == null || info.ino == null ? null : `${info.dev}:${info.ino}`;
}
