/**
 * The Chroma folder a restore replaces, held open from staging to swap, so that a writer who swaps it for a link after
 * it was checked cannot redirect the swap: its entries are reached by the path, checked just before each use to lead to
 * the folder held.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import { ensureDir } from "../fs/durable.ts";

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

/** The Chroma folder, open: its path, for messages, and its entries by the descriptor. */
export class HeldChroma implements Disposable {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly held: FolderIdentity,
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
    const fd = openFolder(path, seen === null);
    const info = fstatSync(fd);
    if (seen !== null && (info.dev !== seen.dev || info.ino !== seen.ino)) {
      closeSync(fd);
      throw changedFolder(path);
    }
    return new HeldChroma(path, fd, { dev: info.dev, ino: info.ino });
  }

  /**
   * A path that reaches `name` (a relative path) inside this folder, checked just before it is handed out to still lead
   * to this folder (its device and inode): call it right where the path is used.
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

  /** Close the descriptor. */
  [Symbol.dispose](): void {
    closeSync(this.fd);
  }
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
