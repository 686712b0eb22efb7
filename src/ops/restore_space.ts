/**
 * The free space a restore needs, on each filesystem it writes to, checked before anything is changed: a restore
 * that runs out of space half way is the worst moment to find out.
 *
 * @module
 */
import { dirname } from "node:path";
import { formatBytes } from "../text/bytes.ts";
import type { Config } from "../config.ts";
import { describeOsError, RefusedError } from "../errors.ts";
import { lstatOrNull, statOrNull } from "../fs/probe.ts";
import { UnnamableEntryError, walkTree } from "../fs/tree.ts";
import type { Reporter } from "../report/reporter.ts";
import { CHROMA_OLD_PREFIX, CHROMA_STAGING_PREFIX } from "../snapshot/chroma.ts";
import { checkpointGrowth } from "../sqlite/wal_growth.ts";
import { fileSystemSpace } from "../sys/free_space.ts";
import { mountOf } from "../sys/mounts.ts";
import type { RestorePlan } from "./restore_plan.ts";

/** One thing a restore writes: what it is, where (a folder, or a file to be made there), and its size. */
interface Need {
  what: string;
  where: string;
  /** The sizes of the files it writes, and how many folders. */
  files: number[];
  folders: number;
}

/**
 * Refuse (exit 3, nothing changed) when a filesystem the restore writes to has less free space than the restore
 * writes there: the database copy and the checkpoint of the target's `-wal` beside the database, the registry copy,
 * the Chroma copy staged in the Chroma folder, and the pre-restore snapshot in the backup folder. Each file counts in
 * whole blocks; nothing the restore frees on the way (the old files) is counted, so the figure is an upper bound,
 * except what killed runs left in `clearedFirst` (a resumed restore's Chroma folder) and `clearedFiles` (beside the
 * database: restores' temporaries, each counted when it is its file's last name, and fetches' scratch folders), which
 * go before anything is written: an unfinished restore whose leftovers fill the disk can still be finished or undone.
 * Where free space cannot be asked (off Linux, no libc) it warns `free_space_check_unavailable` and goes on.
 */
export function requireFreeSpace(
  config: Config,
  plan: RestorePlan,
  { preSnapshot, reporter, moveSources = false, clearedFirst = null, clearedFiles = [], elsewhereFlag = "--to DIR" }: {
    preSnapshot: boolean;
    reporter: Reporter;
    moveSources?: boolean;
    clearedFirst?: string | null;
    /** Files and folders removed before anything is written. */
    clearedFiles?: readonly string[];
    /** How the operator restores to another filesystem, for the refusal. */
    elsewhereFlag?: string;
  },
): void {
  const needs = restoreNeeds(plan, moveSources).concat(
    preSnapshot ? preSnapshotNeeds(config, plan.sources.chroma !== null) : [],
  );
  for (const group of byFileSystem(needs)) {
    const space = fileSystemSpace(group.folder);
    if (space === null) {
      reporter.event("warning", "free_space_check_unavailable", { path: group.folder });
      continue;
    }
    const sized = group.needs.map((need) => ({ what: need.what, bytes: blocks(need, space.blockSize) }));
    const freed = freedFirst(group.folder, space.blockSize, clearedFirst, clearedFiles);
    const total = Math.max(0, sized.reduce((sum, need) => sum + need.bytes, 0) - freed);
    reporter.event("info", "restore_free_space_checked", {
      path: group.folder,
      needed: total,
      available: space.available,
      ...(freed > 0 ? { leftovers_cleared_first: freed } : {}),
    });
    if (total <= space.available) continue;
    const parts = sized.filter((need) => need.bytes > 0).map((need) => `${need.what} ${formatBytes(need.bytes)}`)
      .concat(freed > 0 ? [`less ${formatBytes(freed)} that killed runs left, removed first`] : []);
    throw new RefusedError(
      `not enough free space for this restore on the filesystem of ${group.folder}: it needs ${formatBytes(total)} ` +
        `(${parts.join(", ")}) and has ${formatBytes(space.available)} free; nothing was changed; free at least ` +
        `${
          formatBytes(total - space.available)
        } there, or restore to a folder on another filesystem (${elsewhereFlag})`,
    );
  }
}

/**
 * What the restore itself writes beside each target; with `move`, a source on the filesystem it goes to is moved
 * there, not copied, and takes no more room.
 */
function restoreNeeds(plan: RestorePlan, move: boolean): Need[] {
  const { sources, targets } = plan;
  const growth = checkpointGrowth(targets.db);
  const sizeOf = (path: string, where: string) => move && renameWorks(path, where) ? 0 : sizeOfFile(path);
  const needs: Need[] = [
    { what: "database copy", where: dirname(targets.db), files: [sizeOf(sources.db, dirname(targets.db))], folders: 0 },
    { what: `checkpoint of ${targets.db}-wal`, where: dirname(targets.db), files: [growth.bytes], folders: 0 },
  ];
  if (sources.registry !== null) {
    needs.push({
      what: "registry copy",
      where: dirname(targets.registry),
      files: [sizeOf(sources.registry, dirname(targets.registry))],
      folders: 0,
    });
  }
  if (sources.chroma !== null && !(move && renameWorks(sources.chroma, targets.chroma))) {
    needs.push({ what: "Chroma copy", where: targets.chroma, ...treeSizes(sources.chroma) });
  }
  return needs;
}

/** Whether `path` lies on the filesystem of `where` (or of its nearest existing ancestor). */
function sameFileSystem(path: string, where: string): boolean {
  return Deno.statSync(path).dev === Deno.statSync(existingFolder(where)).dev;
}

/**
 * Whether a rename can move `path` into `where` (or its nearest existing ancestor): one mount holds both, as the mount
 * table says, since a bind mount of the same filesystem shows the same device yet refuses a rename (EXDEV); by the
 * device where the table cannot be read.
 */
function renameWorks(path: string, where: string): boolean {
  const folder = existingFolder(where);
  const [from, to] = [mountOf(path), mountOf(folder)];
  return from !== null && to !== null ? from === to : sameFileSystem(path, folder);
}

/** What the pre-restore snapshot writes in the backup folder: the live store, its `-wal` included, as it is now. */
function preSnapshotNeeds(config: Config, withChroma: boolean): Need[] {
  const db = config.db.path;
  const files = [sizeOfFile(db) + checkpointGrowth(db).bytes, sizeOfFile(config.registry.path)];
  const chroma = withChroma && statOrNull(config.chromaDir.path)?.isDirectory
    ? treeSizes(config.chromaDir.path)
    : { files: [], folders: 0 };
  return [{
    what: "pre-restore snapshot",
    where: config.backupDir.path,
    files: [...files, ...chroma.files],
    folders: chroma.folders + 4,
  }];
}

/** Needs grouped by the filesystem they land on, each group named by a folder of it that exists. */
function byFileSystem(needs: Need[]): { folder: string; needs: Need[] }[] {
  const groups = new Map<number, { folder: string; needs: Need[] }>();
  for (const need of needs) {
    const folder = existingFolder(need.where);
    const device = Deno.statSync(folder).dev;
    const group = groups.get(device) ?? { folder, needs: [] };
    group.needs.push(need);
    groups.set(device, group);
  }
  return [...groups.values()];
}

/** `path`, or its nearest ancestor that exists (a restore creates the folders it lacks). */
function existingFolder(path: string): string {
  let folder = path;
  while (statOrNull(folder) === null && dirname(folder) !== folder) folder = dirname(folder);
  return folder;
}

function blocks(need: Need, blockSize: number): number {
  const round = (bytes: number) => Math.ceil(bytes / blockSize) * blockSize;
  return need.files.reduce((sum, bytes) => sum + round(bytes), 0) + need.folders * blockSize;
}

function sizeOfFile(path: string): number {
  const info = statOrNull(path);
  return info?.isFile ? info.size : 0;
}

/**
 * The bytes that removing the leftovers in `chroma` and the paths `cleared` (files, counted when it is their last
 * name, and folders) frees on the filesystem of `folder`.
 */
function freedFirst(folder: string, blockSize: number, chroma: string | null, cleared: readonly string[]): number {
  const inChroma = chroma !== null && sameFileSystem(chroma, folder) ? blocks(leftoverSizes(chroma), blockSize) : 0;
  const device = Deno.statSync(folder).dev;
  return cleared.reduce((sum, path) => {
    const info = lstatOrNull(path);
    if (info?.dev !== device) return sum;
    const sizes = info.isDirectory ? treeSizes(path) : { files: info.isFile && info.nlink === 1 ? [info.size] : [] };
    return sum + blocks({ what: "leftover", where: folder, folders: 0, ...sizes }, blockSize);
  }, inChroma);
}

/** The sizes of what killed restores left in the Chroma folder `root` (its hidden staged and old entries). */
function leftoverSizes(root: string): Need {
  const files: number[] = [];
  let folders = 0;
  const entries = statOrNull(root)?.isDirectory ? walkTree(root, (path) => !isLeftover(path.split("/")[0])) : [];
  for (const entry of entries) {
    if (entry.kind === "file") files.push(entry.size);
    if (entry.kind === "dir") folders += 1;
  }
  return { what: "leftovers", where: root, files, folders };
}

function isLeftover(name: string): boolean {
  return name.startsWith(CHROMA_STAGING_PREFIX) || name.startsWith(CHROMA_OLD_PREFIX);
}

/**
 * Refuse, before anything is changed, a Chroma folder at `root` that holds an entry whose name is not UTF-8: the
 * pre-restore snapshot could not copy it and the swap could not move it aside (the restore would stop half done).
 *
 * @throws {RefusedError} naming the entry.
 */
export function refuseUnnamableChroma(root: string): void {
  try {
    if (statOrNull(root)?.isDirectory) walkTree(root, isLeftover);
  } catch (error) {
    if (!(error instanceof UnnamableEntryError)) {
      throw new RefusedError(
        `restore refused: the Chroma folder ${root} cannot be read whole (${describeOsError(error)}), so it could ` +
          "not be moved aside; nothing was changed; make it readable to this user (or run as its owner), then run " +
          "the restore again",
        { cause: error },
      );
    }
    throw new RefusedError(
      `restore refused: the Chroma folder ${root} holds ${error.path}, whose name is not UTF-8, so this tool can ` +
        "neither copy it into the pre-restore snapshot nor move it aside; nothing was changed; rename it (ls -b " +
        "shows its bytes), then run the restore again",
      { cause: error },
    );
  }
}

/** The file sizes and folder count of a Chroma tree, leaving out what a killed restore left there. */
function treeSizes(root: string): { files: number[]; folders: number } {
  const entries = walkTree(root, isLeftover);
  return {
    files: entries.filter((entry) => entry.kind === "file").map((entry) => entry.size),
    folders: entries.filter((entry) => entry.kind === "dir").length + 1,
  };
}
