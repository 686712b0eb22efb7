/**
 * `cleanup`: apply the retention policy; a dry run unless `--confirm`.
 *
 * @module
 */
import { type CleanupResult, cleanupSnapshots } from "../ops/cleanup.ts";
import { ExitCode } from "../errors.ts";
import { DEFAULT_KEEP_FAILED } from "../ops/failed.ts";
import { requireBackupFolder, strayStamps, unnamableSnapshots } from "../ops/list.ts";
import { pathFlags, readIntent } from "../ops/restore_intent.ts";
import { acquireLock } from "../ops/lock.ts";
import { lstatOrNull, statOrNull } from "../fs/probe.ts";
import { requireOwnFolders } from "../ops/own_folders.ts";
import { removeLeftovers } from "../ops/recover.ts";
import { DEFAULT_POLICY, type KeepReason } from "../snapshot/retention.ts";
import { DEFAULT_PRE_RESTORE_DAYS } from "../snapshot/retention_guards.ts";
import { failedRoot, snapshotsDir } from "../snapshot/layout.ts";
import { COMMON_HELP, configFrom, defineCommand, driverFrom, type Outcome } from "./command.ts";
import { formatErrors, printable } from "./format.ts";
import { countFrom, policyFrom, RETENTION_HELP, RETENTION_OPTIONS } from "./retention_flags.ts";

/** What a cleanup that found no live database did not look at, and how to have it looked at. */
const NO_STORE = "no live store was looked at for an unfinished restore (only the backup folder's records of them " +
  "were): give the store's --db (ATOCORE_DB_PATH, see 'config')";

/** The `cleanup` command. */
export const cleanupCommand = defineCommand({
  name: "cleanup",
  summary: "remove old snapshots per the retention policy (dry run unless --confirm)",
  help: `Usage: atocore-backup cleanup [--confirm] [--keep-daily N] [--keep-weekly N] [--keep-monthly N]
                              [--keep-pre-restore-days N] [options]

Keep the newest snapshot of each of the ${DEFAULT_POLICY.daily} newest UTC days that have one, the newest
Sunday snapshot of each of the ${DEFAULT_POLICY.weekly} newest weeks (Python's %Y-W%W) that have one,
and the newest 1st-of-month snapshot of each of the ${DEFAULT_POLICY.monthly} newest months that have
one; every other snapshot goes. These are the reference module's decisions.
Whatever the policy, it also keeps the newest stamp, the snapshot published
last (a clock set back can give it an older stamp), every pre-restore snapshot
younger than ${DEFAULT_PRE_RESTORE_DAYS} days, and the newest snapshot that passes a quick validation
(metadata, integrity checks, sizes); when none passes, it removes nothing and
exits 3. Shows what it would do and changes nothing, unless --confirm. A policy
that keeps nothing (all three counts 0), or a backup folder that does not exist,
is refused (exit 2).

With --confirm it takes the backup folder's lock (exit 4 while a create, restore
or cleanup runs) and removes each snapshot by moving it out of snapshots/ first,
so list and validate never see half of one. Folders under snapshots/ whose names
are not plain stamps are reported as unparseable and never touched. Of the
snapshots kept aside under failed/ (they failed validation after create), the
newest ${DEFAULT_KEEP_FAILED} are kept (--keep-failed) and older ones go with the others.

Options:
  --confirm            delete (default: dry run)
${RETENTION_HELP}
  --keep-pre-restore-days N
                       days a pre-restore snapshot is kept whatever the policy
                       (default ${DEFAULT_PRE_RESTORE_DAYS}; 0: the policy alone decides)
  --keep-failed N      entries of failed/ to keep, newest first (default ${DEFAULT_KEEP_FAILED})
${COMMON_HELP}

Examples:
  atocore-backup cleanup
  atocore-backup cleanup --confirm
  atocore-backup cleanup --keep-daily 14 --keep-monthly 12 --confirm --json`,
  options: {
    confirm: { type: "boolean" },
    ...RETENTION_OPTIONS,
    "keep-pre-restore-days": { type: "string" },
    "keep-failed": { type: "string" },
  },
  maxPositionals: 0,
  async run(values, _positionals, context): Promise<Outcome> {
    const policy = policyFrom(values, "cleanup");
    const preRestoreDays = countFrom(
      values["keep-pre-restore-days"],
      "keep-pre-restore-days",
      DEFAULT_PRE_RESTORE_DAYS,
      "cleanup",
    );
    const keepFailed = countFrom(values["keep-failed"], "keep-failed", DEFAULT_KEEP_FAILED, "cleanup");
    const config = configFrom(values, context);
    const driver = driverFrom(values, context);
    const backupDir = config.backupDir.path;
    const confirm = Boolean(values.confirm);
    // before the lock, which would make it: a mistyped path is refused, never made (a file there is named below)
    if (!somethingAt(backupDir)) requireBackupFolder(backupDir, pathFlags(config)); // its create makes one there
    using _lock = confirm ? acquireLock(backupDir, "cleanup") : null;
    requireOwnFolders(backupDir);
    for (const stray of strayStamps(backupDir)) context.reporter.event("warning", "snapshot_not_a_folder", stray);
    for (const path of unnamableSnapshots(backupDir)) {
      context.reporter.event("warning", "snapshot_name_not_utf8", { path });
    }
    if (confirm) removeLeftovers(backupDir, context.reporter);
    const { reporter, now } = context;
    const intent = readIntent(config.db.path); // unreadable: refused, as a restore would be
    if (intent === null && lstatOrNull(config.db.path) === null) {
      reporter.event("warning", "cleanup_live_store_not_found", { path: config.db.path, next: NO_STORE });
    }
    const result = await cleanupSnapshots(backupDir, {
      policy,
      confirm,
      reporter,
      driver,
      now,
      preRestoreDays,
      keepFailed,
      pathFlags: pathFlags(config),
      ...(intent ? { unfinishedRestore: { stamp: intent.stamp, pre: intent.pre_restore_snapshot } } : {}),
    });
    return {
      result,
      exitCode: result.errors.length ? ExitCode.Failed : ExitCode.Ok,
      text: describe(result, backupDir),
    };
  },
});

function describe(result: CleanupResult, backupDir: string): string {
  const { keep_daily, keep_weekly, keep_monthly, keep_pre_restore_days } = result.policy;
  const removed = result.dry_run ? result.would_delete_snapshots ?? [] : result.deleted_snapshots ?? [];
  const lines = [
    `${result.dry_run ? "dry run of cleanup" : "cleanup"} in ${snapshotsDir(backupDir)} ` +
    `(keep ${keep_daily} daily, ${keep_weekly} weekly, ${keep_monthly} monthly, ` +
    `pre-restore ${keep_pre_restore_days} days)`,
    `kept ${result.kept}:`,
    ...result.kept_snapshots.map(({ stamp, reasons }) => `  ${stamp}  ${reasons.map(formatReason).join(", ")}`),
    `${result.dry_run ? "would remove" : "removed"} ${removed.length}:`,
    ...removed.map((stamp) => `  ${stamp}`),
  ];
  if (result.unparseable.length) {
    lines.push(`not snapshot stamps, left alone: ${result.unparseable.map(printable).join(", ")}`);
  }
  const failedGone = result.dry_run ? result.failed_would_delete ?? [] : result.failed_deleted ?? [];
  if (result.failed_snapshots.length) {
    lines.push(
      `failed validation after create, in ${failedRoot(backupDir)} (the newest ${result.keep_failed} kept): ` +
        `kept ${result.failed_kept.map(printable).join(", ") || "none"}; ${
          result.dry_run ? "would remove" : "removed"
        } ${failedGone.map(printable).join(", ") || "none"}`,
    );
  }
  if (result.errors.length) lines.push(`errors ${result.errors.length}:`, formatErrors(result.errors));
  if (result.dry_run && (removed.length || failedGone.length)) {
    lines.push("nothing removed; run again with --confirm to remove them");
  }
  return lines.join("\n");
}

function formatReason(reason: KeepReason): string {
  return `${reason.rule} ${reason.bucket}`;
}

/** Whether something is at the backup folder's path (one that cannot be reached counts: the lock then says why). */
function somethingAt(path: string): boolean {
  try {
    return statOrNull(path) !== null;
  } catch {
    return true;
  }
}
