/**
 * `list`: the snapshots of the backup folder.
 *
 * @module
 */
import { ExitCode } from "../errors.ts";
import { listSnapshots } from "../ops/list.ts";
import { COMMON_HELP, configFrom, defineCommand } from "./command.ts";
import { formatAge, formatBytes, formatTable } from "./format.ts";

/** The `list` command. */
export const listCommand = defineCommand({
  name: "list",
  summary: "list the snapshots, oldest first",
  help: `Usage: atocore-backup list [options]

List every snapshot under <backup>/snapshots/ with its age, size, whether it
holds Chroma, and what is known of its validity. JSON output has the reference
module's shape: {"backups": [...]}.

${COMMON_HELP}

Examples:
  atocore-backup list
  atocore-backup list --json | jq -r '.backups[-1].stamp'`,
  options: {},
  maxPositionals: 0,
  run(values, _positionals, context) {
    const config = configFrom(values, context);
    const backups = listSnapshots(config.backupDir.path, context.now);
    const rows = backups.map((entry) => [
      entry.stamp,
      formatAge(entry.age_seconds),
      formatBytes(entry.size_bytes),
      entry.chroma_included ? "yes" : "no",
      entry.metadata_error ? "bad metadata" : entry.validation === "validated_at_create" ? "yes" : "unknown",
    ]);
    const text = backups.length
      ? formatTable(["STAMP", "AGE", "SIZE", "CHROMA", "VALID"], rows)
      : `no snapshots in ${config.backupDir.path}`;
    return Promise.resolve({ result: { backups }, exitCode: ExitCode.Ok, text });
  },
});
