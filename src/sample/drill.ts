/**
 * The whole tool end to end on a sample store built in a temporary folder (`drill --sample`, `deno task demo`),
 * so that a new host can see every command work with nothing set up; nothing outside that folder is touched.
 *
 * @module
 */
import { type CleanupResult, cleanupSnapshots } from "../ops/cleanup.ts";
import { type Config, resolveConfig } from "../config.ts";
import { type CreateResult, createSnapshot } from "../ops/create.ts";
import { drillSnapshot } from "../ops/drill.ts";
import type { DrillResult } from "../ops/drill_result.ts";
import { removeQuietly } from "../fs/durable.ts";
import { describeOsError, isDiskFull, OperationError } from "../errors.ts";
import { acquireLock } from "../ops/lock.ts";
import type { Reporter } from "../report/reporter.ts";
import { DEFAULT_POLICY } from "../snapshot/retention.ts";
import { DEFAULT_PRE_RESTORE_DAYS } from "../snapshot/retention_guards.ts";
import { makeSampleStore } from "./store.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { validateSnapshot, type ValidationResult } from "../ops/validate.ts";
import { systemTempFolder } from "../fs/system_temp.ts";

/** Options of {@linkcode runSampleDrill}. */
export interface SampleDrillOptions {
  /** The SQLite driver. */
  driver: SqliteDriver;
  /** Where events and progress go. */
  reporter: Reporter;
  /** Keep the temporary folder (its path is in the result). */
  keep?: boolean;
}

/** What each step of the sample run returned. */
export interface SampleDrillResult {
  /** True when the snapshot validated, the drill passed and cleanup reported no error. */
  ok: boolean;
  /** The temporary folder holding the sample store and its backups. */
  data_dir: string;
  /** Whether that folder was kept. */
  kept: boolean;
  create: CreateResult;
  validate: ValidationResult;
  drill: DrillResult;
  cleanup: CleanupResult;
}

/**
 * Run create (with Chroma), validate, drill and a dry-run cleanup on a new sample
 * store in a temporary folder, and remove the folder unless `keep`.
 *
 * @throws {ToolError} when a step cannot run at all (for example, create fails); the folder is removed.
 */
export async function runSampleDrill(options: SampleDrillOptions): Promise<SampleDrillResult> {
  const { driver, reporter } = options;
  const dataDir = makeSampleFolder();
  try {
    const store = buildSampleStore(dataDir, driver);
    reporter.event("info", "sample_store_created", { data_dir: dataDir });
    const config = resolveConfig({}, { ATOCORE_DATA_DIR: dataDir }, dataDir);
    const create = await sampleSnapshot(config, store.backupDir, driver, reporter);
    const validate = await validateSnapshot(store.backupDir, create.stamp, { driver });
    const drill = await drillSnapshot(config, create.stamp, {
      driver,
      reporter,
      now: new Date(),
      scratchParent: dataDir,
      elsewhereFlag: "TMPDIR", // the sample's scratch folder is in its temporary folder: --scratch-dir is not taken
    });
    const cleanup = await cleanupSnapshots(store.backupDir, {
      policy: DEFAULT_POLICY,
      confirm: false,
      reporter,
      driver,
      now: new Date(),
      preRestoreDays: DEFAULT_PRE_RESTORE_DAYS,
    });
    return {
      ok: validate.valid && drill.ok && cleanup.errors.length === 0,
      data_dir: dataDir,
      kept: options.keep ?? false,
      create,
      validate,
      drill,
      cleanup,
    };
  } finally {
    if (!options.keep) removeQuietly(dataDir);
  }
}

/**
 * The sample's snapshot, made by create with Chroma.
 *
 * @throws {OperationError} naming the folder and TMPDIR on a full disk, where create's own next step (run create again)
 *   is not the sample's; create's other errors as they are.
 */
async function sampleSnapshot(
  config: Config,
  backupDir: string,
  driver: SqliteDriver,
  reporter: Reporter,
): Promise<CreateResult> {
  try {
    using _lock = acquireLock(backupDir, "create");
    return await createSnapshot(config, { driver, includeChroma: true, reporter });
  } catch (error) {
    if (!isDiskFull(error) && !isDiskFull((error as Error | null)?.cause)) throw error;
    throw new OperationError(
      `cannot make the sample's snapshot in ${backupDir} (no space left on device (disk full)); ` +
        "set TMPDIR to a folder with room for a small store and its backups",
      { cause: error },
    );
  }
}

/**
 * The sample store, built in `dataDir`.
 *
 * @throws {OperationError} naming the folder and TMPDIR when it cannot be built there (a full disk, most often).
 */
function buildSampleStore(dataDir: string, driver: SqliteDriver): ReturnType<typeof makeSampleStore> {
  try {
    return makeSampleStore(dataDir, { driver });
  } catch (error) {
    throw new OperationError(
      `cannot build the sample store in ${dataDir} (${describeOsError(error)}); ` +
        "set TMPDIR to a folder with room for a small store",
      { cause: error },
    );
  }
}

/**
 * The sample's temporary folder, made in the system's temporary folder.
 *
 * @throws {OperationError} naming the folder and TMPDIR when it cannot be made, as `drill --latest`'s scratch does.
 */
function makeSampleFolder(): string {
  const folder = systemTempFolder();
  try {
    return Deno.makeTempDirSync({ dir: folder, prefix: "atocore-sample-" });
  } catch (error) {
    throw new OperationError(
      `cannot make a sample folder in the temporary folder ${folder} (${describeOsError(error)}); ` +
        "set TMPDIR to a folder with room for a small store",
      { cause: error },
    );
  }
}
