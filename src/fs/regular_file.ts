/**
 * Reading a small file whole, opening only a regular file and reading a bounded number of bytes: a FIFO, a device
 * or a huge file put in place of metadata or a registry would otherwise block or exhaust the tool.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { utf8Text } from "../text/utf8_text.ts";

/** Most bytes read from a metadata or registry file (8 MiB: a snapshot of 50,000 files), far above any real one. */
export const SMALL_FILE_MAX_BYTES = 8 << 20;

/** The file is not a regular file (a FIFO, socket, device, or a link where none is followed); its message omits the path. */
export class NotRegularFileError extends Error {
  /** Name the kind found at `path`. */
  constructor(readonly path: string, kind: string) {
    super(`not a regular file (${kind})`);
    this.name = "NotRegularFileError";
  }
}

/** The file is larger than the bound it is read with; its message omits the path. */
export class FileTooLargeError extends Error {
  /** Name the file and the bound. */
  constructor(readonly path: string, readonly maxBytes: number) {
    super(`larger than ${maxBytes} bytes, not read`);
    this.name = "FileTooLargeError";
  }
}

/** How {@linkcode readRegularTextFile} treats a symbolic link at `path`. */
export interface ReadRegularOptions {
  /** Most bytes read; a larger file is refused. Default {@linkcode SMALL_FILE_MAX_BYTES}. */
  maxBytes?: number;
  /** Follow a symbolic link to a regular file (live paths); default `false` (files found in a backup folder). */
  followLinks?: boolean;
  /** The file that must be opened (a live file reached link by link): another one is refused as replaced. */
  identity?: { dev: number; ino: number };
}

/**
 * The text of the regular file at `path`. The kind is checked before opening, the file is opened non-blocking
 * (so a FIFO swapped in meanwhile cannot block) and checked again once open, and at most `maxBytes` are read.
 *
 * @throws {Deno.errors.NotFound} when nothing is there; {@linkcode Deno.errors.IsADirectory} for a folder;
 *   {@linkcode NotRegularFileError}; {@linkcode FileTooLargeError}; `PermissionDenied` and other OS errors.
 */
export function readRegularTextFile(path: string, options: ReadRegularOptions = {}): string {
  return utf8Text(readRegularFile(path, options));
}

/** The bytes of the regular file at `path`, as {@linkcode readRegularTextFile} reads them. */
export function readRegularFile(path: string, options: ReadRegularOptions = {}): Uint8Array {
  const maxBytes = options.maxBytes ?? SMALL_FILE_MAX_BYTES;
  const { fd, size } = openRegularFile(path, { ...options, maxBytes });
  try {
    return readBounded(fd, path, maxBytes, size);
  } finally {
    closeSync(fd);
  }
}

/**
 * Open the regular file at `path` for reading as {@linkcode readRegularTextFile} does (kind checked before and after a
 * non-blocking open, at most `maxBytes`): its descriptor, to close, and its size then.
 *
 * @throws as {@linkcode readRegularTextFile}.
 */
export function openRegularFile(path: string, options: ReadRegularOptions = {}): { fd: number; size: number } {
  const maxBytes = options.maxBytes ?? SMALL_FILE_MAX_BYTES;
  const info = options.followLinks ? Deno.statSync(path) : Deno.lstatSync(path);
  if (info.isDirectory) throw new Deno.errors.IsADirectory(`is a directory: ${path}`);
  if (!info.isFile) throw new NotRegularFileError(path, kindOf(info));
  if (info.size > maxBytes) throw new FileTooLargeError(path, maxBytes);
  const fd = openNonBlocking(path, options.followLinks ?? false);
  const opened = fstatSync(fd);
  if (!opened.isFile() || !sameFile(opened, info) || !sameFile(opened, options.identity ?? info)) {
    closeSync(fd);
    throw new NotRegularFileError(path, "replaced while being opened");
  }
  return { fd, size: opened.size };
}

/** Whether the opened file is the one `expected` names. */
function sameFile(opened: { dev: number; ino: number }, expected: { dev: number; ino: number | null }): boolean {
  return opened.dev === expected.dev && opened.ino === expected.ino;
}

/**
 * Open read-only, non-blocking (a FIFO's open never waits for a writer), never as a controlling terminal, and (unless
 * `follow`) not through a final link, with the flags `extra` (`O_DIRECTORY`): the descriptor, to close. Errors as
 * Deno's classes where they have one.
 */
export function openNonBlocking(path: string, follow: boolean, extra = 0): number {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (follow ? 0 : constants.O_NOFOLLOW) |
    extra;
  try {
    return openSync(path, flags);
  } catch (error) {
    // node:fs reports errno codes; the rest of the tool tells OS errors apart by Deno's classes.
    const code = (error as { code?: unknown }).code;
    const message = (error as Error).message;
    if (code === "ENOENT") throw new Deno.errors.NotFound(message);
    if (code === "EACCES" || code === "EPERM") throw new Deno.errors.PermissionDenied(message);
    if (code === "ELOOP") throw new NotRegularFileError(path, "symbolic link");
    if (code === "ENOTDIR") throw new Deno.errors.NotADirectory(message);
    throw error;
  }
}

/**
 * Read `fd` to its end, refusing more than `maxBytes` (the file may have grown since it was checked): into one buffer
 * of the `size` it had when opened and a byte more, grown only if it grew, so a large file's bytes are held once.
 */
function readBounded(fd: number, path: string, maxBytes: number, size: number): Uint8Array {
  let bytes = new Uint8Array(Math.min(size, maxBytes) + 1);
  let total = 0;
  while (true) {
    if (total === bytes.length) {
      if (total > maxBytes) throw new FileTooLargeError(path, maxBytes);
      const grown = new Uint8Array(Math.min(bytes.length * 2, maxBytes + 1));
      grown.set(bytes);
      bytes = grown;
    }
    const read = readSync(fd, bytes, total, bytes.length - total, null);
    if (read === 0) break;
    total += read;
  }
  if (total > maxBytes) throw new FileTooLargeError(path, maxBytes);
  return bytes.subarray(0, total);
}

/**
 * `null` when `path` is a regular file (a final symbolic link not followed), else what is there: `"missing"`, or its
 * kind (`symbolic link to <target>`, `FIFO`, ...), for messages.
 */
export function notRegularFile(path: string): string | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "missing";
    if (error instanceof Deno.errors.NotADirectory) return "under a file where a folder should be";
    throw error;
  }
  if (info.isFile) return null;
  return info.isSymlink ? `symbolic link to ${Deno.readLinkSync(path)}` : kindOf(info);
}

/** A word or two for the kind of file `info` describes, for messages. */
export function kindOf(info: Deno.FileInfo): string {
  if (info.isFile) return "file";
  if (info.isSymlink) return "symbolic link";
  if (info.isDirectory) return "folder";
  if (info.isFifo) return "FIFO";
  if (info.isSocket) return "socket";
  if (info.isCharDevice || info.isBlockDevice) return "device";
  return "special file";
}
