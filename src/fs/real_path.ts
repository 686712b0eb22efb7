/**
 * Comparing paths by what they are on disk, not by how they are spelt: symbolic links and `..` resolved as far as
 * the path exists, and folders compared by identity (device and inode), which also sees through bind mounts.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { filesystemPlace } from "../sys/mounts.ts";

/** How many links in a row are followed before a path is taken as it is (the kernel's own bound). */
const MAX_LINKS = 40;

/**
 * `path` with symbolic links and `..` resolved as far as it exists: the real path of its deepest existing part,
 * with the rest appended. A dangling link is resolved to where it points.
 */
export function realPathAsFarAsExists(path: string, links = 0): string {
  const absolute = resolve(path);
  try {
    return Deno.realPathSync(absolute);
  } catch {
    // Missing, a loop, or not readable: resolve the parent and append the rest.
  }
  const parent = dirname(absolute);
  if (parent === absolute) return absolute;
  const realParent = realPathAsFarAsExists(parent, links);
  const target = linkTarget(join(realParent, basename(absolute)));
  if (target !== null && links < MAX_LINKS) return realPathAsFarAsExists(resolve(realParent, target), links + 1);
  return join(realParent, basename(absolute));
}

/**
 * Whether `inner` is `outer` or lies inside it: compared on real paths, and, where `outer` exists, by the identity of
 * `inner` and each folder above it (so a bind mount of `outer` elsewhere, or a hard link to a file, is seen too).
 * Nothing lies inside an existing file: a path through one is not inside it (it can never be made).
 */
export function isSameOrInside(inner: string, outer: string): boolean {
  const realInner = realPathAsFarAsExists(inner);
  const realOuter = realPathAsFarAsExists(outer);
  const identity = statQuietly(realOuter);
  const rest = relative(realOuter, realInner);
  if (rest === "") return true;
  if (identity !== null && !identity.isDirectory) return sameFile(statQuietly(realInner), identity);
  if (rest !== ".." && !rest.startsWith("../") && !isAbsolute(rest)) return true;
  if (identity === null) return false;
  for (let folder = realInner;; folder = dirname(folder)) {
    if (sameFile(statQuietly(folder), identity)) return true;
    if (dirname(folder) === folder) return insideByPlace(realInner, realOuter);
  }
}

/**
 * Whether `inner` lies at or inside the existing folder `outer` where their filesystem holds them, whichever mounts
 * reach them: a bind mount of a folder inside `outer` (a Chroma segment shown as a restore's target) is inside it,
 * though no folder above `inner` is `outer` itself. `false` when the mount table cannot be read.
 */
function insideByPlace(inner: string, outer: string): boolean {
  let existing = inner;
  while (statQuietly(existing) === null && dirname(existing) !== existing) existing = dirname(existing);
  // only through a bind mount of a folder inside a filesystem: two mounts of a root are seen by identity, and NFS
  // shows every mount's root as "/" (two exports of one volume would compare as one folder)
  const innerPlace = filesystemPlace(existing);
  if (innerPlace === null || !innerPlace.bound) return false;
  const outerPlace = filesystemPlace(outer);
  if (outerPlace === null || innerPlace.device !== outerPlace.device) return false;
  const rest = relative(outerPlace.path, join(innerPlace.path, relative(existing, inner)));
  return rest === "" || (rest !== ".." && !rest.startsWith("../") && !isAbsolute(rest));
}

/** Whether two stats are of one file or folder (a hard link, a bind mount); never where the system gives no inode. */
function sameFile(first: Deno.FileInfo | null, second: Deno.FileInfo): boolean {
  return first !== null && second.ino !== null && first.dev === second.dev && first.ino === second.ino;
}

/** The target of the symbolic link at `path`, or `null` when it is not one (or cannot be read). */
function linkTarget(path: string): string | null {
  try {
    return Deno.lstatSync(path).isSymlink ? Deno.readLinkSync(path) : null;
  } catch {
    return null;
  }
}

/** `Deno.statSync`, or `null` when the path cannot be statted (missing, not reachable, not permitted). */
export function statQuietly(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}
