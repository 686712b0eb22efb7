/**
 * `--scratch-dir` of `drill` and `restore --from-remote`: where a restore's scratch copy is made, checked to lie
 * outside the store's files and the backup folder.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { UsageError } from "../errors.ts";
import { statThroughFilesOrNull } from "../fs/probe.ts";
import { isSameOrInside } from "../fs/real_path.ts";
import { outputOverlap } from "../path_overlap.ts";

/**
 * `--scratch-dir` as given, once it is known to lie outside the store and the backup folder: the command makes its
 * folder there (kept with a drill's `--keep`), where `list`, cleanup or a restore would find it.
 *
 * @throws {UsageError} naming what it lies in.
 */
export function checkedScratch(config: Config, scratch: string): string {
  statThroughFilesOrNull(scratch); // a loop or an overlong name throws here, named with the flag, not as a drill's check
  const backup = config.backupDir.path;
  const overlap = outputOverlap(config, scratch) ??
    (isSameOrInside(scratch, backup) ? `the backup folder ${backup}, where a scratch copy may not go` : null);
  if (overlap === null) return scratch;
  throw new UsageError(
    `--scratch-dir ${scratch} lies in ${overlap}; nothing was done; give a folder outside the store and the ` +
      `backup folder (the default is the temporary folder)`,
  );
}
