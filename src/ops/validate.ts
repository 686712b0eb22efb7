/**
 * Validation of a snapshot: the reference module's checks and result keys, plus the manifest (sizes and SHA-256), the
 * Chroma database's integrity, and paths resolved inside the snapshot so a moved backup folder validates. Reads only.
 *
 * @module
 */
import { basename, isAbsolute, join, relative } from "node:path";
import { describeOsError, ioErrorText, isIoError } from "../errors.ts";
import { deniedPath } from "../fs/denied_path.ts";
import { exists, lstatOrNull } from "../fs/probe.ts";
import { notRegularFile, readRegularFile } from "../fs/regular_file.ts";
import { checkManifest, filesToHash, type HashProgress } from "../snapshot/manifest.ts";
import { hashAhead, type HashesAhead } from "../fs/hash_ahead.ts";
import { fileIdentity } from "../fs/file_identity.ts";
import { CHROMA_DB_FILE } from "../snapshot/chroma.ts";
import {
  CHROMA_FOLDER,
  CONFIG_FOLDER,
  DB_FOLDER,
  metadataPath,
  mustBeRegularFile,
  snapshotDir,
} from "../snapshot/layout.ts";
import { checkBinding, DIGEST_KEY } from "../snapshot/binding.ts";
import {
  FORMAT_VERSION,
  keptInvalidRegistry,
  type LocatedPart,
  locatePart,
  printable,
  readMetadata,
  type SnapshotMetadata,
} from "../snapshot/metadata.ts";
import { IntegrityUncheckedError, isReadFailure, type SqliteDriver } from "../sqlite/driver.ts";
import { JOURNAL_MODES } from "../sqlite/journal_header.ts";
import { parseBoundedJson } from "../text/bounded_json.ts";
import { strictUtf8Text } from "../text/utf8_text.ts";

/** How deeply to validate. */
export interface ValidateOptions {
  /** The SQLite driver for integrity checks. */
  driver: SqliteDriver;
  /** Skip hashing: check presence, kinds and sizes only. */
  quick?: boolean;
  /** Called as files are hashed with the bytes done and the total (for progress). */
  onProgress?: HashProgress;
  /** SHA-256 proven for this folder's files by path (see `checkManifest`): not re-read. */
  verified?: ReadonlyMap<string, string>;
  /**
   * More of those, from a reader hashing the files beside the validation (a push), resolved once it has read all it
   * will: the manifest is checked after, hashing only the files it did not read, and no worker hashes ahead. `null`:
   * the reader stopped early, so sizes only. Not waited for once the snapshot is found invalid (sizes only then too).
   */
  verifiedLater?: Promise<ReadonlyMap<string, string> | null>;
  /**
   * Told each database checked whole, by path in the folder, with its identity (`fs/file_identity.ts`), the same
   * before and after the check: a reader of the same file later can tell it read the bytes checked.
   */
  onIntegrityChecked?: (path: string, identity: string) => void;
  /**
   * Databases, by path in the folder, whose bytes passed `PRAGMA integrity_check` where they were made (a push's
   * validation, as its authenticated document records): one of them whose SHA-256 `verified` proves is not checked
   * again, as those bytes are the very ones checked.
   */
  integrityChecked?: ReadonlySet<string>;
  /**
   * Databases, by path in the folder, with the SHA-256 of the bytes create's validation found intact (its record, see
   * `snapshot/integrity_record.ts`): one the manifest lists with that SHA-256 is not checked again. Only for a caller
   * that proves each file's bytes against the manifest (a deep push).
   */
  checkedAtCreate?: ReadonlyMap<string, string>;
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
  /**
   * Whether the metadata matches its digest: `true` from format 2, `false` for this tool's format 1 (made before
   * the binding, valid unbound), `null` for the module's snapshots (they have none).
   */
  metadata_bound: boolean | null;
  files_checked: number;
  bytes_hashed: number;
  quick: boolean;
  /** A path in the snapshot this user may not read (permission denied): not valid, but not judged invalid either. */
  unreadable?: string;
  /** Databases not checked again: the push's check vouches for their proven bytes (see `integrityChecked`). */
  integrity_checked_by_push?: string[];
  /** Databases not checked again: create's check vouches for the bytes the manifest lists (see `checkedAtCreate`). */
  integrity_checked_at_create?: string[];
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

/**
 * Validate the snapshot whose folder is `root` (published, staged, or copied elsewhere). One that is not valid, with a
 * path in it this user may not read, is `unreadable` instead: no verdict.
 */
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
    metadata_bound: null,
    files_checked: 0,
    bytes_hashed: 0,
    quick,
  };
  try {
    await checkInto(result, options);
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied && noteDenied(result)) return result;
    throw error;
  }
  if (!result.valid) noteDenied(result);
  return result;
}

/**
 * When this user may not read a path in the snapshot, say so in `result` in place of its errors (those are what could
 * not be read, not damage); whether it did.
 */
function noteDenied(result: ValidationResult): boolean {
  const denied = deniedPath(result.path);
  if (denied === null) return false;
  result.unreadable = denied;
  result.errors = [`snapshot_unreadable: permission denied: ${printable(denied)}`];
  result.valid = false;
  return true;
}

/**
 * What this user may not read in a snapshot (`path`, as `unreadable` says), the consequence (`then`, after a `; `) and
 * the next step: one line, for validate, restore and drill alike.
 */
export function unreadableSnapshotText(stamp: string, path: string, then = ""): string {
  return `snapshot ${stamp} was not validated: this user may not read ${path} (permission denied)` +
    `${then ? `; ${then}` : ""}; run as the user that owns the backups, or fix the permissions there`;
}

/** The checks of {@linkcode validateSnapshotAt}, into `result` (its `path` the folder). */
async function checkInto(result: ValidationResult, options: ValidateOptions): Promise<ValidationResult> {
  const { path: root, stamp, quick } = result;
  if (!result.exists) return finish(result, "snapshot_directory_missing");
  const linked = linkedFolder(root);
  if (linked !== null) return finish(result, `snapshot_folder_is_a_link: ${printable(linked)}`);
  const read = readMetadata(metadataPath(root));
  if (!read.ok) return finish(result, read.error);
  const metadata = read.metadata;
  result.metadata = metadata;
  result.metadata_bound = checkMetadata(metadata, stamp, result.errors);
  using ahead = quick || options.verifiedLater ? null : startHashing(root, metadata.manifest, options);
  const found = { db: [] as string[], registry: [] as string[], chroma: [] as string[] };
  const check = integrityChecker(root, options, result, manifestHashes(metadata.manifest));
  const db = checkDatabase(root, metadata, check, found.db); // both checks run at once, off this thread
  const chroma = locatePart(root, metadata, "chroma");
  const chromaChecked = chroma ? checkChroma(chroma, check, found.chroma) : Promise.resolve(null);
  const registry = locatePart(root, metadata, "registry");
  if (registry) result.registry_ok = checkRegistry(registry, keptInvalidRegistry(metadata), found.registry);
  [result.db_ok, result.chroma_ok] = await bothSettled(db, chromaChecked);
  result.errors.push(...found.db, ...found.registry, ...found.chroma);
  if (metadata.manifest !== undefined) {
    const hashed = ahead ? relativeTo(root, await ahead.digests()) : undefined;
    const later = quick || !options.verifiedLater || result.errors.length > 0 ? null : await options.verifiedLater;
    const check = await checkManifest(root, metadata.manifest, {
      quick: quick || (options.verifiedLater !== undefined && later === null),
      onProgress: ahead ? undefined : options.onProgress,
      verified: later ? new Map([...options.verified ?? [], ...later]) : options.verified,
      hashed,
    });
    check.errors.push(...linkedEntries(metadata.manifest));
    blameStorage(result.errors, check.storageFailed, root, metadata);
    result.errors.push(...check.errors);
    result.manifest_ok = check.errors.length === 0;
    result.files_checked = check.filesChecked;
    result.bytes_hashed = check.bytesHashed;
  }
  return finish(result);
}

/**
 * The snapshot's folder, or its `db/`, `config/` or `chroma/`, when it is a symbolic link (`db -> /elsewhere`): each
 * part is read, and restored over live files, from inside the snapshot only.
 */
function linkedFolder(root: string): string | null {
  for (const folder of ["", DB_FOLDER, CONFIG_FOLDER, CHROMA_FOLDER]) {
    const path = join(root, folder);
    if (lstatOrNull(path)?.isSymlink) return `${folder === "" ? root : folder} -> ${Deno.readLinkSync(path)}`;
  }
  return null;
}

/** Both results once both settled (no check is left reading a file), or the first rejection. */
async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [first, second] = await Promise.allSettled([a, b]);
  if (first.status === "rejected") throw first.reason;
  if (second.status === "rejected") throw second.reason;
  return [first.value, second.value];
}

/** Bytes to hash from which a validation hashes on a worker while it checks the databases (a worker costs ~30 ms). */
export const HASH_AHEAD_FROM_BYTES = 32 << 20;

/**
 * Hash the files `manifest` lists on a worker while this thread checks the databases' integrity (a full check reads
 * both: side by side they take the longer one's time, not the sum); `null` for a snapshot too small to gain.
 */
function startHashing(root: string, manifest: unknown, options: ValidateOptions): HashesAhead | null {
  // a file of another size than recorded already fails the check: it is not read, be it a sparse file of terabytes
  const files = filesToHash(manifest, options.verified).map(({ path, size }) => ({ path: join(root, path), size }))
    .filter((file) => sizeOrZero(file.path) === file.size);
  const total = files.reduce((sum, file) => sum + file.size, 0);
  if (total < HASH_AHEAD_FROM_BYTES) return null;
  let done = 0;
  return hashAhead(files, (bytes) => options.onProgress?.(done += bytes, total));
}

/** A file's size on disk, to compare with the recorded one; 0 when it is missing or under a file (the check names it). */
function sizeOrZero(path: string): number {
  try {
    return Deno.lstatSync(path).size;
  } catch {
    return 0;
  }
}

function relativeTo(root: string, digests: ReadonlyMap<string, string>): Map<string, string> {
  return new Map([...digests].map(([path, digest]) => [relative(root, path), digest]));
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
/** Keys this tool adds (format 1); metadata with any of them was written by this tool and has them all. */
const TOOL_KEYS = ["format_version", "tool", "tool_version", "sqlite_driver", "sqlite_version", "manifest"];
/** Keys this tool adds from format 2. */
const FORMAT_2_KEYS = ["db_journal_mode", "chroma_db_journal_mode", DIGEST_KEY];

/**
 * Check what the metadata says about itself, and return whether it is bound (see {@linkcode ValidationResult}):
 * every key present, a format this tool reads, the digest, the recorded journal modes, and an absolute `backup_root`
 * (the recorded paths are read relative to it) that ends in the folder's `stamp`.
 */
function checkMetadata(metadata: SnapshotMetadata, stamp: string, errors: string[]): boolean | null {
  const written = TOOL_KEYS.some((key) => key in metadata);
  const format = metadata.format_version;
  errors.push(...missingKeys(metadata, written));
  if (written && !(Number.isInteger(format) && format! >= 1 && format! <= FORMAT_VERSION)) {
    errors.push(`format_version_unsupported: ${JSON.stringify(format)}; this tool reads 1 to ${FORMAT_VERSION}`);
  }
  for (const key of ["db_journal_mode", "chroma_db_journal_mode"] as const) {
    const mode = metadata[key];
    if (mode !== undefined && mode !== "" && !JOURNAL_MODES.includes(mode)) {
      errors.push(`${key}_invalid: ${JSON.stringify(mode)}`);
    }
  }
  const root = metadata.backup_root;
  if (root !== undefined && (typeof root !== "string" || !isAbsolute(root))) {
    errors.push(`backup_root_not_absolute: ${printable(JSON.stringify(root))}`);
  } else if (typeof root === "string" && basename(root) !== stamp) {
    // a folder renamed by hand: its age (and a drill's recovery point) would be taken from the wrong name
    errors.push(`backup_root_names_another_stamp: ${printable(basename(root))}; the folder is ${stamp}`);
  }
  const binding = checkBinding(metadata as unknown as Record<string, unknown>, written, format);
  errors.push(...binding.errors);
  return binding.bound;
}

/**
 * Name each key the metadata lacks. One flipped byte renames a key, and a missing
 * `manifest` or `chroma_snapshot_path` would otherwise turn off the check it guards.
 */
function missingKeys(metadata: SnapshotMetadata, written: boolean): string[] {
  const expected = !written
    ? MODULE_KEYS
    : metadata.format_version === 1
    ? [...MODULE_KEYS, ...TOOL_KEYS]
    : [...MODULE_KEYS, ...TOOL_KEYS, ...FORMAT_2_KEYS];
  return expected.filter((key) => !(key in metadata)).map((key) => `metadata_key_missing: ${key}`);
}

function finish(result: ValidationResult, error?: string): ValidationResult {
  if (error) result.errors.push(error);
  result.valid = result.exists && result.errors.length === 0;
  return result;
}

/** Checks one database's integrity (`label` names it in errors), pushing problems to `errors`; whether it is whole. */
type IntegrityCheck = (path: string, label: string, errors: string[]) => Promise<boolean>;

function checkDatabase(
  root: string,
  metadata: SnapshotMetadata,
  check: IntegrityCheck,
  errors: string[],
): Promise<boolean> {
  const located = locatePart(root, metadata, "db");
  if (located === null) {
    errors.push("db_snapshot_missing");
    return Promise.resolve(false);
  }
  if (!located.ok) {
    errors.push(located.error);
    return Promise.resolve(false);
  }
  const problem = notRegularFile(located.path);
  if (problem !== null) {
    errors.push(problem === "missing" ? "db_snapshot_missing" : `db_snapshot_not_regular_file: ${printable(problem)}`);
    return Promise.resolve(false);
  }
  return check(located.path, "db", errors);
}

/**
 * Whether the registry parses. One a pre-restore snapshot kept unparsable (`keptInvalid`) is no error: it is
 * `false` without one, its bytes checked by the manifest like every file's.
 */
function checkRegistry(located: LocatedPart, keptInvalid: string | null, errors: string[]): boolean {
  if (!located.ok) {
    errors.push(located.error);
    return false;
  }
  const problem = notRegularFile(located.path);
  if (problem !== null && problem !== "missing") {
    errors.push(`registry_snapshot_not_regular_file: ${printable(problem)}`);
    return false;
  }
  let bytes: Uint8Array;
  try {
    bytes = readRegularFile(located.path); // never a FIFO or device, never unbounded
  } catch (error) {
    errors.push(
      error instanceof Deno.errors.NotFound
        ? "registry_snapshot_missing"
        : `registry_snapshot_unreadable: ${describeOsError(error)}`,
    );
    return false;
  }
  try {
    parseBoundedJson(strictUtf8Text(bytes));
    return true;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    if (keptInvalid === null) errors.push(`registry_invalid_json: ${error.message}`);
    return false;
  }
}

function checkChroma(located: LocatedPart, check: IntegrityCheck, errors: string[]): Promise<boolean> {
  if (!located.ok) {
    errors.push(located.error);
    return Promise.resolve(false);
  }
  if (!lstatOrNull(located.path)?.isDirectory) {
    errors.push("chroma_snapshot_missing");
    return Promise.resolve(false);
  }
  const chromaDb = join(located.path, CHROMA_DB_FILE);
  const problem = notRegularFile(chromaDb);
  if (problem === "missing") return Promise.resolve(true);
  if (problem !== null) {
    errors.push(`chroma_db_snapshot_not_regular_file: ${printable(problem)}`);
    return Promise.resolve(false);
  }
  return check(chromaDb, "chroma_db", errors);
}

/** Manifest entries that record a link where the snapshot keeps a regular file (the digest can be rewritten too). */
function linkedEntries(manifest: unknown): string[] {
  if (!Array.isArray(manifest)) return [];
  return manifest.filter((entry) =>
    typeof entry?.path === "string" && "symlink" in entry && mustBeRegularFile(entry.path)
  )
    .map((entry) => `manifest_entry_not_regular_file: ${printable(entry.path)} is a symbolic link`);
}

/**
 * The integrity check of the validation of folder `root`, telling `options.onIntegrityChecked` of each file checked,
 * and noting in `result` each one the push's check vouches for instead.
 */
function integrityChecker(
  root: string,
  options: ValidateOptions,
  result: ValidationResult,
  listed: ReadonlyMap<string, string>,
): IntegrityCheck {
  return async (path, label, errors) => {
    const inFolder = relative(root, path);
    if (options.integrityChecked?.has(inFolder) && options.verified?.has(inFolder)) {
      (result.integrity_checked_by_push ??= []).push(inFolder);
      return true;
    }
    const atCreate = options.checkedAtCreate?.get(inFolder);
    if (atCreate !== undefined && atCreate === listed.get(inFolder)) {
      (result.integrity_checked_at_create ??= []).push(inFolder);
      return true;
    }
    const before = identityOrNull(path);
    const ok = await integrityOk(options.driver, path, label, errors);
    const after = identityOrNull(path);
    if (ok && (before === null || before !== after)) {
      errors.push(`${label}_changed_during_check: ${printable(inFolder)}`);
      return false;
    }
    if (ok) options.onIntegrityChecked?.(inFolder, after!);
    return ok;
  };
}

/** The SHA-256 of each file a manifest lists, by path (nothing for a manifest that is not a list). */
function manifestHashes(manifest: unknown): Map<string, string> {
  const hashes = new Map<string, string>();
  if (!Array.isArray(manifest)) return hashes;
  for (const entry of manifest) {
    if (typeof entry?.path === "string" && typeof entry.sha256 === "string") hashes.set(entry.path, entry.sha256);
  }
  return hashes;
}

function identityOrNull(path: string): string | null {
  const info = lstatOrNull(path);
  return info ? fileIdentity(info) : null;
}

async function integrityOk(driver: SqliteDriver, path: string, label: string, errors: string[]): Promise<boolean> {
  try {
    const answer = await driver.integrityCheck(path);
    if (answer === "ok") return true;
    // SQLite's words stay beside the storage's blame: a disk that fails some reads may hold damaged pages too
    errors.push(
      isReadFailure(answer)
        ? `${unreadable(label, path)}; SQLite said: ${answer}`
        : `${label}_integrity_check_failed: ${answer}`,
    );
  } catch (error) {
    if (error instanceof IntegrityUncheckedError) throw error; // not checked is not damaged: the caller says why
    const failed = isReadFailure(error) || isIoError(error); // SQLite's read, or this tool's own look at the header
    errors.push(failed ? unreadable(label, path) : `${label}_open_failed: ${(error as Error).message}`);
  }
  return false;
}

/**
 * Say the storage failed where a database's check failed (damaged, or not opened) and reading its bytes for their
 * hash failed with EIO (`storageFailed`): SQLite reports some failed reads as damage (the built-in driver always).
 */
function blameStorage(errors: string[], storageFailed: string[], root: string, metadata: SnapshotMetadata): void {
  const chroma = locatePart(root, metadata, "chroma");
  const databases: [string, LocatedPart | null][] = [["db", locatePart(root, metadata, "db")], ["chroma_db", chroma]];
  for (const [label, located] of databases) {
    if (!located?.ok) continue;
    const path = label === "db" ? located.path : join(located.path, CHROMA_DB_FILE);
    if (!storageFailed.includes(relative(root, path))) continue;
    const at = errors.findIndex((error) =>
      error.startsWith(`${label}_integrity_check_failed`) ||
      error.startsWith(`${label}_open_failed`)
    );
    // SQLite's own words stay beside: a disk that fails some reads may hold damaged pages too
    if (at >= 0) errors[at] = `${unreadable(label, path)}; SQLite said: ${errors[at].replace(/^[a-z_]+: /, "")}`;
  }
}

/** The error of a database SQLite could not read: the storage failed, which says nothing of the bytes' integrity. */
function unreadable(label: string, path: string): string {
  return `${label}_unreadable: ${ioErrorText(` at ${printable(path)}`)}`;
}
