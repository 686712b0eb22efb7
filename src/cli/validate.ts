/**
 * `validate`: check one snapshot, or all of them.
 *
 * @module
 */
import { ExitCode, UsageError } from "../errors.ts";
import { listSnapshots } from "../ops/list.ts";
import { checkedStamp, snapshotsDir } from "../snapshot/layout.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { validateSnapshot, type ValidationResult } from "../ops/validate.ts";
import { COMMON_HELP, configFrom, defineCommand, driverFrom } from "./command.ts";
import { formatBytes, formatErrors } from "./format.ts";
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
the backup folder. Exits 1 when a snapshot is not valid. --all on a backup folder
without a snapshots/ folder is a usage error (exit 2): the path is likely wrong.

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
      if (!values.all && positionals.length === 0) {
        throw new UsageError("validate: snapshot stamp required (or --all); see 'list'");
      }
      const stamps = values.all ? [] : [checkedStamp(positionals[0])];
      const config = configFrom(values, context);
      const driver = driverFrom(values, context);
      if (values.all) requireSnapshotsFolder(config.backupDir.path);
      // A folder under snapshots/ whose name is not a stamp is no snapshot: reported as skipped, not failed.
      const listed = values.all ? listSnapshots(config.backupDir.path, context.now).map((entry) => entry.stamp) : [];
      const skipped = listed.filter((name) => !isStamp(name));
      stamps.push(...listed.filter(isStamp));
      const results: ValidationResult[] = [];
      for (const stamp of stamps) {
        results.push(
          await validateSnapshot(config.backupDir.path, stamp, {
            driver,
            quick: Boolean(values.quick),
            onProgress: (done, total) => context.reporter.progress("hashing", done, total),
          }),
        );
      }
      const allValid = results.every((result) => result.valid);
      return {
        result: values.all ? { valid: allValid, results, skipped } : results[0],
        exitCode: allValid ? ExitCode.Ok : ExitCode.Failed,
        metrics: { stamp: stamps.at(-1), valid: allValid },
        text: [...results.map(describe), ...skipped.map((name) => `${name}: skipped (not a snapshot stamp)`)]
          .join("\n") || `no snapshots in ${config.backupDir.path}`,
      };
    });
  },
});

/**
 * Refuse `--all` on a backup folder that has no `snapshots/` folder: a mistyped
 * `--backup-dir` would otherwise pass as "no snapshots", valid. An empty one is fine.
 *
 * @throws {UsageError} naming the path, when nothing or no folder is there.
 */
function requireSnapshotsFolder(backupDir: string): void {
  const path = snapshotsDir(backupDir);
  let folder: boolean;
  try {
    folder = Deno.statSync(path).isDirectory;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory)) throw error;
    folder = false;
  }
  if (!folder) {
    throw new UsageError(
      `no snapshots folder at ${path}; check --backup-dir or ATOCORE_BACKUP_DIR (see 'config')`,
    );
  }
}

function describe(result: ValidationResult): string {
  if (result.valid) {
    const hashed = result.quick ? "sizes only" : `${formatBytes(result.bytes_hashed)} hashed`;
    const manifest = result.manifest_ok === null
      ? "no manifest (module snapshot)"
      : `${result.files_checked} files, ${hashed}`;
    return `${result.stamp}: valid (${manifest})`;
  }
  return `${result.stamp}: INVALID\n${formatErrors(result.errors)}`;
}
