/**
 * Validation of a snapshot: the reference module's checks and result keys, plus
 * the manifest (sizes and SHA-256), the Chroma database's integrity, and paths
 * resolved inside the snapshot so a moved backup folder validates.
 *
 * Reads only; works on a read-only copy of the backup folder. Requires `--allow-read`.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError } from "../errors.ts";
import { exists, isFile, lstatOrNull } from "../fs/probe.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";
import { checkManifest, type HashProgress } from "../snapshot/manifest.ts";
import { CHROMA_DB_FILE } from "../snapshot/chroma.ts";
import { METADATA_FILE, snapshotDir } from "../snapshot/layout.ts";
import { locateRecordedPath, readMetadata, recordedPath, type SnapshotMetadata } from "../snapshot/metadata.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";

/** How deeply to validate. */
export interface ValidateOptions {
  /** The SQLite driver for integrity checks. */
  driver: SqliteDriver;
  /** Skip hashing: check presence, kinds and sizes only. */
  quick?: boolean;
  /** Called as files are hashed with the bytes done and the total (for progress). */
  onProgress?: HashProgress;
}

/** The result of validating one snapshot: the module's keys, then this tool's. */
export interface ValidationResult {
  stamp: string;
  path: string;
  exists: boolean;
  db_ok: boolean;
  registry_ok: boolean | null;
  chroma_ok: boolean | null;
  errors: string[];
  metadata?: SnapshotMetadata;
  valid: boolean;
  /** `null` for a snapshot without a manifest (made by the module). */
  manifest_ok: boolean | null;
  files_checked: number;
  bytes_hashed: number;
  quick: boolean;
}

/**
 * Validate the published snapshot `stamp` of the backup folder.
 *
 * @throws {UsageError} when `stamp` is not a plain stamp (before any file is touched).
 */
export function validateSnapshot(
  backupDir: string,
  stamp: string,
  options: ValidateOptions,
): Promise<ValidationResult> {
  return validateSnapshotAt(snapshotDir(backupDir, stamp), stamp, options);
}

/** Validate the snapshot whose folder is `root` (published, staged, or copied elsewhere). */
export async function validateSnapshotAt(
  root: string,
  stamp: string,
  options: ValidateOptions,
): Promise<ValidationResult> {
  const quick = options.quick ?? false;
  const result: ValidationResult = {
    stamp,
    path: root,
    exists: exists(root),
    db_ok: false,
    registry_ok: null,
    chroma_ok: null,
    errors: [],
    valid: false,
    manifest_ok: null,
    files_checked: 0,
    bytes_hashed: 0,
    quick,
  };
  if (!result.exists) return finish(result, "snapshot_directory_missing");
  const read = readMetadata(join(root, METADATA_FILE));
  if (!read.ok) return finish(result, read.error);
  const metadata = read.metadata;
  result.metadata = metadata;
  result.errors.push(...missingKeys(metadata));
  result.db_ok = checkDatabase(root, metadata, options.driver, result.errors);
  const registry = locateRecordedPath(root, metadata, recordedPath(metadata, "registry_snapshot_path"));
  if (recordedPath(metadata, "registry_snapshot_path")) {
    result.registry_ok = checkRegistry(registry, result.errors);
  }
  if (recordedPath(metadata, "chroma_snapshot_path")) {
    result.chroma_ok = checkChroma(root, metadata, options.driver, result.errors);
  }
  if (metadata.manifest !== undefined) {
    const check = await checkManifest(root, metadata.manifest, { quick, onProgress: options.onProgress });
    result.errors.push(...check.errors);
    result.manifest_ok = check.errors.length === 0;
    result.files_checked = check.filesChecked;
    result.bytes_hashed = check.bytesHashed;
  }
  return finish(result);
}

/** Keys the reference module writes in every snapshot's metadata. */
const MODULE_KEYS = [
  "created_at",
  "backup_root",
  "db_snapshot_path",
  "db_size_bytes",
  "registry_snapshot_path",
  "chroma_snapshot_path",
  "chroma_snapshot_bytes",
  "chroma_snapshot_files",
  "chroma_snapshot_included",
  "vector_store_note",
];
/** Keys this tool adds; metadata with any of them was written by this tool and has them all. */
const TOOL_KEYS = ["format_version", "tool", "tool_version", "sqlite_driver", "sqlite_version", "manifest"];

/**
 * Name each key the metadata lacks. One flipped byte renames a key, and a missing
 * `manifest` or `chroma_snapshot_path` would otherwise turn off the check it guards.
 */
function missingKeys(metadata: SnapshotMetadata): string[] {
  const expected = TOOL_KEYS.some((key) => key in metadata) ? [...MODULE_KEYS, ...TOOL_KEYS] : MODULE_KEYS;
  return expected.filter((key) => !(key in metadata)).map((key) => `metadata_key_missing: ${key}`);
}

function finish(result: ValidationResult, error?: string): ValidationResult {
  if (error) result.errors.push(error);
  result.valid = result.exists && result.errors.length === 0;
  return result;
}

function checkDatabase(root: string, metadata: SnapshotMetadata, driver: SqliteDriver, errors: string[]): boolean {
  const recorded = recordedPath(metadata, "db_snapshot_path");
  const located = locateRecordedPath(root, metadata, recorded);
  if (!recorded) {
    errors.push("db_snapshot_missing");
    return false;
  }
  if (!located.ok) {
    errors.push(`db_snapshot_path_outside_snapshot: ${located.recorded}`);
    return false;
  }
  if (!isFile(located.path)) {
    errors.push("db_snapshot_missing");
    return false;
  }
  return integrityOk(driver, located.path, "db", errors);
}

function checkRegistry(located: ReturnType<typeof locateRecordedPath>, errors: string[]): boolean {
  if (!located.ok) {
    errors.push(`registry_snapshot_path_outside_snapshot: ${located.recorded}`);
    return false;
  }
  let text: string;
  try {
    text = readRegularTextFile(located.path); // never a FIFO or device, never unbounded
  } catch (error) {
    errors.push(
      error instanceof Deno.errors.NotFound
        ? "registry_snapshot_missing"
        : `registry_snapshot_unreadable: ${describeOsError(error)}`,
    );
    return false;
  }
  try {
    JSON.parse(text);
    return true;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    errors.push(`registry_invalid_json: ${error.message}`);
    return false;
  }
}

function checkChroma(root: string, metadata: SnapshotMetadata, driver: SqliteDriver, errors: string[]): boolean {
  const located = locateRecordedPath(root, metadata, recordedPath(metadata, "chroma_snapshot_path"));
  if (!located.ok) {
    errors.push(`chroma_snapshot_path_outside_snapshot: ${located.recorded}`);
    return false;
  }
  if (!lstatOrNull(located.path)?.isDirectory) {
    errors.push("chroma_snapshot_missing");
    return false;
  }
  const chromaDb = join(located.path, CHROMA_DB_FILE);
  return !isFile(chromaDb) || integrityOk(driver, chromaDb, "chroma_db", errors);
}

function integrityOk(driver: SqliteDriver, path: string, label: string, errors: string[]): boolean {
  try {
    const answer = driver.integrityCheck(path);
    if (answer === "ok") return true;
    errors.push(`${label}_integrity_check_failed: ${answer}`);
  } catch (error) {
    errors.push(`${label}_open_failed: ${(error as Error).message}`);
  }
  return false;
}
