/**
 * Reading an exact range of a file.
 *
 * @module
 */

/**
 * Exactly `length` bytes of `file` from `offset`, or `null` when the file ends before.
 * Moves the file's position to the end of the range.
 */
export function readAt(
  file: Pick<Deno.FsFile, "readSync" | "seekSync">,
  offset: number,
  length: number,
): Uint8Array<ArrayBuffer> | null {
  const bytes = new Uint8Array(length);
  file.seekSync(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < length) {
    const read = file.readSync(bytes.subarray(filled));
    if (read === null) return null;
    filled += read;
  }
  return bytes;
}
