/**
 * The restore drill: prove that a snapshot restores whole, without touching live data.
 *
 * The snapshot is validated deeply, restored with `to` into a scratch folder, and
 * the restored copy is checked: database integrity, the same tables with the same
 * row counts as the snapshot, the registry parses and matches, the Chroma files
 * match the manifest (sizes and SHA-256). The drill reads the backup folder only
 * and so takes no lock. Requires `--allow-read`, `--allow-write` (the scratch
 * folder) and, for the FFI driver, `--allow-ffi`.
 *
 * @module
 */
import { join } from "node:path";
import type { Config } from "../config.ts";
import { describeOsError, OperationError } from "../errors.ts";
import { removeQuietly } from "../fs/durable.ts";
import { sha256File } from "../fs/hash.ts";
import { isFile, lstatOrNull } from "../fs/probe.ts";
import { walkTree } from "../fs/tree.ts";
import type { Reporter } from "../report/reporter.ts";
import { type RestoreResult, restoreSnapshot } from "./restore.ts";
import { CHROMA_FOLDER, snapshotDir } from "../snapshot/layout.ts";
import { buildManifest, type ManifestEntry } from "../snapshot/manifest.ts";
import {
  keptInvalidRegistry,
  locateRecordedPath,
  numberOr0,
  recordedPath,
  snapshotBytes,
  type SnapshotMetadata,
} from "../snapshot/metadata.ts";
import { parseStamp } from "../snapshot/stamp.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { CHROMA_DB_FILE } from "../snapshot/chroma.ts";
import { validateSnapshot } from "./validate.ts";

/** The checks of a drill, in the order they run. */
export const DRILL_CHECKS = [
  "snapshot_valid",
  "restore",
  "db_integrity",
  "row_counts",
  "registry",
  "chroma_files",
  "chroma_db_integrity",
] as const;

/** The name of one check. */
export type DrillCheckName = typeof DRILL_CHECKS[number];

/** One check of a drill and how it went. */
export interface DrillCheck {
  name: DrillCheckName;
  /** `skipped` when the snapshot has no such part, or an earlier step failed. */
  status: "passed" | "failed" | "skipped";
  /** One line: what was found. */
  detail: string;
  /** Seconds the check took. */
  seconds: number;
}

/** Options of {@linkcode drillSnapshot}. */
export interface DrillOptions {
  /** The SQLite driver. */
  driver: SqliteDriver;
  /** Where events and progress go. */
  reporter: Reporter;
  /** The time the drill started, from which the snapshot's age is measured. */
  now: Date;
  /** Keep the scratch folder (its path is in the result). */
  keep?: boolean;
  /** The folder in which the scratch folder is made (default: the system's temporary folder). */
  scratchParent?: string;
}

/** What a drill did and found. */
export interface DrillResult {
  stamp: string;
  /** True when every check passed or was skipped for a part the snapshot does not hold. */
  ok: boolean;
  snapshot_path: string;
  created_at: string | null;
  /** The snapshot's age when the drill ran: the recovery point. */
  recovery_point_seconds: number | null;
  /** How long a restore takes: deep validation plus the restore itself (the recovery time). */
  recovery_time_seconds: number | null;
  /** How long the restore itself took (the snapshot having just been validated deeply). */
  restore_seconds: number | null;
  /** How long the whole drill took. */
  drill_seconds: number;
  /** Bytes of the snapshot (its manifest, else database plus Chroma). */
  snapshot_bytes: number;
  db_size_bytes: number;
  chroma_bytes: number;
  /** Tables compared and the rows they hold. */
  tables: number;
  rows: number;
  checks: DrillCheck[];
  /** One line per failed check. */
  errors: string[];
  scratch_dir: string | null;
  scratch_kept: boolean;
  restore: RestoreResult | null;
}

/**
 * Drill the published snapshot `stamp` of the backup folder that `config` names.
 * Never throws for what it finds: a failed check is a result with `ok: false`.
 *
 * @throws {UsageError} when `stamp` is not a plain stamp (before any file is touched).
 */
export async function drillSnapshot(config: Config, stamp: string, options: DrillOptions): Promise<DrillResult> {
  const started = performance.now();
  const root = snapshotDir(config.backupDir.path, stamp);
  const stampTime = parseStamp(stamp);
  const result: DrillResult = {
    stamp,
    ok: false,
    snapshot_path: root,
    created_at: null,
    recovery_point_seconds: stampTime ? Math.round((options.now.getTime() - stampTime.getTime()) / 1000) : null,
    recovery_time_seconds: null,
    restore_seconds: null,
    drill_seconds: 0,
    snapshot_bytes: 0,
    db_size_bytes: 0,
    chroma_bytes: 0,
    tables: 0,
    rows: 0,
    checks: [],
    errors: [],
    scratch_dir: null,
    scratch_kept: false,
    restore: null,
  };
  const check = async (
    name: DrillCheckName,
    run: () => Omit<DrillCheck, "name" | "seconds"> | Promise<Omit<DrillCheck, "name" | "seconds">>,
  ) => {
    const begun = performance.now();
    let outcome: Omit<DrillCheck, "name" | "seconds">;
    try {
      outcome = await run();
    } catch (error) {
      outcome = { status: "failed", detail: describeOsError(error) };
    }
    result.checks.push({ name, ...outcome, seconds: elapsed(begun) });
    if (outcome.status === "failed") result.errors.push(`${name}: ${outcome.detail}`);
    options.reporter.event(outcome.status === "failed" ? "warning" : "info", "drill_check", { name, ...outcome });
    return outcome.status !== "failed";
  };
  try {
    let metadata: SnapshotMetadata | undefined;
    const valid = await check("snapshot_valid", async () => {
      const validation = await validateSnapshot(config.backupDir.path, stamp, {
        driver: options.driver,
        onProgress: (done, total) => options.reporter.progress("hashing", done, total),
      });
      metadata = validation.metadata;
      if (!validation.valid) return { status: "failed", detail: validation.errors.join("; ") };
      return {
        status: "passed",
        detail: validation.manifest_ok === null
          ? "metadata, integrity and registry checked; no manifest (module snapshot)"
          : `${validation.files_checked} files match the manifest (${validation.bytes_hashed} bytes hashed)`,
      };
    });
    const validationSeconds = result.checks[0].seconds;
    if (metadata) describeSizes(result, metadata);
    if (!valid || !metadata) return skipRest(result, "snapshot not valid");
    const snapshot = metadata;
    const restored = await check("restore", async () => {
      const begun = performance.now();
      const scratch = makeScratch(options.scratchParent, stamp);
      result.scratch_dir = scratch;
      result.scratch_kept = options.keep ?? false;
      result.restore = await restoreSnapshot(config, stamp, {
        driver: options.driver,
        reporter: options.reporter,
        confirmServiceStopped: false,
        ignoreOpenFiles: false,
        preSnapshot: false,
        to: scratch,
        quick: true,
      });
      result.restore_seconds = elapsed(begun);
      result.recovery_time_seconds = round3(validationSeconds + result.restore_seconds);
      return { status: "passed", detail: `restored into ${scratch} in ${result.restore_seconds} s` };
    });
    if (!restored || !result.restore) return skipRest(result, "restore failed");
    const restore = result.restore;
    await check("db_integrity", () => Promise.resolve(checkIntegrity(options.driver, restore.target_db)));
    await check("row_counts", () => Promise.resolve(checkRowCounts(options.driver, root, snapshot, restore, result)));
    await check("registry", () => checkRegistry(root, snapshot, restore));
    await check("chroma_files", () => checkChromaFiles(root, snapshot, restore));
    await check("chroma_db_integrity", () => {
      const chromaDb = join(restore.target_chroma, CHROMA_DB_FILE);
      if (!restore.chroma_restored) return Promise.resolve({ status: "skipped", detail: "no Chroma in the snapshot" });
      if (!isFile(chromaDb)) {
        return Promise.resolve({ status: "skipped", detail: "no chroma.sqlite3 in the snapshot's Chroma" });
      }
      return Promise.resolve(checkIntegrity(options.driver, chromaDb));
    });
    return finish(result);
  } finally {
    result.drill_seconds = elapsed(started);
    if (result.scratch_dir && !result.scratch_kept) removeQuietly(result.scratch_dir);
    options.reporter.event(result.ok ? "info" : "warning", "drill_finished", {
      stamp,
      ok: result.ok,
      recovery_point_seconds: result.recovery_point_seconds,
      recovery_time_seconds: result.recovery_time_seconds,
      errors: result.errors,
    });
  }
}

/**
 * A new scratch folder in `parent` (default: the system's temporary folder).
 *
 * @throws {OperationError} naming the folder when it cannot be made.
 */
function makeScratch(parent: string | undefined, stamp: string): string {
  try {
    return Deno.makeTempDirSync({ dir: parent, prefix: `atocore-drill-${stamp}-` });
  } catch (error) {
    throw new OperationError(
      `cannot make a scratch folder in ${parent ?? "the temporary folder"} (${describeOsError(error)}); ` +
        `check --scratch-dir`,
      { cause: error },
    );
  }
}

function describeSizes(result: DrillResult, metadata: SnapshotMetadata): void {
  result.created_at = typeof metadata.created_at === "string" ? metadata.created_at : null;
  result.db_size_bytes = numberOr0(metadata.db_size_bytes);
  result.chroma_bytes = numberOr0(metadata.chroma_snapshot_bytes);
  result.snapshot_bytes = snapshotBytes(metadata);
}

function skipRest(result: DrillResult, why: string): DrillResult {
  for (const name of DRILL_CHECKS) {
    if (!result.checks.some((done) => done.name === name)) {
      result.checks.push({ name, status: "skipped", detail: why, seconds: 0 });
    }
  }
  return finish(result);
}

function finish(result: DrillResult): DrillResult {
  result.ok = result.checks.every((done) => done.status !== "failed");
  return result;
}

function checkIntegrity(driver: SqliteDriver, path: string): Omit<DrillCheck, "name" | "seconds"> {
  const answer = driver.integrityCheck(path);
  return answer === "ok"
    ? { status: "passed", detail: `PRAGMA integrity_check ok: ${path}` }
    : { status: "failed", detail: `PRAGMA integrity_check: ${answer}: ${path}` };
}

function checkRowCounts(
  driver: SqliteDriver,
  root: string,
  metadata: SnapshotMetadata,
  restore: RestoreResult,
  result: DrillResult,
): Omit<DrillCheck, "name" | "seconds"> {
  const located = locateRecordedPath(root, metadata, recordedPath(metadata, "db_snapshot_path"));
  if (!located.ok) return { status: "failed", detail: `database path outside the snapshot: ${located.recorded}` };
  const expected = driver.tableRowCounts(located.path);
  const found = driver.tableRowCounts(restore.target_db);
  const differences = [...new Set([...Object.keys(expected), ...Object.keys(found)])].sort().flatMap((table) => {
    if (!(table in found)) return [`table ${table} missing`];
    if (!(table in expected)) return [`table ${table} not in the snapshot`];
    return expected[table] === found[table] ? [] : [`${table}: ${found[table]} rows, snapshot has ${expected[table]}`];
  });
  result.tables = Object.keys(expected).length;
  result.rows = Object.values(expected).reduce((sum, count) => sum + count, 0);
  if (differences.length) return { status: "failed", detail: differences.join("; ") };
  return { status: "passed", detail: `${result.tables} tables, ${result.rows} rows, as in the snapshot` };
}

function checkRegistry(
  root: string,
  metadata: SnapshotMetadata,
  restore: RestoreResult,
): Omit<DrillCheck, "name" | "seconds"> {
  const located = locateRecordedPath(root, metadata, recordedPath(metadata, "registry_snapshot_path"));
  if (!recordedPath(metadata, "registry_snapshot_path") || !restore.registry_restored) {
    return { status: "skipped", detail: "no registry in the snapshot" };
  }
  const keptInvalid = keptInvalidRegistry(metadata); // a pre-restore snapshot kept it as it was: bytes only
  if (keptInvalid === null) JSON.parse(Deno.readTextFileSync(restore.target_registry));
  const entry = located.ok && Array.isArray(metadata.manifest)
    ? metadata.manifest.find((candidate) => candidate?.path === located.relative)
    : undefined;
  const mismatch = entry ? entryMismatch(restore.target_registry, entry) : null;
  if (mismatch) return { status: "failed", detail: `${mismatch}: ${restore.target_registry}` };
  const parses = keptInvalid === null ? "parses" : `kept as it was, not JSON (${keptInvalid})`;
  return { status: "passed", detail: `${parses}${entry ? ", matches the manifest" : ""}: ${restore.target_registry}` };
}

function checkChromaFiles(
  root: string,
  metadata: SnapshotMetadata,
  restore: RestoreResult,
): Omit<DrillCheck, "name" | "seconds"> {
  const located = locateRecordedPath(root, metadata, recordedPath(metadata, "chroma_snapshot_path"));
  if (!recordedPath(metadata, "chroma_snapshot_path") || !restore.chroma_restored || !located.ok) {
    return { status: "skipped", detail: "no Chroma in the snapshot" };
  }
  const expected = Array.isArray(metadata.manifest)
    ? manifestEntries(metadata, CHROMA_FOLDER)
    : new Map(buildManifest(located.path).map((entry) => [entry.path, entry]));
  const problems: string[] = [];
  let bytes = 0;
  for (const [path, entry] of expected) {
    const mismatch = entryMismatch(join(restore.target_chroma, path), entry);
    if (mismatch) problems.push(`${mismatch}: ${path}`);
    if ("size" in entry) bytes += entry.size;
  }
  for (const found of walkTree(restore.target_chroma)) {
    if (found.kind !== "dir" && !expected.has(found.path)) problems.push(`unexpected file: ${found.path}`);
  }
  if (problems.length) {
    return { status: "failed", detail: `${problems.length} problems: ${problems.slice(0, 5).join("; ")}` };
  }
  const source = Array.isArray(metadata.manifest) ? "the manifest" : "the snapshot (no manifest)";
  return { status: "passed", detail: `${expected.size} files, ${bytes} bytes, sizes and SHA-256 match ${source}` };
}

/** The manifest's entries under `folder/`, keyed by their path inside it. */
function manifestEntries(metadata: SnapshotMetadata, folder: string): Map<string, ManifestEntry> {
  const prefix = `${folder}/`;
  const entries = Array.isArray(metadata.manifest) ? metadata.manifest : [];
  return new Map(
    entries.filter((entry) => typeof entry?.path === "string" && entry.path.startsWith(prefix))
      .map((entry) => [entry.path.slice(prefix.length), entry]),
  );
}

/** What differs between the file at `path` and its manifest entry, or `null`. */
function entryMismatch(path: string, entry: ManifestEntry): string | null {
  const info = lstatOrNull(path);
  if (!info) return "missing";
  if ("symlink" in entry) {
    if (!info.isSymlink) return "not a symbolic link";
    return Deno.readLinkSync(path) === entry.symlink ? null : "symbolic link target differs";
  }
  if (!info.isFile) return "not a file";
  if (info.size !== entry.size) return `size ${info.size}, manifest has ${entry.size}`;
  return sha256File(path) === entry.sha256 ? null : "SHA-256 differs";
}

function elapsed(since: number): number {
  return round3((performance.now() - since) / 1000);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
