/**
 * Reads of Linux's `/proc` through libc (`opendir`, `readlink`, `open`/`read`, `statx`) with `Deno.dlopen`: Deno lets
 * only `--allow-all` programs read `/proc`, and the tool runs with narrower permissions.
 *
 * @module
 */
import { cString } from "./c_string.ts";
import { AT_FDCWD, STATX_INO } from "./linux_constants.ts";
import { readNames } from "./read_dir.ts";
import { errnoCell, failedCall, withErrno } from "./errno.ts";

/** Library names tried for libc: glibc, then musl. */
export const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"];

const LIBC_SYMBOLS = {
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32", optional: true },
  stat: { parameters: ["buffer", "buffer"], result: "i32", optional: true },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The libc functions used here. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** A read of `/proc` that ran, or why it did not: the entry is gone (or missing), or it is not ours to read. */
export type ProcRead<T> = T | "gone" | "denied";

/** A file's identity: its filesystem's device numbers, its inode, and the mount it was reached through, if known. */
export interface FileIdentity {
  major: number;
  minor: number;
  inode: bigint;
  /** The mount id (`statx`'s `STATX_MNT_ID`, Linux 5.8 and later); `null` where not reported. */
  mount: number | null;
}

const ENOENT = 2;
const ESRCH = 3;
const PATH_MAX = 4096;
const O_RDONLY_CLOEXEC = 0x80000;
const STATX_MNT_ID = 0x1000;
/** Room for `struct statx` (256 bytes) and for `struct stat` on every 64-bit Linux. */
const STAT_BUFFER = 256;

/** Open libc, or `null` where none loads (off glibc and musl); `statx` and `stat` may each be missing. */
export function openLibc(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | null {
  for (const name of LIBC_NAMES) {
    try {
      return Deno.dlopen(name, LIBC_SYMBOLS);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) throw error;
    }
  }
  return null;
}

/** A listing of `/proc` that failed part way (an I/O error): what was read of it is not the folder. */
export class ListingFailedError extends Error {}

/**
 * The names in the folder `path`, without `.` and `..`.
 *
 * @throws {ListingFailedError} naming `path` when `readdir` fails part way for another reason than its process ending.
 */
export function listDir(libc: Libc, path: string): ProcRead<string[]> {
  const { result: dir, errno } = call(libc, () => libc.opendir(cString(path)));
  if (dir === null) return failure(errno);
  try {
    const names = readNames(libc, dir);
    if (Array.isArray(names)) return names;
    if (names.errno === ENOENT || names.errno === ESRCH) return "gone"; // its process ended meanwhile
    const words = Deno.UnsafePointerView.getCString(libc.strerror(names.errno)!);
    throw new ListingFailedError(`listing ${path} failed part way (${words} (os error ${names.errno}))`);
  } finally {
    libc.closedir(dir);
  }
}

/** The target of the link `path` (for a descriptor, the path its process sees, in its own mount namespace). */
export function readLink(libc: Libc, path: string): ProcRead<string> {
  const buffer = new Uint8Array(PATH_MAX);
  const { result, errno } = call(libc, () => libc.readlink(cString(path), buffer, BigInt(buffer.length)));
  if (result < 0) return failure(errno);
  const length = Number(result);
  return new TextDecoder().decode(buffer.subarray(0, length));
}

/** The whole text of the `/proc` file `path` (these end on their own; they are not pipes). */
export function readText(libc: Libc, path: string): ProcRead<{ text: string }> {
  const { result: fd, errno } = call(libc, () => libc.open(cString(path), O_RDONLY_CLOEXEC));
  if (fd < 0) return failure(errno);
  try {
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(65536);
    for (;;) {
      const read = call(libc, () => libc.read(fd, buffer, BigInt(buffer.length)));
      if (read.result < 0) return failure(read.errno);
      const length = Number(read.result);
      if (length === 0) break;
      chunks.push(buffer.slice(0, length));
    }
    return { text: new TextDecoder().decode(concat(chunks)) };
  } finally {
    libc.close(fd);
  }
}

/**
 * The identity of the file at `path`, following links: for `/proc/<pid>/fd/<n>`, the file that descriptor holds,
 * whatever mount, namespace or name its process reached it through.
 */
export function identify(libc: Libc, path: string): ProcRead<FileIdentity> {
  const buffer = new Uint8Array(STAT_BUFFER);
  const view = new DataView(buffer.buffer);
  if (libc.statx !== null) {
    const made = call(libc, () => libc.statx!(AT_FDCWD, cString(path), 0, STATX_INO | STATX_MNT_ID, buffer));
    if (made.result !== 0) return failure(made.errno);
    const hasMount = (view.getUint32(0, true) & STATX_MNT_ID) !== 0;
    return {
      major: view.getUint32(136, true),
      minor: view.getUint32(140, true),
      inode: view.getBigUint64(32, true),
      mount: hasMount ? Number(view.getBigUint64(144, true)) : null,
    };
  }
  if (libc.stat === null) return "denied";
  const made = call(libc, () => libc.stat!(cString(path), buffer));
  if (made.result !== 0) return failure(made.errno);
  // `st_dev` then `st_ino`, both 64-bit, begin every 64-bit Linux `struct stat`; `dev_t` split as glibc and musl do.
  const device = view.getBigUint64(0, true);
  return {
    major: Number(((device >> 8n) & 0xfffn) | ((device >> 32n) & 0xfffff000n)),
    minor: Number((device & 0xffn) | ((device >> 12n) & 0xffffff00n)),
    inode: view.getBigUint64(8, true),
    mount: null,
  };
}

/** Whether {@linkcode identify} can run here (`statx` or `stat` is exported by this libc). */
export function canIdentify(libc: Libc): boolean {
  return libc.statx !== null || libc.stat !== null;
}

/** Make the libc `call` ({@linkcode withErrno}): its result, and its errno when it failed. */
function call<T extends number | bigint | Deno.PointerValue>(libc: Libc, made: () => T): { result: T; errno: number } {
  return withErrno(errnoCell(libc), made, failedCall);
}

/** Why a libc call failed, by its `errno`: the entry or process is gone (`ENOENT`, `ESRCH`), else we may not read it. */
function failure(errno: number): "gone" | "denied" {
  return errno === ENOENT || errno === ESRCH ? "gone" : "denied";
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.length;
  }
  return whole;
}
