/**
 * libc's calls inside a folder held open (`openat`, `mkdirat`, `renameat`, ...) and on what they open, through
 * `Deno.dlopen`: a name is taken in the folder the descriptor holds, whatever its path leads to meanwhile (Deno has no
 * such calls, and lets only `--allow-all` programs name a descriptor as `/proc/self/fd/N`).
 * @module
 */
import { basename, dirname } from "node:path";
import { cString } from "./c_string.ts";
import { openFlags } from "./linux_constants.ts";
import { LIBC_NAMES } from "./proc_read.ts";
import { readNames } from "./read_dir.ts";
import { errnoCell, failedCall, withErrno } from "./errno.ts";
import { AT_FDCWD, S_IFDIR, S_IFMT, S_IFREG, STATX_INO } from "./linux_constants.ts";

const SYMBOLS = {
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  renameat: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  fsync: { parameters: ["i32"], result: "i32", nonblocking: true },
  fsyncNow: { name: "fsync", parameters: ["i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  geteuid: { parameters: [], result: "u32" },
  dup: { parameters: ["i32"], result: "i32" },
  fdopendir: { parameters: ["i32"], result: "pointer" },
  rewinddir: { parameters: ["pointer"], result: "void" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The libc functions the calls here bind. */
export type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const AT_EMPTY_PATH = 0x1000;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const STATX_TYPE = 0x1;
const STATX_UID = 0x8;
const STATX_NLINK = 0x4;
const STATX_MTIME = 0x40;
const S_IFLNK = 0o120000;
/** `O_PATH`: a descriptor that names a file (a link itself, with `O_NOFOLLOW`) without opening it for reading. */
const O_PATH = 0o10000000;
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_CLOEXEC } = openFlags(
  Deno.build.arch,
);
const UTIME_OMIT = (1 << 30) - 2;
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/** The error names of the errno values these calls meet, as `node:fs` gives them in `code`. */
const CODES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  9: "EBADF",
  13: "EACCES",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  24: "EMFILE",
  28: "ENOSPC",
  30: "EROFS",
  31: "EMLINK",
  36: "ENAMETOOLONG",
  37: "ENOLCK",
  40: "ELOOP",
  95: "EOPNOTSUPP",
  122: "EDQUOT",
};

let loaded: Symbols | null | undefined;

/** libc's calls, or `null` where none loads or FFI is not permitted: the callers then go by path. */
export function folderCalls(): FolderCalls | null {
  const libc = folderSymbols();
  return libc === null ? null : new FolderCalls(libc);
}

/** libc's functions as bound here (or `null`), for a caller that wraps one of them: the tests' faults. */
export function folderSymbols(): Symbols | null {
  if (loaded === undefined) loaded = load();
  return loaded;
}

function load(): Symbols | null {
  for (const name of LIBC_NAMES) {
    try {
      return Deno.dlopen(name, SYMBOLS).symbols;
    } catch {
      // not this libc, or no FFI permission
    }
  }
  return null;
}

/** A file's device number (`st_dev`, as `Deno.FileInfo.dev` gives it) and inode. */
export interface Identity {
  dev: number;
  ino: number;
}

/** What an entry of a folder is (never following a link), and when it was last written. */
export interface EntryInfo {
  isFile: boolean;
  isDirectory: boolean;
  /** Its number of names (hard links). */
  links: number;
  mtimeMs: number;
}

/** The calls; every failure is thrown as the error `Deno` or `node:fs` would throw, naming the path given. */
export class FolderCalls {
  private readonly errnoCell: Int32Array;
  private lastErrno = 0;

  constructor(private readonly libc: Symbols) {
    this.errnoCell = errnoCell(libc);
  }

  /** Open the folder at `path` (links followed) or, with `inside`, the folder `path` inside it (never a link). */
  openFolder(path: string, inside?: { fd: number; shown: string }): number {
    const flags = O_DIRECTORY | O_CLOEXEC | (inside ? O_NOFOLLOW : 0);
    return this.check(
      () => this.libc.openat(inside?.fd ?? AT_FDCWD, cString(path), flags, 0),
      "open",
      inside?.shown ?? path,
    );
  }

  /** Open the folder at `path`, the folders above it as their paths lead but never a link at its own name. */
  openFolderNoFollow(path: string): number {
    const above = this.openFolder(dirname(path));
    try {
      return this.openFolder(basename(path), { fd: above, shown: path });
    } finally {
      this.close(above);
    }
  }

  /** Create the file `name` in the folder `fd` for writing: new (never an existing one) and never through a link. */
  createFile(fd: number, name: string, mode: number, shown: string): number {
    const flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    return this.check(() => this.libc.openat(fd, cString(name), flags, mode), "open", shown);
  }

  /** Open the file `name` in the folder `fd` to look at it: never through a link, never waiting on a FIFO. */
  openFile(fd: number, name: string, shown: string): number {
    const flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    return this.check(() => this.libc.openat(fd, cString(name), flags, 0), "open", shown);
  }

  /** Hold the entry `name` of the folder `fd` (a link itself, never followed) without opening it for reading. */
  holdEntry(fd: number, name: string, shown: string): number {
    return this.check(() => this.libc.openat(fd, cString(name), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0), "open", shown);
  }

  /** Whether the file `fd` holds is a symbolic link, its owner, and its identity, read in one call. */
  heldEntry(fd: number, shown: string): { isLink: boolean; owner: number; identity: Identity } {
    const buffer = new Uint8Array(256);
    const mask = STATX_TYPE | STATX_UID | STATX_INO;
    this.check(() => this.libc.statx(fd, cString(""), AT_EMPTY_PATH, mask, buffer), "statx", shown);
    const view = new DataView(buffer.buffer);
    const isLink = (view.getUint16(28, true) & S_IFMT) === S_IFLNK;
    return { isLink, owner: view.getUint32(20, true), identity: identityIn(view) };
  }

  /** The text of the symbolic link `fd` holds (opened with {@linkcode holdEntry}): that link's, whatever is renamed. */
  readLink(fd: number, shown: string): string {
    const buffer = new Uint8Array(4097);
    const length = Number(this.call(() => this.libc.readlinkat(fd, cString(""), buffer, BigInt(buffer.length))));
    if (length < 0) throw this.failure("readlink", shown);
    if (length >= buffer.length) throw this.failure("readlink", shown, 36);
    return new TextDecoder().decode(buffer.subarray(0, length));
  }

  /** A second descriptor of what `fd` holds, closed on its own. */
  duplicate(fd: number, shown: string): number {
    return this.check(() => this.libc.dup(fd), "dup", shown);
  }

  /** Write all of `bytes` to the file `fd` (at its offset). */
  write(fd: number, bytes: Uint8Array, shown: string): void {
    for (let done = 0; done < bytes.length;) {
      const written = Number(this.call(() => this.libc.write(fd, bytes.subarray(done), BigInt(bytes.length - done))));
      if (written < 0) throw this.failure("write", shown);
      done += written;
    }
  }

  /** Take the exclusive lock (`flock`) of the file `fd` if no one holds it; whether it was taken. */
  tryLock(fd: number, shown: string): boolean {
    if (this.call(() => this.libc.flock(fd, LOCK_EX | LOCK_NB)) === 0) return true;
    if (this.lastErrno === EWOULDBLOCK) return false;
    throw this.failure("flock", shown);
  }

  /** Make the file `fd` `size` bytes long (sparse where it grows). */
  truncate(fd: number, size: number, shown: string): void {
    this.check(() => this.libc.ftruncate(fd, BigInt(size)), "ftruncate", shown);
  }

  /** Give the file `fd` the permission bits `mode`. */
  setMode(fd: number, mode: number, shown: string): void {
    this.check(() => this.libc.fchmod(fd, mode), "chmod", shown);
  }

  /** Give the file `fd` the owner `uid` and group `gid`; `false` when this user may not give files away. */
  setOwner(fd: number, uid: number, gid: number, shown: string): boolean {
    if (this.call(() => this.libc.fchown(fd, uid, gid)) === 0) return true;
    if (this.lastErrno === 1) return false;
    throw this.failure("chown", shown);
  }

  /** Give the file `fd` the modification time `mtimeMs` (its access time kept). */
  setModified(fd: number, mtimeMs: number, shown: string): void {
    const times = new BigInt64Array([0n, BigInt(UTIME_OMIT), 0n, 0n]);
    times[2] = BigInt(Math.floor(mtimeMs / 1000));
    times[3] = BigInt(Math.round((mtimeMs - Number(times[2]) * 1000) * 1e6));
    this.check(() => this.libc.futimens(fd, new Uint8Array(times.buffer)), "utime", shown);
  }

  /** Make the symbolic link `name` in the folder `fd`, pointing at `target` (never followed here). */
  makeLink(target: string, fd: number, name: string, shown: string): void {
    this.check(() => this.libc.symlinkat(cString(target), fd, cString(name)), "symlink", shown);
  }

  /** Flush the descriptor `fd` to disk, on this thread. */
  syncNow(fd: number, shown: string): void {
    // once: Linux reports a failed write-back once, so a second fsync would pass
    if (this.call(() => this.libc.fsyncNow(fd), 1) !== 0) throw this.failure("fsync", shown);
  }

  /** The user owning the file the descriptor `fd` holds. */
  ownerOf(fd: number, shown: string): number {
    const buffer = new Uint8Array(256);
    this.check(() => this.libc.statx(fd, cString(""), AT_EMPTY_PATH, STATX_UID, buffer), "statx", shown);
    return new DataView(buffer.buffer).getUint32(20, true);
  }

  /** The names in the folder `fd` (not `.` and `..`), read through the descriptor, not a path. */
  names(fd: number, shown: string): string[] {
    const copy = this.check(() => this.libc.dup(fd), "dup", shown);
    const dir = this.call(() => this.libc.fdopendir(copy));
    if (dir === null) {
      const error = this.failure("opendir", shown);
      this.libc.close(copy);
      throw error;
    }
    try {
      this.libc.rewinddir(dir); // the copy shares its offset with `fd`: an earlier listing left it at the end
      const names = readNames(this.libc, dir);
      if (!Array.isArray(names)) throw this.failure("readdir", shown, names.errno);
      return names;
    } finally {
      this.libc.closedir(dir);
    }
  }

  /** The user this process acts as. */
  user(): number {
    return this.libc.geteuid();
  }

  /** Make the folder `name` in the folder `fd`. */
  makeFolder(fd: number, name: string, mode: number, shown: string): void {
    this.check(() => this.libc.mkdirat(fd, cString(name), mode), "mkdir", shown);
  }

  /** Give the file `from` in folder `fromFd` the name `to` in folder `toFd` too (fails when `to` exists). */
  link(fromFd: number, from: string, toFd: number, to: string, shown: string): void {
    this.check(() => this.libc.linkat(fromFd, cString(from), toFd, cString(to), 0), "link", shown);
  }

  /** Move `from` (a path, links followed up to its last name) to `to` in folder `toFd`, replacing what is there. */
  moveInto(from: string, toFd: number, to: string, shown: string): void {
    this.check(() => this.libc.renameat(AT_FDCWD, cString(from), toFd, cString(to)), "rename", shown);
  }

  /** Move `from` in folder `fromFd` to `to` in folder `toFd`, replacing what is there. */
  rename(fromFd: number, from: string, toFd: number, to: string, shown: string): void {
    this.check(() => this.libc.renameat(fromFd, cString(from), toFd, cString(to)), "rename", shown);
  }

  /** Remove the file (or link) `name` in the folder `fd`; whether it was there. */
  removeFile(fd: number, name: string, shown: string): boolean {
    if (this.call(() => this.libc.unlinkat(fd, cString(name), 0)) === 0) return true;
    if (this.lastErrno === 2) return false;
    throw this.failure("unlink", shown);
  }

  /** Remove the empty folder `name` in the folder `fd` (never a link); whether it was there. */
  removeFolder(fd: number, name: string, shown: string): boolean {
    if (this.call(() => this.libc.unlinkat(fd, cString(name), AT_REMOVEDIR)) === 0) return true;
    if (this.lastErrno === 2) return false;
    throw this.failure("rmdir", shown);
  }

  /**
   * Flush the descriptor `fd` to disk, on a runtime thread. Its errno stays on that thread, so a failure is flushed
   * again here for its reason (a disk full, an I/O error); one that then passes is still a failure, its reason unknown.
   */
  async sync(fd: number, shown: string): Promise<void> {
    if (await this.libc.fsync(fd) === 0) return;
    if (this.call(() => this.libc.fsyncNow(fd), 1) !== 0) throw this.failure("fsync", shown);
    const message = `could not flush ${shown} to disk (fsync failed, its reason not kept): fsync '${shown}'`;
    throw Object.assign(new Error(message), { code: "EIO", path: shown });
  }

  /** What the entry `name` of the folder `fd` is (a link itself, not followed), or `null` when there is none. */
  entry(fd: number, name: string, shown: string): EntryInfo | null {
    const buffer = new Uint8Array(256);
    const mask = STATX_TYPE | STATX_NLINK | STATX_MTIME;
    if (this.call(() => this.libc.statx(fd, cString(name), AT_SYMLINK_NOFOLLOW, mask, buffer)) !== 0) {
      if (this.lastErrno === 2) return null;
      throw this.failure("statx", shown);
    }
    return entryInfo(new DataView(buffer.buffer));
  }

  /** What the file the descriptor `fd` holds is, and when it was last written. */
  entryOf(fd: number, shown: string): EntryInfo {
    const buffer = new Uint8Array(256);
    this.check(
      () => this.libc.statx(fd, cString(""), AT_EMPTY_PATH, STATX_TYPE | STATX_NLINK | STATX_MTIME, buffer),
      "statx",
      shown,
    );
    return entryInfo(new DataView(buffer.buffer));
  }

  /** The identity of the file the descriptor `fd` holds. */
  identity(fd: number, shown: string): Identity {
    const buffer = new Uint8Array(256);
    this.check(() => this.libc.statx(fd, cString(""), AT_EMPTY_PATH, STATX_INO, buffer), "statx", shown);
    return identityIn(new DataView(buffer.buffer));
  }

  /** Close the descriptor `fd`. */
  close(fd: number): void {
    this.libc.close(fd);
  }

  /** Make the libc `call` ({@linkcode withErrno}, `attempts` times at most), its errno kept for {@linkcode failure}. */
  private call<T extends number | bigint | Deno.PointerValue>(call: () => T, attempts?: number): T {
    const { result, errno } = withErrno(this.errnoCell, call, failedCall, attempts);
    this.lastErrno = errno;
    return result;
  }

  private check(call: () => number, name: string, shown: string): number {
    const result = this.call(call);
    if (result >= 0) return result;
    throw this.failure(name, shown);
  }

  /**
   * The last call's failure (or that of `errno`) as `Deno` words it (`… (os error N): call 'path'`), its class and
   * `code` as `node:fs`'s.
   */
  private failure(call: string, shown: string, errno = this.lastErrno): Error {
    const words = Deno.UnsafePointerView.getCString(this.libc.strerror(errno)!);
    const message = `${words} (os error ${errno}): ${call} '${shown}'`;
    const error = errno === 2
      ? new Deno.errors.NotFound(message)
      : errno === 13 || errno === 1
      ? new Deno.errors.PermissionDenied(message)
      : errno === 17
      ? new Deno.errors.AlreadyExists(message)
      : errno === 20
      ? new Deno.errors.NotADirectory(message)
      : errno === 95
      ? new Deno.errors.NotSupported(message)
      : new Error(message);
    return Object.assign(error, { code: CODES[errno] ?? `E${errno}`, path: shown });
  }
}

/** An entry's kind, names and modification time from a `struct statx` (`stx_nlink` at 16, `stx_mode` at 28, `stx_mtime` at 112). */
function entryInfo(view: DataView): EntryInfo {
  const type = view.getUint16(28, true) & S_IFMT;
  const mtimeMs = Number(view.getBigInt64(112, true)) * 1000 + Math.floor(view.getUint32(120, true) / 1e6);
  return { isFile: type === S_IFREG, isDirectory: type === S_IFDIR, links: view.getUint32(16, true), mtimeMs };
}

/** A file's identity from a `struct statx` (`stx_ino` at 32, `stx_dev_major`/`minor` at 136/140). */
function identityIn(view: DataView): Identity {
  const major = BigInt(view.getUint32(136, true));
  const minor = BigInt(view.getUint32(140, true));
  // `dev_t` as glibc and musl make it from the two numbers
  const dev = ((major & 0xfffff000n) << 32n) | ((major & 0xfffn) << 8n) | ((minor & 0xffffff00n) << 12n) |
    (minor & 0xffn);
  return { dev: Number(dev), ino: Number(view.getBigUint64(32, true)) };
}
