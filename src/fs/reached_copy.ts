/**
 * Copying a file of a tree as the entry the walk saw, never a file a link put in its place since: the copy is made from
 * a descriptor of the file its path reaches with no link followed below the tree's root.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { ForeignLinkFound, reachedFile } from "./reached_file.ts";

/** Bytes copied per read. */
const CHUNK = 4 << 20;

/** The read buffer, one for every file: one each made a create of 30,000 small Chroma files peak at 400 MiB. */
let buffer: Uint8Array | undefined;

/**
 * Copy the file `from` to the new file `to`, where `from` must reach `expected` (its path below the tree's real root)
 * with no link followed on the way; without libc's calls, a plain copy.
 *
 * @throws {Deno.errors.NotFound} when `from` now leads elsewhere, through a link or to another file: the tree changed
 *   since it was walked (a torn copy, to retry).
 */
export function copyReachedFile(from: string, expected: string, to: string): void {
  if (reachedOrGone(from) === undefined) return Deno.copyFileSync(from, to);
  const out = openSync(to, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    readReachedFile(from, expected, (chunk) => {
      for (let done = 0; done < chunk.length;) done += writeSync(out, chunk, done, chunk.length - done);
    });
  } finally {
    closeSync(out);
  }
}

/**
 * Read the file `from`, which must reach `expected` as {@linkcode copyReachedFile} says, handing `onChunk` its bytes
 * in order (a chunk is reused after the call); without libc's calls, the file its path leads to.
 *
 * @throws {Deno.errors.NotFound} when `from` now leads elsewhere (a torn copy, to retry).
 */
export function readReachedFile(from: string, expected: string, onChunk: (chunk: Uint8Array) => void): void {
  const reached = reachedOrGone(from);
  if (reached === undefined) {
    using file = Deno.openSync(from, { read: true });
    buffer ??= new Uint8Array(CHUNK);
    for (let read = file.readSync(buffer); read !== null; read = file.readSync(buffer)) {
      onChunk(buffer.subarray(0, read));
    }
    return;
  }
  if (reached === null || reached.path !== expected) throw changed(from);
  let fd: number;
  try {
    fd = openSync(reached.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    // node:fs reports errno codes; the rest of the tool tells OS errors apart by Deno's classes
    const code = (error as { code?: string }).code;
    if (code === "ELOOP" || code === "ENOENT") throw changed(from);
    if (code === "EACCES" || code === "EPERM") throw new Deno.errors.PermissionDenied((error as Error).message);
    throw error;
  }
  try {
    const opened = fstatSync(fd);
    if (!opened.isFile() || opened.dev !== reached.identity.dev || opened.ino !== reached.identity.ino) {
      throw changed(from);
    }
    buffer ??= new Uint8Array(CHUNK);
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) onChunk(buffer.subarray(0, read));
  } finally {
    closeSync(fd);
  }
}

/** What `from` reaches (`null`: another user's link on the way; `undefined`: libc's calls do not load). */
function reachedOrGone(from: string): ReturnType<typeof reachedFile> | undefined {
  try {
    return reachedFile(from) ?? undefined;
  } catch (error) {
    if (error instanceof ForeignLinkFound) return null;
    throw error;
  }
}

/** The error of an entry that changed since the walk. */
function changed(from: string): Deno.errors.NotFound {
  return new Deno.errors.NotFound(`changed since the walk (a link put in its place?): ${from}`);
}
