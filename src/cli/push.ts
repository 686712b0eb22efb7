/**
 * `push`: send local snapshots to the off-host repository.
 *
 * @module
 */
import { ExitCode, UsageError } from "../errors.ts";
import { acquireLock } from "../ops/lock.ts";
import { isDirectory } from "../fs/probe.ts";
import { type LocalPushResult, pushFacts, pushLocalSnapshots, type PushSelection } from "../ops/push.ts";
import { storedMeanwhile } from "../ops/push_validation.ts";
import { nextStep } from "../ops/next_step.ts";
import { pathFlags } from "../ops/restore_intent.ts";
import { pushAuthFrom, recipientsFrom, refuseRemoteInStore, remoteBackend } from "../ops/remote.ts";
import type { PushResult } from "../repo/push.ts";
import { type CommandFlags, COMMON_HELP, configFrom, defineCommand, driverFrom } from "./command.ts";
import { formatBytes } from "../text/bytes.ts";
import { listenForInterrupts, reportLateInterrupt } from "./interrupts.ts";
import { METRICS_HELP, METRICS_OPTIONS, withMetrics } from "./metrics_flag.ts";
import {
  AUTH_OPTIONS,
  PUSH_AUTH_HELP,
  REMOTE_HELP,
  REMOTE_OPTIONS,
  remoteSettingsFrom,
  repositoryFlags,
  TRANSFER_HELP,
  TRANSFER_OPTIONS,
  transfersFrom,
} from "./remote_flags.ts";

/** The `push` command. */
export const pushCommand = defineCommand({
  name: "push",
  summary: "send a snapshot (--latest, --all) to the off-host repository, encrypted and deduplicated",
  help: `Usage: atocore-backup push STAMP [options]
       atocore-backup push --latest [options]
       atocore-backup push --all [options]

Send the local snapshot to the repository while validating it (manifest hashes
included; an invalid one is refused before anything of it is listed, exit 3):
split at SQLite pages (other files at 64 KiB), only blocks the repository does
not hold yet, packed, compressed where it pays, encrypted with age to the
repository's recipients. Pushing needs only
the public recipient, never the identity, and the authentication key that
'remote auth-key' derives from the identity (--auth-key): the push adds a MAC
to the snapshot's refs, which restore, drill and remote verify check. Without
one the push is refused (exit 2) unless --allow-unauthenticated; a key for a
recipient the repository does not have is refused (exit 3). The snapshot is
listed in the repository only once everything it needs is written; a push that
is killed or fails lists nothing, and the next one reuses what was sent. The
first push to a repository pins its id and recipients in the backup folder; a
later change is refused (exit 3). Takes the backup folder's lock (exit 4 while
another operation runs). Reports bytes read, bytes sent, objects written and
what deduplication saved. Ctrl-C or SIGTERM stops it between blocks (exit 130
or 143): nothing half is listed, its lease is removed, the next push reuses
what was sent.

Options:
  --latest             push the snapshot published last (see the README), not a restore's
                       pre-restore snapshot
  --all                push every snapshot the repository does not hold yet (invalid ones are
                       reported and skipped; exit 3 then), but not one pushed before that a
                       remote cleanup removed since, nor a pre-restore snapshot (push STAMP
                       sends one)
  --quick              validate sizes only (each file read is still checked against the manifest)
${METRICS_HELP}
${REMOTE_HELP}
${PUSH_AUTH_HELP}
${TRANSFER_HELP}
${COMMON_HELP}

Examples:
  atocore-backup push --latest --remote file:///mnt/offsite/atocore --auth-key /etc/atocore-backup/auth.key
  ATOCORE_BACKUP_REMOTE=/mnt/offsite/atocore atocore-backup push --all
  atocore-backup push 20260409T010203Z --recipient age1... --metrics-file /var/lib/prometheus/node-exporter/atocore_push.prom`,
  options: {
    latest: { type: "boolean" },
    all: { type: "boolean" },
    quick: { type: "boolean" },
    ...METRICS_OPTIONS,
    ...REMOTE_OPTIONS,
    ...AUTH_OPTIONS,
    ...TRANSFER_OPTIONS,
  },
  maxPositionals: 1,
  run(values, positionals, context) {
    const selection = selectionFrom(values, positionals);
    return withMetrics(values, "push", context, async () => {
      const config = configFrom(values, context);
      const settings = remoteSettingsFrom(values, context);
      const backend = remoteBackend(settings, context.cwd, "push", context.env, context.reporter);
      refuseRemoteInStore(config, backend);
      const recipients = recipientsFrom(settings);
      const allowUnauthenticated = Boolean(values["allow-unauthenticated"]);
      const auth = pushAuthFrom(settings, "push", allowUnauthenticated, context.reporter);
      const driver = driverFrom(values, context);
      const transfers = transfersFrom(values, context); // every flag checked before the folder is looked at
      if (!isDirectory(config.backupDir.path)) { // taking the lock would make it, and a mistyped path with it
        const create = nextStep(
          "run 'atocore-backup create' first",
          "make one first with",
          "create",
          pathFlags(config),
        );
        throw new UsageError(
          `no backup folder at ${config.backupDir.path}, so no snapshots to push; nothing was done; check ` +
            `--backup-dir or ATOCORE_BACKUP_DIR (see 'config'), or ${create}`,
        );
      }
      // a push printed as a next step reaches this run's backup folder and repository as given
      const pushFlags = pathFlags(config, {}, ["backupDir"]) + repositoryFlags(settings, backend) +
        (allowUnauthenticated ? " --allow-unauthenticated" : "");
      using _lock = acquireLock(config.backupDir.path, "push");
      using interrupts = listenForInterrupts(context.reporter);
      const result = await pushLocalSnapshots(config, backend, selection, {
        driver,
        reporter: context.reporter,
        recipients,
        auth,
        validation: values.quick ? "quick" : "deep",
        signal: interrupts.signal,
        transfers,
        pushFlags,
      });
      await reportLateInterrupt(interrupts.signal, context.reporter, "push");
      const last = result.pushed.at(-1);
      return {
        result,
        exitCode: result.refused.length ? ExitCode.Refused : ExitCode.Ok,
        text: describePush(result, pushFlags),
        metrics: {
          stamp: last?.stamp,
          bytes: last?.bytes_total,
          valid: result.refused.length === 0,
          pushed: pushFacts(result),
        },
      };
    });
  },
});

type Values = CommandFlags<typeof pushCommand.options>;

function selectionFrom(values: Values, positionals: string[]): PushSelection {
  const chosen = [positionals.length > 0, Boolean(values.latest), Boolean(values.all)].filter(Boolean).length;
  if (chosen !== 1) {
    throw new UsageError(
      `push: give one of STAMP, --latest or --all${chosen ? ", not several" : ""}; see 'push --help'`,
    );
  }
  if (values.latest) return { latest: true };
  if (values.all) return { all: true };
  return { stamp: positionals[0] };
}

/**
 * What a push run did, a line per snapshot and the totals. `flags`: the flags a printed `push` needs to reach this
 * run's backup folder and repository (see `pathFlags` and `repositoryFlags`; none by default).
 */
export function describePush(result: LocalPushResult, flags = ""): string {
  const lines = result.pushed.map((pushed) => describeOne(pushed, result.location, flags));
  for (const refused of result.refused) {
    lines.push(
      `REFUSED ${refused.stamp}: not valid (${refused.errors.join("; ")}); ${storedMeanwhile(refused.packs_stored)}`,
    );
  }
  const passedOver = result.passed_over_pre_restore; // newest first
  if (passedOver.length) {
    const push = flags === "" ? "" : `; push the newest with: atocore-backup push ${passedOver[0]}${flags}`;
    lines.push(
      `passed over the pre-restore snapshots ${passedOver.join(", ")} (local undo points a restore took; ` +
        `'push STAMP' sends one)${push}`,
    );
  }
  for (const stamp of result.pre_restore_pushed) {
    lines.push(
      `note: ${stamp} is a pre-restore snapshot (the store as it was before a restore), pushed as asked; in the ` +
        "repository it counts as any snapshot of its day",
    );
  }
  if (result.pushed.length > 1) {
    lines.push(
      `total: read ${formatBytes(result.bytes_read)}, sent ${formatBytes(result.bytes_sent)} in ` +
        `${result.objects_written} objects; deduplication saved ${formatBytes(result.bytes_deduplicated)}`,
    );
  }
  return lines.join("\n") || `nothing to push to ${result.location}`;
}

/** One snapshot's line; a `push` it prints carries `flags` (see {@linkcode describePush}). */
function describeOne(pushed: PushResult, location: string, flags: string): string {
  if (pushed.already_pushed) return `${pushed.stamp} is already in ${location} as ${pushed.snapshot}: nothing sent`;
  if (pushed.removed_since_pushed) {
    const push = nextStep(`('push ${pushed.stamp}' sends it)`, "send it with", `push ${pushed.stamp}`, flags);
    return `${pushed.stamp} was pushed before as ${pushed.snapshot}, no longer listed (a cleanup removed it, or someone by hand): not sent again` +
      `${flags === "" ? " " : "; "}${push}`;
  }
  return [
    `pushed ${pushed.stamp} to ${location} as ${pushed.snapshot}${pushed.pinned ? " (repository pinned)" : ""}`,
    `  read ${formatBytes(pushed.bytes_read)} of ${formatBytes(pushed.bytes_total)}, sent ${
      formatBytes(pushed.bytes_sent)
    } in ${pushed.objects_written} objects (${pushed.packs_written} new packs, ${pushed.packs_reused} reused); ` +
    `deduplication saved ${formatBytes(pushed.bytes_deduplicated)}`,
  ].join("\n");
}
