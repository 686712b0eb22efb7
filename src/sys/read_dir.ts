/**
 * A folder stream read to its end with libc's `readdir` through FFI, a failure part way (an I/O error) told from the
 * end: both return NULL, and only a failure sets errno.
 * @module
 */
import { errnoCell, type ErrnoLocation, withErrno } from "./errno.ts";

/** The libc calls a listing needs, as every binding of them here declares them. */
export interface ReaddirCalls extends ErrnoLocation {
  readdir(dir: Deno.PointerValue): Deno.PointerValue;
}

/** Offset of `d_name` in Linux's `struct dirent` on 64-bit systems (glibc and musl). */
const DIRENT_NAME = 19;

/**
 * The names in the open folder stream `dir` (not `.` and `..`), from where it stands; or the errno of the `readdir`
 * that failed, never the names read before it (a shorter folder): errno is cleared before each call.
 */
export function readNames(libc: ReaddirCalls, dir: Deno.PointerObject): string[] | { errno: number } {
  const cell = errnoCell(libc);
  const names: string[] = [];
  for (;;) {
    const { result: entry, errno } = withErrno(cell, () => libc.readdir(dir), (entry) => entry === null);
    if (entry === null) return errno === 0 ? names : { errno };
    const name = Deno.UnsafePointerView.getCString(entry, DIRENT_NAME);
    if (name !== "." && name !== "..") names.push(name);
  }
}
