/**
 * `validate`: check one snapshot, or all of them.
 *
 * @module
 */
import { ExitCode, OperationError, UsageError } from "../errors.ts";
import { checkedStamp } from "../snapshot/layout.ts";
import { listStep, requireSnapshot } from "../ops/list.ts";
import { pathFlags } from "../ops/restore_intent.ts";
import { type CheckedSnapshot, checkSnapshot, validateAll } from "../ops/validate_all.ts";
import { unreadableSnapshotText } from "../ops/validate.ts";
import { COMMON_HELP, configFrom, defineCommand, driverFrom, resolvedConfigFrom } from "./command.ts";
import { formatBytes } from "../text/bytes.ts";
import { formatErrors } from "./format.ts";
import { METRICS_HELP, METRICS_OPTIONS, withMetrics } from "./metrics_flag.ts";

/** The `validate` command. */
export const validateCommand = defineCommand({
  name: "validate",
  summary: "check a snapshot: metadata, database integrity, registry, Chroma, manifest hashes",
  help: `Usage: atocore-backup validate STAMP [--quick] [options]
       atocore-backup validate --all [--quick] [options]

Check a snapshot: its metadata parses, the database passes PRAGMA integrity_check,
the registry parses, the Chroma copy is there and its chroma.sqlite3 is whole, and
every file matches the manifest's size and SHA-256. Works on a read-only copy of
the backup folder. Exits 1 when a snapshot is not valid, or has a file or folder
this user may not read (named; no verdict). A STAMP with no snapshot
is a usage error (exit 2), and so is --all on a backup folder without a
snapshots/ folder: the path is likely wrong. A stamp more than 5 minutes
ahead of now is flagged (the clock was wrong). With --all, a snapshot that a
cleanup removes meanwhile is reported as removed during validation and the
others are still checked.

Options:
  --all                validate every snapshot
  --quick              skip hashing (sizes and integrity only)
${METRICS_HELP}
${COMMON_HELP}

Examples:
  atocore-backup validate 20260409T010203Z
  atocore-backup validate --all --quick`,
  options: { all: { type: "boolean" }, quick: { type: "boolean" }, ...METRICS_OPTIONS },
  maxPositionals: 1,
  run(values, positionals, context) {
    return withMetrics(values, "validate", context, async () => {
      if (values.all && positionals.length) throw new UsageError("validate: give a STAMP or --all, not both");
      const list = listStep(pathFlags(resolvedConfigFrom(values, context), {}, ["backupDir"])); // reaches the folder
      if (!values.all && positionals.length === 0) {
        throw new UsageError(`validate: snapshot stamp required (or --all); ${list}`);
      }
      const stamp = values.all ? undefined : checkedStamp(positionals[0], list);
      const config = configFrom(values, context);
      const flags = pathFlags(config, {}, ["backupDir"]); // a printed 'list' reaches this folder
      if (stamp !== undefined) requireSnapshot(config.backupDir.path, stamp, flags);
      const options = {
        driver: driverFrom(values, context),
        quick: Boolean(values.quick),
        onProgress: (done: number, total: number) => context.reporter.progress("hashing", done, total),
        now: context.now,
        reporter: context.reporter,
      };
      if (stamp !== undefined) {
        const result = await checkSnapshot(config.backupDir.path, stamp, options);
        if (result === null) {
          const list = listStep(flags);
          throw new OperationError(
            `snapshot ${stamp} was removed while it was being validated (by a cleanup?), so it was not checked; ${list}`,
          );
        }
        if (result.unreadable !== undefined) throw new OperationError(unreadableSnapshotText(stamp, result.unreadable));
        const exitCode = result.valid ? ExitCode.Ok : ExitCode.Failed;
        return { result, exitCode, metrics: { stamp, valid: result.valid }, text: describe(result) };
      }
      const all = await validateAll(config.backupDir.path, options);
      const removed = all.removed_during_validation.map((name) => `${name}: removed during validation (not checked)`);
      const skipped = all.skipped.map((name) => `${name}: skipped (not a snapshot stamp)`);
      return {
        result: all,
        exitCode: all.valid ? ExitCode.Ok : ExitCode.Failed,
        // The newest not stamped in the future: a stale-backup alert on the snapshot's time must still fire.
        metrics: { stamp: all.results.filter((one) => !one.stamp_in_future).at(-1)?.stamp, valid: all.valid },
        text: [...all.results.map(describe), ...removed, ...skipped].join("\n") ||
          `no snapshots in ${config.backupDir.path}`,
      };
    });
  },
});

function describe(result: CheckedSnapshot): string {
  const future = result.stamp_in_future ? "; STAMP IN THE FUTURE: check the clock" : "";
  if (result.valid) {
    const hashed = result.quick ? "sizes only" : `${formatBytes(result.bytes_hashed)} hashed`;
    const unbound = result.metadata_bound === false ? "; metadata not bound: format 1, made before its digest" : "";
    const manifest = result.manifest_ok === null
      ? "no manifest (module snapshot)"
      : `${result.files_checked} files, ${hashed}${unbound}`;
    return `${result.stamp}: valid (${manifest})${future}`;
  }
  if (result.unreadable !== undefined) return `${result.stamp}: NOT READ${future}: ${result.errors[0]}`;
  return `${result.stamp}: INVALID${future}\n${formatErrors(result.errors)}`;
}
