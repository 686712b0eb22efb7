/**
 * `create`: back up the store into a new snapshot.
 *
 * @module
 */
import { createSnapshot } from "../ops/create.ts";
import { ExitCode } from "../errors.ts";
import { acquireLock } from "../ops/lock.ts";
import { removeLeftovers } from "../ops/recover.ts";
import { COMMON_HELP, configFrom, defineCommand, driverFrom } from "./command.ts";
import { manifestBytes } from "../snapshot/metadata.ts";
import { formatBytes } from "./format.ts";
import { METRICS_HELP, METRICS_OPTIONS, withMetrics } from "./metrics_flag.ts";

/** The `create` command. */
export const createCommand = defineCommand({
  name: "create",
  summary: "back up the database and registry (and Chroma with --chroma) into a new snapshot",
  help: `Usage: atocore-backup create [--chroma] [options]

Back up the live database (online backup API, safe while the service writes),
the project registry and, with --chroma, a cold copy of the Chroma folder into
<backup>/snapshots/<STAMP>/. The snapshot is built in <backup>/.staging/, fsynced,
validated, and published with one rename; it never overwrites another snapshot.

Options:
  --chroma             also copy the Chroma folder (stop ingestion first)
${METRICS_HELP}
${COMMON_HELP}

Examples:
  atocore-backup create --chroma
  ATOCORE_DATA_DIR=/srv/atocore atocore-backup create --json`,
  options: { chroma: { type: "boolean" }, ...METRICS_OPTIONS },
  maxPositionals: 0,
  run(values, _positionals, context) {
    return withMetrics(values, "create", context, async () => {
      const config = configFrom(values, context);
      const driver = driverFrom(values, context);
      using _lock = acquireLock(config.backupDir.path, "create");
      removeLeftovers(config.backupDir.path, context.reporter);
      const result = await createSnapshot(config, {
        driver,
        includeChroma: Boolean(values.chroma),
        reporter: context.reporter,
      });
      const chroma = result.chroma_snapshot_path
        ? `, Chroma ${result.chroma_snapshot_files} files ${formatBytes(result.chroma_snapshot_bytes)}`
        : "";
      return {
        result,
        exitCode: ExitCode.Ok,
        metrics: { stamp: result.stamp, bytes: manifestBytes(result.manifest ?? []), valid: true },
        text: `created snapshot ${result.stamp} (database ${formatBytes(result.db_size_bytes)}${chroma}), validated\n` +
          `  ${result.backup_root}`,
      };
    });
  },
});
