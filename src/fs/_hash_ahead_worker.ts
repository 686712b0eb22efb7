/**
 * The worker behind `hash_ahead.ts`: hashes the regular files it is given, one after the other, front to back.
 * In: `{ paths }` once. Out: `{ bytes }` after each chunk read, then `{ digests: [path, sha256][] }`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { createHash } from "node:crypto";

const CHUNK_BYTES = 8 << 20;

/** The SHA-256 of the regular file at `path`, or `null` when it is not one (the caller's own check says what it is). */
function hashRegular(path: string, buffer: Uint8Array): string | null {
  if (!Deno.lstatSync(path).isFile) return null; // no link followed, no FIFO opened
  using file = Deno.openSync(path, { read: true });
  if (!file.statSync().isFile) return null;
  const hash = createHash("sha256");
  while (true) {
    const read = file.readSync(buffer);
    if (read === null) return hash.digest("hex");
    hash.update(buffer.subarray(0, read));
    self.postMessage({ bytes: read });
  }
}

self.onmessage = (event: MessageEvent<{ paths: string[] }>) => {
  const buffer = new Uint8Array(CHUNK_BYTES);
  const digests: [string, string][] = [];
  for (const path of event.data.paths) {
    try {
      const digest = hashRegular(path, buffer);
      if (digest !== null) digests.push([path, digest]);
    } catch {
      // left out: the caller reads this file itself and reports what is wrong with it
    }
  }
  self.postMessage({ digests });
};
