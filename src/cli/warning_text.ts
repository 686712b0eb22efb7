/**
 * Warnings in words for a terminal: one sentence per warning event the tool emits, saying what happened, what was
 * not checked or done and why, and what to do. Scripts read the event names in the JSON lines instead.
 *
 * @module
 */
import { storedMeanwhile } from "../ops/push_validation.ts";
import { printable } from "./format.ts";

/** Fields of an event, as the engine reports them. */
type Fields = Record<string, unknown>;

/** The sentence for each warning event, from its fields. */
const SENTENCES: Record<string, (fields: Fields) => string> = {
  open_files_check_unavailable: (f) =>
    `could not check whether another process has ${list(f.paths)} open (this system offers no /proc or no ` +
    `loadable libc), so the restore went on unchecked: make sure the service is stopped`,
  open_files_unreadable_processes: (f) =>
    `${count(f.count, "process", "processes")} could not be checked for open live files: ` +
    (f.as_root === true
      ? `${Number(f.count) === 1 ? "its" : "their"} open files could not be read even as root (a protected ` +
        "process): make sure none holds the live files"
      : `this user may not read ${Number(f.count) === 1 ? "its" : "their"} open files (run as root to check every ` +
        "process)"),
  stale_leftover_removed: (f) => `removed ${text(f.path)}, left behind by an interrupted run`,
  stale_leftover_kept: (f) =>
    `could not remove ${text(f.path)}, left behind by an interrupted run (${text(f.error)}): ${text(f.next)}`,
  chroma_snapshot_skipped_missing: (f) =>
    `the Chroma folder ${text(f.path)} does not exist, so the snapshot holds no Chroma: check --chroma-dir or ` +
    `ATOCORE_CHROMA_PATH`,
  snapshot_not_a_folder: (f) =>
    `${text(f.path)} is a ${text(f.kind)}, not a snapshot folder: it is never followed, listed or removed; look at ` +
    `it and remove it by hand`,
  snapshot_name_not_utf8: (f) =>
    `${text(f.path)} has a name that is not UTF-8, which this tool cannot name: it is never listed, validated or ` +
    `removed; rename it (ls -b shows its bytes)`,
  remote_snapshot_not_an_object: (f) =>
    `${text(f.name)} in ${text(f.location)} is a link or special file, not a snapshot object: it is not listed; ` +
    `look at it and ${text(f.next_step)}`,
  restore_old_chroma_not_removed: (f) =>
    `the previous Chroma contents, moved aside to ${text(f.path)}, could not be removed (${text(f.error)}); ` +
    `the restore itself is complete: remove that folder by hand`,
  restore_pre_checkpoint_failed: (f) =>
    `could not checkpoint the live database ${text(f.target_db)} before replacing it (${text(f.error)})`,
  drill_scratch_left: (f) =>
    `${text(f.folder)} holds scratch copies of other drills (${list(f.folders)}): kept with --keep, left by a ` +
    `killed drill, or in use by one running now; remove those no drill uses (each is a full copy of the store)`,
  restore_late_openers_unchecked: (f) =>
    `no temporary link to the old database ${text(f.target_db)} could be made (${text(f.error)}), so a process ` +
    `that opens it during the replacement will not be named; make sure the service stays stopped`,
  restore_store_opened_during_restore: (f) => `the restore is done, but ${text(f.holders)}: ${text(f.next_step)}`,
  restore_integrity_failed: (f) =>
    `the restored database ${text(f.target_db)} failed its integrity check (${text(f.integrity_error)}); ` +
    `${text(f.next_step)}`,
  post_backup_validation_failed: (f) =>
    `the new snapshot failed validation (${list(f.errors)}), so it was not published; ` +
    `it is kept aside at ${text(f.backup_root)}`,
  chroma_special_files_left_out: (f) =>
    `the Chroma folder holds FIFOs, sockets or devices, which a snapshot cannot hold (${list(f.paths)}): left out, ` +
    `and a restore of this snapshot removes them`,
  chroma_copy_torn: (f) =>
    `the Chroma folder changed while it was copied (attempt ${text(f.attempt)} of ${text(f.of)}; changed: ` +
    `${list(f.changed)}), so that copy was not used; ${f.attempt === f.of ? "no attempt is left" : "copying again"}`,
  drill_check: (f) => `drill check ${text(f.name)} ${text(f.status)}: ${text(f.detail)}`,
  drill_finished: (f) => `the drill of ${text(f.stamp)} failed: ${list(f.errors)}`,
  metrics_write_failed: (f) =>
    `the metrics file ${text(f.path)} could not be written (${text(f.error)}); the command's own result stands`,
  snapshot_stamp_in_future: (f) =>
    `snapshot ${text(f.stamp)} is stamped ${duration(f.seconds_ahead)} in the future, so its age is unknown: ` +
    `the clock was wrong when it was made, or is wrong now; check the clock`,
  drill_latest_skipped_future: skippedFuture("drill"),
  remote_latest_passed_over_altered: (f) =>
    `--latest passed over ${list(f.names)} in ${text(f.location)}, as new or newer, each a link, folder or ` +
    `special file where a snapshot object belongs (altered by hand: perhaps the true latest), and takes ` +
    `${text(f.chosen)}; run 'remote verify' on the repository, then put those objects back from a copy`,
  drill_latest_passed_over_forged: (f) =>
    `--latest passed over ${list(f.snapshots)}, newer, whose refs carry a MAC by the identity's key that does not ` +
    `verify, or are malformed (altered in the repository: perhaps the true latest), and drills ${text(f.chosen)}; ` +
    `run 'remote verify' on the repository, then put those refs back from a copy`,
  drill_latest_by_sequence: (f) =>
    `--latest drills ${text(f.chosen)}, published after ${text(f.newest_stamp)} (sequence ${text(f.sequence)}) but ` +
    `stamped before it: the pushing host's clock was set back; check that host's clock`,
  drill_latest_passed_over_unsigned: (f) =>
    `--latest passed over ${list(f.snapshots)}, newer, whose refs carry no MAC by the identity's key over their ` +
    `fields (pushed without its auth key or before that MAC existed, or stripped in the repository: perhaps the true ` +
    `latest), and drills ${text(f.chosen)}; where every host pushes with its auth key, run 'remote verify' on the ` +
    `repository, then put those refs back from a copy`,
  push_latest_skipped_future: skippedFuture("push"),
  drill_latest_sequence_ignored: sequenceIgnored("drill"),
  push_latest_sequence_ignored: sequenceIgnored("push"),
  snapshot_removed_during_validation: (f) =>
    `snapshot ${text(f.stamp)} was removed (by a cleanup?) while it was being validated, so it was not checked`,
  chroma_backup_failed: (f) =>
    `Chroma ${text(f.path)} could not be backed up (${text(f.error)}), so the new snapshot ${text(f.backup_root)} ` +
    `holds ${text(f.snapshot_holds)}; fix that (or repair or rebuild Chroma), then run create --chroma again`,
  integrity_record_not_written: (f) =>
    `the record ${text(f.path)} of the databases create checked could not be written (${text(f.error)}), so ${
      text(f.effect)
    }; the snapshot is published and valid`,
  pre_restore_registry_kept_invalid: (f) =>
    `the live registry ${text(f.path)} is not JSON (${text(f.error)}); the pre-restore snapshot keeps it as it is, ` +
    `so undoing the restore gives the file back unchanged`,
  restore_wal_set_aside: (f) =>
    `the live database's WAL ${text(f.wal)} could not be applied (${text(f.reason)}), so it was moved aside to ` +
    `${text(f.kept)}, with the old database beside it when there was one, not removed: inspect it, then delete it`,
  restore_journal_set_aside: (f) =>
    `the rollback journal ${text(f.journal)} of an unfinished transaction could not be rolled back (${
      text(f.reason)
    }), ` +
    `so it was moved aside to ${text(f.kept)}, with the old database beside it when there was one, not removed, ` +
    `and never played back into the restored database: inspect it, then delete it`,
  restore_journal_rollback_failed: (f) =>
    `could not roll the unfinished transaction of ${text(f.target_db)}-journal back into the old database ` +
    `(${text(f.error)}); a journal still there is kept aside, never played back into the restored database`,
  free_space_check_unavailable: (f) =>
    `this system could not say how much space is free for ${text(f.path)}, so the restore went on without checking ` +
    `that it has room: make sure it does`,
  backup_dir_not_locked: (f) =>
    `the backup folder ${text(f.path)} could not be locked (${text(f.reason)}), so the restore went on unlocked: ` +
    `make sure no create or cleanup changes that folder meanwhile`,
  open_files_locks_unreadable: (f) =>
    `the kernel's lock table ${text(f.path)} could not be read, so locks on the live files (from other users or ` +
    `mount namespaces) were not checked: make sure the service is stopped`,
  backup_folder_misplaced: (f) => `${text(f.message)}; create and cleanup refuse until then`,
  cleanup_snapshot_invalid: (f) =>
    `snapshot ${text(f.stamp)} failed a quick validation (${list(f.errors)}), so it does not count as the newest ` +
    `valid snapshot that cleanup always keeps; ${text(f.next)}`,
  identity_file_readable_by_others: (f) =>
    `the identity file ${text(f.path)} can be read by other users (mode ${text(f.mode)}): it holds the secret key ` +
    `that decrypts every snapshot in the repository; chmod 600 it`,
  auth_key_file_readable_by_others: (f) =>
    `the authentication key file ${text(f.path)} can be read by other users (mode ${text(f.mode)}): it lets ` +
    `whoever holds it add snapshots that restore accepts; chmod 600 it`,
  push_unauthenticated: (f) =>
    `${text(f.command)} pushes without an authentication key (--allow-unauthenticated): restore, drill and ` +
    `remote verify refuse its snapshots unless given --allow-unauthenticated too; see 'remote auth-key'`,
  remote_snapshot_unauthenticated: (f) =>
    `${text(f.refs)} holds no MAC for the identity's recipient, accepted because of --allow-unauthenticated: ` +
    `${text(f.snapshot)} may have been made by anyone who can write to the repository`,
  push_auth_key_incomplete: (f) => {
    const many = Array.isArray(f.recipients) && f.recipients.length > 1;
    return `the authentication key file ${text(f.auth_key)} holds no key for ${list(f.recipients)} (` +
      `${many ? "recipients" : "a recipient"} of ${text(f.location)}): restore, drill and remote verify with ` +
      `${many ? "those identities" : "that identity"} refuse the snapshots this host pushes (unless ` +
      `--allow-unauthenticated); run 'atocore-backup remote auth-key --identity FILE' for every identity of the ` +
      `repository and install the output here (one file)`;
  },
  push_after_create_failed: (f) =>
    `snapshot ${text(f.stamp)} was created and is valid locally, but pushing it failed: ${text(f.error)}`,
  push_refused_invalid: (f) =>
    `snapshot ${text(f.stamp)} failed validation (${list(f.errors)}): ${storedMeanwhile(Number(f.packs_stored))}`,
  push_warning: (f) => `while pushing ${text(f.stamp)}: ${text(f.warning)}`,
  remote_retry: (f) =>
    `${text(f.object)} in ${text(f.location)}: ${text(f.error)}; trying again in ${
      (Number(f.wait_ms) / 1000).toFixed(1)
    } s (attempt ${Number(f.attempt) + 1} of ${text(f.attempts)})`,
  remote_cleanup_problem: (f) => `remote cleanup: ${text(f.error)}`,
  remote_cleanup_delayed: (f) => `remote cleanup deletes later than it could: ${text(f.note)}`,
  remote_verify_problem: (f) => `remote verify found a problem: ${text(f.error)}`,
  restore_chroma_swap_finished: (f) =>
    `an earlier restore stopped after it had moved the new Chroma entries into ${text(f.target)}; its swap was ` +
    `finished and the old entries removed`,
  restore_chroma_swap_undone: (f) =>
    `the Chroma swap in ${text(f.target)} did not complete; it was undone (${text(f.entries_moved_back)} entries ` +
    `moved back), so Chroma is as it was before the swap`,
  sqlite_library_not_loaded: (f) =>
    `ATOCORE_SQLITE_LIB names ${text(f.path)}, which could not be loaded (${text(f.error)}), so the built-in ` +
    `SQLite driver is used: correct or unset ATOCORE_SQLITE_LIB, or give --sqlite-driver builtin`,
  interrupt_received: (f) =>
    `${text(f.signal)} received: stopping at the next point where stopping leaves everything consistent; ` +
    `interrupt again to stop at once (as if killed: nothing half is listed, a lease expires by itself)`,
  interrupt_came_too_late: (f) =>
    `the ${text(f.signal)} came after the last point where ${text(f.command)} could stop safely, so it ran to ` +
    `its end: its result below stands`,
  cleanup_live_store_not_found: (f) => `there is no live database at ${text(f.path)}: ${text(f.next)}`,
  cleanup_unfinished_restore_kept: (f) =>
    `kept ${list(f.stamps)}: an unfinished restore into ${text(f.db)} needs them (recorded in ${text(f.path)}; ` +
    `remove that record by hand only once no restore into that store is unfinished)`,
  restore_needs_not_recorded: (f) =>
    `could not record in ${text(f.path)} that this restore needs ${list(f.stamps)} (${text(f.error)}): ${text(f.next)}`,
  remote_scratch_elsewhere: (f) =>
    `${text(f.folder)} is no place for the fetch's scratch copy (${text(f.why)}: that user could swap it for a ` +
    `link), so it goes to ${text(f.used)} and the files are copied into place, not moved; give --scratch-dir a ` +
    `folder only you may write, on the target's filesystem, to move them`,
  remote_scratch_not_made: (f) =>
    `the fetch's scratch copy could not be made in ${text(f.folder)} (${text(f.error)}), so it goes to ` +
    `${text(f.used)} and the files are copied into place, not moved; give --scratch-dir a folder on the target's ` +
    `filesystem, to move them`,
  restore_unfinished_found: (f) =>
    `an earlier restore of ${text(f.stamp)} did not finish (recorded in ${text(f.intent)}); it is settled first`,
};

/**
 * A warning event as one readable line: its sentence when the tool knows the event, else its name and fields
 * (`warning: some_event (key=value, ...)`).
 */
export function warningText(name: string, fields: Fields): string {
  const sentence = SENTENCES[name];
  if (sentence) return `warning: ${printable(sentence(fields))}`;
  const details = Object.entries(fields).map(([key, value]) => `${key}=${JSON.stringify(value)}`).join(", ");
  return details ? `warning: ${name} (${details})` : `warning: ${name}`;
}

/** The event names that have a sentence (to test that each warning the tool emits has one). */
export const WORDED_WARNINGS: readonly string[] = Object.keys(SENTENCES);

/** The sentence of a `--latest` that passed over snapshots stamped in the future, for `verb` (drill, push). */
function skippedFuture(verb: string): (f: Fields) => string {
  return (f) =>
    `--latest passed over ${list(f.stamps)}, stamped in the future (the clock was wrong), and ${verb}s ` +
    `${f.chosen ? text(f.chosen) : "nothing"}; ${verb} ${
      Array.isArray(f.stamps) && f.stamps.length > 1 ? "those" : "it"
    } by stamp once the clock is checked`;
}

function sequenceIgnored(verb: string): (f: Fields) => string {
  return (f) =>
    `--latest did not order ${list(f.stamps)} by the sequence in their metadata (not a count, or the metadata was ` +
    `edited since create) and ${verb}s ${f.chosen ? text(f.chosen) : "nothing"}; run 'validate' on them`;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function list(value: unknown): string {
  if (!Array.isArray(value)) return text(value);
  const shown = value.slice(0, 5).map(text).join(", ");
  return value.length > 5 ? `${shown} and ${value.length - 5} more` : shown;
}

function count(value: unknown, one: string, many: string): string {
  return `${text(value)} ${Number(value) === 1 ? one : many}`;
}

/** Seconds as a rough duration: `3 minutes`, `5 hours`, `73 years`. */
function duration(value: unknown): string {
  const seconds = Number(value);
  const units: [number, string][] = [[31_557_600, "year"], [86_400, "day"], [3_600, "hour"], [60, "minute"]];
  for (const [size, unit] of units) {
    const amount = Math.floor(seconds / size);
    if (amount >= 1) return `${amount} ${unit}${amount === 1 ? "" : "s"}`;
  }
  return `${text(value)} seconds`;
}
