/**
 * This host's state about a repository (`<backup>/remotes/<key>/`: the pin, the push cache, the journals, the stamps
 * pushed, cleanup's sightings) is written, replaced and removed in place, so its folders must be plain folders, never
 * links elsewhere.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { lstatOrNull } from "../fs/probe.ts";
import { kindOf } from "../fs/regular_file.ts";
import { remoteStateFolders } from "../snapshot/layout.ts";

/**
 * Refuse state folders for `location` that are symbolic links or not folders (those not made yet are fine): through a
 * link, a finished push would remove the journals wherever it points.
 *
 * @throws {UsageError} naming the folder, what it is, and the fix.
 */
export function requireHostStateFolders(backupDir: string, location: string): void {
  for (const folder of remoteStateFolders(backupDir, location)) {
    let info: Deno.FileInfo | null;
    try {
      info = lstatOrNull(folder);
    } catch {
      return; // unreachable (a file on the way, no permission): nothing is written through it, and a write says why
    }
    if (info === null || (info.isDirectory && !info.isSymlink)) continue;
    const what = info.isSymlink
      ? `a symbolic link (to ${Deno.readLinkSync(folder)})`
      : `a ${kindOf(info)}, not a folder`;
    throw new UsageError(
      `${folder} is ${what}: this host's state about the repository at ${location} is written and removed there, ` +
        `never through a link; make it a plain folder (with what it should hold), then run again`,
    );
  }
}
