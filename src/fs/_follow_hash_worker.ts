/**
 * The worker behind `follow_hash.ts`: hashes a file front to back as its writer reports ranges written and final.
 * In: `{ path, firstPage }` once, then `{ settled: bytes }` as the writer goes, then `{ finish: true }`.
 * Out: `{ sha256, bytes }` (bytes hashed, first page included), or `{ error }`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { createHash, type Hash } from "node:crypto";

const CHUNK_BYTES = 8 << 20;

const buffer = new Uint8Array(CHUNK_BYTES);
let hash: Hash;
let file: Deno.FsFile;
let position = 0;

/** Hash the file from where the last call stopped up to `end`, or up to its current end when shorter. */
function hashUpTo(end: number): void {
  while (position < end) {
    const read = file.readSync(buffer.subarray(0, Math.min(CHUNK_BYTES, end - position)));
    if (read === null) return;
    hash.update(buffer.subarray(0, read));
    position += read;
  }
}

self.onmessage = (event: MessageEvent) => {
  const message = event.data;
  try {
    if (message.path !== undefined) {
      file = Deno.openSync(message.path, { read: true });
      hash = createHash("sha256").update(message.firstPage);
      position = message.firstPage.length;
      file.seekSync(position, Deno.SeekMode.Start);
    } else if (message.settled !== undefined) {
      hashUpTo(message.settled);
    } else {
      hashUpTo(Infinity);
      file.close();
      self.postMessage({ sha256: hash.digest("hex"), bytes: position });
    }
  } catch (error) {
    self.postMessage({ error: String(error) });
    self.close();
  }
};
