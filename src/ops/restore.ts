/**
 * Restoring a snapshot: the reference module's `restore`, in its order and with its
 * result keys, made safe to interrupt.
 *
 * The database and the registry are replaced atomically (copy beside, fsync, rename
 * over, fsync the folder), so a restore killed at any instant leaves each of them
 * old or new, never torn and never missing. Chroma's folder is kept (it is a bind
 * mount in production) and its contents are swapped from a copy staged inside it:
 * the old entries are renamed into a hidden folder beside the copy, the copy's
 * entries renamed in, and only then is the old folder removed, so the window in
 * which Chroma is partial lasts a few renames.
 * The caller holds the operation lock. Requires `--allow-read`, `--allow-write` and,
 * for the FFI driver, `--allow-ffi`.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import type { Config } from "../config.ts";
import { createSnapshot } from "./create.ts";
import { describeOsError, OperationError, RefusedError, ToolError, UsageError } from "../errors.ts";
import { ensureDir, removeQuietly, replaceFileAtomic, syncDir, syncTree } from "../fs/durable.ts";
import { entriesOrNone, isFile, lstatOrNull, statOrNull } from "../fs/probe.ts";
import { copyEntries, type CopyTotals, type TreeEntry, walkTree } from "../fs/tree.ts";
import { findOpeners } from "../sys/open_files.ts";
import type { Reporter } from "../report/reporter.ts";
import { checkedStamp, CHROMA_FOLDER } from "../snapshot/layout.ts";
import { locateRecordedPath, recordedPath, type SnapshotMetadata } from "../snapshot/metadata.ts";
import { type SqliteDriver, SqliteError } from "../sqlite/driver.ts";
import { CHROMA_DB_FILE, CHROMA_OLD_PREFIX, CHROMA_STAGING_PREFIX } from "../snapshot/chroma.ts";
import { validateSnapshot, type ValidationResult } from "./validate.ts";

/** Options of {@linkcode restoreSnapshot}. */
export interface RestoreOptions {
  /** The SQLite driver. */
  driver: SqliteDriver;
  /** Where events and progress go. */
  reporter: Reporter;
  /** The operator's word that the service is stopped; required unless `to` is given. */
  confirmServiceStopped: boolean;
  /** Skip the check for other processes holding the live files (never the acknowledgment). */
  ignoreOpenFiles: boolean;
  /** Take a pre-restore snapshot of the live store first (never with `to`). */
  preSnapshot: boolean;
  /** Restore Chroma; when undefined, restore it when the snapshot has it. */
  includeChroma?: boolean;
  /** Rebuild the store under this folder instead of the live paths, which stay untouched. */
  to?: string;
  /** Validate sizes only, without hashing, before restoring. */
  quick?: boolean;
}

/** The validation done before restoring, without the snapshot's metadata. */
export interface ValidationSummary {
  valid: boolean;
  manifest_ok: boolean | null;
  files_checked: number;
  bytes_hashed: number;
  quick: boolean;
  errors: string[];
}

/** The result of a restore: the module's keys in its order, then this tool's. */
export interface RestoreResult {
  stamp: string;
  pre_restore_snapshot: string | null;
  target_db: string;
  db_restored: boolean;
  registry_restored: boolean;
  chroma_restored: boolean;
  restored_integrity_ok: boolean;
  integrity_error?: string;
  target_registry: string;
  target_chroma: string;
  chroma_files_restored: number;
  chroma_bytes_restored: number;
  to: string | null;
  /** Whether other processes holding the live files were looked for (not with `to`, `ignoreOpenFiles`, or off Linux). */
  open_files_checked: boolean;
  validation: ValidationSummary;
}

/** Where each part of the snapshot comes from. */
interface Sources {
  db: string;
  registry: string | null;
  chroma: string | null;
}

/** Where each part goes. */
interface Targets {
  db: string;
  registry: string;
  chroma: string;
}

/**
 * Restore the snapshot `stamp` of the backup folder over the live store, or under `options.to`.
 *
 * Order: refusals (acknowledgment, open files), deep validation, pre-restore snapshot,
 * Chroma copy staged, WAL checkpoint and stale sidecars removed, database and registry
 * replaced, Chroma contents swapped, integrity check. A failed integrity check is
 * returned (`restored_integrity_ok: false`), not thrown.
 *
 * @throws {UsageError} for a stamp that is not plain, or a target of the wrong kind.
 * @throws {RefusedError} without the acknowledgment, while other processes hold the
 *   database, when the snapshot does not validate, or when `to` is the live store; nothing is changed.
 * @throws {OperationError} when a step fails; the message says whether live data changed
 *   and names the pre-restore stamp to go back to.
 */
export async function restoreSnapshot(config: Config, stamp: string, options: RestoreOptions): Promise<RestoreResult> {
  const { driver, reporter } = options;
  checkedStamp(stamp);
  const to = options.to === undefined ? null : resolve(options.to);
  if (to === null && !options.confirmServiceStopped) {
    throw new RefusedError(
      `restore replaces the live database ${config.db.path} and refuses without --confirm-service-stopped; ` +
        `stop the AtoCore service (docker compose down), then run again with it, or rebuild elsewhere with --to DIR`,
    );
  }
  const openFilesChecked = to === null && !options.ignoreOpenFiles &&
    refuseOpenFiles(config, options.includeChroma !== false, reporter);
  const validation = await validateSnapshot(config.backupDir.path, stamp, {
    driver,
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
  const sources = locateSources(validation.path, validation.metadata!);
  const targets = restoreTargets(config, sources, to);
  const restoreChroma = (options.includeChroma ?? sources.chroma !== null) && sources.chroma !== null;
  if (options.includeChroma && sources.chroma === null) {
    reporter.event("warning", "chroma_restore_skipped_missing", { stamp });
  }
  checkTargets(config, targets, to);
  const preStamp = to === null && options.preSnapshot ? await preRestoreSnapshot(config, restoreChroma, options) : null;
  const chroma = replaceStore(sources, targets, restoreChroma, preStamp, options);
  const integrity = checkRestored(driver, targets.db);
  const result: RestoreResult = {
    stamp,
    pre_restore_snapshot: preStamp,
    target_db: targets.db,
    db_restored: true,
    registry_restored: sources.registry !== null,
    chroma_restored: chroma !== null,
    restored_integrity_ok: integrity === null,
    ...(integrity === null ? {} : { integrity_error: integrity }),
    target_registry: targets.registry,
    target_chroma: targets.chroma,
    chroma_files_restored: chroma?.files ?? 0,
    chroma_bytes_restored: chroma?.bytes ?? 0,
    to,
    open_files_checked: openFilesChecked,
    validation: summarize(validation),
  };
  if (integrity !== null) {
    reporter.event("warning", "restore_integrity_failed", {
      target_db: targets.db,
      integrity_error: integrity,
      next_step: goBack(preStamp),
    });
  }
  reporter.event("info", "runtime_backup_restored", {
    stamp,
    pre_restore_snapshot: preStamp,
    registry_restored: result.registry_restored,
    chroma_restored: result.chroma_restored,
    integrity_ok: result.restored_integrity_ok,
    to,
  });
  return result;
}

/** The next step after a restore that changed live data and then failed. */
export function goBack(preStamp: string | null): string {
  return preStamp
    ? `go back with 'atocore-backup restore ${preStamp} --confirm-service-stopped' (the pre-restore snapshot)`
    : "no pre-restore snapshot was made; restore another snapshot";
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
  const written = [targets.db, `${targets.db}-wal`, `${targets.db}-shm`, targets.registry, targets.chroma];
  const link = to === null ? undefined : written.find(isSymlink);
  if (link !== undefined) {
    throw new RefusedError(
      `--to ${to} holds a symbolic link at ${link}, which restore would write through, outside the folder; ` +
        `nothing was changed; remove the link or give a folder of its own`,
    );
  }
  for (const [path, flag] of [[targets.db, "--db"], [targets.registry, "--registry"]]) {
    const info = statOrNull(path);
    if (info && !info.isFile) throw new UsageError(`restore target is not a file: ${path}; check ${flag} or --to`);
  }
  const chroma = statOrNull(targets.chroma);
  if (chroma && !chroma.isDirectory) {
    throw new UsageError(`restore target for Chroma is not a folder: ${targets.chroma}; check --chroma-dir or --to`);
  }
  if (to === null) return;
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

/** Tell whether one path is the other or lies inside it. */
function overlaps(first: string, second: string): boolean {
  const inside = (path: string, folder: string) => {
    const rest = relative(folder, path);
    return rest === "" || (!rest.startsWith("..") && !isAbsolute(rest));
  };
  return inside(first, second) || inside(second, first);
}

async function preRestoreSnapshot(config: Config, includeChroma: boolean, options: RestoreOptions): Promise<string> {
  if (!isFile(config.db.path)) {
    throw new RefusedError(
      `live database not found: ${config.db.path}; nothing to keep in a pre-restore snapshot and nothing was changed; ` +
        `check --db, or pass --no-pre-snapshot to restore onto an empty store`,
    );
  }
  try {
    const created = await createSnapshot(config, { driver: options.driver, includeChroma, reporter: options.reporter });
    options.reporter.event("info", "pre_restore_snapshot_created", { stamp: created.stamp, chroma: includeChroma });
    return created.stamp;
  } catch (error) {
    if (!(error instanceof ToolError)) throw error;
    throw new OperationError(
      `pre-restore snapshot failed, so nothing was restored or changed: ${error.message}`,
      { cause: error },
    );
  }
}

/**
 * Stage the Chroma copy, then replace the database, the registry and Chroma's contents.
 *
 * @returns The Chroma files and bytes restored, or `null` when Chroma is not restored.
 */
function replaceStore(
  sources: Sources,
  targets: Targets,
  restoreChroma: boolean,
  preStamp: string | null,
  options: RestoreOptions,
): CopyTotals | null {
  const { driver, reporter } = options;
  let step = `staging the Chroma copy in ${targets.chroma}`;
  let changed = false;
  let staged: StagedChroma | null = null;
  try {
    if (restoreChroma) staged = stageChroma(sources.chroma!, targets.chroma, reporter);
    step = `checkpointing the database ${targets.db}`;
    removeStaleTemporaries(targets.db, reporter);
    if (isFile(targets.db)) checkpoint(driver, targets.db, reporter);
    step = "removing the database's -wal and -shm";
    for (const sidecar of [`${targets.db}-wal`, `${targets.db}-shm`]) removeQuietly(sidecar);
    step = `replacing the database ${targets.db}`;
    reporter.event("info", "restore_db_replacing", { source: sources.db, target: targets.db });
    const previous = statOrNull(targets.db);
    try {
      replaceFileAtomic(sources.db, targets.db);
    } finally {
      changed = statOrNull(targets.db)?.ino !== previous?.ino;
    }
    reporter.event("info", "restore_db_replaced", { target: targets.db });
    if (sources.registry !== null) {
      step = `replacing the registry ${targets.registry}`;
      removeStaleTemporaries(targets.registry, reporter);
      replaceFileAtomic(sources.registry, targets.registry);
    }
    if (staged === null) return null;
    step = `swapping the contents of the Chroma folder ${targets.chroma}`;
    swapChroma(staged, targets.chroma, reporter);
    reporter.event("info", "restore_chroma_swapped", { target: targets.chroma, ...staged.totals });
    return staged.totals;
  } catch (error) {
    if (staged !== null) removeQuietly(staged.folder);
    const state = options.to !== undefined
      ? `${options.to} may be partly rebuilt (the live store was not touched); fix the cause and run again`
      : changed
      ? `live data may be partly restored; ${goBack(preStamp)}`
      : "the database, registry and Chroma were not changed; fix the cause and run again";
    throw new OperationError(`restore failed while ${step} (${describeOsError(error)}); ${state}`, { cause: error });
  }
}

function checkpoint(driver: SqliteDriver, path: string, reporter: Reporter): void {
  try {
    driver.checkpointTruncate(path);
  } catch (error) {
    if (!(error instanceof SqliteError)) throw error;
    reporter.event("warning", "restore_pre_checkpoint_failed", { target_db: path, error: error.message });
  }
}

/** Remove temporary copies beside `target` left by a restore that was killed (the lock rules out a live one). */
function removeStaleTemporaries(target: string, reporter: Reporter): void {
  const folder = dirname(target);
  const names = entriesOrNone(folder).map((entry) => entry.name);
  for (const name of names.filter((name) => name.startsWith(`.${basename(target)}.tmp-`))) {
    removeQuietly(join(folder, name));
    reporter.event("warning", "stale_leftover_removed", { path: join(folder, name) });
  }
}

/** A full Chroma copy staged in a hidden folder inside the target folder. */
interface StagedChroma {
  folder: string;
  totals: CopyTotals;
}

/**
 * Copy the snapshot's Chroma folder into a hidden folder inside `target` (created
 * when missing, never removed), owned like `target`, fsynced. Leftovers of killed
 * restores (staged copies and old entries moved aside) are removed first; a copy
 * that fails part way is removed.
 */
function stageChroma(source: string, target: string, reporter: Reporter): StagedChroma {
  ensureDir(target);
  for (const entry of Deno.readDirSync(target)) {
    if (!entry.name.startsWith(CHROMA_STAGING_PREFIX) && !entry.name.startsWith(CHROMA_OLD_PREFIX)) continue;
    removeQuietly(join(target, entry.name));
    reporter.event("warning", "stale_leftover_removed", { path: join(target, entry.name) });
  }
  const folder = join(target, `${CHROMA_STAGING_PREFIX}${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  Deno.mkdirSync(folder);
  try {
    const entries = walkTree(source);
    const totals = copyEntries(
      source,
      folder,
      entries,
      (done, total) => reporter.progress("chroma bytes", done, total),
    );
    ownLike(folder, entries, Deno.statSync(target));
    syncTree(folder);
    reporter.event("info", "restore_chroma_staged", { path: folder, ...totals });
    return { folder, totals };
  } catch (error) {
    removeQuietly(folder); // a partial copy would keep a full disk full
    throw error;
  }
}

/**
 * Give the copied entries the Chroma folder's owner, so the service's user can
 * still write them. Symbolic links keep the copier's owner (they are never followed);
 * a user who may not give files away keeps them.
 */
function ownLike(root: string, entries: TreeEntry[], folder: Deno.FileInfo): void {
  if (folder.uid === null || folder.gid === null) return;
  for (const entry of entries) {
    if (entry.kind !== "file" && entry.kind !== "dir") continue;
    const path = join(root, entry.path);
    const info = Deno.statSync(path);
    if (info.uid === folder.uid && info.gid === folder.gid) continue;
    try {
      Deno.chownSync(path, folder.uid, folder.gid);
    } catch (error) {
      if (error instanceof Deno.errors.PermissionDenied) return;
      throw error;
    }
  }
}

/**
 * Swap the contents of `target` for the staged ones with renames only (instant, on
 * one filesystem): move every old entry into a hidden folder beside the staged one,
 * move the staged entries in, fsync, and only then remove the old entries. `target`
 * itself is kept. Old entries that cannot be removed are a warning, not a failure:
 * the swap is done, and the next restore removes them.
 */
function swapChroma(staged: StagedChroma, target: string, reporter: Reporter): void {
  const stagedName = basename(staged.folder);
  const old = join(target, `${CHROMA_OLD_PREFIX}${stagedName.slice(CHROMA_STAGING_PREFIX.length)}`);
  const oldNames = [...Deno.readDirSync(target)].map((entry) => entry.name).filter((name) => name !== stagedName);
  Deno.mkdirSync(old);
  for (const name of oldNames) Deno.renameSync(join(target, name), join(old, name));
  for (const entry of [...Deno.readDirSync(staged.folder)]) {
    Deno.renameSync(join(staged.folder, entry.name), join(target, entry.name));
  }
  syncDir(target);
  Deno.removeSync(staged.folder);
  try {
    removeQuietly(old);
  } catch (error) {
    reporter.event("warning", "restore_old_chroma_not_removed", { path: old, error: describeOsError(error) });
  }
  syncDir(target);
}

/** `null` when the restored database passes `PRAGMA integrity_check`, else the problem. */
function checkRestored(driver: SqliteDriver, path: string): string | null {
  try {
    const answer = driver.integrityCheck(path);
    return answer === "ok" ? null : answer;
  } catch (error) {
    return `db_open_failed: ${(error as Error).message}`;
  }
}

function summarize(validation: ValidationResult): ValidationSummary {
  return {
    valid: validation.valid,
    manifest_ok: validation.manifest_ok,
    files_checked: validation.files_checked,
    bytes_hashed: validation.bytes_hashed,
    quick: validation.quick,
    errors: validation.errors,
  };
}

/** A path with its symbolic links resolved as far as it exists, to compare two paths. */
function canonical(path: string): string {
  const absolute = resolve(path);
  if (statOrNull(absolute)) return Deno.realPathSync(absolute);
  const parent = join(absolute, "..");
  return parent === absolute ? absolute : join(canonical(parent), basename(absolute));
}
