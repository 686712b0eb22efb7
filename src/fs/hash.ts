/**
 * Streaming SHA-256 of files, in bounded memory.
 *
 * Requires `--allow-read`.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** 8 MiB: large enough that reads cost little beside hashing, small beside the memory bound. */
const CHUNK_BYTES = 8 << 20;
let buffer: Uint8Array | null = null;

/**
 * The SHA-256 of a file's content as lowercase hex, read synchronously in 8 MiB
 * chunks into one buffer reused across calls (memory stays bounded whatever the size).
 *
 * @param path File to hash.
 * @param onBytes Called with the number of bytes read after each chunk (for progress).
 */
export function sha256File(path: string, onBytes?: (bytes: number) => void): string {
  const hash = createHash("sha256");
  using file = Deno.openSync(path, { read: true });
  buffer ??= new Uint8Array(CHUNK_BYTES);
  while (true) {
    const read = file.readSync(buffer);
    if (read === null) break;
    hash.update(buffer.subarray(0, read));
    onBytes?.(read);
  }
  return hash.digest("hex");
}
