/**
 * Streaming SHA-256 of files, in bounded memory.
 *
 * Requires `--allow-read`.
 *
 * @module
 */
import { OpenedRegular } from "./opened_regular.ts";
import { createHash } from "node:crypto";
import { closeSync, constants, fchmodSync, fstatSync, openSync, writeSync } from "node:fs";

/** 8 MiB: large enough that reads cost little beside hashing, small beside the memory bound. */
const CHUNK_BYTES = 8 << 20;
let buffer: Uint8Array | null = null;

/**
 * The SHA-256 of a file's content as lowercase hex, read synchronously in 8 MiB
 * chunks into one buffer reused across calls (memory stays bounded whatever the size).
 *
 * @param path File to hash.
 * @param onBytes Called with the number of bytes read after each chunk (for progress).
 * @param overlay Bytes hashed in place of the file's own at `offset` (the file is not changed).
 */
export function sha256File(
  path: string,
  onBytes?: (bytes: number) => void,
  overlay?: { offset: number; bytes: Uint8Array },
): string {
  const hash = createHash("sha256");
  using file = OpenedRegular.open(path); // never a link, never waiting on a FIFO swapped in since the caller's look
  buffer ??= new Uint8Array(CHUNK_BYTES);
  let position = 0;
  while (true) {
    const read = file.readSync(buffer);
    if (read === null) break;
    const chunk = buffer.subarray(0, read);
    if (overlay) applyOverlay(chunk, position, overlay);
    hash.update(chunk);
    position += read;
    onBytes?.(read);
  }
  return hash.digest("hex");
}

/** Write the part of `overlay` that falls in `chunk` (which starts at `position` in the file) over it. */
function applyOverlay(chunk: Uint8Array, position: number, overlay: { offset: number; bytes: Uint8Array }): void {
  const from = Math.max(overlay.offset, position);
  const to = Math.min(overlay.offset + overlay.bytes.length, position + chunk.length);
  for (let at = from; at < to; at++) chunk[at - position] = overlay.bytes[at - overlay.offset];
}

/** A copy {@linkcode copyHashed} made: the SHA-256 of its bytes, and the file it made (device and inode). */
export interface HashedCopy {
  sha256: string;
  dev: number;
  ino: number;
}

/**
 * Copy the file `source` to a new file `destination` (with the source's permission bits, set on the file opened, never
 * by its path, where another user may have put a link since) and return the SHA-256 of the bytes written, hashed as
 * they pass (a copy is checked against a hash without reading either file again), and the file it made.
 */
export function copyHashed(source: string, destination: string): HashedCopy {
  const hash = createHash("sha256");
  using from = OpenedRegular.open(source); // never through a link, never waiting on a FIFO swapped in
  const mode = (from.statSync().mode ?? 0o644) & 0o7777;
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const to = openSync(destination, flags, mode);
  try {
    fchmodSync(to, mode); // open's mode goes through the umask; a copy keeps the source's, as copyFile does
    buffer ??= new Uint8Array(CHUNK_BYTES);
    for (let read = from.readSync(buffer); read !== null; read = from.readSync(buffer)) {
      const chunk = buffer.subarray(0, read);
      hash.update(chunk);
      for (let written = 0; written < read;) written += writeSync(to, chunk, written);
    }
    const made = fstatSync(to);
    return { sha256: hash.digest("hex"), dev: made.dev, ino: made.ino };
  } finally {
    closeSync(to);
  }
}
