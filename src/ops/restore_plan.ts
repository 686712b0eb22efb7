/**
 * What a restore reads and writes, and every refusal made before anything changes: the acknowledgment, other
 * processes holding the live files, a snapshot that does not validate, and `--to` targets that are unsafe.
 *
 * @module
 */
import { basename, join } from "node:path";
import type { Config } from "../config.ts";
import { RefusedError, UsageError } from "../errors.ts";
import { lstatOrNull, statOrNull } from "../fs/probe.ts";
import { isSameOrInside, realPathAsFarAsExists } from "../fs/real_path.ts";
import { findOpeners } from "../sys/open_files.ts";
import type { Reporter } from "../report/reporter.ts";
import { CHROMA_FOLDER } from "../snapshot/layout.ts";
import { locateRecordedPath, recordedPath, type SnapshotMetadata } from "../snapshot/metadata.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { CHROMA_DB_FILE } from "../snapshot/chroma.ts";
import { validateSnapshot, type ValidationResult } from "./validate.ts";

/** Where each part of the snapshot comes from; `chroma` is `null` when Chroma is not restored. */
export interface Sources {
  db: string;
  registry: string | null;
  chroma: string | null;
}

/** Where each part goes. */
export interface Targets {
  db: string;
  registry: string;
  chroma: string;
}

/** What a restore reads and writes, checked before anything is changed. */
export interface RestorePlan {
  sources: Sources;
  targets: Targets;
}

/** Refuse to restore over the live store (`to` is `null`) without the operator's word that the service is stopped. */
export function requireAcknowledgment(config: Config, to: string | null, confirmServiceStopped: boolean): void {
  if (to !== null || confirmServiceStopped) return;
  throw new RefusedError(
    `restore replaces the live database ${config.db.path} and refuses without --confirm-service-stopped; ` +
      `stop the AtoCore service (docker compose down), then run again with it, or rebuild elsewhere with --to DIR`,
  );
}

/**
 * Refuse while other processes hold the live database (or Chroma's, unless Chroma is left out).
 *
 * @returns Whether a scan was made: `false` with `to`, with `ignoreOpenFiles`, or where no scan could be made.
 */
export function checkOpenFiles(
  config: Config,
  to: string | null,
  options: { ignoreOpenFiles: boolean; includeChroma?: boolean; reporter: Reporter },
): boolean {
  return to === null && !options.ignoreOpenFiles &&
    refuseOpenFiles(config, options.includeChroma !== false, options.reporter);
}

/** Refuse while other processes hold the live database (or Chroma's); `false` when no scan could be made. */
function refuseOpenFiles(config: Config, chromaToo: boolean, reporter: Reporter): boolean {
  const paths = [config.db.path, `${config.db.path}-wal`];
  if (chromaToo) {
    paths.push(join(config.chromaDir.path, CHROMA_DB_FILE), join(config.chromaDir.path, `${CHROMA_DB_FILE}-wal`));
  }
  const scan = findOpeners(paths);
  if (!scan.scanned) reporter.event("warning", "open_files_check_unavailable", { paths });
  if (scan.unreadable > 0) reporter.event("warning", "open_files_unreadable_processes", { count: scan.unreadable });
  if (scan.openers.length === 0) return scan.scanned;
  const pids = [...new Set(scan.openers.map((opener) => opener.pid))];
  const files = [...new Set(scan.openers.map((opener) => opener.path))];
  throw new RefusedError(
    `process${pids.length > 1 ? "es" : ""} ${pids.join(", ")} still ha${pids.length > 1 ? "ve" : "s"} ` +
      `${files.join(", ")} open; nothing was changed; stop the service (docker compose down), ` +
      `or pass --ignore-open-files if you are sure those processes are not the service`,
  );
}

/** Validate the snapshot `stamp` (deeply unless `quick`) and refuse it when it is not valid. */
export async function validatedSnapshot(
  config: Config,
  stamp: string,
  options: { driver: SqliteDriver; quick?: boolean; reporter: Reporter },
): Promise<ValidationResult> {
  const { reporter } = options;
  const validation = await validateSnapshot(config.backupDir.path, stamp, {
    driver: options.driver,
    quick: options.quick ?? false,
    onProgress: (done, total) => reporter.progress("hashing", done, total),
  });
  if (!validation.valid) {
    throw new RefusedError(
      `snapshot ${stamp} failed validation (${validation.errors.join("; ")}): ${validation.path}; ` +
        `nothing was changed; pick another snapshot (see 'list')`,
    );
  }
  reporter.event("info", "restore_snapshot_validated", { stamp, quick: validation.quick });
  return validation;
}

/**
 * Where each part of the validated snapshot `stamp` comes from and goes (the live paths, or under `to`); Chroma is
 * restored when the snapshot has it, unless `includeChroma` is `false`.
 *
 * @throws {UsageError} for a target of the wrong kind.
 * @throws {RefusedError} for a `to` target that is a symbolic link or overlaps the live store or the backups.
 */
export function planRestore(
  config: Config,
  stamp: string,
  validation: ValidationResult,
  to: string | null,
  options: { includeChroma?: boolean; reporter: Reporter },
): RestorePlan {
  const located = locateSources(validation.path, validation.metadata!);
  const targets = restoreTargets(config, located, to);
  if (options.includeChroma && located.chroma === null) {
    options.reporter.event("warning", "chroma_restore_skipped_missing", { stamp });
  }
  checkTargets(config, targets, to);
  return { sources: { ...located, chroma: options.includeChroma === false ? null : located.chroma }, targets };
}

function locateSources(root: string, metadata: SnapshotMetadata): Sources {
  const locate = (key: keyof SnapshotMetadata) => {
    const recorded = recordedPath(metadata, key);
    if (!recorded) return null;
    const located = locateRecordedPath(root, metadata, recorded);
    return located.ok ? located.path : null;
  };
  return {
    db: locate("db_snapshot_path")!,
    registry: locate("registry_snapshot_path"),
    chroma: locate("chroma_snapshot_path"),
  };
}

function restoreTargets(config: Config, sources: Sources, to: string | null): Targets {
  if (to === null) return { db: config.db.path, registry: config.registry.path, chroma: config.chromaDir.path };
  return {
    db: join(to, basename(sources.db)),
    registry: join(to, basename(sources.registry ?? config.registry.path)),
    chroma: join(to, CHROMA_FOLDER),
  };
}

/**
 * Refuse targets of the wrong kind; and, with `to`, a target (or the database's `-wal`/`-shm`, which
 * the checkpoint writes) that is a symbolic link (it would be written through, outside the folder),
 * or one that overlaps the live store or the backup folder.
 */
function checkTargets(config: Config, targets: Targets, to: string | null): void {
  if (to !== null) refuseLinkedTargets(targets, to);
  checkTargetKinds(targets);
  if (to !== null) refuseOverlappingTargets(config, targets, to);
}

function refuseLinkedTargets(targets: Targets, to: string): void {
  const written = [targets.db, `${targets.db}-wal`, `${targets.db}-shm`, targets.registry, targets.chroma];
  const link = written.find(isSymlink);
  if (link === undefined) return;
  throw new RefusedError(
    `--to ${to} holds a symbolic link at ${link}, which restore would write through, outside the folder; ` +
      `nothing was changed; remove the link or give a folder of its own`,
  );
}

function checkTargetKinds(targets: Targets): void {
  for (const [path, flag] of [[targets.db, "--db"], [targets.registry, "--registry"]]) {
    const info = statOrNull(path);
    if (info && !info.isFile) throw new UsageError(`restore target is not a file: ${path}; check ${flag} or --to`);
  }
  const chroma = statOrNull(targets.chroma);
  if (chroma && !chroma.isDirectory) {
    throw new UsageError(`restore target for Chroma is not a folder: ${targets.chroma}; check --chroma-dir or --to`);
  }
}

function refuseOverlappingTargets(config: Config, targets: Targets, to: string): void {
  const protectedPaths = [config.db.path, `${config.db.path}-wal`, config.registry.path, config.chromaDir.path];
  protectedPaths.push(config.backupDir.path);
  for (const target of [targets.db, targets.registry, targets.chroma]) {
    const overlap = protectedPaths.find((path) => overlaps(canonical(target), canonical(path)));
    if (overlap !== undefined) {
      throw new RefusedError(
        `--to ${to} would write over ${overlap} (live store or backups) at ${target}; nothing was changed; ` +
          `give a folder of its own`,
      );
    }
  }
}

function isSymlink(path: string): boolean {
  return lstatOrNull(path)?.isSymlink ?? false;
}

/** Tell whether one path is the other or lies inside it (folders compared by identity too: bind mounts). */
function overlaps(first: string, second: string): boolean {
  return isSameOrInside(first, second) || isSameOrInside(second, first);
}

/** A path with its symbolic links resolved as far as it exists, to compare two paths. */
function canonical(path: string): string {
  return realPathAsFarAsExists(path);
}
