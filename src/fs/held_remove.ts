/**
 * Removing a tree inside a folder held open, each entry unlinked inside its parent's descriptor (libc's `unlinkat`): a
 * link is removed, never followed, and a writer who swaps a folder on the way for a link cannot send a removal elsewhere.
 *
 * @module
 */
import { join } from "node:path";
import type { FolderCalls } from "../sys/folder_calls.ts";
import { UnnamableEntryError } from "./tree.ts";

/**
 * Remove the entry `name` of the folder `fd` and, when it is a folder, everything in it, each folder opened inside its
 * parent (one swapped for a link meanwhile fails to open); whether it was there.
 *
 * @throws {UnnamableEntryError} for an entry whose name is not UTF-8 (listed with U+FFFD, a name that reaches nothing):
 *   not gone, and its folder cannot be emptied.
 */
export function removeHeld(calls: FolderCalls, fd: number, name: string, shown: string): boolean {
  const entry = calls.entry(fd, name, shown);
  if (entry === null && name.includes("\uFFFD")) throw new UnnamableEntryError(shown);
  if (entry === null) return false;
  if (entry.isDirectory) {
    const inner = calls.openFolder(name, { fd, shown });
    try {
      for (const child of calls.names(inner, shown)) removeHeld(calls, inner, child, join(shown, child));
    } finally {
      calls.close(inner);
    }
  }
  return entry.isDirectory ? calls.removeFolder(fd, name, shown) : calls.removeFile(fd, name, shown);
}
