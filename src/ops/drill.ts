/**
 * The restore drill: prove that a snapshot restores whole, into a scratch folder, without touching live data.
 * Each check is a step that returns its findings; the result is assembled from them.
 *
 * @module
 */
import { withRecoveryPointCheck } from "./drill_max_age.ts";
import { type CheckOutcome, DRILL_CHECKS, type DrillCheck, type DrillResult } from "./drill_result.ts";
import { join } from "node:path";
import type { Config } from "../config.ts";
import { describeOsError, OperationError } from "../errors.ts";
import { removeQuietly } from "../fs/durable.ts";
import { signalsDelivered, stopIfInterrupted } from "../sys/interrupt.ts";
import { sha256File } from "../fs/hash.ts";
import { entriesOrNone, exists, isFile, lstatOrNull } from "../fs/probe.ts";
import { walkTree } from "../fs/tree.ts";
import type { Reporter } from "../report/reporter.ts";
import { type RestoreResult, restoreSnapshot } from "./restore.ts";
import { pathFlags } from "./restore_intent.ts";
import { nextStep } from "./next_step.ts";
import { CHROMA_FOLDER, snapshotDir } from "../snapshot/layout.ts";
import { buildManifest, type ManifestEntry } from "../snapshot/manifest.ts";
import {
  keptInvalidRegistry,
  locatePart,
  numberOr0,
  snapshotBytes,
  type SnapshotMetadata,
} from "../snapshot/metadata.ts";
import { isInFuture, secondsInFuture, stampAgeSeconds } from "../snapshot/clock.ts";
import { IntegrityUncheckedError, type SqliteDriver } from "../sqlite/driver.ts";
import { journalModeBytes } from "../sqlite/journal_header.ts";
import { CHROMA_DB_FILE } from "../snapshot/chroma.ts";
import { unreadableSnapshotText, validateSnapshot } from "./validate.ts";
import { systemTempFolder } from "../fs/system_temp.ts";
import { parseBoundedJson } from "../text/bounded_json.ts";
import { strictUtf8Text } from "../text/utf8_text.ts";

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
  /** What a message names for a scratch folder with more room (default `--scratch-dir DIR`; `TMPDIR` for a sample). */
  elsewhereFlag?: string;
  /** The backup folder the snapshot is read from (default the configured one; a snapshot fetched into scratch). */
  sourceDir?: string;
  /** SHA-256 proven for the fetched files (hashed by the fetch as written): `snapshot_valid` compares them as text. */
  verified?: ReadonlyMap<string, string>;
  /** Databases of those whose bytes passed the push's integrity check: `snapshot_valid` does not run it again. */
  integrityChecked?: ReadonlySet<string>;
  /** Seconds spent fetching the snapshot before the drill (`--from-remote`): part of its recovery time. */
  fetchSeconds?: number;
  /** `--max-age`: add the `recovery_point` check ({@linkcode withRecoveryPointCheck}) before the drill is reported. */
  maxAgeSeconds?: number | null;
  /** A stop asked for (Ctrl-C, SIGTERM): the drill stops before its next check and removes its scratch copy. */
  signal?: AbortSignal;
}

/** Values the steps measure: later steps use them and the result reports them. */
interface Measured {
  metadata?: SnapshotMetadata;
  scratchDir?: string;
  restore?: RestoreResult;
  restoreSeconds?: number;
  tables?: number;
  rows?: number;
}

/** What a step found: how its check went and any values it measured. */
interface Finding extends CheckOutcome {
  measured?: Measured;
}

/** What every step is given: the drill's inputs and what the earlier steps measured. */
interface DrillState extends Measured {
  config: Config;
  stamp: string;
  root: string;
  options: DrillOptions;
}

/** The restored copy and the snapshot it came from, which the steps after `restore` check. */
interface RestoredCopy {
  driver: SqliteDriver;
  root: string;
  metadata: SnapshotMetadata;
  restore: RestoreResult;
}

/** One step of the drill. */
interface DrillStep {
  run: (state: DrillState) => Finding | Promise<Finding>;
  /** When the step fails or does not measure `needs`, every later check is skipped `why`. */
  gate?: { needs: "metadata" | "restore"; why: string };
}

/** The steps, one per check; they run in the order of {@linkcode DRILL_CHECKS}. */
const STEPS: Record<typeof DRILL_CHECKS[number], DrillStep> = {
  snapshot_valid: { run: validateStep, gate: { needs: "metadata", why: "snapshot not valid" } },
  restore: { run: restoreStep, gate: { needs: "restore", why: "restore failed" } },
  db_integrity: { run: (state) => checkIntegrity(state.options.driver, restoredCopy(state).restore.target_db) },
  row_counts: { run: (state) => checkRowCounts(restoredCopy(state)) },
  registry: { run: (state) => checkRegistry(restoredCopy(state)) },
  chroma_files: { run: (state) => checkChromaFiles(restoredCopy(state)) },
  chroma_db_integrity: { run: (state) => checkChromaDb(restoredCopy(state)) },
};

/** A check as run, with the values its step measured. */
interface RanCheck {
  check: DrillCheck;
  measured: Measured;
}

/**
 * Drill the published snapshot `stamp` of the backup folder that `config` names.
 * Never throws for what it finds: a failed check is a result with `ok: false`.
 *
 * @throws {UsageError} when `stamp` is not a plain stamp (before any file is touched).
 */
export async function drillSnapshot(config: Config, stamp: string, options: DrillOptions): Promise<DrillResult> {
  const started = performance.now();
  const root = snapshotDir(options.sourceDir ?? config.backupDir.path, stamp);
  const state: DrillState = { config, stamp, root, options };
  const ahead = secondsInFuture(stamp, options.now);
  if (ahead > 0) options.reporter.event("warning", "snapshot_stamp_in_future", { stamp, seconds_ahead: ahead });
  const ran: RanCheck[] = [];
  let finished = false;
  let result: DrillResult;
  try {
    for await (const one of runSteps(state)) ran.push(one);
    finished = true;
  } finally {
    result = assemble(state, ran, finished, elapsed(started));
    if (options.maxAgeSeconds != null) result = withRecoveryPointCheck(result, options.maxAgeSeconds);
    if (result.scratch_dir && !result.scratch_kept) removeQuietly(result.scratch_dir);
    options.reporter.event(result.ok ? "info" : "warning", "drill_finished", {
      stamp,
      ok: result.ok,
      recovery_point_seconds: result.recovery_point_seconds,
      recovery_time_seconds: result.recovery_time_seconds,
      errors: result.errors,
    });
  }
  return result;
}

/** Run the steps in order, yielding each check as it ends; after a gate fails, the rest are skipped. */
async function* runSteps(first: DrillState): AsyncGenerator<RanCheck> {
  let state = first;
  let skipWhy: string | null = null;
  for (const name of DRILL_CHECKS) {
    await signalsDelivered(); // a signal that came during a step's synchronous work is seen here
    stopIfInterrupted(state.options.signal, () => [
      `drill of ${state.stamp}`,
      "nothing was drilled and no report written, the scratch copy is removed; run the drill again",
    ]);
    if (skipWhy !== null) {
      yield { check: { name, status: "skipped", detail: skipWhy, seconds: 0 }, measured: {} };
      continue;
    }
    const step = STEPS[name];
    const one = await runStep(name, step, state);
    yield one;
    state = { ...state, ...one.measured };
    if (step.gate && (one.check.status === "failed" || state[step.gate.needs] === undefined)) skipWhy = step.gate.why;
  }
}

/** Run one step, timed; what it throws is a failed check. The reporter hears how it went. */
async function runStep(name: typeof DRILL_CHECKS[number], step: DrillStep, state: DrillState): Promise<RanCheck> {
  const begun = performance.now();
  let finding: Finding;
  try {
    finding = await step.run(state);
  } catch (error) {
    if (error instanceof IntegrityUncheckedError) throw error; // the drill could not run here: not a failed check
    finding = { status: "failed", detail: describeOsError(error) };
  }
  const { status, detail } = finding;
  const check: DrillCheck = { name, status, detail, seconds: elapsed(begun) };
  state.options.reporter.event(status === "failed" ? "warning" : "info", "drill_check", { name, status, detail });
  return { check, measured: finding.measured ?? {} };
}

/** The drill's result from its checks and what they measured; `finished` false when the drill was cut short. */
function assemble(state: DrillState, ran: RanCheck[], finished: boolean, seconds: number): DrillResult {
  const measured: Measured = Object.assign({}, ...ran.map((one) => one.measured));
  const checks = ran.map((one) => one.check);
  const { metadata, restoreSeconds, scratchDir } = measured;
  return {
    stamp: state.stamp,
    ok: finished && checks.every((check) => check.status !== "failed"),
    snapshot_path: state.root,
    created_at: typeof metadata?.created_at === "string" ? metadata.created_at : null,
    recovery_point_seconds: stampAgeSeconds(state.stamp, state.options.now),
    stamp_in_future: isInFuture(state.stamp, state.options.now),
    recovery_time_seconds: restoreSeconds === undefined
      ? null
      : round3((state.options.fetchSeconds ?? 0) + checks[0].seconds + restoreSeconds),
    restore_seconds: restoreSeconds ?? null,
    drill_seconds: seconds,
    snapshot_bytes: metadata ? snapshotBytes(metadata) : 0,
    db_size_bytes: numberOr0(metadata?.db_size_bytes),
    chroma_bytes: numberOr0(metadata?.chroma_snapshot_bytes),
    tables: measured.tables ?? 0,
    rows: measured.rows ?? 0,
    checks,
    errors: checks.filter((check) => check.status === "failed").map((check) => `${check.name}: ${check.detail}`),
    scratch_dir: scratchDir ?? null,
    scratch_kept: scratchDir !== undefined && (state.options.keep ?? false),
    restore: measured.restore ?? null,
  };
}

/** `snapshot_valid`: validate the snapshot deeply (manifest hashes included); measures its metadata. */
async function validateStep({ config, stamp, root, options }: DrillState): Promise<Finding> {
  let validation;
  try {
    validation = await validateSnapshot(options.sourceDir ?? config.backupDir.path, stamp, {
      driver: options.driver,
      onProgress: (done, total) => options.reporter.progress("hashing", done, total),
      verified: options.verified,
      integrityChecked: options.integrityChecked,
    });
  } catch (error) {
    if (!exists(root)) return { status: "failed", detail: removedDuringDrill(root, config) };
    throw error;
  }
  const measured = { metadata: validation.metadata };
  if (!validation.valid && !exists(root)) {
    return { status: "failed", detail: removedDuringDrill(root, config), measured };
  }
  if (validation.unreadable !== undefined) {
    return { status: "failed", detail: unreadableSnapshotText(stamp, validation.unreadable), measured };
  }
  if (!validation.valid) return { status: "failed", detail: validation.errors.join("; "), measured };
  const byPush = validation.integrity_checked_by_push;
  const checked = validation.manifest_ok === null
    ? `${byPush ? "metadata and registry" : "metadata, integrity and registry"} checked; no manifest (module snapshot)`
    : `${validation.files_checked} files match the manifest (${validation.bytes_hashed} bytes hashed` +
      `${options.verified ? "; the rest as the fetch proved them" : ""})`;
  const vouched = byPush
    ? `; the integrity of ${byPush.join(", ")} as checked before the push (the restored copy's is checked below)`
    : "";
  const detail = checked + vouched;
  return { status: "passed", detail, measured };
}

/** `restore`: restore with `to` into a new scratch folder; measures the folder, the restore and its seconds. */
async function restoreStep({ config, stamp, root, options }: DrillState): Promise<Finding> {
  const begun = performance.now();
  const scratchDir = makeScratch(options.scratchParent, stamp, options.reporter);
  try {
    const restore = await restoreSnapshot(config, stamp, {
      driver: options.driver,
      reporter: options.reporter,
      confirmServiceStopped: false,
      ignoreOpenFiles: false,
      preSnapshot: false,
      to: scratchDir,
      scratch: true,
      elsewhereFlag: options.elsewhereFlag ?? "--scratch-dir DIR",
      quick: true,
      sourceDir: options.sourceDir,
    });
    const restoreSeconds = elapsed(begun);
    const detail = `restored into ${scratchDir} in ${restoreSeconds} s`;
    return { status: "passed", detail, measured: { scratchDir, restore, restoreSeconds } };
  } catch (error) {
    // The scratch folder is measured even so, so that it is removed.
    const detail = exists(root) ? describeOsError(error) : removedDuringDrill(root, config);
    return { status: "failed", detail, measured: { scratchDir } };
  }
}

/**
 * The detail of a check whose snapshot vanished while it ran (a cleanup removed it): no finding about it. The printed
 * `list` carries the `--backup-dir` this run was given, so that it lists the folder drilled.
 */
function removedDuringDrill(root: string, config: Config): string {
  const flags = pathFlags(config, {}, ["backupDir"]);
  const list = nextStep("drill another one (see 'list')", "drill another one, listed by", "list", flags);
  return `the snapshot was removed while the drill ran (by a cleanup?): ${root}; ${list}`;
}

/**
 * The restored copy, for the steps after `restore` (which run only once both gates passed).
 *
 * @throws {Error} when the copy is not there (not reached: the gates skip those steps).
 */
function restoredCopy({ options, root, metadata, restore }: DrillState): RestoredCopy {
  if (!metadata || !restore) throw new Error("no restored copy to check");
  return { driver: options.driver, root, metadata, restore };
}

/**
 * A new scratch folder in `parent` (default: the system's temporary folder).
 *
 * @throws {OperationError} naming the folder when it cannot be made.
 */
function makeScratch(parent: string | undefined, stamp: string, reporter: Reporter): string {
  const folder = parent ?? systemTempFolder();
  const others = entriesOrNone(folder).filter((entry) => entry.isDirectory && entry.name.startsWith("atocore-drill-"));
  if (others.length > 0) {
    // a drill takes no lock: one running now cannot be told from one killed, so they are named, never removed
    reporter.event("warning", "drill_scratch_left", { folder, folders: others.map((entry) => entry.name).sort() });
  }
  try {
    return Deno.makeTempDirSync({ dir: folder, prefix: `atocore-drill-${stamp}-` });
  } catch (error) {
    const where = parent ?? `the temporary folder ${folder}`;
    throw new OperationError(
      `cannot make a scratch folder in ${where} (${describeOsError(error)}); ` +
        (parent === undefined
          ? "set TMPDIR to a folder with room for the store, or give --scratch-dir DIR"
          : "check --scratch-dir"),
      { cause: error },
    );
  }
}

/** `db_integrity` and `chroma_db_integrity`: the database at `path` passes PRAGMA integrity_check. */
async function checkIntegrity(driver: SqliteDriver, path: string): Promise<CheckOutcome> {
  const answer = await driver.integrityCheck(path);
  return answer === "ok"
    ? { status: "passed", detail: `PRAGMA integrity_check ok: ${path}` }
    : { status: "failed", detail: `PRAGMA integrity_check: ${answer}: ${path}` };
}

/** `row_counts`: the restored database has the snapshot's tables and rows; measures the tables and rows. */
async function checkRowCounts({ driver, root, metadata, restore }: RestoredCopy): Promise<Finding> {
  const located = locatePart(root, metadata, "db");
  if (!located?.ok) return { status: "failed", detail: located?.error ?? "db_snapshot_missing" };
  const expected = await driver.tableRowCounts(located.path);
  const found = await driver.tableRowCounts(restore.target_db);
  const differences = [...new Set([...Object.keys(expected), ...Object.keys(found)])].sort().flatMap((table) => {
    if (!(table in found)) return [`table ${table} missing`];
    if (!(table in expected)) return [`table ${table} not in the snapshot`];
    return expected[table] === found[table] ? [] : [`${table}: ${found[table]} rows, snapshot has ${expected[table]}`];
  });
  const tables = Object.keys(expected).length;
  const rows = Object.values(expected).reduce((sum, count) => sum + count, 0);
  if (differences.length) return { status: "failed", detail: differences.join("; "), measured: { tables, rows } };
  return { status: "passed", detail: `${tables} tables, ${rows} rows, as in the snapshot`, measured: { tables, rows } };
}

/** `registry`: the restored registry parses and matches its manifest entry. */
function checkRegistry({ root, metadata, restore }: RestoredCopy): CheckOutcome {
  const located = locatePart(root, metadata, "registry");
  if (located === null || !restore.registry_restored) {
    return { status: "skipped", detail: "no registry in the snapshot" };
  }
  const keptInvalid = keptInvalidRegistry(metadata); // a pre-restore snapshot kept it as it was: bytes only
  if (keptInvalid === null) parseBoundedJson(strictUtf8Text(Deno.readFileSync(restore.target_registry)));
  const entry = located.ok && Array.isArray(metadata.manifest)
    ? metadata.manifest.find((candidate) => candidate?.path === located.relative)
    : undefined;
  const mismatch = entry ? entryMismatch(restore.target_registry, entry) : null;
  if (mismatch) return { status: "failed", detail: `${mismatch}: ${restore.target_registry}` };
  const parses = keptInvalid === null ? "parses" : `kept as it was, not JSON (${keptInvalid})`;
  return { status: "passed", detail: `${parses}${entry ? ", matches the manifest" : ""}: ${restore.target_registry}` };
}

/**
 * `chroma_files`: every restored Chroma file matches the manifest (else the snapshot), and no other is there. A
 * snapshot whose create was asked for Chroma and could not copy it (`chroma_error`) fails it: the backup a drill
 * vouches for does not hold what the host asked it to.
 */
function checkChromaFiles({ root, metadata, restore }: RestoredCopy): CheckOutcome {
  const located = locatePart(root, metadata, "chroma");
  if (typeof metadata.chroma_error === "string" && !restore.chroma_restored) {
    const error = metadata.chroma_error;
    return { status: "failed", detail: `Chroma was asked for but could not be backed up when made: ${error}` };
  }
  if (!located?.ok || !restore.chroma_restored) return { status: "skipped", detail: "no Chroma in the snapshot" };
  // A copy of a WAL-mode chroma.sqlite3 is a rollback-journal image; restore set it back to WAL mode.
  const walBack = metadata.chroma_db_journal_mode === "wal" ? journalModeBytes("rollback") : undefined;
  const expected = Array.isArray(metadata.manifest)
    ? manifestEntries(metadata, CHROMA_FOLDER)
    : new Map(buildManifest(located.path).map((entry) => [entry.path, entry]));
  const problems: string[] = [];
  let bytes = 0;
  for (const [path, entry] of expected) {
    const mismatch = entryMismatch(
      join(restore.target_chroma, path),
      entry,
      path === CHROMA_DB_FILE ? walBack : undefined,
    );
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

/** `chroma_db_integrity`: the restored Chroma database, when there is one, passes PRAGMA integrity_check. */
function checkChromaDb({ driver, restore }: RestoredCopy): CheckOutcome | Promise<CheckOutcome> {
  const chromaDb = join(restore.target_chroma, CHROMA_DB_FILE);
  if (!restore.chroma_restored) return { status: "skipped", detail: "no Chroma in the snapshot" };
  if (!isFile(chromaDb)) return { status: "skipped", detail: "no chroma.sqlite3 in the snapshot's Chroma" };
  return checkIntegrity(driver, chromaDb);
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

/** What differs between the file at `path` and its manifest entry, or `null`; `overlay` as for `sha256File`. */
function entryMismatch(path: string, entry: ManifestEntry, overlay?: Parameters<typeof sha256File>[2]): string | null {
  const info = lstatOrNull(path);
  if (!info) return "missing";
  if ("symlink" in entry) {
    if (!info.isSymlink) return "not a symbolic link";
    return Deno.readLinkSync(path) === entry.symlink ? null : "symbolic link target differs";
  }
  if (!info.isFile) return "not a file";
  if (info.size !== entry.size) return `size ${info.size}, manifest has ${entry.size}`;
  return sha256File(path, undefined, overlay) === entry.sha256 ? null : "SHA-256 differs";
}

function elapsed(since: number): number {
  return round3((performance.now() - since) / 1000);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
