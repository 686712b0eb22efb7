/**
 * Restoring a snapshot: the reference module's `restore`, in its order and with its result keys, made safe to
 * interrupt. The caller holds the operation lock. Requires `--allow-read`, `--allow-write` and, for FFI, `--allow-ffi`.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import type { Config } from "../config.ts";
import { createSnapshot, refuseFutureSnapshot } from "./create.ts";
import { CLOCK_SKEW_SECONDS } from "../snapshot/clock.ts";
import { describeOsError, OperationError, RefusedError, ToolError } from "../errors.ts";
import {
  FlushFailedError,
  moveFileAtomic,
  removeFileQuietly,
  replaceFileAtomic,
  temporaryPath,
} from "../fs/durable.ts";
import { isFile, lstatOrNull, statOrNull } from "../fs/probe.ts";
import { fileIdentity } from "../fs/file_identity.ts";
import type { CopyTotals } from "../fs/tree.ts";
import type { Reporter } from "../report/reporter.ts";
import { checkedStamp, restoreIntentPath } from "../snapshot/layout.ts";
import { CHROMA_DB_FILE, CHROMA_OLD_PREFIX } from "../snapshot/chroma.ts";
import { isDamagedDatabase, type SqliteDriver } from "../sqlite/driver.ts";
import { stageChroma, type StagedChroma, swapChroma, SwapFailure } from "./chroma_swap.ts";
import {
  dropIntent,
  findUnfinished,
  finishIntent,
  type IntentContext,
  newIntentContext,
  pathFlags,
  recordStep,
  recordSwap,
  type RemoteOrigin,
  requireSameChromaChoice,
  type RestoreIntent,
  settleStep,
  unfinishedNote,
} from "./restore_intent.ts";
import {
  checkLivePaths,
  checkOpenFiles,
  checkToFolder,
  makeToFolder,
  openedDuringRestore,
  planRestore,
  recheckOpenFiles,
  requireAcknowledgment,
  type RestorePlan,
  validatedSnapshot,
} from "./restore_plan.ts";
import { clearJournal, clearJournalAfterReplace } from "./restore_hot_journal.ts";
import { linkedSidecar, sidecarHazard } from "./live_sqlite_cause.ts";
import { restoreJournalModes } from "./restore_journal.ts";
import { databaseLeftovers, leftoversStep } from "./restore_leftovers.ts";
import { refuseUnnamableChroma, requireFreeSpace } from "./restore_space.ts";
import { signalsDelivered, stopIfInterrupted } from "../sys/interrupt.ts";
import { type Change, clearWal, clearWalAfterReplace, removeStaleTemporaries, sidecarsOf } from "./restore_wal.ts";
import type { ValidationResult } from "./validate.ts";
import { SnapshotChangedError } from "./restore_proof.ts";
import { reachedLiveFile, refuseForeignLinks } from "./live_links.ts";

/** What the replacement did with the database: moved into place (not copied), and the old one's temporary name. */
interface Moved {
  db: boolean;
  old: string | null;
}

/** Options of {@linkcode restoreSnapshot}. */
export interface RestoreOptions {
  /** The SQLite driver. */
  driver: SqliteDriver;
  /** Where events and progress go. */
  reporter: Reporter;
  /** The operator's word that the service is stopped; required unless `to` is given. */
  confirmServiceStopped: boolean;
  /** Skip the check for other processes holding the live files (never the acknowledgment). */
  ignoreOpenFiles: boolean;
  /** Take a pre-restore snapshot of the live store first (never with `to`). */
  preSnapshot: boolean;
  /** Restore Chroma; when undefined, restore it when the snapshot has it. */
  includeChroma?: boolean;
  /** Rebuild the store under this folder instead of the live paths, which stay untouched. */
  to?: string;
  /** The flag that moves the restore to another filesystem, for messages (default `--to DIR`; a drill's differs). */
  elsewhereFlag?: string;
  /** With `to`: rebuild into a folder that already holds entries (the store's files there are replaced). */
  force?: boolean;
  /** With `to`: a scratch folder its caller removes (a drill's), so a failure's next step is to run that again. */
  scratch?: boolean;
  /** Validate sizes only, without hashing, before restoring. */
  quick?: boolean;
  /** The backup folder the snapshot is read from (default the configured one; a snapshot fetched into scratch). */
  sourceDir?: string;
  /** The repository snapshot fetched into `sourceDir`: an unfinished restore's record says how to fetch it again. */
  remote?: RemoteOrigin;
  /** With `remote`: where other snapshots are listed, the next step of a refusal of this one. */
  anotherSnapshot?: string;
  /**
   * The snapshot at `sourceDir` is a scratch copy this run made and nothing else reads: its files are moved into place
   * by renames where they lie on the target's filesystem (else copied), and a database moved is not checked again
   * after the move (the validation checked that very file).
   */
  moveSources?: boolean;
  /** SHA-256 proven for the scratch copy's files (a fetch hashed each as written): the deep validation compares them as text. */
  verified?: ReadonlyMap<string, string>;
  /** Databases of those whose bytes passed the push's integrity check: the validation does not run it again. */
  integrityChecked?: ReadonlySet<string>;
  /**
   * Waits for the scratch copy's head-start flush (`flushSoon`) and throws its failure: awaited before anything is
   * replaced, since a later fsync would not report a write-back that failed.
   */
  flushed?: () => Promise<void>;
  /**
   * Aborted to stop before the store is changed (checked after the validation and after the pre-restore snapshot);
   * once the replacement has begun it runs to its end, as it would to its failure path.
   */
  signal?: AbortSignal;
}

/** The validation done before restoring, without the snapshot's metadata. */
export interface ValidationSummary {
  valid: boolean;
  manifest_ok: boolean | null;
  files_checked: number;
  bytes_hashed: number;
  quick: boolean;
  errors: string[];
  /** Fetched databases not checked again: the push's integrity check vouches for their proven bytes. */
  integrity_checked_by_push?: string[];
}

/** The result of a restore: the module's keys in its order, then this tool's. */
export interface RestoreResult {
  stamp: string;
  pre_restore_snapshot: string | null;
  target_db: string;
  db_restored: boolean;
  registry_restored: boolean;
  chroma_restored: boolean;
  restored_integrity_ok: boolean;
  integrity_error?: string;
  target_registry: string;
  target_chroma: string;
  chroma_files_restored: number;
  chroma_bytes_restored: number;
  to: string | null;
  /** Whether other processes holding the live files were looked for (not with `to`, `ignoreOpenFiles`, or off Linux). */
  open_files_checked: boolean;
  /**
   * Who held the live store once it was replaced (a process that opened it during the restore, after the last look, or
   * one `ignoreOpenFiles` let hold it), described; absent when none (or no look could be made). It may write to the old
   * database, whose writes are lost.
   */
  opened_during_restore?: string;
  /**
   * Whether `PRAGMA integrity_check` ran on the restored database once in place (a copy); not for one moved into place,
   * the very file the validation checked, or whose integrity the push's check vouched for.
   */
  restored_integrity_checked: boolean;
  validation: ValidationSummary;
}

/**
 * Restore the snapshot `stamp` of the backup folder over the live store, or under `options.to`.
 *
 * Order: refusals (a `to` that is not an empty folder, acknowledgment, open files), deep validation, an unfinished
 * restore's record read, free space, pre-restore snapshot (none when resuming: the first attempt's stays the way
 * back), open files again; then, live, the unfinished restore's Chroma swap settled and this run's record written;
 * Chroma copy staged, a hot `-journal` rolled back, WAL checkpointed and its sidecars removed, database and registry replaced, Chroma contents
 * swapped, integrity check, journal modes set back, record removed. A failed integrity check is returned
 * (`restored_integrity_ok: false`), not thrown.
 *
 * @throws {UsageError} for a stamp that is not plain, or a target of the wrong kind (`to` a file).
 * @throws {RefusedError} without the acknowledgment, beside a live database that SQLite would harm through its
 *   `-wal`, `-shm` or `-journal` (as create refuses it), while other processes hold the database, when the snapshot
 *   does not validate, when `to` is the live store or holds entries (without `force`), when a filesystem lacks
 *   the space the restore needs, or when an unfinished restore's record is unreadable; nothing is changed.
 * @throws {OperationError} when a step fails; the message says exactly what changed and what not, and, when live
 *   data changed, that the restore is recorded as unfinished and how to finish it or go back.
 */
export async function restoreSnapshot(config: Config, stamp: string, options: RestoreOptions): Promise<RestoreResult> {
  checkedStamp(stamp);
  const to = options.to === undefined ? null : resolve(options.to);
  if (to !== null) checkToFolder(config, to, options.force ?? false);
  else checkLiveStore(config);
  requireAcknowledgment(config, to, options.confirmServiceStopped);
  const openFilesChecked = checkOpenFiles(config, to, options);
  const validation = await validatedSnapshot(config, stamp, options);
  await signalsDelivered();
  stopIfInterrupted(options.signal, () => stoppedUnchanged(stamp, to, null));
  const plan = planRestore(config, stamp, validation, to, options);
  const { sources, targets } = plan;
  const { unfinished, takesPreSnapshot, leftovers } = checkBeforeChanges(config, plan, stamp, to, options);
  const preStamp = unfinished !== null
    ? unfinished.pre_restore_snapshot
    : takesPreSnapshot
    ? await preRestoreSnapshot(config, sources.chroma !== null, options, stamp)
    : null;
  recheckOpenFiles(config, openFilesChecked, takesPreSnapshot ? preStamp : null, options);
  await sourcesFlushed(options, stamp, unchanged(to, takesPreSnapshot ? preStamp : null));
  await signalsDelivered(); // a signal that came during the synchronous work before is seen here
  // The last safe point: from here the replacement runs to its end or to its failure path.
  stopIfInterrupted(options.signal, () => stoppedUnchanged(stamp, to, takesPreSnapshot ? preStamp : null));
  const intent = to === null
    ? newIntentContext(config, { stamp, chroma: sources.chroma !== null, preStamp, remote: options.remote }, unfinished)
    : null;
  // moved.old: a name the old database keeps while it is replaced, through which a process that opens it is found
  const moved: Moved = { db: false, old: null };
  using _old = { [Symbol.dispose]: () => moved.old && removeFileQuietly(moved.old) };
  const backupFlags = pathFlags(config, {}, ["backupDir"]);
  const chroma = replaceStore(plan, preStamp, options, { intent, leftovers, backupFlags }, moved);
  // A database moved into place is the very file the validation checked; a copy is checked again.
  const integrity = moved.db ? null : await checkRestored(options.driver, targets.db);
  let opened: string | null = null;
  try {
    restoreJournalModes(
      validation.metadata!,
      { db: targets.db, chroma: chroma === null ? null : targets.chroma },
      options.reporter,
    );
    opened = openedDuringRestore(to === null, moved.old);
  } finally {
    // The last change made or failed, the store is whole, the snapshot's. The old database's temporary name goes
    // before the record: a kill in between leaves the record, and the next restore removes the name with it.
    if (moved.old !== null) removeFileQuietly(moved.old);
    if (intent !== null) finishIntent(intent);
  }
  const result = resultOf(plan, validation, {
    stamp,
    preStamp,
    to,
    chroma,
    integrity,
    openFilesChecked,
    opened,
    moved,
  });
  reportRestored(result, options.reporter, pathFlags(config));
  return result;
}

/** What a restore did, as plain data. */
function resultOf(
  { sources, targets }: RestorePlan,
  validation: ValidationResult,
  done: {
    stamp: string;
    preStamp: string | null;
    to: string | null;
    chroma: { files: number; bytes: number } | null;
    integrity: string | null;
    openFilesChecked: boolean;
    opened: string | null;
    moved: Moved;
  },
): RestoreResult {
  const { stamp, preStamp, to, chroma, integrity, openFilesChecked, opened, moved } = done;
  return {
    stamp,
    pre_restore_snapshot: preStamp,
    target_db: targets.db,
    db_restored: true,
    registry_restored: sources.registry !== null,
    chroma_restored: chroma !== null,
    restored_integrity_ok: integrity === null,
    ...(integrity === null ? {} : { integrity_error: integrity }),
    target_registry: targets.registry,
    target_chroma: targets.chroma,
    chroma_files_restored: chroma?.files ?? 0,
    chroma_bytes_restored: chroma?.bytes ?? 0,
    to,
    open_files_checked: openFilesChecked,
    ...(opened === null ? {} : { opened_during_restore: opened }),
    restored_integrity_checked: !moved.db,
    validation: summarize(validation),
  };
}

/**
 * Before anything changes: the unfinished restore this run goes on from (live only), held to its choice for Chroma,
 * whether this run takes a pre-restore snapshot, the temporaries killed restores left beside the database that go
 * first, and the free space it needs.
 */
function checkBeforeChanges(
  config: Config,
  plan: RestorePlan,
  stamp: string,
  to: string | null,
  options: RestoreOptions,
): { unfinished: RestoreIntent | null; takesPreSnapshot: boolean; leftovers: string[] } {
  const unfinished = to === null ? findUnfinished(config, options.reporter) : null;
  if (unfinished !== null) {
    const choice = { stamp, restoresChroma: plan.sources.chroma !== null, noChroma: options.includeChroma === false };
    requireSameChromaChoice(unfinished, choice, config);
  }
  // Resuming, no new pre-restore snapshot: the way back stays the one taken before the first attempt changed anything.
  const takesPreSnapshot = to === null && options.preSnapshot && unfinished === null;
  // the unfinished restore's leftovers in this Chroma folder go before anything is staged there
  const clearedFirst = unfinished?.swap === null && resolve(unfinished.chroma_dir) === resolve(config.chromaDir.path)
    ? config.chromaDir.path
    : null;
  const leftovers = to === null ? databaseLeftovers(config, unfinished) : [];
  if (plan.sources.chroma !== null) refuseUnnamableChroma(plan.targets.chroma);
  requireFreeSpace(config, plan, { ...options, preSnapshot: takesPreSnapshot, clearedFirst, clearedFiles: leftovers });
  return { unfinished, takesPreSnapshot, leftovers };
}

/** Wait for the sources' head-start flush; its failure stops the restore of `stamp`, which left `state`. */
async function sourcesFlushed(options: RestoreOptions, stamp: string, state: string): Promise<void> {
  try {
    await options.flushed?.();
  } catch (error) {
    if (!(error instanceof FlushFailedError)) throw error;
    throw new OperationError(
      `restore of ${stamp}: ${error.message} (${describeOsError(error.cause)}); ${state}; ` +
        `check the disk of ${dirname(error.path)} (dmesg), then run the restore again`,
      { cause: error },
    );
  }
}

/** The words of a restore of `stamp` stopped by a signal before it changed anything. */
function stoppedUnchanged(stamp: string, to: string | null, preStamp: string | null): [string, string] {
  return [`restore of ${stamp}`, `${unchanged(to, preStamp)}; run the restore again`];
}

/** What a restore into `to` (the live store when `null`) that stopped before changing anything left. */
function unchanged(to: string | null, preStamp: string | null): string {
  const kept = preStamp ? ` (the pre-restore snapshot ${preStamp} is kept)` : "";
  return `this run changed nothing in ${to ?? "the live store"}${kept}`;
}

/**
 * The next step after a restore that changed live data and then failed, last on its line: the command (unquoted as a
 * whole, a shell runs it as printed) with this run's path flags (`flags`: see {@linkcode pathFlags}).
 */
export function goBack(preStamp: string | null, flags: string): string {
  return preStamp
    ? `go back to the pre-restore snapshot with: atocore-backup restore ${preStamp} --confirm-service-stopped${flags}`
    : "no pre-restore snapshot was made; restore another snapshot";
}

async function preRestoreSnapshot(
  config: Config,
  includeChroma: boolean,
  options: RestoreOptions,
  restoringStamp: string,
): Promise<string> {
  if (!isFile(config.db.path)) {
    throw new RefusedError(
      `live database not found: ${config.db.path}; nothing to keep in a pre-restore snapshot and nothing was changed; ` +
        `check --db, or pass --no-pre-snapshot to restore onto an empty store`,
    );
  }
  // create's own refusal of these would reach the operator as a failure (exit 1), not as the refusal it is
  refuseHazardBeside(config.db.path, sidecarHazard);
  if (includeChroma) refuseHazardBeside(join(config.chromaDir.path, CHROMA_DB_FILE), sidecarHazard);
  // the undo's stamp must sort after every snapshot, or cleanup may take it for an old one
  refuseFutureSnapshot(config, CLOCK_SKEW_SECONDS * 1000, () => "restore with --no-pre-snapshot");
  const journal = `${config.db.path}-journal`;
  const journalBefore = journalIdentity(journal);
  try {
    const created = await createSnapshot(config, {
      driver: options.driver,
      includeChroma,
      reporter: options.reporter,
      keepInvalidRegistry: true,
      restoringStamp,
    });
    options.reporter.event("info", "pre_restore_snapshot_created", { stamp: created.stamp, chroma: includeChroma });
    return created.stamp;
  } catch (error) {
    // the next step create's message gives is this restore's; an OS error's own words name its path and way out
    const cause = error instanceof ToolError
      ? error.message.replaceAll("run create again", "run the restore again")
      : describeOsError(error);
    // SQLite rolls a hot -journal back into the database it opens to copy: then the live database changed
    const rolledBack = journalBefore !== null && journalIdentity(journal) !== journalBefore;
    const outcome = rolledBack
      ? `nothing was restored, but SQLite rolled ${journal} back into the live database when it opened it (a crash's ` +
        "journal, or a stray one); check the database before anything else"
      : "nothing was restored or changed";
    // a damaged live database fails its own snapshot for ever, and this restore is what mends it
    const skip = isDamagedDatabase(error)
      ? "; to restore over a live database that cannot be copied, copy its files aside, then add --no-pre-snapshot"
      : "";
    throw new OperationError(`pre-restore snapshot failed, so ${outcome}: ${cause}${skip}`, { cause: error });
  }
}

/**
 * Before any work on the live store: its paths, and no link beside its database, which even a restore without the
 * pre-restore snapshot opens (to checkpoint its WAL, roll back its journal).
 */
function checkLiveStore(config: Config): void {
  checkLivePaths(config);
  refuseForeignLinks([config.db.given ?? config.db.path, config.registry.path, config.chromaDir.path], "restore");
  refuseHazardBeside(config.db.path, linkedSidecar);
}

/** Refuse to open the live database `db` beside which SQLite would do harm (`hazard` says what), as create refuses. */
function refuseHazardBeside(db: string, hazard: (path: string) => string | null): void {
  const found = hazard(db);
  if (found !== null) {
    throw new RefusedError(`restore refused to open the database ${db}: ${found}; nothing was changed`);
  }
}

/** The identity of a non-empty rollback journal at `path`, or `null` when there is none. */
function journalIdentity(path: string): string | null {
  const info = statOrNull(path);
  return info?.isFile && info.size > 0 ? fileIdentity(info) : null;
}

/** One step of replacing the store, named by the error when it fails. */
interface ReplaceStep<T> {
  /** What the step does, as in "restore failed while <doing>". */
  doing: string;
  /** Do it, noting in `changes` each change as it is made. */
  run: (changes: Change[]) => T;
  /** Once the step has failed with `error`: a change it may have made unnoted (a rename whose flush failed). */
  failedChange?: (error: unknown) => Change | null;
  /** Once the step has failed with `error`: what it knows of the state it left beyond the changes, in words. */
  stateIfFailed?: (error: unknown) => string | null;
}

/** What the error of a failed step needs besides the step. */
interface FailureContext {
  plan: RestorePlan;
  staged: StagedChroma | null;
  preStamp: string | null;
  to?: string;
  changes: Change[];
  /** The live restore's record; `null` with `to`. */
  intent: IntentContext | null;
  /** The path flags a printed `validate` needs to reach this run's backup folder (see {@linkcode pathFlags}). */
  backupFlags: string;
  /** `to` is a drill's scratch folder, removed after (see {@linkcode RestoreOptions.scratch}). */
  scratch: boolean;
}

/**
 * Live, remove the leftovers of killed runs (`leftovers`: see {@linkcode databaseLeftovers}) and settle the unfinished
 * restore; with `to`, make that folder; stage the Chroma copy, then replace the database, the registry and Chroma's
 * contents.
 *
 * @returns The Chroma files and bytes restored, or `null` when Chroma is not restored.
 */
function replaceStore(
  plan: RestorePlan,
  preStamp: string | null,
  options: RestoreOptions,
  { intent, leftovers, backupFlags }: { intent: IntentContext | null; leftovers: string[]; backupFlags: string },
  moved: Moved,
): CopyTotals | null {
  const context: FailureContext = {
    plan,
    staged: null,
    preStamp,
    to: options.to,
    changes: [],
    intent,
    backupFlags,
    scratch: options.scratch ?? false,
  };
  if (options.to !== undefined) makeToFolder(options.to); // its own failure: nothing was rebuilt in a folder not made
  if (intent !== null) {
    runStep(leftoversStep(intent.config, leftovers, options.reporter), context);
    runStep(settleStep(intent, options.reporter), context);
    runStep(recordStep(intent, options.reporter), context);
  }
  const staged = runStep(stagingStep(plan, options), context);
  using _held = staged ?? undefined;
  context.staged = staged;
  for (const step of replaceSteps(plan, staged, options, intent, moved)) runStep(step, context);
  return staged?.totals ?? null;
}

/** Run `step`; when it fails, remove the staged Chroma copy and throw the error naming the step and what changed. */
function runStep<T>(step: ReplaceStep<T>, context: FailureContext): T {
  try {
    return step.run(context.changes);
  } catch (error) {
    const late = step.failedChange?.(error) ?? null;
    if (late !== null) context.changes.push(late);
    if (context.staged !== null) removeStaged(context.staged, context.changes);
    const known = step.stateIfFailed?.(error) ?? null;
    if (error instanceof SnapshotChangedError) {
      throw new RefusedError(
        `restore stopped while ${step.doing}: ${error.message} (the backup folder changed during the restore, after ` +
          `the validation); ${afterFailure(context, known)}; validate the snapshot first: ` +
          `atocore-backup validate ${error.stamp}${context.backupFlags}`,
        { cause: error },
      );
    }
    throw new OperationError(
      `restore failed while ${step.doing} (${describeOsError(error)}); ${afterFailure(context, known)}`,
      { cause: error },
    );
  }
}

/** Remove the staged Chroma copy after a failure; one that cannot be removed is named among the changes. */
function removeStaged({ held, staging }: StagedChroma, changes: Change[]): void {
  try {
    held.remove(staging.name);
  } catch (error) {
    changes.push({
      what: `left the staged Chroma copy ${staging.path} (${describeOsError(error)}; remove it)`,
    });
  }
}

/**
 * What a failed restore leaves, exactly: what it changed (and what not), what the failed step `known` says besides,
 * and the next step. A run that changed none of the store's data and found no unfinished restore removes its record.
 */
function afterFailure(context: FailureContext, known: string | null): string {
  const { preStamp, to, changes, intent } = context;
  if (to !== undefined && context.scratch) return "the live store was not touched; fix the cause and run it again";
  if (to !== undefined) {
    return `${to} may be partly rebuilt (the live store was not touched); fix the cause and run again with --force`;
  }
  const done = changes.map((change) => change.what).join("; ");
  const dataChanged = changes.some((change) => change.part !== undefined);
  const unfinished = intent?.unfinished ?? null;
  if (!dataChanged && unfinished === null) {
    const stuck = intent === null ? null : dropIntent(intent);
    const record = stuck === null ? "" : `; the record ${restoreIntentPath(intent!.db)} could not be removed ` +
      `(${stuck}): remove it (create refuses while it is there)`;
    const again = `fix the cause and run again${preStamp ? ` (the pre-restore snapshot ${preStamp} is kept)` : ""}`;
    const state = changes.length === 0
      ? "the database, registry and Chroma were not changed"
      : `the database's rows, the registry and Chroma's contents were not changed (done: ${done})`;
    return [state + record, known, again].filter(Boolean).join("; ");
  }
  const since = unfinished === null ? "" : ` since the restore of ${unfinished.stamp} that did not finish`;
  const listing = dataChanged
    ? `changed so far: ${done}; not changed${since}: ${untouchedParts(context)}`
    : `this run changed none of the store's data${changes.length ? ` (done: ${done})` : ""}: the store is ` +
      `still as the restore of ${unfinished!.stamp} that did not finish left it`;
  return [listing, known, intent === null ? goBack(preStamp, "") : unfinishedNote(intent)].filter(Boolean).join("; ");
}

/** The parts of the store (the database, the registry and Chroma, as restored) that no change noted touched. */
function untouchedParts({ plan: { sources, targets }, changes }: FailureContext): string {
  const parts: [Change["part"], string][] = [["database", `the database ${targets.db}`]];
  if (sources.registry !== null) parts.push(["registry", `the registry ${targets.registry}`]);
  if (sources.chroma !== null) parts.push(["chroma", `the Chroma folder ${targets.chroma}`]);
  const untouched = parts.filter(([part]) => !changes.some((change) => change.part === part)).map(([, name]) => name);
  return untouched.join(", ") || "nothing else";
}

function stagingStep(plan: RestorePlan, options: RestoreOptions): ReplaceStep<StagedChroma | null> {
  const { sources, targets } = plan;
  const move = options.moveSources ?? false;
  return {
    doing: `staging the Chroma copy in ${targets.chroma}`,
    run: (changes) =>
      sources.chroma === null ? null : stageChroma(
        sources.chroma,
        { path: targets.chroma, seen: plan.chromaSeen },
        options.reporter,
        (what) => changes.push({ what }),
        { move, proof: plan.proof.treeCheck(sources.chroma) },
      ),
  };
}

/** The steps after staging, in order: live data changes from the database's replacement on. */
function replaceSteps(
  plan: RestorePlan,
  staged: StagedChroma | null,
  options: RestoreOptions,
  intent: IntentContext | null,
  moved: Moved,
): ReplaceStep<void>[] {
  const { sources: { db, registry }, targets } = plan;
  const { driver, reporter } = options;
  const move = options.moveSources ?? false;
  const replaced = (path: string, what: string, part: Change["part"]) => {
    const before = statOrNull(path)?.ino; // only a replacement changes the inode; the checkpoint writes in place
    // a refusal comes before the rename (a link put in at `path`, which changes what it leads to) or after it was noted
    return (error: unknown) =>
      !(error instanceof RefusedError) && statOrNull(path)?.ino !== before ? { what, part } : null;
  };
  const dbReplaced = `replaced the database ${targets.db} with the snapshot's`;
  const steps: ReplaceStep<void>[] = [{
    doing: `rolling back the unfinished transaction in ${targets.db}-journal`,
    run: (changes) => clearJournal(driver, targets.db, reporter, changes),
  }, {
    doing: `checkpointing the database ${targets.db}`,
    run: (changes) => clearWal(driver, targets.db, reporter, changes),
  }, {
    doing: `replacing the database ${targets.db}`,
    run: (changes) => {
      if (options.to === undefined) moved.old = linkOldDatabase(targets.db, reporter);
      let before = sidecarsOf(targets.db);
      const check = plan.proof.fileCheck(db);
      moved.db = replaceDatabase(db, targets.db, { reporter, move, check }, () => before = sidecarsOf(targets.db));
      changes.push({ what: dbReplaced, part: "database" });
      clearJournalAfterReplace(targets.db, reporter, changes);
      clearWalAfterReplace(targets.db, before, moved.old, reporter, changes);
    },
    failedChange: replaced(targets.db, dbReplaced, "database"),
  }];
  if (registry !== null) {
    const registryReplaced = `replaced the registry ${targets.registry} with the snapshot's`;
    steps.push({
      doing: `replacing the registry ${targets.registry}`,
      run: (changes) => {
        removeStaleTemporaries(targets.registry, reporter, changes);
        const at = replacedAt(targets.registry);
        if (!move || !moveFileAtomic(registry, at)) {
          replaceFileAtomic(registry, at, undefined, plan.proof.fileCheck(registry));
        }
        changes.push({ what: registryReplaced, part: "registry" });
      },
      failedChange: replaced(targets.registry, registryReplaced, "registry"),
    });
  }
  if (staged !== null) {
    const kept = registry === null ? "the database is" : "the database and the registry are";
    steps.push(swapStep(staged, targets.chroma, reporter, intent, kept));
  }
  return steps;
}

/**
 * The swap of Chroma's contents, recording its phases in `intent`. A swap that failed and was undone changed
 * nothing of Chroma's; its state, and that the files replaced before (`kept`) stay the snapshot's, are said.
 */
function swapStep(
  staged: StagedChroma,
  target: string,
  reporter: Reporter,
  intent: IntentContext | null,
  kept: string,
): ReplaceStep<void> {
  return {
    doing: `swapping the contents of the Chroma folder ${target}`,
    run: (changes) => {
      swapChroma(staged, reporter, recordSwap(intent));
      reporter.event("info", "restore_chroma_swapped", { target, ...staged.totals });
      changes.push({
        what: `replaced the contents of the Chroma folder ${target} with the snapshot's`,
        part: "chroma",
      });
    },
    failedChange: (error) =>
      error instanceof SwapFailure && error.undone ? null : {
        what: error instanceof SwapFailure
          ? `the Chroma folder ${target} is partly swapped`
          : `the Chroma folder ${target} may be partly swapped (old entries moved aside in ${CHROMA_OLD_PREFIX}*)`,
        part: "chroma",
      },
    stateIfFailed: (error) =>
      error instanceof SwapFailure && intent !== null
        ? `${error.state}; ${kept} already those of snapshot ${intent.record.stamp}, kept (not rolled back)`
        : null,
  };
}

/**
 * Replace `target` with `source`, moved there when `move` and one filesystem holds both, else copied and the copy's
 * bytes given to `check` before the rename; whether it was moved.
 */
function replaceDatabase(
  source: string,
  target: string,
  { reporter, move, check }: { reporter: Reporter; move: boolean; check?: (sha256: string) => void },
  beforeRename: () => void,
): boolean {
  reporter.event("info", "restore_db_replacing", { source, target });
  const at = replacedAt(target);
  const moved = move && moveFileAtomic(source, at, beforeRename);
  if (!moved) replaceFileAtomic(source, at, beforeRename, check);
  reporter.event("info", "restore_db_replaced", { target, moved });
  return moved;
}

/**
 * Where the live file `target` is replaced: the file its links reach now, each judged again (one put in since the check
 * is refused, exit 3), or `target` itself when nothing is there (a link to nothing is replaced, not followed).
 */
function replacedAt(target: string): string {
  if (lstatOrNull(target) === null) return target;
  try {
    return reachedLiveFile(target, "restore", `${target} was not replaced`)?.path ?? Deno.realPathSync(target);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return target;
    throw error;
  }
}

/**
 * A hard link to the live database `db` under a temporary name beside it (removed once the restore looked for its
 * openers, or as a killed restore's temporary by the next one), so that a process that opens it during the replacement
 * is still found once the restored database has taken its name; `null` when there is none or no link can be made.
 */
function linkOldDatabase(db: string, reporter: Reporter): string | null {
  const path = temporaryPath(db);
  try {
    Deno.linkSync(db, path);
    return path;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      reporter.event("warning", "restore_late_openers_unchecked", { target_db: db, error: describeOsError(error) });
    }
    return null;
  }
}

/** `null` when the restored database passes `PRAGMA integrity_check`, else the problem. */
async function checkRestored(driver: SqliteDriver, path: string): Promise<string | null> {
  try {
    const answer = await driver.integrityCheck(path);
    return answer === "ok" ? null : answer;
  } catch (error) {
    return `db_open_failed: ${(error as Error).message}`;
  }
}

/** Report a failed integrity check with the way back (for the store of `flags`), then the module's completion event. */
function reportRestored(result: RestoreResult, reporter: Reporter, flags: string): void {
  if (result.integrity_error !== undefined) {
    reporter.event("warning", "restore_integrity_failed", {
      target_db: result.target_db,
      integrity_error: result.integrity_error,
      next_step: goBack(result.pre_restore_snapshot, flags),
    });
  }
  if (result.opened_during_restore !== undefined) {
    reporter.event("warning", "restore_store_opened_during_restore", {
      holders: result.opened_during_restore,
      next_step: "stop those processes (the service), then run the restore again (the pre-restore snapshot is kept): " +
        "they may have written to the old database, or into the restored one's WAL",
    });
  }
  reporter.event("info", "runtime_backup_restored", {
    stamp: result.stamp,
    pre_restore_snapshot: result.pre_restore_snapshot,
    registry_restored: result.registry_restored,
    chroma_restored: result.chroma_restored,
    integrity_ok: result.restored_integrity_ok,
    to: result.to,
  });
}

function summarize(validation: ValidationResult): ValidationSummary {
  return {
    valid: validation.valid,
    manifest_ok: validation.manifest_ok,
    files_checked: validation.files_checked,
    bytes_hashed: validation.bytes_hashed,
    quick: validation.quick,
    errors: validation.errors,
    ...(validation.integrity_checked_by_push
      ? { integrity_checked_by_push: validation.integrity_checked_by_push }
      : {}),
  };
}
