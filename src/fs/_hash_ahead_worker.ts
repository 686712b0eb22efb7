/**
 * The worker behind `hash_ahead.ts`: hashes the regular files it is given, one after the other, front to back, each
 * only while it has the size given. In: `{ files: { path, size }[] }` once. Out: `{ bytes }` after each chunk read,
 * then `{ digests: [path, sha256][] }`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { createHash } from "node:crypto";
import { OpenedRegular } from "./opened_regular.ts";

const CHUNK_BYTES = 8 << 20;

/**
 * The SHA-256 of the regular file at `path` of `size` bytes, or `null` when it is not one, or not of that size (the
 * caller's own check says what it is): a file found or grown larger is not read past `size`.
 */
function hashRegular(path: string, size: number, buffer: Uint8Array): string | null {
  let file: OpenedRegular;
  try {
    file = OpenedRegular.open(path); // no link followed, no FIFO waited on (one swapped in since the look included)
  } catch {
    return null;
  }
  using _file = file;
  if (file.statSync().size !== size) return null; // no wrong size read
  const hash = createHash("sha256");
  let total = 0;
  while (true) {
    const read = file.readSync(buffer);
    if (read === null) return total === size ? hash.digest("hex") : null;
    total += read;
    if (total > size) return null;
    hash.update(buffer.subarray(0, read));
    self.postMessage({ bytes: read });
  }
}

self.onmessage = (event: MessageEvent<{ files: { path: string; size: number }[] }>) => {
  const buffer = new Uint8Array(CHUNK_BYTES);
  const digests: [string, string][] = [];
  for (const { path, size } of event.data.files) {
    try {
      const digest = hashRegular(path, size, buffer);
      if (digest !== null) digests.push([path, digest]);
    } catch {
      // left out: the caller reads this file itself and reports what is wrong with it
    }
  }
  self.postMessage({ digests });
};
