/**
 * A file's identity as its metadata tells it: device, inode, size, and the modification and change times. Two reads
 * of one path with the same identity read the same bytes, unless someone set the clock back to forge it.
 *
 * @module
 */

/** The identity of the file `info` describes (from `stat`, `lstat` or an open file's `stat`), as one comparable text. */
export function fileIdentity(info: Pick<Deno.FileInfo, "dev" | "ino" | "size" | "mtime" | "ctime">): string {
  return [info.dev, info.ino, info.size, info.mtime?.getTime(), info.ctime?.getTime()].join(":");
}
