/**
 * The kernel's tables that name files by identity (device and inode) rather than by path: `/proc/locks`,
 * `/proc/<pid>/maps` and `/proc/self/mountinfo`. Pure parsing, so it is tested on lines taken from real processes.
 *
 * @module
 */

/** A file as the kernel names it, `MAJOR:MINOR:INODE` in decimal: the same whatever path or mount reached it. */
export type FileKey = string;

/** The key of the file `inode` on the filesystem whose device numbers are `major`:`minor`. */
export function fileKey(major: number, minor: number, inode: bigint | string): FileKey {
  return `${major}:${minor}:${BigInt(inode)}`;
}

/** One line of `/proc/locks`: a lock held on a file, or waited for. */
export interface LockEntry {
  /**
   * The holder's process id as seen from here; `null` when the kernel gives none (an open-file-description lock,
   * which belongs to no process, or a lock taken over the network).
   */
  pid: number | null;
  /** The locked file. */
  file: FileKey;
  /** `POSIX` (SQLite's), `OFDLCK`, `FLOCK`, `LEASE`, `DELEG`... as the kernel spells it. */
  kind: string;
  /** Whether the process is waiting for this lock rather than holding it (`->` in the table). */
  waiting: boolean;
}

/**
 * Parse `/proc/locks`. Lines are `ID: [->] KIND MODE ACCESS PID MAJ:MIN:INODE START END`, with the device numbers in
 * hexadecimal and the inode in decimal; a lock on no inode (`<none>`) and an unreadable line are skipped.
 */
export function parseLocks(text: string): LockEntry[] {
  const entries: LockEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const at = fields.findIndex((field) => /^[0-9a-f]+:[0-9a-f]+:\d+$/i.test(field));
    if (at < 3 || !/^\d+:$/.test(fields[0]) || !/^-?\d+$/.test(fields[at - 1])) continue;
    const waiting = fields[1] === "->";
    const [major, minor, inode] = fields[at].split(":");
    const pid = Number(fields[at - 1]);
    entries.push({
      pid: pid > 0 ? pid : null,
      file: fileKey(parseInt(major, 16), parseInt(minor, 16), inode),
      kind: fields[waiting ? 2 : 1],
      waiting,
    });
  }
  return entries;
}

/**
 * The files mapped into a process's memory, from its `/proc/<pid>/maps`: lines are
 * `START-END PERMS OFFSET MAJ:MIN INODE [PATH]`, device numbers in hexadecimal; anonymous maps (inode 0) are skipped.
 */
export function parseMaps(text: string): Set<FileKey> {
  const files = new Set<FileKey>();
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5 || !/^[0-9a-f]+:[0-9a-f]+$/i.test(fields[3]) || !/^\d+$/.test(fields[4])) continue;
    if (fields[4] === "0") continue;
    const [major, minor] = fields[3].split(":");
    files.add(fileKey(parseInt(major, 16), parseInt(minor, 16), fields[4]));
  }
  return files;
}

/**
 * The device numbers of each mount's filesystem, by mount id, from `/proc/self/mountinfo` (decimal `MAJ:MIN` in the
 * third field). `/proc/locks` and `maps` name files by these, which may differ from `stat`'s device (btrfs subvolumes).
 */
export function parseMountDevices(text: string): Map<number, [number, number]> {
  const devices = new Map<number, [number, number]>();
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 3 || !/^\d+$/.test(fields[0]) || !/^\d+:\d+$/.test(fields[2])) continue;
    const [major, minor] = fields[2].split(":").map(Number);
    devices.set(Number(fields[0]), [major, minor]);
  }
  return devices;
}

/** One mount of `/proc/self/mountinfo`: its id, its parent's id and where it is mounted. */
export interface MountEntry {
  id: number;
  parent: number;
  /** The filesystem's device, `major:minor`. */
  device: string;
  /** The folder of that filesystem the mount shows (`/` but for a bind mount of a folder inside it). */
  root: string;
  point: string;
}

/**
 * Every mount of `/proc/self/mountinfo`, in its order (its third to fifth fields, the device, the root and the mount
 * point, with the kernel's octal escapes undone): a removal must not reach into one.
 */
export function parseMounts(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    if (fields.length < 5 || !/^\d+$/.test(fields[0]) || !/^\d+$/.test(fields[1]) || !fields[4].startsWith("/")) {
      continue;
    }
    const [device, root, point] = [fields[2], unescaped(fields[3]), unescaped(fields[4])];
    mounts.push({ id: Number(fields[0]), parent: Number(fields[1]), device, root, point });
  }
  return mounts;
}

/** A path of the mount table with the kernel's octal escapes (of space, tab, newline and backslash) undone. */
function unescaped(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * The mount points `/etc/fstab` names (its second field, octal escapes undone), but not `/`, swap or `none`: where a
 * disk is meant to be mounted.
 */
export function parseFstabPoints(text: string): string[] {
  const points: string[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 3 || fields[0].startsWith("#") || !fields[1].startsWith("/") || fields[1] === "/") continue;
    if (fields[2] === "swap") continue;
    points.push(unescaped(fields[1]));
  }
  return points;
}
