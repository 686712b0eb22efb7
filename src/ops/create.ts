/**
 * Creating a snapshot: the reference module's `create`, made atomic and durable.
 *
 * The snapshot is built in `<backup>/.staging/`, validated, fsynced, and published
 * with one rename into `snapshots/`; one that fails validation goes to `failed/`.
 * A live registry that is not JSON is refused before anything is copied. The
 * database copy is hashed by a worker behind the backup and flushed while Chroma is
 * copied and the snapshot validated, so that its checksum and durability cost little
 * wall time beyond the copy itself.
 * Requires `--allow-read`, `--allow-write` and, for the FFI driver, `--allow-ffi`.
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
import { buildManifest } from "../snapshot/manifest.ts";
import { buildMetadata, serializeMetadata, type SnapshotMetadata } from "../snapshot/metadata.ts";
import { formatCreatedAt, formatStamp } from "../snapshot/stamp.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { CHROMA_DB_FILE, CHROMA_OLD_PREFIX, CHROMA_STAGING_PREFIX } from "../snapshot/chroma.ts";
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
 * @throws {OperationError} when the live registry is not JSON (checked before anything
 * is copied), when copying fails, or when the snapshot does not validate.
 */
export async function createSnapshot(config: Config, options: CreateOptions): Promise<CreateResult> {
  const backupDir = config.backupDir.path;
  requireDatabase(config.db.path);
  await requireParsableRegistry(config.registry.path);
  const now = await freeStampTime(backupDir);
  const stamp = formatStamp(now);
  const finalRoot = snapshotDir(backupDir, stamp);
  const staging = stagingDir(backupDir, stamp);
  const staged = snapshotPaths(staging, basename(config.db.path), basename(config.registry.path));
  const published = snapshotPaths(finalRoot, basename(config.db.path), basename(config.registry.path));
  ensureDir(staging);
  try {
    const { metadata, flushed } = await buildSnapshot(config, options, staged, published, formatCreatedAt(now));
    const validation = await validateSnapshotAt(staging, stamp, { driver: options.driver, quick: true });
    await flushed();
    if (!validation.valid) {
      const aside = failedDir(backupDir, stamp);
      ensureDir(join(aside, ".."));
      renameDurable(staging, aside);
      options.reporter.event("warning", "post_backup_validation_failed", {
        backup_root: aside,
        errors: validation.errors,
      });
      throw new OperationError(
        `snapshot ${stamp} failed validation (${
          validation.errors.join("; ")
        }); kept aside at ${aside}, not published; fix the source and run create again`,
      );
    }
    ensureDir(join(finalRoot, ".."));
    if (exists(finalRoot)) {
      throw new OperationError(
        `snapshot already exists, not overwritten: ${finalRoot}; another program wrote it this second; run create again`,
      );
    }
    renameDurable(staging, finalRoot);
    options.reporter.event("info", "runtime_backup_created", {
      backup_root: finalRoot,
      db_snapshot: metadata.db_snapshot_path,
      chroma_included: options.includeChroma,
      chroma_bytes: metadata.chroma_snapshot_bytes,
      validated: true,
    });
    return { ...metadata, stamp, validated: true, validation_errors: [] };
  } catch (error) {
    const renamed = !exists(staging) && exists(finalRoot);
    removeQuietly(staging);
    if (error instanceof OperationError || error instanceof UsageError) throw error;
    if (renamed) {
      throw new OperationError(
        `snapshot ${stamp} was published at ${finalRoot} but flushing its folder failed (${
          describeOsError(error)
        }); run 'validate ${stamp}', and create again if it fails`,
        { cause: error },
      );
    }
    throw new OperationError(
      `create failed (${
        describeOsError(error)
      }) in ${backupDir}; nothing was published; fix the cause and run create again`,
      { cause: error },
    );
  }
}

/**
 * Copy and hash the store into `staged`, write its metadata, and return it with a
 * function that makes the whole snapshot durable: the database copy is flushed on a
 * runtime thread meanwhile, so validation can run before waiting for it.
 */
async function buildSnapshot(
  config: Config,
  options: CreateOptions,
  staged: SnapshotPaths,
  published: SnapshotPaths,
  createdAt: string,
): Promise<{ metadata: SnapshotMetadata; flushed: () => Promise<void> }> {
  const { driver, reporter } = options;
  Deno.mkdirSync(staged.dbFolder);
  Deno.mkdirSync(staged.configFolder);
  using databaseHash = followFile(staged.db);
  await copyingFrom("database", config.db.path, () =>
    driver.backup(
      config.db.path,
      staged.db,
      ({ remaining, total }) => reporter.progress("database pages", total - remaining, total),
      (firstPage, bytes) => databaseHash.settled(firstPage, bytes),
    ));
  const databaseFlushed = syncFileLater(staged.db);
  const { sha256: databaseSha256, hashed } = await databaseHash.finish();
  if (hashed === "again") reporter.event("info", "database_hashed_after_copy", { path: staged.db });
  const hasRegistry = exists(config.registry.path);
  if (hasRegistry) {
    await copyingFrom("registry", config.registry.path, () => Deno.copyFileSync(config.registry.path, staged.registry));
  }
  let chroma: CopyTotals | null = null;
  if (options.includeChroma) {
    if (isDirectory(config.chromaDir.path)) {
      chroma = await copyingFrom(
        "Chroma folder",
        config.chromaDir.path,
        () => copyChroma(config.chromaDir.path, staged.chroma, driver, reporter),
      );
    } else {
      reporter.event("info", "chroma_snapshot_skipped_missing", { path: config.chromaDir.path });
    }
  }
  const manifest = buildManifest(
    staged.root,
    (done, total) => reporter.progress("hashing", done, total),
    new Map([[dbManifestPath(basename(config.db.path)), databaseSha256]]),
  );
  const metadata = buildMetadata({
    createdAt,
    backupRoot: published.root,
    dbSnapshotPath: published.db,
    dbSizeBytes: Deno.statSync(staged.db).size,
    registrySnapshotPath: hasRegistry ? published.registry : "",
    chromaSnapshotPath: chroma ? published.chroma : "",
    chromaBytes: chroma?.bytes ?? 0,
    chromaFiles: chroma?.files ?? 0,
    includeChroma: options.includeChroma,
    driver,
    manifest,
  });
  // Staging is never listed: the metadata is made durable with the rest before publishing,
  // not now, when its fsync would wait behind the database copy's flush.
  Deno.writeTextFileSync(staged.metadata, serializeMetadata(metadata));
  const flushed = async () => {
    await databaseFlushed();
    syncTree(staged.root);
  };
  return { metadata, flushed };
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
