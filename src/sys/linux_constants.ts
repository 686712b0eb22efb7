/**
 * The Linux constants passed to and read from libc through FFI (`<fcntl.h>`, `<sys/stat.h>`, `<linux/stat.h>`), said
 * once for every caller; the file-type bits are POSIX's, which SFTP's attributes carry too.
 *
 * @module
 */

/** `openat`/`statx`'s directory for a path relative to the current folder (or an absolute one). */
export const AT_FDCWD = -100;
/** `statx` mask bit asking for the inode number. */
export const STATX_INO = 0x100;
/** The file-type bits of a mode. */
export const S_IFMT = 0o170000;
/** File type: a regular file. */
export const S_IFREG = 0o100000;
/** File type: a directory. */
export const S_IFDIR = 0o040000;

/**
 * `open`'s flags on `arch`: the same on x86_64 and arm64 but for `O_DIRECTORY` and `O_NOFOLLOW`, which arm64 defines as
 * x86_64's `O_DIRECT` and `O_LARGEFILE` are not (`asm-generic/fcntl.h` against `arch/arm64/include/uapi/asm/fcntl.h`).
 */
export function openFlags(arch: string): Record<
  "O_RDONLY" | "O_WRONLY" | "O_CREAT" | "O_EXCL" | "O_DIRECTORY" | "O_NOFOLLOW" | "O_NONBLOCK" | "O_CLOEXEC",
  number
> {
  const arm = arch === "aarch64";
  return {
    O_RDONLY: 0o0,
    O_WRONLY: 0o1,
    O_CREAT: 0o100,
    O_EXCL: 0o200,
    O_DIRECTORY: arm ? 0o40000 : 0o200000,
    O_NOFOLLOW: arm ? 0o100000 : 0o400000,
    O_NONBLOCK: 0o4000,
    O_CLOEXEC: 0o2000000,
  };
}
