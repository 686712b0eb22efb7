/**
 * Create and restore follow symbolic links at the live store's paths, but not another user's link to what that user
 * does not own: a root run would copy the file into the backup folder its user reads, or restore over it.
 *
 * @module
 */
import { RefusedError } from "../errors.ts";
import { type ForeignLink, foreignLinkOnTheWay } from "../fs/foreign_link.ts";
import { ForeignLinkFound, type ReachedFile, reachedFile } from "../fs/reached_file.ts";
import { readRegularFile } from "../fs/regular_file.ts";

/** Refuse (exit 3, nothing changed) when one of `paths` leads through another user's link (`doing`: "create"). */
export function refuseForeignLinks(paths: readonly string[], doing: string): void {
  for (const path of paths) {
    const found = foreignLinkOnTheWay(path);
    if (found !== null) throw foreignLinkRefusal(path, found, doing, "nothing was changed");
  }
}

/**
 * The file the live path `path` reaches when it is about to be opened, each link on the way judged as it is then (the
 * check by path ran earlier, and a link may have been put in meanwhile); `null` where libc's calls do not load.
 *
 * @param outcome What the refusal left as it was, said in it (create: "nothing was published").
 * @throws {RefusedError} (exit 3) for another user's link on the way.
 */
export function reachedLiveFile(path: string, doing: string, outcome = "nothing was published"): ReachedFile | null {
  try {
    return reachedFile(path);
  } catch (error) {
    if (!(error instanceof ForeignLinkFound)) throw error;
    throw foreignLinkRefusal(path, error.found, doing, outcome);
  }
}

/**
 * The bytes of the live regular file `path` (the registry), read from the file its links reach when read: one put in
 * by a link swapped in after the check is refused, as one replaced while opened.
 *
 * @throws {RefusedError} as {@linkcode reachedLiveFile}; the errors of {@linkcode readRegularFile}.
 */
export function readLiveFile(path: string, doing: string): Uint8Array {
  const reached = reachedLiveFile(path, doing);
  if (reached === null) return readRegularFile(path, { followLinks: true });
  return readRegularFile(reached.path, { identity: reached.identity });
}

/** The one-line refusal of `path`, which leads through `found`, saying what `doing` left as it was. */
function foreignLinkRefusal(path: string, found: ForeignLink, doing: string, outcome: string): RefusedError {
  return new RefusedError(
    `${doing} refused: ${path} leads through the symbolic link ${found.link}, owned by uid ${found.linkOwner}, to ` +
      `${found.leadsTo}, owned by uid ${found.targetOwner}; a link is followed only when root, this run's user or ` +
      `the owner of what it leads to owns it; ${outcome}; put the file itself there, or have root make the link`,
  );
}
