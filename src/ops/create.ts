/**
 * Creating a snapshot: the reference module's `create`, made atomic and durable (staged,
 * validated, fsynced, published with one rename; the README says how). Requires
 * `--allow-read`, `--allow-write` and, for the FFI driver, `--allow-ffi`.
 *
 * @module
 */
import { basename, join } from "node:path";
import { describeOsError, isDiskFull, OperationError, ToolError, UsageError } from "../errors.ts";
import { ensureDir, removeQuietly, renameDurable, syncFileLater, syncTree } from "../fs/durable.ts";
import { followFile } from "../fs/follow_hash.ts";
import { exists, isDirectory, isFile } from "../fs/probe.ts";
import { changedPaths, copyEntries, type CopyTotals, walkTree } from "../fs/tree.ts";
import type { Config } from "../config.ts";
import type { Reporter } from "../report/reporter.ts";
import {
  dbManifestPath,
  failedDir,
  snapshotDir,
  type SnapshotPaths,
  snapshotPaths,
  stagingDir,
} from "../snapshot/layout.ts";
import { buildManifest, type ManifestEntry } from "../snapshot/manifest.ts";
import { buildMetadata, serializeMetadata, type SnapshotMetadata } from "../snapshot/metadata.ts";
import { formatCreatedAt, formatStamp } from "../snapshot/stamp.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { backupFollowedIfOffered } from "../sqlite/followed_backup.ts";
import { CHROMA_DB_FILE, CHROMA_OLD_PREFIX, CHROMA_STAGING_PREFIX } from "../snapshot/chroma.ts";
import { refuseUnfinishedRestore } from "./restore_intent.ts";
import { validateSnapshotAt } from "./validate.ts";

/** Attempts at a Chroma copy before a folder that keeps changing is reported. */
export const CHROMA_COPY_ATTEMPTS = 3;

/** Options of {@linkcode createSnapshot}. */
export interface CreateOptions {
  /** The SQLite driver. */
  driver: SqliteDriver;
  /** Also take the cold copy of the Chroma folder. */
  includeChroma: boolean;
  /** Where events and progress go. */
  reporter: Reporter;
}

/** The result of create: the metadata written, with the post-backup validation. */
export type CreateResult = SnapshotMetadata & {
  stamp: string;
  validated: boolean;
  validation_errors: string[];
};

/**
 * Create and publish a snapshot of the store that `config` names.
 *
 * The caller holds the operation lock. A stamp already taken is never reused:
 * the run waits for the next second.
 *
 * @throws {UsageError} when the live database does not exist (no snapshot is made).
 * @throws {RefusedError} while a restore into the store is unfinished (it may be part old, part new).
 * @throws {OperationError} when the live registry is not JSON (checked before anything
 * is copied), when copying fails, or when the snapshot does not validate.
 */
export async function createSnapshot(config: Config, options: CreateOptions): Promise<CreateResult> {
  refuseUnfinishedRestore(config);
  requireDatabase(config.db.path);
  await requireParsableRegistry(config.registry.path);
  const target = planSnapshot(config, await freeStampTime(config.backupDir.path));
  ensureDir(target.staged.root);
  try {
    const { metadata, flushed } = await buildSnapshot(config, options, target);
    const validation = await validateSnapshotAt(target.staged.root, target.stamp, {
      driver: options.driver,
      quick: true,
    });
    await flushed();
    if (!validation.valid) setAsideInvalid(target, validation.errors, options.reporter);
    publish(target);
    options.reporter.event("info", "runtime_backup_created", {
      backup_root: target.published.root,
      db_snapshot: metadata.db_snapshot_path,
      chroma_included: options.includeChroma,
      chroma_bytes: metadata.chroma_snapshot_bytes,
      validated: true,
    });
    return { ...metadata, stamp: target.stamp, validated: true, validation_errors: [] };
  } catch (error) {
    const wasPublished = !exists(target.staged.root) && exists(target.published.root);
    removeQuietly(target.staged.root);
    throw failureOfCreate(error, target, wasPublished);
  }
}

/** Where one run of create builds its snapshot, and where it publishes it. */
interface SnapshotTarget {
  /** The backup folder. */
  backupDir: string;
  /** The snapshot's stamp, free when planned. */
  stamp: string;
  /** The creation time as the metadata records it. */
  createdAt: string;
  /** The snapshot's paths in its staging folder, where it is built. */
  staged: SnapshotPaths;
  /** The same paths once published under `snapshots/`, as the metadata records them. */
  published: SnapshotPaths;
}

/** The staging and published paths of a snapshot of the store that `config` names, taken at `now`. */
function planSnapshot(config: Config, now: Date): SnapshotTarget {
  const backupDir = config.backupDir.path;
  const stamp = formatStamp(now);
  const names = [basename(config.db.path), basename(config.registry.path)] as const;
  return {
    backupDir,
    stamp,
    createdAt: formatCreatedAt(now),
    staged: snapshotPaths(stagingDir(backupDir, stamp), ...names),
    published: snapshotPaths(snapshotDir(backupDir, stamp), ...names),
  };
}

/** Move a staged snapshot that failed validation to `failed/`, report it, and throw. */
function setAsideInvalid(target: SnapshotTarget, errors: string[], reporter: Reporter): never {
  const aside = failedDir(target.backupDir, target.stamp);
  ensureDir(join(aside, ".."));
  renameDurable(target.staged.root, aside);
  reporter.event("warning", "post_backup_validation_failed", { backup_root: aside, errors });
  throw new OperationError(
    `snapshot ${target.stamp} failed validation (${
      errors.join("; ")
    }); kept aside at ${aside}, not published; fix the source and run create again`,
  );
}

/** Publish the staged snapshot with one rename, never over a snapshot already there. */
function publish(target: SnapshotTarget): void {
  const finalRoot = target.published.root;
  ensureDir(join(finalRoot, ".."));
  if (exists(finalRoot)) {
    throw new OperationError(
      `snapshot already exists, not overwritten: ${finalRoot}; another program wrote it this second; run create again`,
    );
  }
  renameDurable(target.staged.root, finalRoot);
}

/**
 * The error create throws for `error`: the tool's own errors as they are; any other one
 * saying whether the snapshot was published (only its folder's flush failed) or not.
 */
function failureOfCreate(error: unknown, target: SnapshotTarget, wasPublished: boolean): unknown {
  if (error instanceof OperationError || error instanceof UsageError) return error;
  if (wasPublished) {
    return new OperationError(
      `snapshot ${target.stamp} was published at ${target.published.root} but flushing its folder failed (${
        describeOsError(error)
      }); run 'validate ${target.stamp}', and create again if it fails`,
      { cause: error },
    );
  }
  return new OperationError(
    `create failed (${
      describeOsError(error)
    }) in ${target.backupDir}; nothing was published; fix the cause and run create again`,
    { cause: error },
  );
}

/** A snapshot written to staging: its metadata, and how to wait until all of it is durable. */
interface BuiltSnapshot {
  metadata: SnapshotMetadata;
  /** Resolves once the database copy's flush is done and the rest of the tree is fsynced. */
  flushed: () => Promise<void>;
}

/**
 * Copy and hash the store into staging and write its metadata. The database copy is
 * flushed on a runtime thread meanwhile, so validation can run before waiting for it.
 */
async function buildSnapshot(config: Config, options: CreateOptions, target: SnapshotTarget): Promise<BuiltSnapshot> {
  const { staged } = target;
  Deno.mkdirSync(staged.dbFolder);
  Deno.mkdirSync(staged.configFolder);
  const database = await copyDatabase(config.db.path, staged.db, options);
  const hasRegistry = await copyRegistry(config.registry.path, staged.registry);
  const chroma = options.includeChroma
    ? await copyChromaIfPresent(config.chromaDir.path, staged.chroma, options)
    : null;
  const manifest = buildManifest(
    staged.root,
    (done, total) => options.reporter.progress("hashing", done, total),
    new Map([[dbManifestPath(basename(config.db.path)), database.sha256]]),
  );
  const metadata = snapshotMetadata(target, options, { hasRegistry, chroma, manifest });
  // Staging is never listed: the metadata is made durable with the rest before publishing,
  // not now, when its fsync would wait behind the database copy's flush.
  Deno.writeTextFileSync(staged.metadata, serializeMetadata(metadata));
  return {
    metadata,
    flushed: async () => {
      await database.flushed();
      syncTree(staged.root);
    },
  };
}

/** The database copy: its SHA-256, and a function that resolves once its flush is done. */
interface CopiedDatabase {
  sha256: string;
  flushed: () => Promise<void>;
}

/**
 * Back up the live database into `copy`, hashed by a worker behind the backup where the
 * driver offers it (else after it), and start the copy's flush on a runtime thread.
 */
async function copyDatabase(source: string, copy: string, options: CreateOptions): Promise<CopiedDatabase> {
  const { driver, reporter } = options;
  using follower = followFile(copy);
  await copyingFrom("database", source, () =>
    backupFollowedIfOffered(
      driver,
      source,
      copy,
      (firstPage, bytes) => follower.settled(firstPage, bytes),
      ({ remaining, total }) => reporter.progress("database pages", total - remaining, total),
    ));
  const flushed = syncFileLater(copy);
  const { sha256, hashed } = await follower.finish();
  if (hashed === "again") reporter.event("info", "database_hashed_after_copy", { path: copy });
  return { sha256, flushed };
}

/** Copy the live registry to `copy` when there is one; whether there was. */
async function copyRegistry(source: string, copy: string): Promise<boolean> {
  if (!exists(source)) return false;
  await copyingFrom("registry", source, () => Deno.copyFileSync(source, copy));
  return true;
}

/** Copy the live Chroma folder to `target`, or report that there is none and return `null`. */
async function copyChromaIfPresent(
  source: string,
  target: string,
  { driver, reporter }: CreateOptions,
): Promise<CopyTotals | null> {
  if (!isDirectory(source)) {
    reporter.event("info", "chroma_snapshot_skipped_missing", { path: source });
    return null;
  }
  return await copyingFrom("Chroma folder", source, () => copyChroma(source, target, driver, reporter));
}

/** What was copied besides the database, as the metadata records it. */
interface CopiedParts {
  hasRegistry: boolean;
  chroma: CopyTotals | null;
  manifest: ManifestEntry[];
}

/** The metadata of the staged snapshot, with the paths it will have once published. */
function snapshotMetadata(target: SnapshotTarget, options: CreateOptions, parts: CopiedParts): SnapshotMetadata {
  const { staged, published } = target;
  return buildMetadata({
    createdAt: target.createdAt,
    backupRoot: published.root,
    dbSnapshotPath: published.db,
    dbSizeBytes: Deno.statSync(staged.db).size,
    registrySnapshotPath: parts.hasRegistry ? published.registry : "",
    chromaSnapshotPath: parts.chroma ? published.chroma : "",
    chromaBytes: parts.chroma?.bytes ?? 0,
    chromaFiles: parts.chroma?.files ?? 0,
    includeChroma: options.includeChroma,
    driver: options.driver,
    manifest: parts.manifest,
  });
}

/**
 * Cold-copy the Chroma folder, its `chroma.sqlite3` through the backup API, and
 * retry when a file changed during the copy (size or modification time).
 */
async function copyChroma(
  source: string,
  target: string,
  driver: SqliteDriver,
  reporter: Reporter,
): Promise<CopyTotals> {
  const skip = (path: string) =>
    path === CHROMA_DB_FILE || path.startsWith(`${CHROMA_DB_FILE}-`) || path.startsWith(CHROMA_STAGING_PREFIX) ||
    path.startsWith(CHROMA_OLD_PREFIX);
  let changed: string[] = [];
  for (let attempt = 1; attempt <= CHROMA_COPY_ATTEMPTS; attempt++) {
    removeQuietly(target);
    Deno.mkdirSync(target);
    const before = walkTree(source, skip);
    const totals = copyEntriesOrNull(
      source,
      target,
      before,
      (done, total) => reporter.progress("chroma bytes", done, total),
    );
    if (totals === null) {
      changed = ["(an entry vanished during the copy)"];
      reporter.event("warning", "chroma_copy_torn", { attempt, changed });
      continue;
    }
    if (exists(join(source, CHROMA_DB_FILE))) {
      await driver.backup(join(source, CHROMA_DB_FILE), join(target, CHROMA_DB_FILE));
      totals.files += 1;
      totals.bytes += Deno.statSync(join(target, CHROMA_DB_FILE)).size;
    }
    changed = changedPaths(before, walkTree(source, skip));
    if (changed.length === 0) return totals;
    reporter.event("warning", "chroma_copy_torn", { attempt, changed: changed.slice(0, 10) });
  }
  throw new OperationError(
    `Chroma folder kept changing during the copy (${CHROMA_COPY_ATTEMPTS} attempts; changed: ${
      changed.slice(0, 3).join(", ")
    }): ${source}; stop ingestion and run create again`,
  );
}

/** Copy the walked entries, or return `null` when one vanished meanwhile (a torn copy, to retry). */
function copyEntriesOrNull(...args: Parameters<typeof copyEntries>): CopyTotals | null {
  try {
    return copyEntries(...args);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Run one copy step; when it fails for a reason other than a full disk (reported
 * against the backup folder by the caller), say which live file or folder it was copying.
 */
async function copyingFrom<T>(what: string, source: string, step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof ToolError || isDiskFull(error)) throw error;
    throw new OperationError(
      `create failed copying the ${what} ${source} (${
        describeOsError(error)
      }); nothing was published; fix the cause (is it readable by this user?) and run create again`,
      { cause: error },
    );
  }
}

/** Refuse a database path that does not exist: the module would create an empty one and back it up. */
function requireDatabase(path: string): void {
  if (!isFile(path)) {
    throw new UsageError(`database not found: ${path}; check --db or ATOCORE_DB_PATH (see 'config')`);
  }
}

/**
 * Refuse a live registry that exists but does not parse, before anything is copied:
 * its snapshot would fail validation and restore would refuse it.
 */
async function requireParsableRegistry(path: string): Promise<void> {
  if (!exists(path)) return;
  const text = await copyingFrom("registry", path, () => Deno.readTextFileSync(path));
  try {
    JSON.parse(text);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new OperationError(
      `registry is not JSON (${error.message}): ${path}; fix the file or restore it from a snapshot, then run create again`,
    );
  }
}

/** The current time, waiting for the next second while its stamp is already taken. */
async function freeStampTime(backupDir: string): Promise<Date> {
  while (true) {
    const now = new Date();
    if (!exists(snapshotDir(backupDir, formatStamp(now)))) return now;
    await new Promise((resolve) => setTimeout(resolve, 1000 - now.getMilliseconds() + 5));
  }
}
