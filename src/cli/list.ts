/**
 * `list`: the snapshots of the backup folder.
 *
 * @module
 */
import { ExitCode } from "../errors.ts";
import { DEFAULT_KEEP_FAILED, type ListedFailedEntry, listFailed } from "../ops/failed.ts";
import { type ListEntry, listSnapshots, requireBackupFolder, strayStamps, unnamableSnapshots } from "../ops/list.ts";
import { ownFolderProblem } from "../ops/own_folders.ts";
import { pathFlags } from "../ops/restore_intent.ts";
import { failedRoot } from "../snapshot/layout.ts";
import { secondsInFuture } from "../snapshot/clock.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { COMMON_HELP, configFrom, defineCommand } from "./command.ts";
import { formatBytes } from "../text/bytes.ts";
import { formatAge, formatTable, printable } from "./format.ts";

/** The `list` command. */
export const listCommand = defineCommand({
  name: "list",
  summary: "list the snapshots, oldest first",
  help: `Usage: atocore-backup list [options]

List every snapshot under <backup>/snapshots/ with its age, size, whether it
holds Chroma (or its Chroma copy failed), and what is known of its validity;
then the snapshots kept aside under <backup>/failed/. NOTE marks pre-restore
snapshots (the undo point of a restore, with the stamp it restored), stamps
in the future (the clock was wrong; each is also a warning on stderr) and
folders whose name is not a stamp (20260230T000000Z, notes). A backup
folder that does not exist is a usage error (exit 2). JSON output has the
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
    requireBackupFolder(backupDir, pathFlags(config)); // its create makes one there
    const backups = listSnapshots(backupDir, context.now);
    const failed = listFailed(backupDir, context.now);
    const problem = ownFolderProblem(backupDir);
    const warnings: string[] = []; // each warning told on stderr, in the JSON too
    if (problem) {
      context.reporter.event("warning", "backup_folder_misplaced", { message: problem });
      warnings.push(problem);
    }
    for (const stray of strayStamps(backupDir)) {
      context.reporter.event("warning", "snapshot_not_a_folder", stray);
      warnings.push(`${stray.path} is a ${stray.kind} where a snapshot's folder would be: not a snapshot`);
    }
    for (const path of unnamableSnapshots(backupDir)) {
      context.reporter.event("warning", "snapshot_name_not_utf8", { path });
      warnings.push(`${path} has a name that is not UTF-8: not a snapshot this tool can read`);
    }
    for (const entry of backups.filter((one) => one.stamp_in_future)) {
      const ahead = secondsInFuture(entry.stamp, context.now);
      context.reporter.event("warning", "snapshot_stamp_in_future", { stamp: entry.stamp, seconds_ahead: ahead });
      warnings.push(`snapshot ${entry.stamp} is stamped ${ahead} s after this host's clock: check the clock`);
    }
    const rows = backups.map((entry) => [
      printable(entry.stamp),
      entry.stamp_in_future ? "future" : formatAge(entry.age_seconds),
      formatBytes(entry.size_bytes),
      entry.chroma_included ? "yes" : entry.metadata?.chroma_error !== undefined ? "failed" : "no",
      entry.metadata_error ? "bad metadata" : entry.validation === "validated_at_create" ? "at create" : "unknown",
      note(entry),
    ]);
    const lines = [
      backups.length
        ? formatTable(["STAMP", "AGE", "SIZE", "CHROMA", "VALIDATED", "NOTE"], rows)
        : `no snapshots in ${backupDir}`,
      ...failedLines(backupDir, failed),
    ]; // the warnings are on stderr, once
    return Promise.resolve({
      result: { backups, failed, warnings },
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
    ...failed.map((entry) => `  ${printable(entry.name)}  ${formatAge(entry.age_seconds)}`),
  ];
}

/** What the NOTE column says of a snapshot: pre-restore, a stamp in the future, a name that is no stamp. */
function note(entry: ListEntry): string {
  const notes: string[] = [];
  if (entry.kind === "pre-restore") {
    notes.push(entry.restoring_stamp ? `pre-restore (before restoring ${entry.restoring_stamp})` : "pre-restore");
  }
  if (entry.stamp_in_future) notes.push("stamp in the future: check the clock");
  // the one rule validate, restore and cleanup go by: `notes` and `20260230T000000Z` alike are no snapshot to them
  if (!isStamp(entry.stamp)) notes.push("not a stamp: no command takes it, cleanup leaves it");
  return notes.join("; ");
}
