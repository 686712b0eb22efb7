/**
 * Why SQLite could not open a live database to copy it, when the cause is beside the database rather than in it: a
 * `-wal`/`-shm`/`-journal` that is not a regular file, or a full filesystem where SQLite must write its `-shm` file.
 *
 * @module
 */
import { dirname } from "node:path";
import { lstatOrNull } from "../fs/probe.ts";
import { kindOf } from "../fs/regular_file.ts";
import { fileSystemSpace } from "../sys/free_space.ts";

/** SQLite's files beside a database, which it opens (and may create) with it. */
const SIDECARS = ["-wal", "-shm", "-journal"];
/** Room SQLite needs beside a WAL database to open it: its `-shm` index grows in 32 KiB pieces. */
const SHM_ROOM = 64 * 1024;

/**
 * The cause of a failed open of the live database at `path`, as a clause that names the path and what to do, or
 * `null` when none is seen beside it (the caller then reports SQLite's own error).
 */
export function liveSqliteCause(path: string): string | null {
  for (const suffix of SIDECARS) {
    const info = lstatOrNull(`${path}${suffix}`);
    if (info !== null && !info.isFile) {
      return `${path}${suffix} is a ${kindOf(info)}, not a file, and SQLite opens only a file there; once no ` +
        "process uses the database, move it aside";
    }
  }
  const space = fileSystemSpace(dirname(path));
  if (space !== null && space.available < SHM_ROOM) {
    return `the filesystem of ${dirname(path)} is full (${space.available} bytes free) and SQLite needs room there ` +
      "for its -shm file; free space there";
  }
  return null;
}
