/**
 * Where other filesystems are mounted below a folder: a recursive removal crosses into them (a bind mount left in a
 * leftover folder would lose what it shows), so the removals inside the backup folder look first.
 *
 * @module
 */
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { openLibc, readText } from "./proc_read.ts";
import { type MountEntry, parseFstabPoints, parseMounts } from "./proc_tables.ts";

/**
 * The mount points at the folder `path` (which exists) or below it, from this process's mount table; `null` when the
 * table cannot be read (no `/proc`, no libc, no FFI permission), and the caller cannot tell.
 */
export function mountPointsAt(path: string): string[] | null {
  const mounted = mountedPoints();
  if (mounted === null) return null;
  const real = Deno.realPathSync(path);
  return mounted.filter((point) => isSameOrBelow(point, real));
}

/**
 * Whether something is mounted at `path` itself (which exists: a folder, or one file bind-mounted); `false` when the
 * table cannot be read.
 */
export function isMountPoint(path: string): boolean {
  return (mountPointsAt(path) ?? []).includes(Deno.realPathSync(path));
}

/**
 * The mount point whose mount holds `path` (which exists), from this process's mount table: a rename works between two
 * paths only when one mount holds both (a bind mount of the same filesystem is another mount: EXDEV). `null` when the
 * table cannot be read.
 */
export function mountOf(path: string): string | null {
  const mounted = mountedPoints();
  if (mounted === null) return null;
  const real = Deno.realPathSync(path);
  const holding = mounted.filter((point) => isSameOrBelow(real, point));
  return holding.reduce((deepest, point) => point.length > deepest.length ? point : deepest, "/");
}

/**
 * The mount point `/etc/fstab` names at `path` or above it (not `/`) that is not mounted now, or `null`: a folder
 * made there would land on the disk below the mount point instead of the one meant (a NAS or USB disk not mounted).
 * `null` too where either table cannot be read.
 */
export function unmountedFstabPoint(path: string): string | null {
  let fstab: string;
  try {
    fstab = Deno.readTextFileSync("/etc/fstab");
  } catch {
    return null;
  }
  const mounted = mountedPoints();
  if (mounted === null) return null;
  const wanted = parseFstabPoints(fstab).filter((point) => isSameOrBelow(resolve(path), point));
  return wanted.find((point) => !mounted.includes(point)) ?? null;
}

/** Where a path lies in its filesystem (see {@linkcode filesystemPlace}). */
export interface FilesystemPlace {
  /** The filesystem's device, `major:minor`. */
  device: string;
  /** The path from that filesystem's root. */
  path: string;
  /** Whether the mount that holds it shows a folder inside its filesystem (a bind mount of one), not the root. */
  bound: boolean;
}

/** The mount table as overlap checks read it: once per process, since they run before a command's work. */
let placeTable: MountEntry[] | null | undefined;

/**
 * Where the existing `path` lies in its filesystem: the device of the mount that holds it and the path from that
 * filesystem's root, so that two paths reaching one folder through different mounts (a bind mount of a folder inside
 * another) compare equal, which no identity of a folder above either shows. `null` when the table cannot be read, the
 * path is gone, or the mount's root is no path (a bind mount of a deleted file or folder).
 */
export function filesystemPlace(path: string): FilesystemPlace | null {
  if (placeTable === undefined) placeTable = visibleMounts();
  if (placeTable === null) return null;
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch {
    return null; // gone since it was seen (a writer's -journal, deleted as it commits): nowhere to compare
  }
  let holding: MountEntry | null = null;
  for (const mount of placeTable) { // of one point, the last mounted is the one seen
    if (isSameOrBelow(real, mount.point) && mount.point.length >= (holding?.point.length ?? 0)) holding = mount;
  }
  if (holding === null || holding.root.endsWith("//deleted")) return null;
  const place = join(holding.root, relative(holding.point, real));
  return { device: holding.device, path: place, bound: holding.root !== "/" };
}

/** Every mount point of this process's mount table; `null` when it cannot be read (no `/proc`, libc or FFI). */
function mountedPoints(): string[] | null {
  return visibleMounts()?.map((mount) => mount.point) ?? null;
}

/** The mounts of this process's mount table a path reaches (see {@linkcode visible}); `null` as above. */
function visibleMounts(): MountEntry[] | null {
  let libc: ReturnType<typeof openLibc>;
  try {
    libc = openLibc();
  } catch {
    return null; // no FFI permission here: /proc cannot be read
  }
  if (libc === null) return null;
  try {
    const table = readText(libc.symbols, "/proc/self/mountinfo");
    return typeof table === "string" ? null : visible(parseMounts(table.text));
  } finally {
    libc.close();
  }
}

/**
 * The mounts of `mounts` that a path reaches: not one covered by a later mount between its parent mount's point and
 * its own (a folder mounted over after it was mounted inside: what it holds is out of reach, and no unmount by that
 * path could take it away).
 */
function visible(mounts: readonly MountEntry[]): MountEntry[] {
  const byId = new Map(mounts.map((mount) => [mount.id, mount]));
  const byPoint = new Map<string, MountEntry[]>();
  for (const mount of mounts) byPoint.set(mount.point, [...byPoint.get(mount.point) ?? [], mount]);
  return mounts.filter((mount) => {
    const parent = byId.get(mount.parent);
    if (parent === undefined || parent.id === mount.id) return true; // the root of this table
    const above = new Set<number>();
    for (let at: MountEntry | undefined = parent; at && !above.has(at.id); at = byId.get(at.parent)) above.add(at.id);
    // a mount at this one's point or a folder above it, below its parent's point and not one it lies on, covers it:
    // looked up by point (thousands of mounts on a container host made comparing every pair take seconds)
    for (let point = mount.point; point !== parent.point; point = dirname(point)) {
      const covering = isSameOrBelow(point, parent.point) &&
        (byPoint.get(point) ?? []).some((other) => other.id !== mount.id && !above.has(other.id));
      if (covering) return false;
      if (dirname(point) === point) break;
    }
    return true;
  });
}

/** Whether `path` is `folder` or lies below it (both absolute). */
function isSameOrBelow(path: string, folder: string): boolean {
  const rest = relative(folder, path);
  return rest === "" || (rest !== ".." && !rest.startsWith(`..${sep}`) && !isAbsolute(rest));
}
