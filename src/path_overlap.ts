/**
 * Which of the store's configured paths overlap. Restore replaces the Chroma folder's contents and the database's and
 * registry's files (with the database's sidecars), create writes into the backup folder and cleanup deletes there:
 * one inside another would be overwritten or deleted with it, so every command refuses such a configuration.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { Config, ResolvedPath } from "./config.ts";
import { UsageError } from "./errors.ts";
import { SIDECAR_SUFFIXES } from "./sqlite/file_format.ts";
import { entriesOrNone, lstatOrNull } from "./fs/probe.ts";
import { isSameOrInside, realPathAsFarAsExists, statQuietly } from "./fs/real_path.ts";
import {
  chromaDbPath,
  copiedFileFolders,
  listedSnapshotDir,
  lockPath,
  metadataPath,
  ownFolders,
  restoreIntentPath,
  snapshotsDir,
} from "./snapshot/layout.ts";

/** One path a part of the store occupies, named for messages. */
interface Place {
  /** `the database`, `the database's -wal`, `the Chroma folder`, ... */
  label: string;
  path: string;
  /** The flag or variable (or default) the path came from. */
  from: string;
}

/** Where a path came from, for messages: its flag or variable, or the default and what it is under. */
function sourceOf(resolved: ResolvedPath): string {
  return resolved.source === "default" ? `default under ${resolved.from}` : resolved.from;
}

/** The places of each part of the store: four groups, each apart from the others. */
function placesOf(config: Config): Place[][] {
  const place = (label: string, resolved: ResolvedPath, suffix = ""): Place => ({
    label,
    path: resolved.path + suffix,
    from: sourceOf(resolved),
  });
  return [
    [
      place("the database", config.db),
      ...SIDECAR_SUFFIXES.map((suffix) => place(`the database's ${suffix}`, config.db, suffix)),
      ...(isSymlinkAt(restoreIntentPath(config.db.path)) ? [] : [recordPlace(config)]),
    ],
    [place("the registry", config.registry)],
    [place("the Chroma folder", config.chromaDir)],
    [place("the backup folder", config.backupDir)],
  ];
}

/**
 * Every overlap between the parts of the store, one line each (`the backup folder X (--backup-dir) is inside the
 * Chroma folder Y (ATOCORE_CHROMA_PATH)`); none for a sound configuration. Compared on real paths (links and `..`
 * resolved; for a path that does not exist yet, its deepest existing parent) and by folder identity (bind mounts).
 */
export function pathOverlaps(config: Config): string[] {
  const groups = placesOf(config);
  const found: string[] = [];
  for (const [index, group] of groups.entries()) {
    for (const other of groups.slice(index + 1)) {
      const overlap = firstOverlap(group, other);
      if (overlap !== null) found.push(overlap);
    }
  }
  for (const place of [groups[0][0], groups[1][0]]) {
    const linked = linkedSnapshotFile(place.path, config.backupDir.path);
    if (linked !== null) found.push(`${describe(place)} is a hard link of the snapshot file ${linked}`);
  }
  return [...found, ...temporaryNamed(groups, recordPlace(config))];
}

/**
 * The record a restore keeps beside the database while it runs (see `restore_intent.ts`): of the database's group
 * unless a symbolic link is there, which is never followed (create and restore refuse it as no record).
 */
function recordPlace(config: Config): Place {
  return {
    label: "the record of a restore in progress",
    path: restoreIntentPath(config.db.path),
    from: sourceOf(config.db),
  };
}

/** Whether a symbolic link is at `path`; `false` where none can be (a path through a file, said by the other checks). */
function isSymlinkAt(path: string): boolean {
  try {
    return lstatOrNull(path)?.isSymlink ?? false;
  } catch {
    return false;
  }
}

/**
 * Parts of the store named as the temporary copy of the database, its record or the registry (`.NAME.tmp-*` beside
 * it, see `temporaryPath`): restore removes such files as a killed write's leftovers.
 */
function temporaryNamed(groups: Place[][], record: Place): string[] {
  const written = [groups[0][0], record, groups[1][0]];
  const parts = groups.map((group) => group[0]);
  return written.flatMap((file) =>
    parts.filter((part) =>
      dirname(part.path) === dirname(file.path) && basename(part.path).startsWith(`.${basename(file.path)}.tmp-`)
    ).map((part) => `${describe(part)} is named as a temporary copy of ${describe(file)}, which restore removes`)
  );
}

/**
 * A file of a snapshot (its database, registry or `chroma.sqlite3`) that `path` is a hard link of, or `null`: the live
 * file's writes would change the snapshot. Looked for only when the file has other links.
 */
function linkedSnapshotFile(path: string, backupDir: string): string | null {
  const file = statQuietly(path);
  if (file === null || !file.isFile || (file.nlink ?? 1) < 2 || file.ino === null) return null;
  for (const stamp of namesIn(snapshotsDir(backupDir))) {
    const root = listedSnapshotDir(backupDir, stamp);
    const candidates = [
      ...copiedFileFolders(root).flatMap((folder) => namesIn(folder).map((name) => join(folder, name))),
      chromaDbPath(root),
    ];
    const found = candidates.find((candidate) => {
      const other = statQuietly(candidate);
      return other !== null && other.dev === file.dev && other.ino === file.ino;
    });
    if (found !== undefined) return found;
  }
  return null;
}

/** The names in folder `path`, none when it cannot be read (a configuration check never fails on it). */
function namesIn(path: string): string[] {
  try {
    return entriesOrNone(path).map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** The first overlap between a place of `first` and one of `second`, described, or `null`. */
function firstOverlap(first: Place[], second: Place[]): string | null {
  for (const a of first) {
    for (const b of second) {
      const aInB = isSameOrInside(a.path, b.path);
      const bInA = isSameOrInside(b.path, a.path);
      if (aInB && bInA) return `${describe(a)} is the same as ${describe(b)}`;
      if (aInB) return `${describe(a)} is inside ${describe(b)}`;
      if (bInA) return `${describe(b)} is inside ${describe(a)}`;
    }
  }
  return null;
}

function describe(place: Place): string {
  return `${place.label} ${place.path} (${place.from})`;
}

/**
 * What an output file at `path` (`--metrics-file`, `--junit`) would overwrite: the database, a sidecar or the record of
 * a restore in progress, the registry, anything in the Chroma folder, or in the backup folder's own folders and lock,
 * described; `null` when nothing (compared as {@linkcode pathOverlaps} compares).
 */
export function outputOverlap(config: Config, path: string): string | null {
  const backup = config.backupDir.path;
  const own = [...ownFolders(backup), lockPath(backup)].map((path): Place => ({
    label: "the backup folder's",
    path,
    from: sourceOf(config.backupDir),
  }));
  // the record even where a link is there: an output is never written over it
  const places = [...placesOf(config).slice(0, 3).flat(), recordPlace(config), ...own];
  const hit = places.find((place) => isSameOrInside(path, place.path));
  return hit ? describe(hit) : null;
}

/**
 * Every problem of where the store's paths lie: the backup folder in a snapshot or another backup folder, then each
 * overlap ({@linkcode pathOverlaps}); none for a sound configuration. What `config` lists and every other command refuses.
 */
export function pathProblems(config: Config): string[] {
  const enclosed = enclosingStoreProblem(config.backupDir.path);
  return [...(enclosed === null ? [] : [enclosed]), ...pathOverlaps(config)];
}

/**
 * Refuse a configuration whose paths overlap, or whose backup folder lies in a snapshot or another backup folder,
 * before anything is read or written.
 *
 * @throws {UsageError} naming the first overlap (and how many more) and what to do.
 */
export function refuseOverlappingPaths(config: Config): void {
  const enclosed = enclosingStoreProblem(config.backupDir.path);
  if (enclosed !== null) throw new UsageError(enclosed);
  const overlaps = pathOverlaps(config);
  if (overlaps.length === 0) return;
  const more = overlaps.length > 1 ? ` (and ${overlaps.length - 1} more)` : "";
  throw new UsageError(
    `paths overlap: ${overlaps[0]}${more}; restore replaces the Chroma folder's contents and the database and ` +
      `registry files, and cleanup deletes in the backup folder, so each must be apart from the others; ` +
      `nothing was done; give each its own place (--db, --backup-dir, --registry, --chroma-dir or their ` +
      `ATOCORE_* variables; see 'config')`,
  );
}

/**
 * Why `backupDir` cannot be a backup folder because of where it lies, or `null`: in a snapshot folder (one holding
 * `backup-metadata.json`, in any form), whose validation its lock, staging and snapshots would break, or inside another
 * backup folder (one holding `.lock` and `snapshots/`), whose create and cleanup would remove it with their leftovers
 * or snapshots.
 */
function enclosingStoreProblem(backupDir: string): string | null {
  const real = realPathAsFarAsExists(backupDir);
  const fix = "nothing was done; point --backup-dir (ATOCORE_BACKUP_DIR) at a folder of its own";
  for (let folder = real;; folder = dirname(folder)) {
    if (entryAt(metadataPath(folder)) !== null) {
      return `the backup folder ${backupDir} is in the snapshot ${folder}, which would then no longer validate; ${fix}`;
    }
    if (folder !== real && entryAt(lockPath(folder))?.isFile && entryAt(snapshotsDir(folder)) !== null) {
      return `the backup folder ${backupDir} is inside the backup folder ${folder}, whose create and cleanup would ` +
        `remove it; ${fix}`;
    }
    if (dirname(folder) === folder) return null;
  }
}

/** What is at `path`, links not followed; `null` when nothing is, or it cannot be told (a file on the way). */
function entryAt(path: string): Deno.FileInfo | null {
  try {
    return lstatOrNull(path);
  } catch {
    return null; // a backup folder through a file, or not readable: refused elsewhere, by what cannot reach it
  }
}
