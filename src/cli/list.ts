/**
 * `list`: the snapshots of the backup folder.
 *
 * @module
 */
import { ExitCode } from "../errors.ts";
import { DEFAULT_KEEP_FAILED, type ListedFailedEntry, listFailed } from "../ops/failed.ts";
import { listSnapshots } from "../ops/list.ts";
import { ownFolderProblem } from "../ops/own_folders.ts";
import { failedRoot } from "../snapshot/layout.ts";
import { COMMON_HELP, configFrom, defineCommand } from "./command.ts";
import { formatAge, formatBytes, formatTable } from "./format.ts";

/** The `list` command. */
export const listCommand = defineCommand({
  name: "list",
  summary: "list the snapshots, oldest first",
  help: `Usage: atocore-backup list [options]

List every snapshot under <backup>/snapshots/ with its age, size, whether it
holds Chroma (or its Chroma copy failed), and what is known of its validity;
then the snapshots kept aside under <backup>/failed/. JSON output has the
reference module's shape, {"backups": [...]}, plus "failed" and "warnings".

${COMMON_HELP}

Examples:
  atocore-backup list
  atocore-backup list --json | jq -r '.backups[-1].stamp'`,
  options: {},
  maxPositionals: 0,
  run(values, _positionals, context) {
    const config = configFrom(values, context);
    const backupDir = config.backupDir.path;
    const backups = listSnapshots(backupDir, context.now);
    const failed = listFailed(backupDir, context.now);
    const problem = ownFolderProblem(backupDir);
    if (problem) context.reporter.event("warning", "backup_folder_misplaced", { message: problem });
    const rows = backups.map((entry) => [
      entry.stamp,
      formatAge(entry.age_seconds),
      formatBytes(entry.size_bytes),
      entry.chroma_included ? "yes" : entry.metadata?.chroma_error !== undefined ? "failed" : "no",
      entry.metadata_error ? "bad metadata" : entry.validation === "validated_at_create" ? "yes" : "unknown",
    ]);
    const lines = [
      backups.length ? formatTable(["STAMP", "AGE", "SIZE", "CHROMA", "VALID"], rows) : `no snapshots in ${backupDir}`,
      ...failedLines(backupDir, failed),
      ...(problem ? [`warning: ${problem}; create and cleanup refuse until then`] : []),
    ];
    return Promise.resolve({
      result: { backups, failed, warnings: problem ? [problem] : [] },
      exitCode: ExitCode.Ok,
      text: lines.join("\n"),
    });
  },
});

/** The lines that show `failed/`, when it holds anything. */
function failedLines(backupDir: string, failed: ListedFailedEntry[]): string[] {
  if (failed.length === 0) return [];
  return [
    `failed validation after create, kept aside in ${failedRoot(backupDir)} (not snapshots; cleanup keeps the ` +
    `newest ${DEFAULT_KEEP_FAILED}):`,
    ...failed.map((entry) => `  ${entry.name}  ${formatAge(entry.age_seconds)}`),
  ];
}
