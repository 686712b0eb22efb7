/**
 * Create and restore follow symbolic links at the live store's paths, but not another user's link to what that user
 * does not own: a root run would copy the file into the backup folder its user reads, or restore over it.
 *
 * @module
 */
import { RefusedError } from "../errors.ts";
import { foreignLinkOnTheWay } from "../fs/foreign_link.ts";

/** Refuse (exit 3, nothing changed) when one of `paths` leads through another user's link (`doing`: "create"). */
export function refuseForeignLinks(paths: readonly string[], doing: string): void {
  for (const path of paths) {
    const found = foreignLinkOnTheWay(path);
    if (found === null) continue;
    throw new RefusedError(
      `${doing} refused: ${path} leads through the symbolic link ${found.link}, owned by uid ${found.linkOwner}, to ` +
        `${found.leadsTo}, owned by uid ${found.targetOwner}; a link is followed only when root, this run's user or ` +
        "the owner of what it leads to owns it; nothing was changed; put the file itself there, or have root make " +
        "the link",
    );
  }
}
