/**
 * This host's state about a repository (`<backup>/remotes/<key>/`: the pin, the push cache, the journals, the stamps
 * pushed, cleanup's sightings) is written, replaced and removed in place: its folders must be plain folders, and are
 * held open while written, so that one swapped for a link elsewhere later gets nothing.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { lstatOrNull, statOrNull } from "../fs/probe.ts";
import { ensureDir } from "../fs/durable.ts";
import { kindOf } from "../fs/regular_file.ts";
import { pushJournalDir, remotesRoot, remoteStateDir, remoteStateFolders } from "../snapshot/layout.ts";
import { type StateFile, StateFolder } from "../fs/state_folder.ts";
import { basename, dirname } from "node:path";

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
    throw notPlainFolder(folder, location);
  }
}

/**
 * This host's state about the repository at `location`, held open: `remotes/` and `remotes/<key>/` (and its `journal`)
 * are opened from the backup folder at their first use, made when missing and never through a link, then every file
 * there is made, replaced and removed by name in the folder held, whatever is swapped meanwhile.
 */
export class HostState implements Disposable {
  private held: StateFolder | null = null;
  private journals: StateFolder | null = null;

  /** The state about `location` in `backupDir`; nothing is opened yet. */
  constructor(private readonly backupDir: string, private readonly location: string) {}

  /** `remotes/<key>/`, opened (made when missing) at the first call. */
  folder(): StateFolder {
    if (this.held !== null) return this.held;
    if (statOrNull(this.backupDir) === null) ensureDir(this.backupDir); // the configured path: made as before
    using backup = StateFolder.open(this.backupDir);
    using remotes = backup.child(basename(remotesRoot(this.backupDir)), (path) => notPlainFolder(path, this.location));
    this.held = remotes.child(
      basename(remoteStateDir(this.backupDir, this.location)),
      (path) => notPlainFolder(path, this.location),
    );
    return this.held;
  }

  /** `remotes/<key>/journal/`, opened (made when missing) at the first call. */
  journalFolder(): StateFolder {
    this.journals ??= this.folder().child(
      basename(pushJournalDir(this.backupDir, this.location)),
      (path) => notPlainFolder(path, this.location),
    );
    return this.journals;
  }

  /** The file at `path`, one of `remotes/<key>/` (`layout.ts`'s): read by its path, written in the folder held. */
  file(path: string): StateFile {
    if (dirname(path) !== remoteStateDir(this.backupDir, this.location)) {
      throw new RangeError(`${path} is not a file of ${remoteStateDir(this.backupDir, this.location)}`);
    }
    const name = basename(path);
    return {
      path,
      replace: (data) => this.folder().replace(name, data),
      removeTemporaries: () => this.folder().removeTemporaries(name),
    };
  }

  /** Close the folders held. */
  [Symbol.dispose](): void {
    this.journals?.[Symbol.dispose]();
    this.held?.[Symbol.dispose]();
  }
}

/** The refusal of a state folder that is a link or not a folder, naming what it is and the fix. */
function notPlainFolder(path: string, location: string): UsageError {
  const info = lstatOrNull(path);
  const what = info?.isSymlink
    ? `a symbolic link (to ${Deno.readLinkSync(path)})`
    : `a ${info ? kindOf(info) : "file"}, not a folder`;
  return new UsageError(
    `${path} is ${what}: this host's state about the repository at ${location} is written and removed there, ` +
      `never through a link; make it a plain folder (with what it should hold), then run again`,
  );
}
