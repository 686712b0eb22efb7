/**
 * The Chroma folder a restore replaces, and the hidden folders it works in, held open from staging to swap: entries are
 * made, moved and filled inside them (libc's `*at` calls), so a writer of the folder who swaps one for a link cannot
 * redirect a copy, a rename or a change of owner (without FFI, by paths checked just before each step).
 * @module
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { ensureDir, FOLDER_MODE, giveOpened, removeQuietly, syncDir } from "../fs/durable.ts";
import type { OpenFolder } from "../fs/held_copy.ts";
import { removeHeld } from "../fs/held_remove.ts";
import { lstatOrNull } from "../fs/probe.ts";
import { type FolderCalls, folderCalls } from "../sys/folder_calls.ts";
import { listNames } from "../fs/listing.ts";

/**
 * Give the Chroma folder this restore made (held open as `fd`, `info` its stat) the owner of the folder it is in, as a
 * file put where none was takes (see `replacedLikeness`): a root restore leaves the service's user a Chroma it can
 * write (its entries then take this folder's owner too). Where this user may not, it stays this user's.
 */
function giveLikeParent(fd: number, info: { uid: number; gid: number }, path: string): void {
  const parent = statSync(dirname(path), { throwIfNoEntry: false });
  if (parent && (parent.uid !== info.uid || parent.gid !== info.gid)) giveOpened(fd, parent.uid, parent.gid);
}

/** Which folder a path led to when the restore checked it: device and inode. */
export interface FolderIdentity {
  dev: number;
  ino: number;
}

/** The identity of the folder at `path` (links followed, as the configured path is), `null` when there is none. */
export function folderIdentity(path: string): FolderIdentity | null {
  const info = statSync(path, { throwIfNoEntry: false });
  return info?.isDirectory() ? { dev: info.dev, ino: info.ino } : null;
}

/** A hidden folder inside the Chroma folder, made by this restore (or a killed one), held open when FFI is there. */
export interface Aside extends OpenFolder, Disposable {
  /** Its name inside the Chroma folder. */
  name: string;
}

/** The Chroma folder, open: its path, for messages, and its entries by the descriptor. */
export class HeldChroma implements Disposable {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly held: FolderIdentity,
    /** libc's calls; `null` without FFI, when entries go by checked paths. */
    readonly calls: FolderCalls | null,
  ) {}

  /**
   * Open the folder at `path`, the one `seen` identifies (the configured path may be a link: it is followed once,
   * here). With `seen` `null` (no folder when the restore was planned) it is made first and opened without following
   * a link. `onCreated` hears that it was made.
   *
   * @throws {Error} when the path now leads to another folder, a link or nothing: the one line names it.
   */
  static open(path: string, seen: FolderIdentity | null, onCreated: () => void): HeldChroma {
    if (seen === null) {
      ensureDir(path);
      onCreated();
    }
    // the folder just made is looked at, then held to be the one opened: Deno's node:fs under --allow-read opens what
    // a link leads to despite O_NOFOLLOW, so a link put there since would otherwise be followed
    const expected = seen ?? madeFolder(path);
    const fd = openFolder(path, seen === null);
    const info = fstatSync(fd);
    if (info.dev !== expected.dev || info.ino !== expected.ino) {
      closeSync(fd);
      throw changedFolder(path);
    }
    if (seen === null) giveLikeParent(fd, info, path);
    return new HeldChroma(path, fd, { dev: info.dev, ino: info.ino }, folderCalls());
  }

  /**
   * A path that reaches `name` (a relative path) inside this folder, checked just before it is handed out to still lead
   * to this folder (its device and inode): call it right where the path is used, for reading and for removals (which
   * never follow a link at `name` itself).
   *
   * @throws {Error} when the path leads elsewhere now.
   */
  at(name = ""): string {
    const now = statSync(this.path, { throwIfNoEntry: false });
    if (now?.dev !== this.held.dev || now?.ino !== this.held.ino) throw changedFolder(this.path);
    return name === "" ? this.path : join(this.path, name);
  }

  /** Which folder is held: recorded with a swap, so that settling it later works only in this same folder. */
  get identity(): FolderIdentity {
    return { ...this.held };
  }

  /** `name` inside this folder by its path, for messages and events. */
  shown(name: string): string {
    return join(this.path, name);
  }

  /**
   * The hidden folder `name` in this one, made first with `make`: opened without following a link and checked to be
   * this user's own (a writer of the folder may have put a folder of its own there); `null` when there is none.
   */
  aside(name: string, make: boolean): Aside | null {
    const shown = this.shown(name);
    if (this.calls === null) return this.asideByPath(name, make);
    if (make) this.calls.makeFolder(this.fd, name, FOLDER_MODE, shown);
    let fd: number;
    try {
      fd = this.calls.openFolder(name, { fd: this.fd, shown });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ENOENT" && !make) return null;
      if (code === "ELOOP" || code === "ENOTDIR") throw notOurs(shown);
      throw error;
    }
    const calls = this.calls;
    let owner: number | null = null;
    try {
      owner = calls.ownerOf(fd, shown);
    } finally {
      if (owner !== calls.user()) calls.close(fd);
    }
    if (owner !== calls.user()) throw make ? notOurs(shown) : notThisUsers(shown, owner);
    return { name, fd, path: shown, [Symbol.dispose]: () => calls.close(fd) };
  }

  private asideByPath(name: string, make: boolean): Aside | null {
    if (make) Deno.mkdirSync(this.at(name), { mode: FOLDER_MODE });
    const info = lstatOrNull(this.at(name));
    if (info === null && !make) return null;
    if (!info?.isDirectory) throw notOurs(this.shown(name));
    return { name, fd: -1, path: this.shown(name), [Symbol.dispose]: () => {} };
  }

  /**
   * Move the folder `from` (elsewhere, on the same filesystem) in as `name`; `false`, nothing done, when a rename
   * cannot (another filesystem or mount).
   */
  adopt(from: string, name: string): boolean {
    try {
      if (this.calls === null) Deno.renameSync(from, this.at(name));
      else this.calls.moveInto(from, this.fd, name, this.shown(name));
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === "EXDEV") return false;
      throw error;
    }
  }

  /**
   * Remove the entry `name` of this folder and all in it, never through a link: inside the descriptors held when FFI
   * is there (so a swap of this folder's path since changes nothing), else by the checked path.
   */
  remove(name: string): void {
    if (this.calls === null) return removeQuietly(this.at(name));
    removeHeld(this.calls, this.fd, name, this.shown(name));
  }

  /** Move the entry `name` of this folder into the hidden folder `aside`, under the same name. */
  moveOut(name: string, aside: Aside): void {
    if (this.calls === null) return Deno.renameSync(this.at(name), this.at(join(aside.name, name)));
    this.calls.rename(this.fd, name, aside.fd, name, join(aside.path, name));
  }

  /** Move the entry `name` of the hidden folder `aside` into this folder, under the same name. */
  moveIn(aside: Aside, name: string): void {
    if (this.calls === null) return Deno.renameSync(this.at(join(aside.name, name)), this.at(name));
    this.calls.rename(aside.fd, name, this.fd, name, this.shown(name));
  }

  /** The names in the folder `aside` (this folder when none), read through its descriptor when FFI is there. */
  names(aside?: Aside): string[] {
    if (this.calls === null) return listNames(this.at(aside?.name));
    return this.calls.names(aside?.fd ?? this.fd, aside?.path ?? this.path);
  }

  /** Flush the folder `aside` (this folder when none). */
  sync(aside?: Aside): void {
    if (this.calls === null) return syncDir(this.at(aside?.name));
    this.calls.syncNow(aside?.fd ?? this.fd, aside?.path ?? this.path);
  }

  /** Close the descriptor. */
  [Symbol.dispose](): void {
    closeSync(this.fd);
  }
}

/** The identity of the folder at `path`, not a link. */
function madeFolder(path: string): FolderIdentity {
  const made = lstatSync(path, { throwIfNoEntry: false });
  if (!made?.isDirectory()) throw changedFolder(path);
  return { dev: made.dev, ino: made.ino };
}

function openFolder(path: string, noFollow: boolean): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | (noFollow ? constants.O_NOFOLLOW : 0));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ELOOP" || code === "ENOTDIR" || code === "ENOENT") throw changedFolder(path);
    throw error;
  }
}

function changedFolder(path: string): Error {
  return new Error(
    `the Chroma folder ${path} is no longer the folder this restore checked (moved, replaced, or swapped for a link ` +
      "since): nothing is done through it",
  );
}

/**
 * The error for a folder of an earlier, unfinished restore owned by another user: a restore run as root made it, and
 * its entries (the old Chroma's, maybe the only live copy) stay until that user runs the restore again.
 */
function notThisUsers(path: string, owner: number | null): Error {
  return new Error(
    `${path} belongs to uid ${owner}, not to this run's user: the unfinished restore was run as that user (or another ` +
      "user put a folder there), and nothing is done through it; run the restore again as that user (keep the " +
      "folder: it may hold the only live copy of the old Chroma entries), or look at who writes the Chroma folder",
  );
}

function notOurs(path: string): Error {
  return new Error(
    `${path} is not the folder this restore made (a link, a file, or another user's folder was put there): nothing is ` +
      "done through it; look at who writes the Chroma folder, remove it and run the restore again",
  );
}
