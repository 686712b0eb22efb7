/**
 * A folder held open, whose entries are made, linked, moved and removed by name inside the folder the descriptor holds
 * (libc's `*at` calls): a writer who renames it, or swaps it or a folder above it for a link, cannot redirect them.
 * Where libc cannot be called (no FFI permission), entries go by path, as Deno's own calls do.
 *
 * @module
 */
import { lchownSync } from "node:fs";
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { FILE_MODE, FOLDER_MODE } from "./durable.ts";
import { type EntryInfo, type FolderCalls, folderCalls, type Identity } from "../sys/folder_calls.ts";
import type { OpenFolder } from "./held_copy.ts";
import { removeHeld } from "./held_remove.ts";
import { lstatOrNull } from "./probe.ts";
import { listNames } from "./listing.ts";

/** The owner and group that what a run makes in a held folder is given (see {@linkcode HeldFolder.open}). */
interface Owner {
  uid: number;
  gid: number;
}

/** An open folder: its path, for messages, and its entries by the descriptor. */
export class HeldFolder implements AsyncDisposable {
  private constructor(
    readonly path: string,
    private readonly calls: FolderCalls | null,
    private readonly fd: number,
    private readonly owner: Owner | null = null,
  ) {}

  /**
   * Open the folder at `path`, following links (the caller's own configured path). With `giveMade`, the folders and
   * files made in it or in its folders opened through it go to its owner and group when this run is root and that
   * owner another user (the service's user, whose own runs then write and remove there): only entries this run made,
   * each through its own descriptor, never a link; a filesystem that refuses (root squashed) leaves them as made.
   */
  static open(path: string, options: { giveMade?: boolean } = {}): HeldFolder {
    const calls = folderCalls();
    if (calls === null) return new HeldFolder(path, null, -1, options.giveMade ? ownerOf(path, null) : null);
    const fd = calls.openFolder(path);
    return new HeldFolder(path, calls, fd, options.giveMade ? ownerOf(path, calls) : null);
  }

  /**
   * The folder `name` inside this one, made first when missing (this folder flushed then). A link or a file in its
   * place is refused with `notFolder`'s error, never followed.
   */
  async child(name: string, notFolder: (path: string) => Error): Promise<HeldFolder> {
    let made = false;
    try {
      if (this.calls === null) await Deno.mkdir(join(this.path, name), { mode: FOLDER_MODE });
      else this.calls.makeFolder(this.fd, name, FOLDER_MODE, join(this.path, name));
      made = true;
      await this.sync();
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const child = (await this.existingChild(name, notFolder))!;
    if (made && this.owner !== null) {
      child.give(child.fd, child.path);
      await child.sync();
    }
    return child;
  }

  /** The folder `name` inside this one, or `null` when there is none; a link or a file there is refused, never followed. */
  async existingChild(name: string, notFolder: (path: string) => Error): Promise<HeldFolder | null> {
    const path = join(this.path, name);
    if (this.calls === null) {
      const info = await Deno.lstat(path).catch((error) =>
        error instanceof Deno.errors.NotFound ? null : Promise.reject(error)
      );
      if (info === null) return null;
      if (!info.isDirectory) throw notFolder(path);
      return new HeldFolder(path, null, -1, this.owner);
    }
    try {
      return new HeldFolder(path, this.calls, this.calls.openFolder(name, { fd: this.fd, shown: path }), this.owner);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ENOENT") return null;
      if (code === "ELOOP" || code === "ENOTDIR") throw notFolder(path);
      throw error;
    }
  }

  /** The names in this folder (by its path: a name only ever reaches an entry of this folder through the others). */
  names(): string[] {
    return listNames(this.path);
  }

  /** What the entry `name` here is (a link itself), and when it was last written; `null` when there is none. */
  entry(name: string): EntryInfo | null {
    if (this.calls !== null) return this.calls.entry(this.fd, name, join(this.path, name));
    const info = lstatOrNull(join(this.path, name));
    if (info === null) return null;
    return {
      isFile: info.isFile,
      isDirectory: info.isDirectory,
      links: info.nlink ?? 1,
      mtimeMs: info.mtime?.getTime() ?? 0,
    };
  }

  /**
   * The storage's clock: the time it stamps on a new file `name` made here, flushed, and removed again (an NFS
   * server's clock, not this host's).
   */
  async storageNow(name: string): Promise<number> {
    const path = join(this.path, name);
    try {
      if (this.calls === null) {
        await writeAll(await Deno.open(path, { write: true, createNew: true, mode: FILE_MODE }), new Uint8Array());
        return lstatOrNull(path)?.mtime?.getTime() ?? Date.now();
      }
      const made = this.calls.createFile(this.fd, name, FILE_MODE, path);
      try {
        await this.calls.sync(made, path);
        return this.calls.entryOf(made, path).mtimeMs;
      } finally {
        this.calls.close(made);
      }
    } finally {
      await this.removeFile(name).catch(() => {});
    }
  }

  /**
   * Write `bytes` to a new file `name` in this folder and flush it: created here (never an existing file, never
   * through a link), then opened by its path for the writing and checked to be that same file before any byte goes.
   *
   * @throws {Error} `moved(path)`'s when the path led elsewhere (a folder swapped since).
   */
  async writeNewFile(name: string, bytes: Uint8Array, moved: (path: string) => Error): Promise<void> {
    const path = join(this.path, name);
    if (this.calls === null) {
      await writeAll(await Deno.open(path, { write: true, createNew: true, mode: FILE_MODE }), bytes);
      return this.give(null, path);
    }
    const made = this.calls.createFile(this.fd, name, FILE_MODE, path);
    try {
      this.give(made, path);
      const file = await openMade(path, moved); // never through a link, never waiting on a FIFO swapped in
      try {
        const opened = await file.stat();
        const held = this.calls.identity(made, path);
        if (opened.dev !== held.dev || opened.ino !== held.ino) throw moved(path);
      } catch (error) {
        await file.close();
        throw error;
      }
      await writeAllTo(file, bytes);
    } finally {
      this.calls.close(made);
    }
  }

  /** The identity of the folder held, `null` without libc's calls (nothing held). */
  identity(): Identity | null {
    return this.calls === null ? null : this.calls.identity(this.fd, this.path);
  }

  /** libc's calls and this folder's descriptor, for the tree calls of `held_copy.ts`; `null` where entries go by path. */
  opened(): { calls: FolderCalls; folder: OpenFolder } | null {
    return this.calls === null ? null : { calls: this.calls, folder: { fd: this.fd, path: this.path } };
  }

  /**
   * Whether the entry `name` here is the folder `held` itself (not a link, not another folder put in its place since
   * it was opened); without libc's calls, whether it is a folder.
   */
  holds(name: string, held: HeldFolder): boolean {
    if (this.calls === null || held.calls === null) return lstatOrNull(join(this.path, name))?.isDirectory ?? false;
    let entry: number;
    try {
      entry = this.calls.holdEntry(this.fd, name, join(this.path, name));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
    try {
      const there = this.calls.identity(entry, join(this.path, name));
      const own = held.calls.identity(held.fd, held.path);
      return there.dev === own.dev && there.ino === own.ino;
    } finally {
      this.calls.close(entry);
    }
  }

  /**
   * Make the new file `name` here (never an existing file, never through a link) holding `bytes`, with the permission
   * bits `mode`, written through its descriptor; not flushed. Its identity, for a writer that must open it by path
   * (SQLite) to check it opened this file; `null` without libc's calls (made by path).
   */
  makeFile(name: string, bytes: Uint8Array, mode: number): Identity | null {
    const path = join(this.path, name);
    if (this.calls === null) {
      Deno.writeFileSync(path, bytes, { createNew: true, mode });
      Deno.chmodSync(path, mode);
      return null;
    }
    const made = this.calls.createFile(this.fd, name, 0o600, path);
    try {
      this.calls.write(made, bytes, path);
      this.calls.setMode(made, mode, path);
      return this.calls.identity(made, path);
    } finally {
      this.calls.close(made);
    }
  }

  /**
   * Make the new file `name` here as {@linkcode makeFile} does, its bytes those of the file at `from` (a private file
   * of this run's), read and written a mebibyte at a time; its identity, `null` without libc's calls.
   */
  makeFileFrom(name: string, from: string, mode: number): Identity | null {
    const path = join(this.path, name);
    if (this.calls === null) {
      Deno.copyFileSync(from, path);
      Deno.chmodSync(path, mode);
      return null;
    }
    using source = Deno.openSync(from, { read: true });
    const made = this.calls.createFile(this.fd, name, 0o600, path);
    try {
      const buffer = new Uint8Array(1 << 20);
      for (let read = source.readSync(buffer); read !== null; read = source.readSync(buffer)) {
        this.calls.write(made, buffer.subarray(0, read), path);
      }
      this.calls.setMode(made, mode, path);
      return this.calls.identity(made, path);
    } finally {
      this.calls.close(made);
    }
  }

  /** Give this folder itself the permission bits `mode`. */
  setMode(mode: number): void {
    if (this.calls === null) return Deno.chmodSync(this.path, mode);
    this.calls.setMode(this.fd, mode, this.path);
  }

  /** Give the file `name` here the permission bits `mode`, opened never through a link. */
  setFileMode(name: string, mode: number): void {
    const path = join(this.path, name);
    if (this.calls === null) return Deno.chmodSync(path, mode);
    const file = this.calls.openFile(this.fd, name, path);
    try {
      this.calls.setMode(file, mode, path);
    } finally {
      this.calls.close(file);
    }
  }

  /** Remove the entry `name` here and, when it is a folder, all in it; a link is removed itself, never followed. */
  removeTree(name: string): void {
    const path = join(this.path, name);
    if (this.calls !== null) {
      removeHeld(this.calls, this.fd, name, path);
      return;
    }
    try {
      Deno.removeSync(path, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  /** Remove every entry in this folder (see {@linkcode removeTree}), the folder itself kept. */
  empty(): void {
    const names = this.calls === null ? this.names() : this.calls.names(this.fd, this.path);
    for (const name of names) this.removeTree(name);
  }

  /** Give the file `name` here the name `to` in `folder` too; fails with `AlreadyExists` when that name is taken. */
  async linkTo(name: string, folder: HeldFolder, to: string): Promise<void> {
    if (this.calls === null) return await Deno.link(join(this.path, name), join(folder.path, to));
    this.calls.link(this.fd, name, folder.fd, to, join(folder.path, to));
  }

  /** Move the file `name` here to `to` in `folder`, replacing what is there. */
  async moveTo(name: string, folder: HeldFolder, to: string): Promise<void> {
    if (this.calls === null) return await Deno.rename(join(this.path, name), join(folder.path, to));
    this.calls.rename(this.fd, name, folder.fd, to, join(folder.path, to));
  }

  /** Remove the file `name` here, if it is there; a link is removed itself. */
  async removeFile(name: string): Promise<void> {
    if (this.calls !== null) {
      this.calls.removeFile(this.fd, name, join(this.path, name));
      return;
    }
    await Deno.remove(join(this.path, name)).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }

  /** Make this folder's entries durable (its new names and removed ones). */
  async sync(): Promise<void> {
    if (this.calls !== null) return await this.calls.sync(this.fd, this.path);
    using folder = await Deno.open(this.path, { read: true });
    await folder.sync();
  }

  /**
   * Give the entry this run just made at `path` (open as `made`; by its path, a link passed over, without libc's
   * calls) the owner {@linkcode HeldFolder.open} found, when there is one.
   */
  private give(made: number | null, path: string): void {
    if (this.owner === null) return;
    const { uid, gid } = this.owner;
    if (this.calls !== null) {
      this.calls.setOwner(made!, uid, gid, path); // false: not permitted here (root squashed), left as made
      return;
    }
    const info = lstatOrNull(path);
    if (!(info?.isFile || info?.isDirectory) || info.uid === uid) return;
    try {
      lchownSync(path, uid, gid);
    } catch (error) {
      if (!(error instanceof Deno.errors.PermissionDenied)) throw error; // not root: kept, as libc's way keeps it
    }
  }

  /** Close the descriptor. */
  [Symbol.asyncDispose](): Promise<void> {
    if (this.calls !== null) this.calls.close(this.fd);
    return Promise.resolve();
  }
}

/**
 * The owner and group of the folder at `path` when what this run makes there goes to them: this run is root (with
 * libc's `calls`; without, any run, whose give fails unless it is root) and the folder another user's.
 */
function ownerOf(path: string, calls: FolderCalls | null): Owner | null {
  const { uid, gid } = Deno.statSync(path);
  if (uid === null || gid === null || (calls !== null && (calls.user() !== 0 || uid === 0))) return null;
  return { uid, gid };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  using _file = file;
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
  await file.sync();
}

/** The file at `path` opened for writing without following a link or waiting on a FIFO; one not there is `moved`. */
async function openMade(path: string, moved: (path: string) => Error): Promise<FileHandle> {
  try {
    return await open(path, constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT" || code === "ELOOP" || code === "ENXIO" || code === "ENOTDIR") throw moved(path);
    throw error;
  }
}

async function writeAllTo(file: FileHandle, bytes: Uint8Array): Promise<void> {
  try {
    let written = 0;
    while (written < bytes.length) {
      written += (await file.write(bytes, written, bytes.length - written, written)).bytesWritten;
    }
    await file.sync();
  } finally {
    await file.close();
  }
}
