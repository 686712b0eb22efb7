/**
 * Streaming SHA-256 of files, in bounded memory.
 *
 * Requires `--allow-read`.
 *
 * @module
 */
import { createHash } from "node:crypto";

const CHUNK_BYTES = 1 << 20;

/**
 * The SHA-256 of a file's content as lowercase hex, read in 1 MiB chunks.
 *
 * @param path File to hash.
 * @param onBytes Called with the number of bytes read after each chunk (for progress).
 */
export async function sha256File(
  path: string,
  onBytes?: (bytes: number) => void,
): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(CHUNK_BYTES);
  while (true) {
    const read = await file.read(buffer);
    if (read === null) break;
    hash.update(buffer.subarray(0, read));
    onBytes?.(read);
  }
  return hash.digest("hex");
}
