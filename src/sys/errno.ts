/**
 * A libc call through FFI and its errno, read with no call between them. The runtime's own code may still run there (a
 * collection, a lock's wait) and leave EINTR or EAGAIN in errno after a failure: such a call is made again.
 * @module
 */

/** The libc call that gives this thread's errno. */
export interface ErrnoLocation {
  __errno_location(): Deno.PointerValue;
}

const EINTR = 4;
const EAGAIN = 11;
const ATTEMPTS = 5;

/** This thread's errno as a cell, read and cleared without a call (a call is where the runtime may run its code). */
export function errnoCell(libc: ErrnoLocation): Int32Array {
  return new Int32Array(Deno.UnsafePointerView.getArrayBuffer(libc.__errno_location()!, 4));
}

/**
 * Make the libc `call` and give its result with its errno (0 when `failed` says it did not fail), made again up to 5
 * times while errno reads EINTR or EAGAIN: seen left there by the runtime after a `statx` failed with ENOENT, which made
 * a missing entry an error. The calls made so fail without a change (or are retried by their callers), so a repeat is
 * safe; a true EAGAIN (a lock held) is given after the last. A call a repeat would not tell the truth of (`fsync`, whose
 * error Linux reports once) is made with `attempts` 1.
 */
export function withErrno<T>(
  cell: Int32Array,
  call: () => T,
  failed: (result: T) => boolean,
  attempts = ATTEMPTS,
): { result: T; errno: number } {
  for (let attempt = 1;; attempt++) {
    cell[0] = 0;
    const result = call();
    const errno = failed(result) ? cell[0] : 0;
    if ((errno !== EINTR && errno !== EAGAIN) || attempt >= attempts) return { result, errno };
  }
}

/** Whether a libc call failed, by its result: a negative number, or a null pointer. */
export function failedCall(result: number | bigint | Deno.PointerValue): boolean {
  return result === null || (typeof result === "object" ? false : result < 0);
}
