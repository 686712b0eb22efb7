/**
 * Whether another user could rename what this run makes in a folder, or swap that folder or one above it for a link:
 * what a root run must not make its scratch folders in, where it goes on by their paths.
 *
 * @module
 */
import { dirname } from "node:path";
import { groupHoldsOnly } from "../sys/group_members.ts";
import { runUser } from "../sys/run_user.ts";
import { lstatOrNull, statOrNull } from "./probe.ts";

/**
 * Why another user could rename what this run makes in `folder` (it belongs to another user than this run's and root,
 * or others may write it and it is not sticky; its group counts as others unless it holds only the folder's owner) or a folder above it on its real path, in words naming which, or `null`.
 * `null` too where this run's user cannot be told or the folder is not there.
 */
export function sharedWith(folder: string): string | null {
  const me = runUser();
  const info = statOrNull(folder);
  if (me === null || info === null || info.mode === null) return null;
  const own = why(info, me);
  if (own !== null) return `it ${own}`;
  let path: string;
  try {
    path = Deno.realPathSync(folder);
  } catch {
    return null; // gone meanwhile: making a folder there fails, naming it
  }
  for (let above = dirname(path); above !== path; path = above, above = dirname(above)) {
    const shared = why(lstatOrNull(above), me);
    if (shared !== null) return `the folder ${above} above it ${shared}`;
  }
  return null;
}

/**
 * Why another user than this run's and root could change the file at `path` (links followed), or swap it for another,
 * in words, or `null`: it or a folder on its real path belongs to another user, or its group or others may write it
 * (the group bits also show an ACL's mask: a user an ACL lets write counts) or such a folder, not sticky. Stricter than
 * {@linkcode sharedWith}, for what a root run loads and runs as code (a library): no group counts as holding only its
 * owner. `null` too where this run's user cannot be told or nothing is there.
 */
export function fileOpenToOthers(path: string): string | null {
  const me = runUser();
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch {
    return null; // nothing there: loading it fails, naming it
  }
  if (me === null) return null;
  for (let at = real;; at = dirname(at)) {
    const info = statOrNull(at); // a real path: no link on it
    const what = at === real ? real : `its folder ${at}`;
    if (info === null || info.mode === null) return `${what} cannot be looked at`;
    if (info.uid !== me && info.uid !== 0) return `${what} belongs to user ${info.uid}`;
    const sticky = at !== real && (info.mode & 0o1000) !== 0; // only an entry's owner may rename it
    if (!sticky && (info.mode & 0o022) !== 0) {
      const mode = (info.mode & 0o7777).toString(8);
      return `${what} may be written by its group or others, or users an ACL names (mode ${mode})`;
    }
    if (dirname(at) === at) return null;
  }
}

/**
 * Whether a user other than `me` (this run's; `null`: unknown) and root may rename entries of the folder `info` (its
 * lstat) describes; an unknown folder or mode counts as may.
 */
export function othersMayRename(info: Deno.FileInfo | null, me: number | null): boolean {
  return info === null || info.mode === null || why(info, me ?? -1) !== null;
}

/** Why another user may rename entries of the folder `info` describes, in words (`belongs to user 5`), or `null`. */
function why(info: Deno.FileInfo | null, me: number): string | null {
  if (info === null || info.mode === null) return null;
  if (info.uid !== me && info.uid !== 0) return `belongs to user ${info.uid}`; // root may do anything anyway
  if ((info.mode & 0o1000) !== 0) return null; // sticky: only an entry's owner may rename it
  const mode = (info.mode & 0o7777).toString(8);
  if ((info.mode & 0o002) !== 0) return `may be written by others (mode ${mode})`;
  if ((info.mode & 0o020) === 0 || groupHoldsOnly(info.gid ?? -1, info.uid)) return null;
  return `may be written by its group ${info.gid}, which may hold other users (mode ${mode})`;
}
