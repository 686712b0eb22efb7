/**
 * What a run as another user (root) makes in a folder a service's user owns goes to that folder's owner and group, so
 * that the user's own runs can later read it and move it away.
 *
 * @module
 */
import { lchownSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type FolderCalls, folderCalls } from "../sys/folder_calls.ts";
import { fitHeld, OpenTree } from "./held_copy.ts";
import { lstatOrNull } from "./probe.ts";
import { walkTree } from "./tree.ts";

/**
 * Give the tree at `root` (a folder this run made, and every folder and file in it) the owner and group of `folder`,
 * when this run's user is not its owner: each opened inside its parent's descriptor, never through a link, and
 * flushed. A user who may not give files away keeps them, as a Chroma restore's copy does. With `held` (`root`'s
 * descriptor), the tree given is the one it holds, wherever `root`'s path leads now.
 */
export function giveTreeLike(root: string, folder: string, held?: number): void {
  const { uid, gid } = Deno.statSync(folder);
  const calls = folderCalls();
  // the folder this run made is its user's (Deno.uid() would need --allow-sys)
  const maker = held !== undefined && calls !== null ? calls.ownerOf(held, root) : Deno.statSync(root).uid;
  if (uid === null || gid === null || uid === maker) return;
  if (calls === null) return givenByPath(root, uid, gid);
  const fd = held === undefined ? calls.openFolderNoFollow(root) : calls.duplicate(held, root);
  try {
    if (!calls.setOwner(fd, uid, gid, root)) return;
    let chown = true;
    fitHeld(calls, { fd, path: root }, walkTree(root), (entry, entryFd, shown) => {
      if (!chown || !ours(calls, entryFd, shown)) return;
      if (entry.kind === "file" || entry.kind === "dir") chown = calls.setOwner(entryFd, uid, gid, shown);
    });
  } finally {
    calls.close(fd);
  }
}

/**
 * Give the entries at `paths` (relative to `folder`, each below `folder` itself, e.g. `snapshots` or
 * `integrity/STAMP.json`) that this run's user owns, each folder or file alone, the owner and group of `folder`, when
 * this run's user is not its owner: each opened inside its parent's descriptor, never through a link, and flushed. One
 * that is not there, reached through a link, not a file or folder, or another user's (put there meanwhile) is left as
 * it is; a user who may not give files away keeps them.
 */
export function giveEntriesLike(folder: string, paths: string[]): void {
  const { uid, gid } = Deno.statSync(folder);
  const calls = folderCalls();
  if (uid === null || gid === null) return;
  if (calls === null) return givenEntriesByPath(folder, paths, uid, gid);
  if (uid === calls.user()) return;
  using tree = new OpenTree(calls, { fd: calls.openFolder(folder), path: folder }, { ownsRoot: true });
  for (const path of paths) {
    let fd: number | null;
    try {
      fd = openOurs(calls, tree, path);
    } catch (error) {
      if (["ENOENT", "ELOOP", "ENOTDIR"].includes(String((error as { code?: unknown }).code))) continue;
      throw error;
    }
    if (fd === null) continue;
    try {
      if (!calls.setOwner(fd, uid, gid, join(folder, path))) return;
      calls.syncNow(fd, join(folder, path));
    } finally {
      calls.close(fd);
    }
  }
}

/**
 * Give the file (or folder) at `path`, when this run's user made it, the owner and group of the folder it is in (see
 * {@linkcode giveEntriesLike}: never through a link): for a record a root run keeps in a service's user's folder, which
 * that user's runs finish or remove.
 */
export function giveLikeItsFolder(path: string): void {
  giveEntriesLike(dirname(path), [basename(path)]);
}

/**
 * {@linkcode giveEntriesLike} for the folder `path` (relative to `folder`), the folders on the way to it and everything
 * in it: for state a run keeps and updates there (the folders are walked by path; each entry is then opened as above).
 */
export function giveTreeBelowLike(folder: string, path: string): void {
  const names = path.split("/");
  const above = names.map((_, index) => names.slice(0, index + 1).join("/"));
  const inside = lstatOrNull(join(folder, path))?.isDirectory ? walkTree(join(folder, path)) : [];
  giveEntriesLike(folder, [...above, ...inside.map((entry) => join(path, entry.path))]);
}

/** The descriptor of the file or folder `path` in `tree` (never a link), `null` when it is neither or not ours. */
function openOurs(calls: FolderCalls, tree: OpenTree, path: string): number | null {
  const { parent, name, shown } = tree.place(path);
  const entry = calls.entry(parent, name, shown);
  if (entry === null || !(entry.isFile || entry.isDirectory)) return null;
  // O_NOFOLLOW either way: an entry swapped for a link since fails to open
  const fd = entry.isDirectory ? calls.openFolder(name, { fd: parent, shown }) : calls.openFile(parent, name, shown);
  if (ours(calls, fd, shown)) return fd;
  calls.close(fd);
  return null;
}

/**
 * Whether the descriptor `fd` holds a folder, or a file of one name, that this run's user owns: what it made (a hard
 * link a writer of the folder put in its place may name another file of this user's, never given away).
 */
function ours(calls: FolderCalls, fd: number, shown: string): boolean {
  const opened = calls.entryOf(fd, shown);
  const single = opened.isDirectory || (opened.isFile && opened.links === 1);
  return single && calls.ownerOf(fd, shown) === calls.user();
}

/** {@linkcode giveEntriesLike} by path, where libc's calls do not load: links are passed over, never followed. */
function givenEntriesByPath(folder: string, paths: string[], uid: number, gid: number): void {
  try {
    for (const path of paths) {
      const info = lstatOrNull(join(folder, path));
      if ((info?.isFile || info?.isDirectory) && info.uid !== uid) lchownSync(join(folder, path), uid, gid);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
  }
}

/** {@linkcode giveTreeLike} by path, where libc's calls do not load: links are passed over, never followed. */
function givenByPath(root: string, uid: number, gid: number): void {
  if (!lstatOrNull(root)?.isDirectory) return; // a link put in its place: its target's entries are not this run's
  try {
    lchownSync(root, uid, gid);
    for (const entry of walkTree(root)) {
      if (entry.kind === "file" || entry.kind === "dir") lchownSync(`${root}/${entry.path}`, uid, gid);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
  }
}
