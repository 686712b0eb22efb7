/**
 * Where other filesystems are mounted below a folder: a recursive removal crosses into them (a bind mount left in a
 * leftover folder would lose what it shows), so the removals inside the backup folder look first.
 *
 * @module
 */
import { isAbsolute, relative, sep } from "node:path";
import { openLibc, readText } from "./proc_read.ts";
import { parseMountPoints } from "./proc_tables.ts";

/**
 * The mount points at the folder `path` (which exists) or below it, from this process's mount table; `null` when the
 * table cannot be read (no `/proc`, no libc, no FFI permission), and the caller cannot tell.
 */
export function mountPointsAt(path: string): string[] | null {
  let libc: ReturnType<typeof openLibc>;
  try {
    libc = openLibc();
  } catch {
    return null; // no FFI permission here: /proc cannot be read
  }
  if (libc === null) return null;
  try {
    const table = readText(libc.symbols, "/proc/self/mountinfo");
    if (typeof table === "string") return null;
    const real = Deno.realPathSync(path);
    return parseMountPoints(table.text).filter((point) => {
      const rest = relative(real, point);
      return rest === "" || (rest !== ".." && !rest.startsWith(`..${sep}`) && !isAbsolute(rest));
    });
  } finally {
    libc.close();
  }
}
