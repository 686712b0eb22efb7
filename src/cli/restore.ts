/**
 * `restore`: put a snapshot back over the live store, or rebuild it elsewhere with `--to`.
 *
 * @module
 */
import { resolve } from "node:path";
import { refuseOddPathFlag } from "../config.ts";
import { ExitCode, UsageError } from "../errors.ts";
import { listStep, requireBackupFolder, requireSnapshot } from "../ops/list.ts";
import { acquireLock, acquireLockToRead, lockLiveStore } from "../ops/lock.ts";
import { removeLeftovers } from "../ops/recover.ts";
import { type RemoteRestoreResult, type RemoteSource, restoreFromRemote } from "../ops/from_remote.ts";
import { goBack, type RestoreOptions, type RestoreResult, restoreSnapshot } from "../ops/restore.ts";
import { pathFlags } from "../ops/restore_intent.ts";
import { checkedStamp } from "../snapshot/layout.ts";
import {
  type CommandContext,
  type CommandFlags,
  COMMON_HELP,
  configFrom,
  defineCommand,
  driverFrom,
  refuseBoth,
  resolvedConfigFrom,
} from "./command.ts";
import { formatBytes } from "../text/bytes.ts";
import { checkedScratch, refuseToInRepository } from "./scratch_flag.ts";
import { listenForInterrupts, reportLateInterrupt } from "./interrupts.ts";
import {
  AUTH_OPTIONS,
  READ_AUTH_HELP,
  refuseRemoteFlagsWithout,
  REMOTE_HELP,
  REMOTE_OPTIONS,
  remoteSourceFrom,
  repositoryPlacesOf,
  TRANSFER_HELP,
  TRANSFER_OPTIONS,
  transfersFrom,
} from "./remote_flags.ts";

/** The `restore` command. */
export const restoreCommand = defineCommand({
  name: "restore",
  summary: "restore a snapshot over the live store (service stopped), or rebuild it elsewhere with --to",
  help: `Usage: atocore-backup restore STAMP --confirm-service-stopped [options]
       atocore-backup restore STAMP --to DIR [options]

Restore the snapshot STAMP. The service must be stopped first. In order: refuse
without --confirm-service-stopped, and while another process has a live file
open (the database, its -wal or -shm, the registry, and Chroma's database with
its -wal and -shm when Chroma is restored); validate the snapshot deeply
(manifest hashes included) and refuse if anything is wrong; refuse when a
filesystem it writes to lacks the space it needs (the message gives the
numbers); take a pre-restore snapshot of the live store (with Chroma when
Chroma is restored), whose stamp is printed so the restore can be undone;
checkpoint the live database's WAL into it and remove the emptied -wal/-shm (a
WAL that does not empty stops the restore, kept); replace the database and the
registry atomically (a copy beside each, fsynced, renamed over it); replace the
contents of the Chroma folder (the folder itself stays: it may be a bind mount)
from a copy staged inside it; check the restored database's integrity. Nothing
is changed when it refuses. Exit 1 says what was changed and names the
pre-restore stamp to go back to. A STAMP with no snapshot is a usage error
(exit 2), reported before anything else is done (with --from-remote, once the
repository is listed: still before the acknowledgment is asked for and before
anything is fetched). The pre-restore snapshot is marked as such in its
metadata and in 'list', and cleanup keeps it for 7 days
(--keep-pre-restore-days) whatever the policy. A restore that stops part way is
recorded beside the live database; until it is run again (which finishes it) or
the pre-restore stamp is restored, create refuses.

With --from-remote the snapshot (STAMP, or STAMP_PUSHID when several pushes
share the stamp; see 'remote list') is first fetched from the off-host
repository into a scratch folder on the target's filesystem (beside DIR with
--to, beside the live database otherwise; system temp when it cannot be made
there or another user could rename what is made there; or --scratch-dir), decrypted with --identity, checked block by block and
each file against its SHA-256 as it is written, then restored as above with
every safety: the deep validation compares the manifest with the hashes the
fetch proved (and takes a database's integrity from the push's check of those
very bytes when the authenticated snapshot records one, unless it is copied
from another filesystem and checked there; see the README), and
the files are moved into place by renames (copied from another
filesystem); the pre-restore snapshot goes to the backup folder as usual, and
the scratch copy is removed afterwards. A snapshot that cannot be fetched
intact (another key, an object missing, altered or swapped) or whose refs hold
no valid MAC by the identity's auth key (a snapshot a writer of the repository
made or re-labelled; see 'remote auth-key') is refused (exit 3).

With --to DIR the store is rebuilt under DIR (DIR/<database file>,
DIR/<registry file>, DIR/chroma; names that collide go to DIR/database/ and
DIR/registry/), new or empty unless --force, and the live paths are not touched;
no acknowledgment is needed and no pre-restore snapshot is taken. With --to
nothing is written in the backup folder but its lock file (made where missing),
and with --no-pre-snapshot only that and the record of what the restore needs
(skipped with a warning where the folder is read-only).

Options:
  --confirm-service-stopped  I have stopped the AtoCore service (docker compose down)
  --ignore-open-files        restore despite processes holding the store (not the acknowledgment; still named after)
  --no-pre-snapshot          do not take the pre-restore snapshot
  --chroma                   restore Chroma (the default when the snapshot has it)
  --no-chroma                leave the live Chroma folder alone
  --to DIR                   rebuild the store under DIR (new or empty) instead of the live paths
  --force                    with --to: restore into a folder that already holds files
  --from-remote              read the snapshot from the off-host repository (needs --identity)
  --scratch-dir DIR          with --from-remote: fetch into DIR (default: beside the target, else system temp)
  --other-source             with --from-remote: restore over the live store a snapshot another backup folder
                             pushed (SOURCE in 'remote list'), which is refused otherwise where this one pushed too
${REMOTE_HELP}
${READ_AUTH_HELP}
${TRANSFER_HELP}
${COMMON_HELP}

Examples:
  docker compose down
  atocore-backup restore 20260409T010203Z --confirm-service-stopped
  atocore-backup restore 20260409T010203Z --to /tmp/atocore-drill --json
  atocore-backup restore 20260409T010203Z --from-remote --identity atocore-offsite.key --confirm-service-stopped`,
  options: {
    "confirm-service-stopped": { type: "boolean" },
    "ignore-open-files": { type: "boolean" },
    "no-pre-snapshot": { type: "boolean" },
    chroma: { type: "boolean" },
    "no-chroma": { type: "boolean" },
    to: { type: "string" },
    force: { type: "boolean" },
    "from-remote": { type: "boolean" },
    "scratch-dir": { type: "string" },
    "other-source": { type: "boolean" },
    ...REMOTE_OPTIONS,
    ...AUTH_OPTIONS,
    ...TRANSFER_OPTIONS,
  },
  maxPositionals: 1,
  async run(values, positionals, context) {
    const { stamp, source, config } = checkedArguments(values, positionals, context);
    const driver = driverFrom(values, context);
    using _lock = await lockBackupDir(
      config.backupDir.path,
      values.to === undefined && !values["no-pre-snapshot"],
      context,
    );
    using _live = values.to === undefined ? lockLiveStore(config.db.path, "restore") : null;
    using interrupts = listenForInterrupts(context.reporter);
    const options: RestoreOptions = {
      driver,
      reporter: context.reporter,
      confirmServiceStopped: Boolean(values["confirm-service-stopped"]),
      ignoreOpenFiles: Boolean(values["ignore-open-files"]),
      preSnapshot: !values["no-pre-snapshot"],
      includeChroma: values.chroma ? true : values["no-chroma"] ? false : undefined,
      to: values.to === undefined ? undefined : resolve(context.cwd, values.to),
      force: Boolean(values.force),
      signal: interrupts.signal,
    };
    const scratch = values["scratch-dir"];
    const result = source === null
      ? await restoreSnapshot(config, stamp, options)
      : await restoreFromRemote(config, source, stamp, {
        ...options,
        scratchParent: scratch === undefined
          ? undefined
          : checkedScratch(config, resolve(context.cwd, scratch), repositoryPlacesOf(values, context).root),
        otherSource: Boolean(values["other-source"]),
      });
    await reportLateInterrupt(interrupts.signal, context.reporter, "restore");
    return {
      result,
      exitCode: result.restored_integrity_ok && result.opened_during_restore === undefined
        ? ExitCode.Ok
        : ExitCode.Failed,
      text: describe(result, pathFlags(config)),
    };
  },
});

/**
 * The stamp, the repository it comes from (`null` for the backup folder's), and the configuration, once the flags are
 * checked against each other and the snapshot (or, for a live restore from the repository, the backup folder) is found:
 * usage errors come before any lock or fetch.
 */
function checkedArguments(
  values: CommandFlags<typeof restoreCommand.options>,
  positionals: string[],
  context: CommandContext,
): { stamp: string; source: RemoteSource | null; config: ReturnType<typeof configFrom> } {
  const fromRemote = Boolean(values["from-remote"]);
  // the list printed reaches the backup folder given (a repository's snapshots are another list)
  const list = () => listStep(fromRemote ? "" : pathFlags(resolvedConfigFrom(values, context), {}, ["backupDir"]));
  if (positionals.length === 0) throw new UsageError(`restore: snapshot stamp required; ${list()}`);
  // a repository's snapshot name is checked once its flags are known, for the list its error prints
  const stamp = fromRemote ? positionals[0] : checkedStamp(positionals[0], list());
  checkRemoteFlags(values);
  refuseBoth(values, "chroma", "no-chroma", "restore");
  if (values.to !== undefined) refuseOddPathFlag(values.to, "--to");
  if (values.force && values.to === undefined) {
    throw new UsageError("restore: --force goes with --to DIR only (the live store needs --confirm-service-stopped)");
  }
  const config = configFrom(values, context);
  if (fromRemote && values.to !== undefined) {
    refuseToInRepository(resolve(context.cwd, values.to), repositoryPlacesOf(values, context).root);
  }
  const source = fromRemote
    ? {
      ...remoteSourceFrom(values, context, config, "restore --from-remote", stamp),
      transfers: transfersFrom(values, context),
    }
    : null;
  // a remote snapshot need not be here
  if (!fromRemote) requireSnapshot(config.backupDir.path, stamp, pathFlags(config, {}, ["backupDir"]));
  else if (values.to === undefined && !values["no-pre-snapshot"]) { // the pre-restore snapshot goes there
    requireBackupFolder(
      config.backupDir.path,
      "",
      "make that folder for the pre-restore snapshot, or add --no-pre-snapshot (a new host whose live store is gone)",
    );
  }
  return { stamp, source, config };
}

/**
 * The backup folder's lock for this restore. One that takes the pre-restore snapshot writes there: the lock, and
 * leftovers of killed runs cleared. One that writes nothing there (not even those) also works on a read-only folder (see
 * `acquireLockToRead`), and says when it could take no lock.
 */
async function lockBackupDir(backupDir: string, writes: boolean, context: CommandContext): Promise<Disposable> {
  if (writes) {
    const lock = acquireLock(backupDir, "restore");
    removeLeftovers(backupDir, context.reporter);
    return lock;
  }
  const lock = await acquireLockToRead(backupDir, "restore");
  if (lock.how === "read-only") context.reporter.event("info", "backup_dir_locked_read_only", { path: backupDir });
  if (lock.how === "none") {
    context.reporter.event("warning", "backup_dir_not_locked", { path: backupDir, reason: lock.reason });
  }
  return lock;
}

/**
 * Refuse repository flags without `--from-remote` (the local snapshot would be restored) and a `--scratch-dir` that
 * is empty or begins or ends with whitespace.
 *
 * @throws {UsageError} naming the flag.
 */
function checkRemoteFlags(values: CommandFlags<typeof restoreCommand.options>): void {
  if (values["scratch-dir"] !== undefined) refuseOddPathFlag(values["scratch-dir"], "--scratch-dir");
  if (values["from-remote"]) return;
  refuseRemoteFlagsWithout(values, "restore", "--from-remote");
  for (const flag of ["scratch-dir", "other-source"] as const) {
    if (values[flag] === undefined || values[flag] === false) continue;
    throw new UsageError(
      `restore: --${flag} goes with --from-remote (a restore from the repository); add it, or leave --${flag} out`,
    );
  }
}

function describe(result: RestoreResult | RemoteRestoreResult, flags: string): string {
  const where = result.to === null ? "the live store" : result.to;
  const parts = ["database", ...(result.registry_restored ? ["registry"] : [])];
  if (result.chroma_restored) {
    parts.push(`Chroma (${result.chroma_files_restored} files, ${formatBytes(result.chroma_bytes_restored)})`);
  }
  const lines = [`restored snapshot ${result.stamp} into ${where}: ${parts.join(", ")}`];
  if ("remote" in result) {
    const { snapshot, location, bytes, fetch_seconds } = result.remote;
    lines.push(
      `  fetched ${snapshot} from ${location} (${formatBytes(bytes)} in ${fetch_seconds} s); scratch copy removed`,
    );
  }
  lines.push(`  database: ${result.target_db}`);
  if (result.pre_restore_snapshot) {
    const undo = `atocore-backup restore ${result.pre_restore_snapshot} --confirm-service-stopped${flags}`;
    lines.push(`  pre-restore snapshot: ${result.pre_restore_snapshot}; to undo: ${undo}`);
  }
  const byPush = !result.restored_integrity_checked &&
    result.validation.integrity_checked_by_push?.some((path) => path.startsWith("db/"));
  lines.push(
    !result.restored_integrity_ok
      ? `  INTEGRITY CHECK FAILED: ${result.integrity_error}; ${goBack(result.pre_restore_snapshot, flags)}`
      : byPush
      ? "  integrity: ok, as these very bytes passed the check before they were pushed (proven by SHA-256)"
      : "  integrity check: ok",
  );
  if (result.opened_during_restore !== undefined) {
    lines.push(
      `  STILL HELD AFTER THE RESTORE: ${result.opened_during_restore}; stop them, then run the restore again (they ` +
        "may have written to the old database, or into the restored one's WAL)",
    );
  }
  return lines.join("\n");
}
