/**
 * What a run as another user (root) makes in a folder a service's user owns goes to that folder's owner and group, so
 * that the user's own runs can later read it and move it away.
 *
 * @module
 */
import { folderCalls } from "../sys/folder_calls.ts";
import { fitHeld } from "./held_copy.ts";
import { walkTree } from "./tree.ts";

/**
 * Give the tree at `root` (a folder this run made, and every folder and file in it) the owner and group of `folder`,
 * when this run's user is not its owner: each opened inside its parent's descriptor, never through a link, and
 * flushed. A user who may not give files away keeps them, as a Chroma restore's copy does.
 */
export function giveTreeLike(root: string, folder: string): void {
  const { uid, gid } = Deno.statSync(folder);
  // the folder this run made is its user's (Deno.uid() would need --allow-sys)
  if (uid === null || gid === null || uid === Deno.statSync(root).uid) return;
  const calls = folderCalls();
  if (calls === null) return givenByPath(root, uid, gid);
  const fd = calls.openFolderNoFollow(root);
  try {
    if (!calls.setOwner(fd, uid, gid, root)) return;
    let chown = true;
    fitHeld(calls, { fd, path: root }, walkTree(root), (entry, entryFd, shown) => {
      if (chown && (entry.kind === "file" || entry.kind === "dir")) chown = calls.setOwner(entryFd, uid, gid, shown);
    });
  } finally {
    calls.close(fd);
  }
}

/** {@linkcode giveTreeLike} by path, where libc's calls do not load: links are passed over, never followed. */
function givenByPath(root: string, uid: number, gid: number): void {
  try {
    Deno.chownSync(root, uid, gid);
    for (const entry of walkTree(root)) {
      if (entry.kind === "file" || entry.kind === "dir") Deno.chownSync(`${root}/${entry.path}`, uid, gid);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
  }
}
