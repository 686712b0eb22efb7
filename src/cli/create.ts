/**
 * `create`: back up the store into a new snapshot.
 *
 * @module
 */
import { type CreateResult, createSnapshot, requireDatabase } from "../ops/create.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { acquireLock, lockLiveStore } from "../ops/lock.ts";
import { requireOwnFolders } from "../ops/own_folders.ts";
import { removeLeftovers } from "../ops/recover.ts";
import { COMMON_HELP, configFrom, defineCommand, driverFrom } from "./command.ts";
import { CLOCK_SKEW_SECONDS } from "../snapshot/clock.ts";
import { manifestBytes } from "../snapshot/metadata.ts";
import { formatBytes } from "../text/bytes.ts";
import { METRICS_OPTIONS, metricsHelp, withMetrics } from "./metrics_flag.ts";
import { pushTargetFrom, withPush } from "./create_push.ts";
import { listenForInterrupts } from "./interrupts.ts";
import {
  AUTH_OPTIONS,
  PUSH_AUTH_HELP,
  refuseRemoteFlagsWithout,
  REMOTE_HELP,
  REMOTE_OPTIONS,
  TRANSFER_HELP,
  TRANSFER_OPTIONS,
} from "./remote_flags.ts";

/** The `create` command. */
export const createCommand = defineCommand({
  name: "create",
  summary: "back up the database and registry (and Chroma with --chroma) into a new snapshot",
  help: `Usage: atocore-backup create [--chroma] [options]

Back up the live database (online backup API, safe while the service writes),
the project registry and, with --chroma, a cold copy of the Chroma folder into
<backup>/snapshots/<STAMP>/. The snapshot is built in <backup>/.staging/, fsynced,
validated, and published with one rename; it never overwrites another snapshot.
When Chroma cannot be backed up, the database and registry are still published
without it, and create exits 1 saying why.

With --push, the new snapshot is then sent to the off-host repository, under
the same lock (see 'push --help'); create's exit code stands, and a push that
fails after a good create exits 1 saying the local snapshot is fine.

Options:
  --chroma                 also copy the Chroma folder (stop ingestion first)
  --push                   then push the new snapshot to the repository (--remote)
  --allow-empty-database   back up a live database that is 0 bytes or has no tables
                           (refused by default: a volume that did not mount looks like that)
  --max-clock-skew SECONDS refuse when the newest snapshot is stamped later than now by
                           more than this (default ${CLOCK_SKEW_SECONDS})
${metricsHelp(27)}
${REMOTE_HELP}
${PUSH_AUTH_HELP}
${TRANSFER_HELP}
${COMMON_HELP}

Examples:
  atocore-backup create --chroma
  atocore-backup create --chroma --push --remote file:///mnt/offsite/atocore --auth-key /etc/atocore-backup/auth.key
  ATOCORE_DATA_DIR=/srv/atocore atocore-backup create --json`,
  options: {
    chroma: { type: "boolean" },
    "allow-empty-database": { type: "boolean" },
    "max-clock-skew": { type: "string" },
    push: { type: "boolean" },
    ...METRICS_OPTIONS,
    ...REMOTE_OPTIONS,
    ...AUTH_OPTIONS,
    ...TRANSFER_OPTIONS,
  },
  maxPositionals: 0,
  run(values, _positionals, context) {
    return withMetrics(values, "create", context, async () => {
      const config = configFrom(values, context);
      const driver = driverFrom(values, context);
      const maxClockSkewMs = clockSkewFrom(values["max-clock-skew"]) * 1000;
      const target = values.push ? pushTargetFrom(values, context, config) : null;
      if (!values.push) refuseRemoteFlagsWithout(values, "create", "--push");
      requireDatabase(config.db, !values["allow-empty-database"]);
      using _lock = acquireLock(config.backupDir.path, "create");
      // With --push, a signal during create lets it finish (its snapshot is kept) and stops before the push.
      using interrupts = target === null ? null : listenForInterrupts(context.reporter);
      requireOwnFolders(config.backupDir.path);
      removeLeftovers(config.backupDir.path, context.reporter);
      const live = lockLiveStore(config.db.path, "create"); // held while the store is read, not during the push
      const result = await createSnapshot(config, {
        driver,
        includeChroma: Boolean(values.chroma),
        reporter: context.reporter,
        refuseEmptyDatabase: !values["allow-empty-database"],
        maxClockSkewMs,
        publishWithoutFailedChroma: true,
      }).finally(() => live[Symbol.dispose]());
      const outcome = {
        result,
        exitCode: result.chroma_error === undefined ? ExitCode.Ok : ExitCode.Failed,
        metrics: { stamp: result.stamp, bytes: manifestBytes(result.manifest ?? []), valid: true },
        text: describe(result, config.chromaDir.path),
      };
      if (target === null) return outcome;
      return await withPush(outcome, config, target, result.stamp, context, { driver, signal: interrupts?.signal });
    });
  },
});

/**
 * The seconds `--max-clock-skew` gives, or the default.
 *
 * @throws {UsageError} for a value that is not a non-negative integer.
 */
function clockSkewFrom(text: string | undefined): number {
  if (text === undefined) return CLOCK_SKEW_SECONDS;
  if (!/^\d{1,12}$/.test(text)) {
    throw new UsageError(
      `create: --max-clock-skew must be a number of seconds, not ${
        JSON.stringify(text)
      }; give e.g. --max-clock-skew 600`,
    );
  }
  return Number(text);
}

/** What was created, and when Chroma failed, what the snapshot does and does not hold. */
function describe(result: CreateResult, chromaDir: string): string {
  if (result.chroma_error !== undefined) {
    return `created snapshot ${result.stamp} with the database (${formatBytes(result.db_size_bytes)}) and the ` +
      `registry but WITHOUT Chroma: ${result.chroma_error}; Chroma ${chromaDir} is in no new snapshot; fix that ` +
      `(or repair or rebuild Chroma), then run create --chroma again\n  ${result.backup_root}`;
  }
  const chroma = result.chroma_snapshot_path
    ? `, Chroma ${result.chroma_snapshot_files} files ${formatBytes(result.chroma_snapshot_bytes)}`
    : "";
  return `created snapshot ${result.stamp} (database ${formatBytes(result.db_size_bytes)}${chroma}), validated\n` +
    `  ${result.backup_root}`;
}
