/**
 * `remote cleanup`: the retention policy applied to the off-host repository, then unneeded packs deleted in two
 * phases; a dry run unless `--confirm`.
 *
 * @module
 */
import { describeOsError, ExitCode, OperationError, osErrorPath, ToolError, UsageError } from "../errors.ts";
import { checkPinIfPinned, pushAuthFrom, recipientsFrom, remoteBackend } from "../ops/remote.ts";
import { formatDuration, parseDurationSeconds } from "../duration.ts";
import { cleanupRemote, DEFAULT_GRACE_MS, type RemoteCleanupResult } from "../repo/prune.ts";
import { DEFAULT_LEASE_MS } from "../repo/push.ts";
import { openRepository } from "../repo/repository.ts";
import { checkPushAuth } from "../repo/authenticity.ts";
import { DEFAULT_POLICY } from "../snapshot/retention.ts";
import { condemnedSightingsPath } from "../snapshot/layout.ts";
import { COMMON_HELP, configFrom, defineCommand } from "./command.ts";
import { formatBytes } from "../text/bytes.ts";
import { printable } from "./format.ts";
import { InterruptedError } from "../sys/interrupt.ts";
import { giveRemoteState } from "../ops/push.ts";
import { HostState } from "../repo/host_state.ts";
import { requireBackupFolder } from "../ops/list.ts";
import { listenForInterrupts, reportLateInterrupt } from "./interrupts.ts";
import { AUTH_OPTIONS, CLEANUP_AUTH_HELP, REMOTE_HELP, REMOTE_OPTIONS, remoteSettingsFrom } from "./remote_flags.ts";
import { policyFrom, RETENTION_HELP, RETENTION_OPTIONS } from "./retention_flags.ts";

const LEASE = formatDuration(DEFAULT_LEASE_MS);
const GRACE = formatDuration(DEFAULT_GRACE_MS);

/** The `remote cleanup` command. */
export const remoteCleanupCommand = defineCommand({
  name: "remote cleanup",
  summary: "remove old snapshots from the off-host repository, then unneeded packs (dry run unless --confirm)",
  help: `Usage: atocore-backup remote cleanup [--confirm] [--keep-daily N] [--keep-weekly N] [--keep-monthly N]
       [--grace DURATION] [options]

Apply the local cleanup's retention rules to the repository's snapshots (by
their stamps: the newest snapshot of each of the ${DEFAULT_POLICY.daily} newest days, ${DEFAULT_POLICY.weekly} Sunday
weeks, ${DEFAULT_POLICY.monthly} 1st-of-month months; each source's newest snapshot is always
kept, and so is the one it published last, as cleanup's last-published),
then free space in two phases: a run marks the packs no snapshot needs
(condemned), and a run at least the grace period later deletes those
still unneeded. A push running at the
same time loses nothing: its lease (${LEASE}) keeps what it reuses, and the grace
(default ${GRACE}, must exceed the lease) covers what it sends. The grace counts
from when a cleanup on this host first saw the mark (kept in the backup folder),
so a host with a wrong clock cannot make packs go early. Writes left half-staged
by killed pushes go once older than the grace. Needs no identity. With the
pushing hosts' authentication key (--auth-key) it checks the refs: a snapshot
without its MAC is not counted by retention, and no pack is deleted while a
refs' list of packs is not covered by a MAC (or one does not match). Ctrl-C or
SIGTERM stops it between two deletions (exit 130 or 143).
Shows what it would do and changes nothing, unless --confirm.

Options:
  --confirm            delete (default: dry run)
${RETENTION_HELP}
  --forget STAMP_PUSHID  remove that snapshot whatever the rules say (repeatable;
                       as 'remote list' names it): a push made by mistake, or
                       one stamped in the future, which the rules keep until
                       the clock passes its stamp
  --grace DURATION     time between marking a pack and deleting it: 36h, 2d, 90m
                       (default ${GRACE}; longer than a push's ${LEASE} lease)
${CLEANUP_AUTH_HELP}
${REMOTE_HELP}
${COMMON_HELP}

Examples:
  atocore-backup remote cleanup --remote file:///mnt/offsite/atocore
  atocore-backup remote cleanup --confirm --keep-daily 14 --keep-monthly 12
  atocore-backup remote cleanup --confirm --grace 48h --json
  atocore-backup remote cleanup --confirm --forget 20991231T000000Z_0123456789abcdef`,
  options: {
    confirm: { type: "boolean" },
    ...RETENTION_OPTIONS,
    forget: { type: "string", multiple: true },
    grace: { type: "string" },
    ...REMOTE_OPTIONS,
    ...AUTH_OPTIONS,
  },
  maxPositionals: 0,
  async run(values, _positionals, context) {
    const policy = policyFrom(values, "remote cleanup");
    const graceMs = graceFrom(values.grace);
    const config = configFrom(values, context);
    const settings = remoteSettingsFrom(values, context);
    const backend = remoteBackend(settings, context.cwd, "remote cleanup", context.env, context.reporter);
    const repository = await openRepository(backend);
    checkPinIfPinned(config, repository, recipientsFrom(settings));
    // its sightings are kept there: ones made at a mistyped path would start every grace period again
    requireBackupFolder(config.backupDir.path);
    const auth = settings.authKeyFile === null
      ? undefined
      : pushAuthFrom(settings, "remote cleanup", false, context.reporter);
    if (auth) checkPushAuth(auth, repository.config.recipients, backend.location, "nothing was cleaned up");
    context.reporter.event("info", "remote_cleanup_started", { location: backend.location, confirm: !!values.confirm });
    using interrupts = listenForInterrupts(context.reporter);
    using hostState = new HostState(config.backupDir.path, backend.location); // written by name in the folder held
    const result = await cleanupRemote(backend, {
      policy,
      confirm: Boolean(values.confirm),
      graceMs,
      signal: interrupts.signal,
      sightingsFile: hostState.file(condemnedSightingsPath(config.backupDir.path, backend.location)),
      auth,
      allowUnauthenticated: Boolean(values["allow-unauthenticated"]),
      forget: values.forget ?? [],
    }).catch((error) => {
      if (error instanceof InterruptedError) {
        throw error.told(
          `remote cleanup of ${backend.location}`,
          "stopped between two changes, so every snapshot still listed has all its objects; run it again to finish",
        );
      }
      if (error instanceof ToolError) throw error;
      throw new OperationError(
        `remote cleanup of ${backend.location} failed${osErrorPath(error)}: ${describeOsError(error)}; every ` +
          `snapshot still listed has all its objects; ${cleanupNextStep(error)}`,
        { cause: error },
      );
    }).finally(() => giveRemoteState(config.backupDir.path, backend.location)); // its sightings, when made as root
    await reportLateInterrupt(interrupts.signal, context.reporter, "remote cleanup");
    for (const error of result.errors) context.reporter.event("warning", "remote_cleanup_problem", { error });
    for (const note of result.warnings) context.reporter.event("warning", "remote_cleanup_delayed", { note });
    const output = { location: backend.location, ...reported(result) };
    context.reporter.event("info", "remote_cleanup_finished", { ...output, reasons: undefined, sources: undefined });
    return {
      result: output,
      exitCode: result.errors.length ? ExitCode.Failed : ExitCode.Ok,
      text: describe(result, backend.location),
    };
  },
});

/**
 * The result as JSON and the finished event show it: a dry run's snapshots under `would_delete` and no `deleted`, as
 * local `cleanup` does, so a script reading `deleted` never takes what would go for what went.
 */
function reported(result: RemoteCleanupResult): Omit<RemoteCleanupResult, "deleted"> & Record<string, unknown> {
  const { deleted, ...rest } = result;
  return result.dry_run ? { ...rest, would_delete: deleted } : { ...rest, deleted };
}

/** The source of the snapshot `name` as its line shows it (a writer of the repository chose it: made printable). */
function sourceText(result: RemoteCleanupResult, name: string): string {
  const source = result.sources[name];
  return source === undefined
    ? "source unknown"
    : source === ""
    ? "source none recorded"
    : `source ${printable(source)}`;
}

/** What to do after a cleanup failed on `error`. */
function cleanupNextStep(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ENOSPC") {
    return "cleanup writes a small marker before it deletes packs, so free some space on that disk by hand, then " +
      "run it again";
  }
  if (code === "EROFS" || error instanceof Deno.errors.PermissionDenied) {
    return "make the repository writable for this user (a read-only mount?), then run it again";
  }
  return "fix the cause, then run it again to finish";
}

/**
 * The milliseconds `--grace` gives (`36h`, `2d`, `90m`, `3600s`), or the default.
 *
 * @throws {UsageError} for another form, or a grace not longer than a push's lease.
 */
function graceFrom(text: string | undefined): number {
  if (text === undefined) return DEFAULT_GRACE_MS;
  const ms = parseDurationSeconds(text, "remote cleanup: --grace") * 1000;
  if (ms <= DEFAULT_LEASE_MS) {
    throw new UsageError(
      `remote cleanup: --grace ${text} is not longer than a push's lease (${LEASE}): a pack a running push just sent ` +
        `could be deleted under it; give more than ${LEASE}`,
    );
  }
  return ms;
}

function describe(result: RemoteCleanupResult, location: string): string {
  const dry = result.dry_run;
  const lines = [
    `${dry ? "dry run of remote cleanup" : "remote cleanup"} in ${location}`,
    `kept ${result.kept.length}:`,
    ...result.kept.map((name) => {
      const reasons = (result.reasons[name] ?? []).map((reason) => `${reason.rule} ${reason.bucket}`);
      return [`  ${name}`, sourceText(result, name), ...reasons.length ? [reasons.join(", ")] : []].join("  ");
    }),
    `${dry ? "would remove" : "removed"} ${result.deleted.length}:`,
    ...result.deleted.map((name) => `  ${name}  ${sourceText(result, name)}`),
    `packs: ${dry ? "would delete" : "deleted"} ${result.packs_deleted} (${formatBytes(result.bytes_freed)}) marked ` +
    `at least the grace period ago; ${dry ? "would mark" : "marked"} ${result.packs_condemned} no snapshot needs`,
  ];
  if (result.refs_removed.length || result.leases_removed.length || result.staging_removed.length) {
    lines.push(
      `leftovers of interrupted pushes: ${result.refs_removed.length} refs, ` +
        `${result.leases_removed.length} expired leases, ${result.staging_removed.length} staged writes`,
    );
  }
  for (const error of result.errors) lines.push(`  ERROR ${printable(error)}`); // names from the repository
  for (const note of result.warnings) lines.push(`  note: ${printable(note)}`);
  if (
    dry && (result.deleted.length || result.packs_deleted || result.packs_condemned || result.staging_removed.length)
  ) {
    lines.push("nothing changed; run again with --confirm to do it");
  }
  return lines.join("\n");
}
