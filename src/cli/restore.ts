/**
 * `restore`: put a snapshot back over the live store, or rebuild it elsewhere with `--to`.
 *
 * @module
 */
import { resolve } from "node:path";
import { ExitCode, UsageError } from "../errors.ts";
import { acquireLock } from "../ops/lock.ts";
import { removeLeftovers } from "../ops/recover.ts";
import { goBack, type RestoreResult, restoreSnapshot } from "../ops/restore.ts";
import { checkedStamp } from "../snapshot/layout.ts";
import { COMMON_HELP, configFrom, defineCommand, driverFrom, refuseBoth } from "./command.ts";
import { formatBytes } from "./format.ts";

/** The `restore` command. */
export const restoreCommand = defineCommand({
  name: "restore",
  summary: "restore a snapshot over the live store (service stopped), or rebuild it elsewhere with --to",
  help: `Usage: atocore-backup restore STAMP --confirm-service-stopped [options]
       atocore-backup restore STAMP --to DIR [options]

Restore the snapshot STAMP. The service must be stopped first. In order:
refuse without --confirm-service-stopped, and while another process has the
database (or its -wal, or Chroma's database) open; validate the snapshot deeply
(manifest hashes included) and refuse if anything is wrong; take a pre-restore
snapshot of the live store (with Chroma when Chroma is restored), whose stamp
is printed so the restore can be undone; checkpoint the live database's WAL and
remove its stale -wal/-shm; replace the database and the registry atomically
(a copy beside each, fsynced, renamed over it); replace the contents of the
Chroma folder (the folder itself stays: it may be a bind mount) from a copy
staged inside it; check the restored database's integrity. Nothing is changed
when it refuses. Exit 1 names the pre-restore stamp to go back to. A restore
that stops part way is recorded beside the live database; until it is run
again (which finishes it) or the pre-restore stamp is restored, create refuses.

With --to DIR the store is rebuilt under DIR (DIR/<database file>,
DIR/<registry file>, DIR/chroma) and the live paths are not touched; no
acknowledgment is needed and no pre-restore snapshot is taken.

Options:
  --confirm-service-stopped  I have stopped the AtoCore service (docker compose down)
  --ignore-open-files        skip the check for processes holding the database (not the acknowledgment)
  --no-pre-snapshot          do not take the pre-restore snapshot
  --chroma                   restore Chroma (the default when the snapshot has it)
  --no-chroma                leave the live Chroma folder alone
  --to DIR                   rebuild the store under DIR instead of the live paths
${COMMON_HELP}

Examples:
  docker compose down
  atocore-backup restore 20260409T010203Z --confirm-service-stopped
  atocore-backup restore 20260409T010203Z --to /tmp/atocore-drill --json`,
  options: {
    "confirm-service-stopped": { type: "boolean" },
    "ignore-open-files": { type: "boolean" },
    "no-pre-snapshot": { type: "boolean" },
    chroma: { type: "boolean" },
    "no-chroma": { type: "boolean" },
    to: { type: "string" },
  },
  maxPositionals: 1,
  async run(values, positionals, context) {
    if (positionals.length === 0) throw new UsageError("restore: snapshot stamp required; see 'list'");
    const stamp = checkedStamp(positionals[0]);
    refuseBoth(values, "chroma", "no-chroma", "restore");
    if (values.to === "") throw new UsageError("restore: --to needs a folder");
    const config = configFrom(values, context);
    const driver = driverFrom(values, context);
    using _lock = acquireLock(config.backupDir.path, "restore");
    removeLeftovers(config.backupDir.path, context.reporter);
    const result = await restoreSnapshot(config, stamp, {
      driver,
      reporter: context.reporter,
      confirmServiceStopped: Boolean(values["confirm-service-stopped"]),
      ignoreOpenFiles: Boolean(values["ignore-open-files"]),
      preSnapshot: !values["no-pre-snapshot"],
      includeChroma: values.chroma ? true : values["no-chroma"] ? false : undefined,
      to: values.to === undefined ? undefined : resolve(context.cwd, values.to),
    });
    return {
      result,
      exitCode: result.restored_integrity_ok ? ExitCode.Ok : ExitCode.Failed,
      text: describe(result),
    };
  },
});

function describe(result: RestoreResult): string {
  const where = result.to === null ? "the live store" : result.to;
  const parts = ["database", ...(result.registry_restored ? ["registry"] : [])];
  if (result.chroma_restored) {
    parts.push(`Chroma (${result.chroma_files_restored} files, ${formatBytes(result.chroma_bytes_restored)})`);
  }
  const lines = [`restored snapshot ${result.stamp} into ${where}: ${parts.join(", ")}`];
  lines.push(`  database: ${result.target_db}`);
  if (result.pre_restore_snapshot) {
    const undo = `atocore-backup restore ${result.pre_restore_snapshot} --confirm-service-stopped`;
    lines.push(`  pre-restore snapshot: ${result.pre_restore_snapshot} (to undo: ${undo})`);
  }
  lines.push(
    result.restored_integrity_ok
      ? "  integrity check: ok"
      : `  INTEGRITY CHECK FAILED: ${result.integrity_error}; ${goBack(result.pre_restore_snapshot)}`,
  );
  return lines.join("\n");
}
