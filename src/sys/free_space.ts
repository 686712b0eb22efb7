/**
 * Free space of a filesystem, from libc's `statvfs` through `Deno.dlopen` (Deno has no statfs),
 * so that restore can refuse before writing what would not fit.
 *
 * @module
 */
import { cString } from "./c_string.ts";
import { LIBC_NAMES } from "./proc_read.ts";

/** What `statvfs` says about the filesystem holding a path. */
export interface FileSystemSpace {
  /** Bytes an unprivileged user may still write (`f_bavail` × `f_frsize`). */
  available: number;
  /** The allocation unit (`f_frsize`): every file takes a whole number of them. */
  blockSize: number;
}

const STATVFS_SYMBOLS = { statvfs: { parameters: ["buffer", "buffer"], result: "i32" } } as const;

/** `struct statvfs` on 64-bit Linux (glibc and musl): eleven 8-byte fields, then reserved ints. */
const STATVFS_SIZE = 112;
const F_FRSIZE = 8;
const F_BAVAIL = 32;

/**
 * The space of the filesystem holding `path` (which must exist), or `null` where it cannot be asked: off Linux,
 * without a loadable libc, or when `statvfs` fails.
 */
export function fileSystemSpace(path: string): FileSystemSpace | null {
  if (Deno.build.os !== "linux") return null;
  const library = openStatvfs();
  if (library === null) return null;
  try {
    const buffer = new Uint8Array(STATVFS_SIZE);
    if (library.symbols.statvfs(cString(path), buffer) !== 0) return null;
    const view = new DataView(buffer.buffer);
    const blockSize = Number(view.getBigUint64(F_FRSIZE, true));
    return {
      available: Number(view.getBigUint64(F_BAVAIL, true)) * blockSize,
      blockSize,
    };
  } finally {
    library.close();
  }
}

function openStatvfs(): Deno.DynamicLibrary<typeof STATVFS_SYMBOLS> | null {
  for (const name of LIBC_NAMES) {
    try {
      return Deno.dlopen(name, STATVFS_SYMBOLS);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) throw error;
    }
  }
  return null;
}
