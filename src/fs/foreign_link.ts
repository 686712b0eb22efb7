/**
 * Whether a path leads through a symbolic link that another user could point anywhere: a run as root that follows the
 * service's user's link to a file the user does not own would copy it into the user's backup folder, or restore over it.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { runUser } from "../sys/run_user.ts";
import { lstatOrNull, statOrNull } from "./probe.ts";
import { realPathAsFarAsExists } from "./real_path.ts";

/** A link on the way to a path whose owner is neither this run's user, nor root, nor the owner of what it leads to. */
export interface ForeignLink {
  link: string;
  linkOwner: number;
  leadsTo: string;
  targetOwner: number;
}

/** Links resolved at most, as the kernel's limit: past it, the path's own checks name the loop. */
const MOST_LINKS = 40;

/**
 * The first symbolic link on the way to `path` (its folders' and its own) owned by a user who is neither this run's,
 * nor root, nor the owner of what the link finally leads to; `null` when there is none (or the path does not exist).
 * With `creating` (a file the run will make there), a link leading to nothing yet counts as leading to the deepest
 * folder that exists on its way, where the file would be made.
 */
export function foreignLinkOnTheWay(path: string, creating = false): ForeignLink | null {
  const user = runUser();
  let pending = resolve(path).split("/").filter((name) => name !== "");
  let at = "/";
  for (let links = 0; pending.length > 0;) {
    const next = join(at, pending.shift()!);
    const info = lstatQuietly(next);
    if (info === null) return null; // not there, or not reachable: the path's own checks name it
    if (!info.isSymlink) {
      at = next;
      continue;
    }
    const target = statQuietly(next) ?? (creating ? deepestExisting(next) : null);
    if (target === null || ++links > MOST_LINKS) return null;
    const owner = info.uid ?? 0;
    if (owner !== 0 && owner !== user && owner !== target.uid) {
      return { link: next, linkOwner: owner, leadsTo: realPathAsFarAsExists(next), targetOwner: target.uid ?? 0 };
    }
    const text = Deno.readLinkSync(next);
    pending = [...text.split("/").filter((name) => name !== ""), ...pending];
    at = text.startsWith("/") ? "/" : dirname(next);
  }
  return null;
}

/** What exists deepest on the way to where the dangling link `link` leads (its folder, or one above). */
function deepestExisting(link: string): Deno.FileInfo | null {
  for (let at = dirname(realPathAsFarAsExists(link));; at = dirname(at)) {
    const found = statQuietly(at);
    if (found !== null || at === dirname(at)) return found;
  }
}

/** What is at `path` (not followed), or `null` when nothing is or it cannot be reached (a file on the way, no access). */
function lstatQuietly(path: string): Deno.FileInfo | null {
  try {
    return lstatOrNull(path);
  } catch {
    return null;
  }
}

/** What `path` leads to, or `null` when nothing or it cannot be reached (a broken or looping link, no access). */
function statQuietly(path: string): Deno.FileInfo | null {
  try {
    return statOrNull(path);
  } catch {
    return null;
  }
}
