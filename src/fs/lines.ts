/**
 * Reading a text file line by line in bounded memory, for logs that grow with the work recorded (a push's journal holds
 * a line per pack sent: 75 MB for a 4 GB database).
 *
 * @module
 */
import { closeSync, readSync } from "node:fs";
import { openRegularFile } from "./regular_file.ts";

/**
 * Each line of the file at `path` (without its `\n`), read a chunk at a time; a line longer than `maxLine` bytes is
 * skipped, so a damaged or hand-made file cannot make one line take all memory.
 */
export function* fileLines(path: string, maxLine: number, chunk = 1 << 20): Generator<string> {
  // a regular file only, never through a link or waiting on a FIFO (one swapped in after the folder was read)
  const { fd } = openRegularFile(path, { maxBytes: Number.MAX_SAFE_INTEGER });
  using _file = { [Symbol.dispose]: () => closeSync(fd) };
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(chunk);
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let skipping = false;
  for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
    let start = 0;
    for (let end = buffer.indexOf(10, start); end !== -1 && end < read; end = buffer.indexOf(10, start)) {
      const tail = buffer.subarray(start, end);
      if (!skipping && pendingBytes + tail.length <= maxLine) yield decoder.decode(joined([...pending, tail]));
      pending = [];
      pendingBytes = 0;
      skipping = false;
      start = end + 1;
    }
    pendingBytes += read - start;
    if (pendingBytes > maxLine) skipping = true;
    // a line past the bound is not kept, nor copied chunk by chunk: a file of zeros makes no garbage to outgrow memory
    pending = skipping ? [] : [...pending, buffer.slice(start, read)];
  }
  if (!skipping && pendingBytes > 0) yield decoder.decode(joined(pending));
}

function joined(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) all.set(part, (at += part.length) - part.length);
  return all;
}
