/**
 * A folder of the tool's state held open by descriptor, whose files are made, replaced and removed by name inside it
 * (libc's `*at` calls, synchronously): a writer who swaps it, or a folder above it, for a link cannot redirect them.
 * Where libc cannot be called (no FFI permission), by path, as Deno's own calls go.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type FolderCalls, folderCalls } from "../sys/folder_calls.ts";
import {
  ensureDir,
  FILE_MODE,
  FOLDER_MODE,
  removeFileQuietly,
  removeTemporariesOf,
  temporaryPath,
  writeFileAtomic,
} from "./durable.ts";
import { entriesOrNone, lstatOrNull } from "./probe.ts";

/** One file of a state folder: its path (to read it, and for messages) and its atomic replacement. */
export interface StateFile {
  readonly path: string;
  /** Replace the file with `data` (a temporary name, fsync, rename, fsync the folder). */
  replace(data: Uint8Array | string | Iterable<Uint8Array>): void;
  /** Remove the temporaries beside it that killed writers left (the caller's lock rules out a live one). */
  removeTemporaries(): void;
}

/**
 * The file at `path` written by path, its folder made when missing: for a folder no other user can swap (a test's, or
 * the run's own).
 */
export function fileByPath(path: string): StateFile {
  return {
    path,
    replace: (data) => {
      ensureDir(dirname(path));
      writeFileAtomic(path, data);
    },
    removeTemporaries: () => void removeTemporariesOf(path),
  };
}

/**
 * The output file at `path` (a report a run writes at its end: `--junit`, `--metrics-file`), its folder opened now,
 * when its path was judged: a writer of that path who swaps a folder on it for a link meanwhile (the service user, under
 * a root run) cannot redirect the write. By path where the folder cannot be opened now (the write then says why).
 */
export function heldOutputFile(path: string): StateFile & Disposable {
  let folder: StateFolder;
  try {
    folder = StateFolder.open(dirname(path));
  } catch {
    return { path, replace: (data) => writeFileAtomic(path, data), removeTemporaries: () => {}, [Symbol.dispose]() {} };
  }
  return { ...folder.file(basename(path)), [Symbol.dispose]: () => folder[Symbol.dispose]() };
}

/** A state folder held open: its path, for messages and reading, and its entries by the descriptor. */
export class StateFolder implements Disposable {
  private constructor(readonly path: string, private readonly calls: FolderCalls | null, private fd: number) {}

  /** Open the folder at `path`, following links (the caller's own configured path). */
  static open(path: string): StateFolder {
    const calls = folderCalls();
    return new StateFolder(path, calls, calls === null ? -1 : calls.openFolder(path));
  }

  /**
   * The folder `name` inside this one, made first when missing (this folder flushed then); a link or a file in its
   * place is refused with `notFolder`'s error, never followed.
   */
  child(name: string, notFolder: (path: string) => Error): StateFolder {
    const path = join(this.path, name);
    if (this.calls === null) {
      const info = lstatOrNull(path);
      if (info !== null && (!info.isDirectory || info.isSymlink)) throw notFolder(path);
      if (info === null) ensureDir(path);
      return new StateFolder(path, null, -1);
    }
    try {
      this.calls.makeFolder(this.fd, name, FOLDER_MODE, path);
      this.calls.syncNow(this.fd, this.path);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    try {
      return new StateFolder(path, this.calls, this.calls.openFolder(name, { fd: this.fd, shown: path }));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ELOOP" || code === "ENOTDIR") throw notFolder(path);
      throw error;
    }
  }

  /** The file `name` here, replaced by name in this folder. */
  file(name: string): StateFile {
    return {
      path: join(this.path, name),
      replace: (data) => this.replace(name, data),
      removeTemporaries: () => this.removeTemporaries(name),
    };
  }

  /** Replace the file `name` here with `data` atomically: written under a temporary name here, then renamed here. */
  replace(name: string, data: Uint8Array | string | Iterable<Uint8Array>): void {
    const path = join(this.path, name);
    if (this.calls === null) return writeFileAtomic(path, data);
    const temporary = basename(temporaryPath(path));
    const made = this.calls.createFile(this.fd, temporary, FILE_MODE, join(this.path, temporary));
    try {
      const parts = typeof data === "string"
        ? [new TextEncoder().encode(data)]
        : data instanceof Uint8Array
        ? [data]
        : data;
      for (const bytes of parts) this.calls.write(made, bytes, path);
      this.calls.syncNow(made, path);
      this.calls.rename(this.fd, temporary, this.fd, name, path);
      this.calls.syncNow(this.fd, this.path);
    } catch (error) {
      this.calls.removeFile(this.fd, temporary, join(this.path, temporary)); // gone once renamed
      throw error;
    } finally {
      this.calls.close(made);
    }
  }

  /** Remove the temporaries of `name` here ({@linkcode temporaryPath}) that killed writers left; a link as a link. */
  removeTemporaries(name: string): void {
    if (this.calls === null) return void removeTemporariesOf(join(this.path, name));
    for (const entry of this.calls.names(this.fd, this.path)) {
      if (!entry.startsWith(`.${name}.tmp-`)) continue;
      if (this.calls.entry(this.fd, entry, join(this.path, entry))?.isDirectory) continue; // not one of them
      this.calls.removeFile(this.fd, entry, join(this.path, entry));
    }
  }

  /** The names of the regular files here. */
  files(): string[] {
    if (this.calls === null) return entriesOrNone(this.path).filter((entry) => entry.isFile).map(({ name }) => name);
    return this.calls.names(this.fd, this.path).filter((name) =>
      this.calls!.entry(this.fd, name, join(this.path, name))?.isFile
    );
  }

  /** Remove the file (or link) `name` here, if it is there. */
  removeFile(name: string): void {
    if (this.calls === null) return removeFileQuietly(join(this.path, name));
    this.calls.removeFile(this.fd, name, join(this.path, name));
  }

  /**
   * Create the file `name` here (new, never through a link) with `mode`, and open it to read and write (or, with
   * `append`, to append to): a descriptor of `node:fs`, opened by its path and checked to be the file made here before
   * it is returned.
   *
   * @throws {Error} naming the path when it led elsewhere (a folder swapped since); the file made is removed.
   */
  createFile(name: string, mode: number, { append = false } = {}): number {
    const path = join(this.path, name);
    if (this.calls === null) return openSync(path, append ? "ax" : "wx+", mode);
    const made = this.calls.createFile(this.fd, name, mode, path);
    try {
      const fd = openByPath(path, append ? constants.O_WRONLY | constants.O_APPEND : constants.O_RDWR);
      const opened = fstatSync(fd);
      const held = this.calls.identity(made, path);
      if (opened.dev === held.dev && opened.ino === held.ino) return fd;
      closeSync(fd);
      throw notMade(path);
    } catch (error) {
      this.calls.removeFile(this.fd, name, path);
      throw error;
    } finally {
      this.calls.close(made);
    }
  }

  /** Close the descriptor; again, nothing. */
  [Symbol.dispose](): void {
    if (this.calls !== null && this.fd >= 0) this.calls.close(this.fd);
    this.fd = -1;
  }
}

/** The file at `path` opened with `access` without creating it, following a link or waiting on a FIFO. */
function openByPath(path: string, access: number): number {
  try {
    return openSync(path, access | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT" || code === "ELOOP" || code === "ENXIO" || code === "ENOTDIR") {
      throw notMade(path);
    }
    throw error;
  }
}

/** The error of a path that no longer leads to the file just made there by descriptor. */
function notMade(path: string): Error {
  const message = `${path} is not the file just made in its folder (a folder on the way swapped for a link?)`;
  return Object.assign(new Error(message), { path });
}
