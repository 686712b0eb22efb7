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
