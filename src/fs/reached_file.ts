/**
 * The file a live path reaches, found one name at a time through held descriptors: each symbolic link is judged (as
 * foreign_link.ts judges it) by its own owner and text, read from the link itself, so no rename meanwhile changes it.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { type FolderCalls, folderCalls, type Identity } from "../sys/folder_calls.ts";
import { runUser } from "../sys/run_user.ts";
import type { ForeignLink } from "./foreign_link.ts";

/** A link on the way was found to be another user's link to what that user does not own, when it was followed. */
export class ForeignLinkFound extends Error {
  /** Name the link. */
  constructor(readonly found: ForeignLink) {
    super(`${found.link} is uid ${found.linkOwner}'s link to ${found.leadsTo}, owned by uid ${found.targetOwner}`);
    this.name = "ForeignLinkFound";
  }
}

/** What a live path reached: the file's path with no link in it, and its identity, to compare what is opened with. */
export interface ReachedFile {
  path: string;
  identity: Identity;
}

/** Links followed at most, as the kernel's limit. */
const MOST_LINKS = 40;

/**
 * The file `path` reaches, every link on the way judged when followed; `null` where libc's calls do not load (the
 * callers then have only the check by path). What is opened afterwards by the returned path must have its identity.
 *
 * @throws {ForeignLinkFound} for a link owned by neither root, this run's user nor the owner of what it leads to.
 * @throws the OS error of a name that is missing or cannot be reached (`NotFound`, `NotADirectory`, ...).
 */
export function reachedFile(path: string): ReachedFile | null {
  const calls = folderCalls();
  if (calls === null) return null;
  const walk = new Walk(calls, runUser());
  const root = { fd: calls.openFolder("/"), path: "/" };
  try {
    const reached = walk.follow(root, namesOf(resolve(path)), root);
    try {
      return { path: reached.path, identity: calls.identity(reached.fd, reached.path) };
    } finally {
      calls.close(reached.fd);
    }
  } finally {
    calls.close(root.fd);
  }
}

/** A held descriptor (`O_PATH` or a folder) and the path it was reached as, no link in it. */
interface Held {
  fd: number;
  path: string;
}

/** One walk: the calls, the run's user, and the links followed so far. */
class Walk {
  private links = 0;
  constructor(private readonly calls: FolderCalls, private readonly user: number | null) {}

  /** What `names` lead to from `from` (not closed here), links followed and judged: a descriptor to close. */
  follow(from: Held, names: string[], root: Held): Held {
    let at: Held = { fd: this.calls.duplicate(from.fd, from.path), path: from.path };
    try {
      for (const name of names) {
        const path = name === ".." ? dirname(at.path) : name === "." ? at.path : join(at.path, name);
        const next = { fd: this.calls.holdEntry(at.fd, name, path), path };
        const reached = this.throughLink(at, next, root);
        this.calls.close(at.fd);
        at = reached;
      }
      return at;
    } catch (error) {
      this.calls.close(at.fd);
      throw error;
    }
  }

  /** `next` itself, or what it leads to when it is a link (judged by its owner); `next` is then closed. */
  private throughLink(at: Held, next: Held, root: Held): Held {
    const entry = this.calls.heldEntry(next.fd, next.path);
    if (!entry.isLink) return next;
    try {
      if (++this.links > MOST_LINKS) {
        throw Object.assign(new Error(`too many levels of symbolic links: ${next.path}`), { code: "ELOOP" });
      }
      const text = this.calls.readLink(next.fd, next.path);
      const target = this.follow(text.startsWith("/") ? root : at, namesOf(text), root);
      const owner = entry.owner;
      const targetOwner = this.calls.heldEntry(target.fd, target.path).owner;
      if (owner !== 0 && owner !== this.user && owner !== targetOwner) {
        this.calls.close(target.fd);
        throw new ForeignLinkFound({ link: next.path, linkOwner: owner, leadsTo: target.path, targetOwner });
      }
      return target;
    } finally {
      this.calls.close(next.fd);
    }
  }
}

/** The names of a path (an empty one, as `a//b` holds, left out). */
function namesOf(path: string): string[] {
  return path.split("/").filter((name) => name !== "");
}
