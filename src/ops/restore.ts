/**
 * Restoring a snapshot: the reference module's `restore`, in its order and with its result keys, made safe to
 * interrupt. The caller holds the operation lock. Requires `--allow-read`, `--allow-write` and, for FFI, `--allow-ffi`.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import type { Config } from "../config.ts";
import { createSnapshot } from "./create.ts";
import { describeOsError, OperationError, RefusedError, ToolError } from "../errors.ts";
import { removeQuietly, replaceFileAtomic } from "../fs/durable.ts";
import { entriesOrNone, isFile, statOrNull } from "../fs/probe.ts";
import type { CopyTotals } from "../fs/tree.ts";
import type { Reporter } from "../report/reporter.ts";
import { checkedStamp } from "../snapshot/layout.ts";
import { type SqliteDriver, SqliteError } from "../sqlite/driver.ts";
import { stageChroma, type StagedChroma, swapChroma, SwapFailure } from "./chroma_swap.ts";
import {
  clearIntent,
  type IntentContext,
  intentStep,
  newIntentContext,
  recordSwap,
  restoreIntentPath,
  settleInterrupted,
  unfinishedNote,
} from "./restore_intent.ts";
import {
  checkOpenFiles,
  planRestore,
  requireAcknowledgment,
  type RestorePlan,
  validatedSnapshot,
} from "./restore_plan.ts";
import type { ValidationResult } from "./validate.ts";

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
  /** Validate sizes only, without hashing, before restoring. */
  quick?: boolean;
}

/** The validation done before restoring, without the snapshot's metadata. */
export interface ValidationSummary {
  valid: boolean;
  manifest_ok: boolean | null;
  files_checked: number;
  bytes_hashed: number;
  quick: boolean;
  errors: string[];
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
  validation: ValidationSummary;
}

/**
 * Restore the snapshot `stamp` of the backup folder over the live store, or under `options.to`.
 *
 * Order: refusals (acknowledgment, open files), deep validation, pre-restore snapshot,
 * Chroma copy staged, WAL checkpoint and stale sidecars removed, database and registry
 * replaced, Chroma contents swapped, integrity check. A failed integrity check is
 * returned (`restored_integrity_ok: false`), not thrown.
 *
 * @throws {UsageError} for a stamp that is not plain, or a target of the wrong kind.
 * @throws {RefusedError} without the acknowledgment, while other processes hold the
 *   database, when the snapshot does not validate, or when `to` is the live store; nothing is changed.
 * @throws {OperationError} when a step fails; the message says whether live data changed
 *   and names the pre-restore stamp to go back to.
 */
export async function restoreSnapshot(config: Config, stamp: string, options: RestoreOptions): Promise<RestoreResult> {
  checkedStamp(stamp);
  const to = options.to === undefined ? null : resolve(options.to);
  requireAcknowledgment(config, to, options.confirmServiceStopped);
  const openFilesChecked = checkOpenFiles(config, to, options);
  const validation = await validatedSnapshot(config, stamp, options);
  const plan = planRestore(config, stamp, validation, to, options);
  const { sources, targets } = plan;
  const unfinished = to === null ? settleInterrupted(config, options.reporter) : null;
  // Resuming, the undo point stays the one taken before the unfinished restore's first change.
  const preStamp = unfinished !== null
    ? unfinished.pre_restore_snapshot
    : to === null && options.preSnapshot
    ? await preRestoreSnapshot(config, sources.chroma !== null, options)
    : null;
  const intent = to === null ? newIntentContext(config, stamp, sources.chroma !== null, preStamp, unfinished) : null;
  const chroma = replaceStore(plan, preStamp, options, intent);
  const integrity = checkRestored(options.driver, targets.db);
  const result: RestoreResult = {
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
    validation: summarize(validation),
  };
  reportRestored(result, options.reporter);
  return result;
}

/** The next step after a restore that changed live data and then failed. */
export function goBack(preStamp: string | null): string {
  return preStamp
    ? `go back with 'atocore-backup restore ${preStamp} --confirm-service-stopped' (the pre-restore snapshot)`
    : "no pre-restore snapshot was made; restore another snapshot";
}

async function preRestoreSnapshot(config: Config, includeChroma: boolean, options: RestoreOptions): Promise<string> {
  if (!isFile(config.db.path)) {
    throw new RefusedError(
      `live database not found: ${config.db.path}; nothing to keep in a pre-restore snapshot and nothing was changed; ` +
        `check --db, or pass --no-pre-snapshot to restore onto an empty store`,
    );
  }
  try {
    const created = await createSnapshot(config, { driver: options.driver, includeChroma, reporter: options.reporter });
    options.reporter.event("info", "pre_restore_snapshot_created", { stamp: created.stamp, chroma: includeChroma });
    return created.stamp;
  } catch (error) {
    if (!(error instanceof ToolError)) throw error;
    throw new OperationError(
      `pre-restore snapshot failed, so nothing was restored or changed: ${error.message}`,
      { cause: error },
    );
  }
}

/** One step of replacing the store, named by the error when it fails. */
interface ReplaceStep<T> {
  /** What the step does, as in "restore failed while <doing>". */
  doing: string;
  run: () => T;
  /** Whether live data may have changed, once the step has failed. */
  changedIfFailed: () => boolean;
  /** The state the store is in once the step has failed with `error`, when the step knows it exactly. */
  stateIfFailed?: (error: unknown) => string | null;
}

/** What the error of a failed step needs besides the step. */
interface FailureContext {
  staged: StagedChroma | null;
  preStamp: string | null;
  to?: string;
  intent: IntentContext | null;
}

/**
 * Stage the Chroma copy, then replace the database, the registry and Chroma's contents.
 *
 * @returns The Chroma files and bytes restored, or `null` when Chroma is not restored.
 */
function replaceStore(
  plan: RestorePlan,
  preStamp: string | null,
  options: RestoreOptions,
  intent: IntentContext | null,
): CopyTotals | null {
  const context: FailureContext = { staged: null, preStamp, to: options.to, intent };
  if (intent !== null) runStep(intentStep(intent, "record"), context);
  const staged = runStep(stagingStep(plan, options.reporter), context);
  for (const step of replaceSteps(plan, staged, options, intent)) runStep(step, { ...context, staged });
  if (intent !== null) runStep(intentStep(intent, "clear"), context);
  return staged?.totals ?? null;
}

/** Run `step`; when it fails, remove the staged Chroma copy and throw the error naming the step and what changed. */
function runStep<T>(step: ReplaceStep<T>, context: FailureContext): T {
  try {
    return step.run();
  } catch (error) {
    if (context.staged !== null) removeQuietly(context.staged.folder);
    const state = context.to !== undefined
      ? `${context.to} may be partly rebuilt (the live store was not touched); fix the cause and run again`
      : step.stateIfFailed?.(error) ?? liveState(step.changedIfFailed(), context);
    throw new OperationError(`restore failed while ${step.doing} (${describeOsError(error)}); ${state}`, {
      cause: error,
    });
  }
}

/** The live store's state after a step failed, and the next step; the intent is cleared when nothing changed. */
function liveState(changed: boolean, { intent, preStamp }: FailureContext): string {
  if (intent === null) return `live data may be partly restored; ${goBack(preStamp)}`;
  const path = restoreIntentPath(intent.db);
  if (!changed && intent.unfinished === null) {
    try {
      if (intent.written) clearIntent(intent.db);
    } catch (error) {
      return `the database, registry and Chroma were not changed, but the record ${path} could not be removed ` +
        `(${describeOsError(error)}): remove it, fix the cause and run again`;
    }
    return "the database, registry and Chroma were not changed; fix the cause and run again";
  }
  const left = changed
    ? "live data may be partly restored"
    : `the store is still as the restore of ${intent.unfinished!.stamp} that did not finish left it`;
  return `${left}; ${unfinishedNote(intent)}`;
}

function stagingStep(plan: RestorePlan, reporter: Reporter): ReplaceStep<StagedChroma | null> {
  const { sources, targets } = plan;
  return {
    doing: `staging the Chroma copy in ${targets.chroma}`,
    run: () => sources.chroma === null ? null : stageChroma(sources.chroma, targets.chroma, reporter),
    changedIfFailed: () => false,
  };
}

/** The steps after staging, in order: live data changes from the database's replacement on. */
function replaceSteps(
  plan: RestorePlan,
  staged: StagedChroma | null,
  options: RestoreOptions,
  intent: IntentContext | null,
): ReplaceStep<void>[] {
  const { sources: { db, registry }, targets } = plan;
  const { driver, reporter } = options;
  const dbBefore = statOrNull(targets.db)?.ino; // the steps before the replacement change the database in place at most
  const steps: ReplaceStep<void>[] = [{
    doing: `checkpointing the database ${targets.db}`,
    run: () => checkpointLive(driver, targets.db, reporter),
    changedIfFailed: () => false,
  }, {
    doing: "removing the database's -wal and -shm",
    run: () => [`${targets.db}-wal`, `${targets.db}-shm`].forEach((sidecar) => removeQuietly(sidecar)),
    changedIfFailed: () => false,
  }, {
    doing: `replacing the database ${targets.db}`,
    run: () => replaceDatabase(db, targets.db, reporter),
    changedIfFailed: () => statOrNull(targets.db)?.ino !== dbBefore,
  }];
  const registryStep: ReplaceStep<void>[] = registry === null ? [] : [{
    doing: `replacing the registry ${targets.registry}`,
    run: () => replaceRegistry(registry, targets.registry, reporter),
    changedIfFailed: () => true,
  }];
  const swapStep: ReplaceStep<void>[] = staged === null ? [] : [{
    doing: `swapping the contents of the Chroma folder ${targets.chroma}`,
    run: () => {
      swapChroma(staged, targets.chroma, reporter, recordSwap(intent));
      reporter.event("info", "restore_chroma_swapped", { target: targets.chroma, ...staged.totals });
    },
    changedIfFailed: () => true,
    stateIfFailed: (error) => {
      if (!(error instanceof SwapFailure) || intent === null) return null;
      const replaced = registry === null ? "the database is" : "the database and the registry are";
      return `${error.state}; ${replaced} already those of snapshot ${intent.record.stamp}; ${unfinishedNote(intent)}`;
    },
  }];
  return [...steps, ...registryStep, ...swapStep];
}

/** Clear temporaries left beside the database, and checkpoint (TRUNCATE) its WAL when it exists. */
function checkpointLive(driver: SqliteDriver, path: string, reporter: Reporter): void {
  removeStaleTemporaries(path, reporter);
  if (!isFile(path)) return;
  try {
    driver.checkpointTruncate(path);
  } catch (error) {
    if (!(error instanceof SqliteError)) throw error;
    reporter.event("warning", "restore_pre_checkpoint_failed", { target_db: path, error: error.message });
  }
}

function replaceDatabase(source: string, target: string, reporter: Reporter): void {
  reporter.event("info", "restore_db_replacing", { source, target });
  replaceFileAtomic(source, target);
  reporter.event("info", "restore_db_replaced", { target });
}

function replaceRegistry(source: string, target: string, reporter: Reporter): void {
  removeStaleTemporaries(target, reporter);
  replaceFileAtomic(source, target);
}

/** Remove temporary copies beside `target` left by a restore that was killed (the lock rules out a live one). */
function removeStaleTemporaries(target: string, reporter: Reporter): void {
  const folder = dirname(target);
  const names = entriesOrNone(folder).map((entry) => entry.name);
  for (const name of names.filter((name) => name.startsWith(`.${basename(target)}.tmp-`))) {
    removeQuietly(join(folder, name));
    reporter.event("warning", "stale_leftover_removed", { path: join(folder, name) });
  }
}

/** `null` when the restored database passes `PRAGMA integrity_check`, else the problem. */
function checkRestored(driver: SqliteDriver, path: string): string | null {
  try {
    const answer = driver.integrityCheck(path);
    return answer === "ok" ? null : answer;
  } catch (error) {
    return `db_open_failed: ${(error as Error).message}`;
  }
}

/** Report a failed integrity check with the way back, then the module's completion event. */
function reportRestored(result: RestoreResult, reporter: Reporter): void {
  if (result.integrity_error !== undefined) {
    reporter.event("warning", "restore_integrity_failed", {
      target_db: result.target_db,
      integrity_error: result.integrity_error,
      next_step: goBack(result.pre_restore_snapshot),
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
  };
}
