/**
 * A SQLite backup into a folder held open: the FFI driver checks that SQLite opened the file made for it there; the
 * built-in one (node:sqlite) opens its destination by path, so where another user may write a folder on that path
 * (and swap it for a link meanwhile) its copy is written first into a private folder of the system's temporary folder,
 * then copied into the held folder through its descriptor.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { FILE_MODE } from "../fs/durable.ts";
import type { HeldFolder } from "../fs/held_folder.ts";
import { lockedScratchFolder, temporaryFolders } from "../fs/scratch_copy.ts";
import type { LockedFolder } from "../fs/locked_folder.ts";
import { describeOsError, OperationError } from "../errors.ts";
import type { Identity } from "../sys/folder_calls.ts";
import { runUser } from "../sys/run_user.ts";
import { lstatOrNull } from "../fs/probe.ts";
import { othersMayRename } from "../fs/shared_folder.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";

/** Writes a backup to `destination`, SQLite to check it opened `made` there when given. */
export type BackUp = (destination: string, made: Identity | undefined) => Promise<void>;

/**
 * Back up into the new file `name` of `folder` by `backUp`: by its path in `folder` (made empty first, its identity
 * given for the check) where the driver checks what it opened or no other user may write a folder on the path, else
 * through a private folder (see the module). The identity of the file made, `null` without libc's calls.
 */
export async function backUpInto(
  folder: HeldFolder,
  name: string,
  driver: SqliteDriver,
  backUp: BackUp,
): Promise<Identity | null> {
  if (driver.name === "ffi" || folder.opened() === null || !othersMayWriteAbove(folder)) {
    const made = folder.makeFile(name, new Uint8Array(), FILE_MODE); // SQLite opens it, never makes one
    await backUp(join(folder.path, name), made ?? undefined);
    return made;
  }
  using aside = asideFolder(); // mode 700; a killed run's is removed later
  await backUp(join(aside.path, name), undefined);
  return folder.makeFileFrom(name, join(aside.path, name), FILE_MODE);
}

/**
 * A new private folder in the first temporary folder that takes one (`$TMPDIR`, then `/tmp`, `/var/tmp`).
 *
 * @throws {OperationError} naming each folder tried and why, when none did: never the live database's failure.
 */
function asideFolder(): LockedFolder {
  const tried: string[] = [];
  for (const parent of temporaryFolders()) {
    try {
      return lockedScratchFolder(parent, ASIDE_NAMES);
    } catch (error) {
      tried.push(`${parent} (${describeOsError(error)})`);
    }
  }
  throw new OperationError(
    `no temporary folder took the private folder of the database's copy: ${tried.join(", ")}; nothing was ` +
      "published; set TMPDIR to a folder this user may write, or use --sqlite-driver ffi, then run create again",
  );
}

/** The names of the private folders a copy is made in before it goes into the folder held. */
const ASIDE_NAMES = { prefix: "atocore-backup-copy-", unlockedPrefix: "atocore-backup-copy-new-" };

/**
 * Whether a user other than this run's (and root) may rename an entry of a folder on the real path of `folder`, itself
 * included (one it owns, or one group or others may write without the sticky bit), or that real path no longer leads to
 * the folder held (a link swapped in already). Unknown counts as may.
 */
function othersMayWriteAbove(folder: HeldFolder): boolean {
  const me = runUser();
  let path: string;
  try {
    path = Deno.realPathSync(folder.path);
    const held = folder.identity();
    const named = Deno.statSync(path);
    if (held === null || named.dev !== held.dev || named.ino !== held.ino) return true;
  } catch {
    return true;
  }
  for (;; path = dirname(path)) {
    if (othersMayRename(lstatOrNull(path), me)) return true;
    if (dirname(path) === path) return false;
  }
}
