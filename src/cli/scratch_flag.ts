/**
 * `--scratch-dir` of `drill` and `restore --from-remote`: where a restore's scratch copy is made, checked to lie
 * outside the store's files and the backup folder; and `--to DIR` of `restore --from-remote`, outside the repository.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { RefusedError, UsageError } from "../errors.ts";
import { foreignLinkOnTheWay } from "../fs/foreign_link.ts";
import { sharedWith } from "../fs/shared_folder.ts";
import { statThroughFilesOrNull } from "../fs/probe.ts";
import { isSameOrInside } from "../fs/real_path.ts";
import { outputOverlap } from "../path_overlap.ts";

/**
 * `--scratch-dir` as given, once it is known to lie outside the store and the backup folder: the command makes its
 * folder there (kept with a drill's `--keep`), where `list`, cleanup or a restore would find it; and not to lead
 * through another user's link to what that user does not own, where a root run would fill a folder that user may not;
 * nor to be a folder another user may rename entries of (see `sharedWith`): the copy goes there by path.
 *
 * @throws {UsageError} naming what it lies in, or when it is no folder.
 * @throws {RefusedError} naming the link, or the folder another user may write.
 */
export function checkedScratch(config: Config, scratch: string, repository: string | null): string {
  // a loop or an overlong name throws here, named with the flag, not as a drill's check
  const found = statThroughFilesOrNull(scratch);
  const link = foreignLinkOnTheWay(scratch, true);
  if (link !== null) {
    throw new RefusedError(
      `--scratch-dir ${scratch} leads through the symbolic link ${link.link}, owned by uid ${link.linkOwner}, to ` +
        `${link.leadsTo}, owned by uid ${link.targetOwner}; a link is followed only when root, this run's user or ` +
        "the owner of what it leads to owns it; nothing was done; give a path without it, or have root make the link",
    );
  }
  const shared = sharedWith(scratch);
  if (shared !== null) {
    throw new RefusedError(
      `--scratch-dir ${scratch} is no place for a scratch copy: ${shared}, so another user could swap the folder made ` +
        "there for a link while the copy is written through its path; nothing was done; give a folder that only this " +
        "user or root may write (the default is the temporary folder)",
    );
  }
  const overlap = scratchOverlap(config, scratch, repository);
  if (overlap !== null) {
    const apart = apartFrom(repository);
    throw new UsageError(
      `--scratch-dir ${scratch} lies in ${overlap}; nothing was done; give a folder outside ${apart} (the default is ` +
        "the temporary folder)",
    );
  }
  if (found?.isDirectory) return scratch;
  throw new UsageError( // said now, not once the snapshot is read
    `--scratch-dir ${scratch} ${found === null ? "does not exist" : "is not a folder"}; nothing was done; give an ` +
      "existing folder with room for the scratch copy",
  );
}

/**
 * Refuse the system's temporary folder (`TMPDIR`), where a drill given no `--scratch-dir` makes its scratch copy, when
 * it lies in the store or the backup folder, or another user may rename entries of it (see `sharedWith`; `/tmp` is
 * sticky): checked before anything is fetched or restored.
 *
 * @throws {UsageError} naming the folder, `TMPDIR` and what it lies in.
 * @throws {RefusedError} naming the folder and why another user may write it.
 */
export function checkTempFolder(config: Config, temp: string, repository: string | null): void {
  const overlap = scratchOverlap(config, temp, repository);
  if (overlap !== null) {
    throw new UsageError(
      `the temporary folder ${temp} (TMPDIR), where the scratch copy goes, lies in ${overlap}; nothing was done; ` +
        `set TMPDIR to a folder outside ${apartFrom(repository)}, or give --scratch-dir DIR`,
    );
  }
  const shared = sharedWith(temp);
  if (shared === null) return;
  throw new RefusedError(
    `the temporary folder ${temp} (TMPDIR) is no place for the scratch copy: ${shared}, so another user could swap ` +
      "the folder made there for a link while the copy is written through its path; nothing was done; set TMPDIR to " +
      "a folder that only this user or root may write, or give --scratch-dir DIR",
  );
}

/** What a scratch copy must lie outside of: the store, the backup folder, and the folder `repository` where one is given. */
function apartFrom(repository: string | null): string {
  return repository === null ? "the store and the backup folder" : "the store, the backup folder and the repository";
}

/**
 * What part of the store, the backup folder or the folder `repository` `scratch` lies in, or `null`: a scratch copy is
 * decrypted, and in the repository it would lie beside what only the identity opens.
 */
function scratchOverlap(config: Config, scratch: string, repository: string | null): string | null {
  const backup = config.backupDir.path;
  if (repository !== null && isSameOrInside(scratch, repository)) {
    return `the folder repository ${repository}, where the decrypted copy would lie among the encrypted objects`;
  }
  return outputOverlap(config, scratch) ??
    (isSameOrInside(scratch, backup) ? `the backup folder ${backup}, where a scratch copy may not go` : null);
}

/**
 * Refuse `restore --from-remote --to DIR` into the folder `repository` (`null`: none, or not a folder), where the store
 * restored is decrypted and would lie among the encrypted objects, on storage trusted with ciphertext only; and a DIR
 * that holds the repository, whose folder (`DIR/chroma`, say) a restore with `--force` would replace.
 *
 * @throws {UsageError} naming the folder and the repository.
 */
export function refuseToInRepository(to: string, repository: string | null): void {
  if (repository === null) return;
  const where = isSameOrInside(to, repository)
    ? `lies in the folder repository ${repository}, where the decrypted store would lie among the encrypted objects`
    : isSameOrInside(repository, to)
    ? `holds the folder repository ${repository}, which the restore's files there could replace`
    : null;
  if (where === null) return;
  throw new UsageError(`--to ${to} ${where}; nothing was done; give a folder apart from the repository`);
}
