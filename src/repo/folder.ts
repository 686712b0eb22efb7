/**
 * The folder backend: a repository in a local or mounted folder (NAS, NFS, USB disk, sshfs), named `file:///path` or
 * by a plain path. Each write goes to `.tmp/` in the repository, is fsynced, then published under its name.
 *
 * @module
 */
import { FOLDER_MODE } from "../fs/durable.ts";
import { HeldFolder } from "../fs/held_folder.ts";
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isIoError, OperationError, RefusedError, UsageError } from "../errors.ts";
import { kindOf } from "../fs/regular_file.ts";
import { isMountPoint, mountPointsAt, unmountedFstabPoint } from "../sys/mounts.ts";
import {
  AccessDeniedError,
  AlteredObjectError,
  type Backend,
  checkObjectName,
  checkPrefix,
  MAX_OBJECT_BYTES,
  ObjectExistsError,
  type ObjectInfo,
  ObjectNotFoundError,
  ObjectTooLargeError,
  RepositoryVanishedError,
  StorageFailedError,
  type WriteOptions,
} from "./backend.ts";
import { isExpectedTopEntry, isObjectPlace, isTooDeepFolder, stagedName, STAGING_FOLDER } from "./layout.ts";

/**
 * Open the folder repository named by `spec` (`file:///abs/path` or a path, relative to `cwd`). The folder need not
 * exist yet: the first write creates it (its parent must).
 *
 * @throws {UsageError} for another URL scheme or a `file:` URL with a host.
 */
export function openFolderBackend(spec: string, cwd: string = Deno.cwd()): Backend {
  let root: string;
  // `file:/x` is a file URL too (one slash), and `file:x` no folder name anyone means
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec) || /^file:/i.test(spec)) {
    if (!spec.toLowerCase().startsWith("file:")) {
      throw new UsageError(
        `remote ${JSON.stringify(spec.split("://")[0] + "://…")} is not supported; give file:///path`,
      );
    }
    if (/^file:(?!\/)/i.test(spec)) { // `file:x` would be read as `/x`
      throw new UsageError(`not a local file URL: ${JSON.stringify(spec)}; give file:///absolute/path`);
    }
    if (/[?#]/.test(spec)) { // a URL parser drops them: `file:///p?x=1` would be the folder `/p`
      throw new UsageError(
        `the file URL ${JSON.stringify(spec)} has a query or fragment (? or #), which no folder path takes; ` +
          "write ? as %3F and # as %23 if the folder's name holds them",
      );
    }
    try {
      root = resolve(fileURLToPath(spec)); // one spelling per folder: no trailing or doubled slash, no `.` or `..`
    } catch {
      throw new UsageError(`not a local file URL: ${JSON.stringify(spec)}; give file:///absolute/path`);
    }
    // `file://` (and `file://localhost`) would be the root folder, `%00` a NUL no path can hold
    if (/^file:\/\/(localhost)?$/i.test(spec) || root.includes("\0")) {
      throw new UsageError(`not a folder's file URL: ${JSON.stringify(spec)}; give file:///absolute/path`);
    }
  } else {
    if (spec.trim() === "") throw new UsageError("the remote is empty; give file:///path or a folder path");
    root = isAbsolute(spec) ? resolve(spec) : resolve(cwd, spec);
  }
  return new FolderBackend(root);
}

class FolderBackend implements Backend {
  readonly location: string;
  /** Whether the root was found not to lie under an fstab mount point that is not mounted. */
  private rootChecked = false;
  /** Whether this run saw the root there: from then on it is never made again, nor taken for no repository. */
  private rootSeen = false;

  constructor(readonly root: string) {
    this.location = `file://${root}`;
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const start = checkPrefix(prefix);
    const folder = await this.folderOrNull(start);
    if (folder === null) return [];
    this.refuseMountsIn(folder);
    const found: ObjectInfo[] = [];
    await walk(folder, start.join("/"), found);
    return found.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  /**
   * Refuse a folder mounted below the repository's own at `folder` or under it (a bind mount of another repository's
   * `packs/ab`, say): its files are another folder's, which a cleanup would delete as garbage of this one.
   *
   * @throws {AlteredObjectError} naming the mount point.
   */
  private refuseMountsIn(folder: string): void {
    const root = Deno.realPathSync(this.root);
    const inside = (mountPointsAt(folder) ?? []).filter((point) => point !== root).sort();
    if (inside.length === 0) return;
    throw new AlteredObjectError(
      `${inside[0]} is a mount point inside the repository ${this.root}: its files are another folder's, which this ` +
        "tool never lists, writes or removes; unmount it, then run the command again",
      "a mount point",
    );
  }

  async unlisted(prefix = ""): Promise<string[]> {
    const start = checkPrefix(prefix);
    const names: string[] = [];
    try {
      const folder = await this.folderOrNull(start);
      if (folder !== null) await walkUnlisted(folder, start.join("/"), names);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return names.sort();
  }

  async read(name: string, into?: Uint8Array, maxBytes = MAX_OBJECT_BYTES): Promise<Uint8Array> {
    const segments = checkObjectName(name);
    const parent = await this.folderOrNull(segments.slice(0, -1));
    if (parent === null) throw new ObjectNotFoundError(this.location, name);
    const path = join(parent, segments.at(-1)!);
    return await readBounded(path, into, maxBytes, {
      missing: () => new ObjectNotFoundError(this.location, name),
      notFile: (what) => altered(path, what),
      tooLarge: (size) => new ObjectTooLargeError(this.location, name, size, maxBytes),
    });
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const path = await this.existingFile(name);
    if (path === null) return null;
    const info = await lstatOrNull(path);
    return info ? { name, size: info.size } : null;
  }

  async remove(name: string): Promise<void> {
    const segments = checkObjectName(name);
    // by its name inside the folder held: a writer who swaps the folder for a link cannot redirect the removal
    await using parent = await this.existingFolders(segments.slice(0, -1));
    if (parent === null) return;
    const file = segments.at(-1)!;
    if (parent.entry(file)?.isDirectory) throw altered(join(parent.path, file), "a folder");
    await parent.removeFile(file); // a link is removed itself; one another cleanup removed meanwhile is removed as asked
    await parent.sync();
  }

  async write(name: string, bytes: Uint8Array, options: WriteOptions): Promise<void> {
    const segments = checkObjectName(name);
    const file = segments.at(-1)!;
    // each folder held open, names taken inside it: a writer who swaps one for a link cannot send the bytes elsewhere
    await using parent = await this.openFolders(segments.slice(0, -1));
    await using staging = await this.openFolders([STAGING_FOLDER]);
    const temporary = stagedName(segments);
    try {
      await staging.writeNewFile(temporary, bytes, (path) => altered(path, "replaced while it was being written"));
      if (options.exclusive) await this.publishExclusive(staging, temporary, parent, file, name);
      else await staging.moveTo(temporary, parent, file);
      await parent.sync();
    } finally {
      await staging.removeFile(temporary).catch(() => {});
    }
  }

  async clearStaging(graceMs: number, dryRun: boolean): Promise<string[]> {
    // by names inside the folder held: a writer who swaps .tmp for a link meanwhile cannot redirect them
    await using staging = await this.existingFolders([STAGING_FOLDER]);
    if (staging === null) return [];
    if (isMountPoint(staging.path)) {
      throw altered(staging.path, "a mount point"); // a bind mount's files are another folder's
    }
    // the storage's clock (an NFS server's may be ahead by more than the grace and take a running push's file for old)
    const now = dryRun ? Date.now() : await staging.storageNow(`.clock-${crypto.randomUUID()}`);
    const stale: string[] = [];
    for (const name of staging.names()) {
      const info = staging.entry(name);
      // Only files this backend staged: never a link (removing one never follows it anyway) or a folder.
      if (!info?.isFile || info.mtimeMs >= now - graceMs) continue;
      stale.push(`${STAGING_FOLDER}/${name}`);
      if (!dryRun) await staging.removeFile(name);
    }
    if (stale.length > 0 && !dryRun) await staging.sync();
    return stale.sort();
  }

  /** Publish with `link` (fails when the name exists); where hard links are not supported, check then rename. */
  private async publishExclusive(
    staging: HeldFolder,
    temporary: string,
    parent: HeldFolder,
    file: string,
    name: string,
  ) {
    try {
      return await staging.linkTo(temporary, parent, file);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) throw new ObjectExistsError(this.location, name);
      if (!(error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotSupported)) throw error;
    }
    if (parent.entry(file) !== null) throw new ObjectExistsError(this.location, name);
    await staging.moveTo(temporary, parent, file);
  }

  /** The path of an existing regular file named `name`, or `null` (a symbolic link or folder in the way is refused). */
  private async existingFile(name: string): Promise<string | null> {
    const segments = checkObjectName(name);
    const parent = await this.folderOrNull(segments.slice(0, -1));
    if (parent === null) return null;
    const path = join(parent, segments.at(-1)!);
    const info = await lstatOrNull(path);
    if (info === null) return null;
    if (!info.isFile) throw altered(path, "not a regular file");
    return path;
  }

  /** The folder `segments` below the root, or `null` when missing; any segment that is not a real folder is refused. */
  private async folderOrNull(segments: string[]): Promise<string | null> {
    let path = this.root;
    for (const segment of ["", ...segments]) {
      path = segment ? join(path, segment) : path;
      const info = segment ? await lstatOrNull(path) : await this.rootInfo();
      if (info === null) return null;
      if (!segment && !info.isDirectory) {
        throw new UsageError(
          `the repository ${path} is a ${kindOf(info)}, not a folder; give --remote a folder (or file:///path)`,
        );
      }
      if (!info.isDirectory) throw altered(path, "not a folder");
    }
    return path;
  }

  /**
   * Open the folders `segments` below the root (making the root and any that is missing, fsyncing each parent that
   * gained one), each inside the one before: a link or file in the way is refused, never followed.
   */
  private async openFolders(segments: string[]): Promise<HeldFolder> {
    await this.makeRoot();
    let folder = HeldFolder.open(this.root, { giveMade: true }); // a root run's go to the repository's owner
    try {
      for (const segment of segments) {
        const next = await folder.child(segment, (path) => altered(path, "not a folder"));
        await folder[Symbol.asyncDispose]();
        folder = next;
      }
      return folder;
    } catch (error) {
      await folder[Symbol.asyncDispose]();
      throw error;
    }
  }

  /** The folders `segments` below the root held as {@linkcode openFolders} does, or `null` when one is missing. */
  private async existingFolders(segments: string[]): Promise<HeldFolder | null> {
    if (await this.rootInfo() === null) return null;
    let folder: HeldFolder | null = HeldFolder.open(this.root);
    try {
      for (const segment of segments) {
        const next: HeldFolder | null = await folder.existingChild(segment, (path) => altered(path, "not a folder"));
        await folder[Symbol.asyncDispose]();
        folder = next;
        if (folder === null) return null;
      }
      return folder;
    } catch (error) {
      await folder?.[Symbol.asyncDispose]();
      throw error;
    }
  }

  /**
   * What the root is (links followed), or `null`: nothing there.
   *
   * @throws {RepositoryVanishedError} when the root this run saw is gone (see {@linkcode vanished}).
   */
  private async rootInfo(): Promise<Deno.FileInfo | null> {
    let info: Deno.FileInfo | null;
    try {
      info = await statOrNull(this.root);
    } catch (error) {
      throw error instanceof Deno.errors.NotADirectory ? this.throughFile() : error;
    }
    if (info === null && this.rootSeen) throw this.vanished();
    this.rootSeen ||= info !== null;
    return info;
  }

  /**
   * The error for a root this run saw that is gone: its disk unmounted mid-run (a lazy unmount, a NAS dropped). Made
   * again, the rest of the run would write on the disk below the mount point; taken for none, "no repository" would
   * send the operator to `remote init` there.
   */
  private vanished(): RepositoryVanishedError {
    return new RepositoryVanishedError(
      `the repository ${this.root} was there and is gone (its disk unmounted, or it was moved) during this run; ` +
        "nothing more was written; mount it or put it back, then run the command again",
    );
  }

  /** The error for a root that is a symbolic link leading nowhere: a NAS folder linked before its disk was mounted. */
  private danglingRoot(): RefusedError {
    return new RefusedError(
      `the repository ${this.root} is a symbolic link to a folder that does not exist (ls -l ${this.root}); mount ` +
        "its disk or make that folder, or give --remote another path, then run the command again (nothing was written)",
    );
  }

  private throughFile(): UsageError {
    return new UsageError(`a part of the path of the repository ${this.root} is a file, not a folder; check --remote`);
  }

  /**
   * Make the root, but never its parent: a repository path under a disk that is not mounted would otherwise be made on
   * the filesystem below the mount point, and the host's copies would stay on the host.
   */
  private async makeRoot(): Promise<void> {
    if (!this.rootChecked) {
      const point = unmountedFstabPoint(this.root);
      if (point !== null) {
        throw new RefusedError(
          `${point} is a mount point in /etc/fstab that is not mounted, and the repository ${this.root} would be ` +
            "written on the disk below it; mount it, then run the command again (nothing was written)",
        );
      }
      this.rootChecked = true;
    }
    // checked first: a repository left on the disk below an unmounted point is there, and seen
    if (this.rootSeen) {
      await this.rootInfo(); // never made again: gone, it is an error
      return;
    }
    try {
      await Deno.mkdir(this.root, { mode: FOLDER_MODE });
      await syncFolder(dirname(this.root));
      this.rootSeen = true;
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists && await this.rootInfo() === null) throw this.danglingRoot();
      if (error instanceof Deno.errors.AlreadyExists) return;
      if (error instanceof Deno.errors.NotADirectory) throw this.throughFile();
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      throw new RefusedError(
        `the folder ${dirname(this.root)} that would hold the repository ${this.root} does not exist; mount the disk ` +
          "or create that folder, then run the command again (nothing was written)",
      );
    }
  }
}

async function walk(folder: string, relative: string, found: ObjectInfo[]): Promise<void> {
  for await (const entry of listed(folder)) {
    if (entry.name.startsWith(".")) continue; // .tmp and anything hidden is never an object
    const name = relative ? `${relative}/${entry.name}` : entry.name;
    if (entry.isDirectory && isTooDeepFolder(name)) found.push({ name: `${name}/`, size: 0 });
    else if (entry.isDirectory) await walk(join(folder, entry.name), name, found);
    else if (entry.isFile) {
      const info = await lstatOrNull(join(folder, entry.name)); // removed since the folder was read: not listed
      if (info?.isFile) found.push({ name, size: info.size });
    }
  }
}

/** The entries of `folder`; an I/O error names it (the runtime's names no path). */
async function* listed(folder: string): AsyncGenerator<Deno.DirEntry> {
  try {
    yield* Deno.readDir(folder);
  } catch (error) {
    throw isIoError(error) ? new StorageFailedError(folder, "listing", error) : error;
  }
}

/**
 * What {@linkcode walk} leaves out below `folder`: symbolic links and special files (FIFOs, sockets, devices)
 * anywhere, folders where the format has objects only, and hidden names at the top but `.tmp`
 * (below it, `.nfs…` files and the like belong to the filesystem). `lost+found` is a filesystem's own.
 */
async function walkUnlisted(folder: string, relative: string, found: string[]): Promise<void> {
  for await (const entry of listed(folder)) {
    const name = relative ? `${relative}/${entry.name}` : entry.name;
    if (!relative && isExpectedTopEntry(entry.name)) continue;
    const special = !entry.isSymlink && !entry.isFile && !entry.isDirectory; // a FIFO, a socket, a device
    const misplaced = entry.isDirectory && isObjectPlace(name); // a folder where a file belongs
    if (entry.isSymlink || special || misplaced || (!relative && entry.name.startsWith("."))) found.push(name);
    else if (entry.isDirectory && !entry.name.startsWith(".") && !isTooDeepFolder(name)) {
      await walkUnlisted(join(folder, entry.name), name, found);
    }
  }
}

/** Flush the folder at `path`, opened as a folder and non-blocking: a FIFO a writer swapped in fails, never waits. */
async function syncFolder(path: string): Promise<void> {
  const folder = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK);
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Something in the repository folder is not what this tool writes there (a link, a folder for a file): never used. */
function altered(path: string, what: string): OperationError {
  if (basename(path) === STAGING_FOLDER) { // never an object, so verify has nothing to say of it
    return new OperationError(
      `${path} is ${what} (a link?): writes are staged there and no object lives in it; remove it, then run again`,
    );
  }
  return new AlteredObjectError(
    `${path} is ${what}; the repository folder was altered by hand, check it ('remote verify')`,
    what,
  );
}

/** The errors {@linkcode readBounded} throws, made by the caller (they name the object). */
interface ReadErrors {
  missing: () => Error;
  notFile: (what: string) => Error;
  tooLarge: (size: number) => Error;
}

/**
 * The file at `path` read into `into` when it fits (a view of it), else into a new buffer. It is opened without
 * following a link and without waiting on a FIFO, and checked to be a regular file on the open descriptor, so nothing
 * swapped in after a check is read; one over `maxBytes` is refused before any byte is read.
 */
async function readBounded(
  path: string,
  into: Uint8Array | undefined,
  maxBytes: number,
  errors: ReadErrors,
): Promise<Uint8Array> {
  // looked at first, then held to be the file opened: Deno's node:fs does not keep O_NOFOLLOW under --allow-read (it
  // opens what a link leads to), so a writer's link to a file of the reading host would be read
  const named = await lstatOrNull(path);
  if (named === null) throw errors.missing();
  if (named.isSymlink) throw errors.notFile("a symbolic link");
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT") throw errors.missing();
    if (code === "ELOOP") throw errors.notFile("a symbolic link");
    if (code === "ENXIO") throw errors.notFile("a socket or a device"); // what open(2) cannot open as a file
    if (code === "EACCES" || code === "EPERM") {
      throw new AccessDeniedError(
        `this user may not read ${path} (permission denied); give it read access to the repository folder (its ` +
          "owner and modes), or run as a user who has it",
        { cause: error },
      );
    }
    throw isIoError(error) ? new StorageFailedError(path, "opening", error) : error;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw errors.notFile("not a regular file");
    if (info.dev !== named.dev || info.ino !== named.ino) throw errors.notFile("replaced while it was opened");
    if (info.size > maxBytes) throw errors.tooLarge(info.size);
    const size = info.size;
    const buffer = into !== undefined && size <= into.length ? into : new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await handle.read(buffer, got, size - got, got).catch((error) => {
        throw isIoError(error) ? new StorageFailedError(path, "reading", error) : error;
      });
      if (bytesRead === 0) break; // shorter than it was: the caller's checks (a pack's name is its hash) refuse it
      got += bytesRead;
    }
    return buffer.subarray(0, got);
  } finally {
    await handle.close();
  }
}
