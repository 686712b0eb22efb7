/**
 * `drill`: prove that a snapshot restores whole, into a scratch folder; or, with
 * `--sample`, run the whole tool end to end on a sample store.
 *
 * @module
 */
import { isSameOrInside } from "../fs/real_path.ts";
import { resolve } from "node:path";
import { type Config, refuseOddPathFlag } from "../config.ts";
import { type DrillOptions, drillSnapshot } from "../ops/drill.ts";
import type { DrillResult } from "../ops/drill_result.ts";
import { drillFromRemote, type RemoteDrillResult } from "../ops/drill_remote.ts";
import { InterruptedError } from "../sys/interrupt.ts";
import { listenForInterrupts, reportLateInterrupt } from "./interrupts.ts";
import { describeOsError, ExitCode, OperationError, UsageError } from "../errors.ts";
import { heldOutputFile, type StateFile } from "../fs/state_folder.ts";
import { renderJunit, renderJunitFailure } from "../report/junit.ts";
import { latestStamp, listStep, requireBackupFolder, requireSnapshot } from "../ops/list.ts";
import { pathFlags } from "../ops/restore_intent.ts";
import { nextStep } from "../ops/next_step.ts";
import { snapshotsNotAFolder } from "../ops/own_folders.ts";
import { runSampleDrill, type SampleDrillResult } from "../sample/drill.ts";
import { checkedStamp } from "../snapshot/layout.ts";
import { isRandomId } from "../repo/layout.ts";
import {
  type CommandContext,
  type CommandFlags,
  COMMON_HELP,
  configFrom,
  defineCommand,
  driverFrom,
  type Outcome,
  resolvedConfigFrom,
} from "./command.ts";
import { parseDurationSeconds } from "../duration.ts";
import { checkedScratch, checkTempFolder } from "./scratch_flag.ts";
import { systemTempFolder } from "../fs/system_temp.ts";
import { formatBytes } from "../text/bytes.ts";
import { formatAge, printable } from "./format.ts";
import {
  METRICS_HELP,
  METRICS_OPTIONS,
  outputPath,
  requireWritableOutput,
  storeConfigOrNull,
  withMetrics,
} from "./metrics_flag.ts";
import {
  AUTH_OPTIONS,
  READ_AUTH_HELP,
  refuseRemoteFlagsWithout,
  REMOTE_HELP,
  REMOTE_OPTIONS,
  remoteSourceFrom,
  repositoryPlacesOf,
  TRANSFER_HELP,
  TRANSFER_OPTIONS,
  transfersFrom,
} from "./remote_flags.ts";

/** The `drill` command. */
export const drillCommand = defineCommand({
  name: "drill",
  summary: "restore a snapshot into a scratch folder and check it is whole (--sample: the whole tool on a sample)",
  help: `Usage: atocore-backup drill STAMP [options]
       atocore-backup drill --latest [options]
       atocore-backup drill --sample [--keep]

Prove that a snapshot restores: validate it deeply (manifest hashes included),
restore it into a scratch folder (the live store is never touched, no lock is
taken), then check the restored copy: database integrity, the same tables with
the same row counts as the snapshot, the registry parses and matches, every
Chroma file matches the manifest (size and SHA-256), Chroma's database is whole.
Reports the snapshot's age (recovery point) and how long validation plus restore
took (recovery time). Exits 1 when any check fails. The scratch folder is removed
unless --keep.

With --from-remote, the snapshot (STAMP, STAMP_PUSHID or --latest; see 'remote
list') is first fetched from the off-host repository into a scratch folder and
decrypted with --identity: the CI drill, on a machine that has the repository and
the identity but not the host. The recovery time then includes the fetch; a
snapshot that cannot be fetched intact, or whose refs hold no valid MAC by the
identity's auth key, fails the drill's first check. The
fetched copy is removed afterwards (--keep keeps the restored one).

With --sample, build a sample store in a temporary folder and run create
--chroma, validate, drill and a dry-run cleanup on it end to end, then remove
the folder: the whole tool working, with nothing set up.

Options:
  --latest             drill the snapshot published last (passing over, with a warning,
                       any stamped in the future: the clock was wrong)
  --sample             run the whole tool on a sample store in a temporary folder
  --keep               keep the scratch folder (or, with --sample, the sample folder)
  --scratch-dir DIR    make the scratch folder in DIR (default: the system's temporary folder)
  --junit PATH         also write the result as JUnit XML to PATH (one test case per check)
  --from-remote        read the snapshot from the off-host repository (needs --identity)
  --max-age DURATION   also fail when the snapshot is older than this (36h, 2d, 90m):
                       the recovery point a CI job holds the pushes to
  --source ID          with --from-remote --latest: the newest snapshot of that backup
                       folder (SOURCE in 'remote list'; only refs a MAC by the identity's
                       key vouches for), in a repository several hosts push to
${METRICS_HELP}
${REMOTE_HELP}
${READ_AUTH_HELP}
${TRANSFER_HELP}
${COMMON_HELP}

Examples:
  atocore-backup drill --latest
  atocore-backup drill 20260409T010203Z --junit drill.xml --metrics-file /var/lib/prometheus/node-exporter/atocore_drill.prom
  atocore-backup drill --sample
  atocore-backup drill --from-remote --latest --remote file:///mnt/offsite/atocore --identity ci.key --junit drill.xml
  atocore-backup drill --from-remote --latest --max-age 36h --junit drill.xml
  atocore-backup drill --from-remote --latest --source 0123456789abcdef --max-age 36h`,
  options: {
    latest: { type: "boolean" },
    sample: { type: "boolean" },
    keep: { type: "boolean" },
    "scratch-dir": { type: "string" },
    junit: { type: "string" },
    "from-remote": { type: "boolean" },
    "max-age": { type: "string" },
    source: { type: "string" },
    ...METRICS_OPTIONS,
    ...REMOTE_OPTIONS,
    ...AUTH_OPTIONS,
    ...TRANSFER_OPTIONS,
  },
  maxPositionals: 1,
  async run(values, positionals, context): Promise<Outcome> {
    using junit = checkedJunit(values, context);
    try {
      checkArguments(values, positionals, context);
      return await withMetrics(
        values,
        "drill",
        context,
        () => values.sample ? sample(values, context, junit) : drill(values, positionals, context, junit),
      );
    } catch (error) {
      // a stop asked for writes no report; any other end leaves none from an earlier run standing
      if (junit !== null && !(error instanceof InterruptedError)) {
        try {
          junit.replace(renderJunitFailure((error as Error).message, context.now));
        } catch {
          // the drill's own error is the one to report
        }
      }
      throw error;
    }
  },
});

/** The drill command's flags (`run`'s return type is written out so that reading them from it is not circular). */
type Values = CommandFlags<typeof drillCommand.options>;

/**
 * Where `--junit` writes, or `null` without it (or when empty, which `checkArguments` refuses): checked first, so that
 * every later failure can leave its one failed case there, and its folder held from then on (`heldOutputFile`).
 *
 * @throws {UsageError} when the path is one the report must not overwrite, or cannot be written.
 */
function checkedJunit(values: Values, context: CommandContext): (StateFile & Disposable) | null {
  if (values.junit === undefined || values.junit === "") return null;
  const output = outputPath(context.cwd, values.junit, "junit");
  requireWritableOutput("junit", output, storeConfigOrNull(values, context), repositoryPlacesOf(values, context));
  const junit = output.path;
  const metrics = values["metrics-file"];
  const other = metrics === undefined || metrics === "" ? null : outputPath(context.cwd, metrics, "metrics-file");
  if (other !== null && isSameOrInside(other.path, junit)) {
    throw new UsageError(
      `--junit ${output.named} and --metrics-file ${other.named} name the same file: the metrics would overwrite ` +
        "the report; " +
        "nothing was done; give each its own file",
    );
  }
  return heldOutputFile(junit);
}

function checkArguments(values: Values, positionals: string[], context: CommandContext): void {
  const chosen = [positionals.length > 0, Boolean(values.latest), Boolean(values.sample)].filter(Boolean).length;
  if (chosen === 0) {
    // the list printed reaches the backup folder given (a repository's snapshots are another list)
    const flags = values["from-remote"] ? "" : pathFlags(resolvedConfigFrom(values, context), {}, ["backupDir"]);
    throw new UsageError(`drill: snapshot stamp required (or --latest, or --sample); ${listStep(flags)}`);
  }
  if (chosen > 1) throw new UsageError("drill: give one of STAMP, --latest or --sample; see 'drill --help'");
  if (values.sample) {
    for (const flag of ["db", "backup-dir", "registry", "chroma-dir", "scratch-dir"] as const) {
      if (values[flag] !== undefined) {
        throw new UsageError(`drill: --sample makes its own store and cannot be used with --${flag}`);
      }
    }
  }
  for (const flag of ["junit", "scratch-dir", "metrics-file"] as const) {
    if (values[flag] !== undefined) refuseOddPathFlag(values[flag], `--${flag}`);
  }
  if (values.sample && values["max-age"] !== undefined) {
    throw new UsageError("drill: --sample drills a snapshot made just now and cannot be used with --max-age");
  }
  maxAgeFrom(values);
  if (values.sample && values["from-remote"]) {
    throw new UsageError("drill: --sample makes its own store and cannot be used with --from-remote");
  }
  if (!values["from-remote"]) refuseRemoteFlagsWithout(values, "drill", "--from-remote");
  checkedSource(values);
}

/**
 * The source `--source` names (see `latestOfSource`), or `undefined` without it.
 *
 * @throws {UsageError} without --from-remote --latest, or for an id that is not one (16 lowercase hex digits).
 */
function checkedSource(values: Values): string | undefined {
  const source: string | undefined = values.source;
  if (source === undefined) return undefined;
  if (!values["from-remote"] || !values.latest) {
    throw new UsageError(
      "drill: --source picks the latest snapshot of that backup folder in a repository; give it with --from-remote " +
        "--latest",
    );
  }
  const isId: boolean = isRandomId(source); // a source id is a random id, as the refs' `source`
  if (!isId) {
    throw new UsageError(
      `drill: --source ${JSON.stringify(source.slice(0, 60))} is no source id; give the 16 hex digits SOURCE shows ` +
        "in 'atocore-backup remote list'",
    );
  }
  return source;
}

async function drill(
  values: Values,
  positionals: string[],
  context: CommandContext,
  junit: StateFile | null,
): Promise<Outcome> {
  const config = configFrom(values, context);
  const driver = driverFrom(values, context);
  const scratch = values["scratch-dir"];
  const repository = repositoryPlacesOf(values, context).root;
  if (scratch === undefined) checkTempFolder(config, resolve(context.cwd, systemTempFolder()), repository);
  const options: DrillOptions = {
    driver,
    reporter: context.reporter,
    now: context.now,
    keep: Boolean(values.keep),
    scratchParent: scratch === undefined
      ? undefined
      : checkedScratch(config, resolve(context.cwd, scratch), repository),
    maxAgeSeconds: maxAgeFrom(values),
  };
  const result = values["from-remote"]
    ? await drillRemote(values, positionals, context, config, options)
    : await drillLocal(localStamp(config, positionals, context), context, config, options);
  writeJunit(junit, context, result);
  return {
    result,
    exitCode: result.ok ? ExitCode.Ok : ExitCode.Failed,
    text: describe(result),
    metrics: metricsOf(result),
  };
}

/** The seconds `--max-age` gives, or `null` without it. */
function maxAgeFrom(values: Values): number | null {
  const text = values["max-age"];
  return text === undefined ? null : parseDurationSeconds(text, "drill: --max-age");
}

/** The drill from the repository, stopping at a safe point on Ctrl-C or SIGTERM (the fetch is the long part). */
async function drillRemote(
  values: Values,
  positionals: string[],
  context: CommandContext,
  config: Config,
  options: DrillOptions,
): Promise<RemoteDrillResult> {
  const source = {
    ...remoteSourceFrom(values, context, config, "drill --from-remote", positionals[0]),
    transfers: transfersFrom(values, context),
  };
  using interrupts = listenForInterrupts(context.reporter);
  const result = await drillFromRemote(config, source, positionals[0] ?? "latest", {
    ...options,
    signal: interrupts.signal,
    ofSource: checkedSource(values),
  });
  await reportLateInterrupt(interrupts.signal, context.reporter, "drill");
  return result;
}

/** The drill of a local snapshot, stopping between its checks on Ctrl-C or SIGTERM (its scratch copy removed). */
async function drillLocal(
  stamp: string,
  context: CommandContext,
  config: Config,
  options: DrillOptions,
): Promise<DrillResult> {
  using interrupts = listenForInterrupts(context.reporter);
  const result = await drillSnapshot(config, stamp, { ...options, signal: interrupts.signal });
  await reportLateInterrupt(interrupts.signal, context.reporter, "drill");
  return result;
}

/** The local snapshot to drill: the stamp given, when it names a snapshot, or the newest ({@linkcode latest}). */
function localStamp(config: Config, positionals: string[], context: CommandContext): string {
  const backupDir = config.backupDir.path;
  const flags = pathFlags(config, {}, ["backupDir"]); // a printed 'list' reaches this folder
  return positionals.length ? existingStamp(backupDir, positionals[0], flags) : latest(config, context);
}

/** The stamp given, when it names a snapshot (checked before any other work). */
function existingStamp(backupDir: string, given: string, flags: string): string {
  const stamp = checkedStamp(given, listStep(flags));
  requireSnapshot(backupDir, stamp, flags);
  return stamp;
}

/**
 * What `--latest` drills (see `latestStamp`: the snapshot published last of those not stamped in the future); those
 * passed over are reported.
 *
 * @throws {UsageError} when the backup folder is not there (a mistyped path must not pass for an empty folder).
 * @throws {OperationError} when there is none.
 */
function latest(config: Config, context: CommandContext): string {
  const backupDir = config.backupDir.path;
  requireBackupFolder(backupDir, pathFlags(config)); // its create makes one there
  const { stamp, skippedInFuture, sequenceIgnored } = latestStamp(backupDir, context.now);
  if (skippedInFuture.length) {
    context.reporter.event("warning", "drill_latest_skipped_future", { stamps: skippedInFuture, chosen: stamp });
  }
  if (sequenceIgnored.length) {
    context.reporter.event("warning", "drill_latest_sequence_ignored", { stamps: sequenceIgnored, chosen: stamp });
  }
  if (stamp !== null) return stamp;
  const notFolder = snapshotsNotAFolder(backupDir);
  if (notFolder !== null) throw new UsageError(notFolder);
  // the commands printed reach this run's folders: the backup folder for drill, the whole store for create
  if (skippedInFuture.length) {
    const [newest] = skippedInFuture;
    const short = `check the clock, then drill one by its stamp ('atocore-backup drill ${newest}')`;
    const flags = pathFlags(config, {}, ["backupDir"]);
    throw new OperationError(
      `every snapshot in ${backupDir} is stamped in the future (newest ${newest}); ` +
        nextStep(short, "check the clock, then drill one by its stamp", `drill ${newest}`, flags),
    );
  }
  const create = nextStep("run 'atocore-backup create' first", "make one first with", "create", pathFlags(config));
  throw new OperationError(`no snapshots to drill in ${backupDir}; ${create}`);
}

async function sample(values: Values, context: CommandContext, junit: StateFile | null): Promise<Outcome> {
  const driver = driverFrom(values, context);
  const result = await runSampleDrill({ driver, reporter: context.reporter, keep: Boolean(values.keep) });
  writeJunit(junit, context, result.drill);
  return {
    result,
    exitCode: result.ok ? ExitCode.Ok : ExitCode.Failed,
    text: describeSample(result),
    metrics: metricsOf(result.drill),
  };
}

/**
 * Write the JUnit report. Unlike metrics, a report that cannot be written fails the run: it is what a CI job reads as
 * the proof, and a passing drill without it proves nothing there.
 */
function writeJunit(junit: StateFile | null, context: CommandContext, result: DrillResult): void {
  if (junit === null) return;
  const path = junit.path;
  try {
    junit.replace(renderJunit(result, context.now));
  } catch (error) {
    throw new OperationError(
      `the drill of ${result.stamp} ${result.ok ? "passed" : "failed"}, but its JUnit report ${path} could not be ` +
        `written (${describeOsError(error)}); make it writable (is the file immutable, or its folder read-only or ` +
        "full?) and run the drill again",
      { cause: error },
    );
  }
}

function metricsOf(result: DrillResult): Outcome["metrics"] {
  return {
    stamp: result.stamp,
    bytes: result.snapshot_bytes,
    // a snapshot older than --max-age is valid all the same: the metric tells a stale one from a damaged one
    valid: result.checks.every((check) => check.status !== "failed" || check.name === "recovery_point"),
    recoveryPointSeconds: result.recovery_point_seconds ?? undefined,
    restoreSeconds: result.recovery_time_seconds ?? undefined,
  };
}

function describe(result: DrillResult | RemoteDrillResult): string {
  const lines = [`drill ${result.stamp}: ${result.ok ? "PASSED" : "FAILED"}`];
  const fetched = "remote" in result ? result.remote : null;
  if (fetched !== null) {
    lines.push(`  fetched ${fetched.snapshot} from ${fetched.location} (${formatBytes(fetched.bytes)})`);
  }
  const fetch = fetched === null ? "" : `fetch ${fetched.fetch_seconds} s + `;
  const recoveryTime = result.recovery_time_seconds === null
    ? "not measured (no restore)"
    : `${result.recovery_time_seconds} s (${fetch}validate ${
      result.checks[0].seconds
    } s + restore ${result.restore_seconds} s)`;
  const recoveryPoint = result.stamp_in_future
    ? "unknown (the stamp is in the future: check the clock)"
    : `${formatAge(result.recovery_point_seconds)} old`;
  lines.push(`  recovery point: ${recoveryPoint}; recovery time: ${recoveryTime}`);
  const compared = result.tables ? `; ${result.tables} tables, ${result.rows} rows compared` : "";
  lines.push(
    `  snapshot ${formatBytes(result.snapshot_bytes)} (database ${formatBytes(result.db_size_bytes)}, Chroma ${
      formatBytes(result.chroma_bytes)
    })${compared}`,
  );
  const passed = result.checks.filter((check) => check.status === "passed").map((check) => check.name);
  if (passed.length) lines.push(`  passed: ${passed.join(", ")}`);
  for (const check of result.checks.filter((check) => check.status === "failed")) {
    lines.push(`  FAILED ${check.name}: ${printable(check.detail)}`);
  }
  const skipped = Map.groupBy(result.checks.filter((check) => check.status === "skipped"), (check) => check.detail);
  for (const [why, checks] of skipped) {
    lines.push(`  skipped (${why}): ${checks.map((check) => check.name).join(", ")}`);
  }
  if (result.scratch_dir) {
    lines.push(result.scratch_kept ? `  scratch folder kept: ${result.scratch_dir}` : "  scratch folder removed");
  }
  return lines.join("\n");
}

function describeSample(result: SampleDrillResult): string {
  const wouldDelete = result.cleanup.would_delete ?? 0;
  return [
    `sample store in ${result.data_dir} (${result.kept ? "kept" : "removed afterwards"})`,
    `create --chroma: snapshot ${result.create.stamp}, ${result.create.manifest?.length ?? 0} files`,
    `validate: ${result.validate.valid ? "valid" : `INVALID (${result.validate.errors.join("; ")})`}`,
    describe(result.drill),
    `cleanup (dry run): keep ${result.cleanup.kept}, would delete ${wouldDelete}`,
    result.ok ? "sample run PASSED" : "sample run FAILED",
  ].join("\n");
}
