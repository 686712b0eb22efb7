/**
 * Pushing local snapshots to a repository: which ones, each validated while it is sent (an invalid one is refused
 * before anything of it is listed); errors of the disk or the mount become one line naming the object and the next step.
 * The caller holds the backup folder's lock.
 *
 * @module
 */
import { relative } from "node:path";
import type { Config } from "../config.ts";
import { describeOsError, isUnusablePath, OperationError, osErrorPath, ToolError, UsageError } from "../errors.ts";
import type { PushFacts } from "../report/metrics.ts";
import type { Reporter } from "../report/reporter.ts";
import { type Backend, isUnreachable, ObjectExistsError } from "../repo/backend.ts";
import { type PushResult, pushSnapshot } from "../repo/push.ts";
import { SnapshotFileChangedError } from "../repo/push_session.ts";
import { UnreadableSnapshotError } from "../repo/local_snapshot.ts";
import { MaybeListedError, StoppedPublishing } from "../repo/publish.ts";
import { parseName } from "../repo/layout.ts";
import type { PushAuth } from "../repo/authenticity.ts";
import { checkedStamp, remoteStateDir, snapshotDir } from "../snapshot/layout.ts";
import { isStamp } from "../snapshot/stamp.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { isPreRestoreSnapshot, latestStamp, listStep, snapshotNames } from "./list.ts";
import {
  CheckedAtCreate,
  InvalidSnapshotError,
  noSuchSnapshot,
  storedMeanwhile,
  ValidationBeside,
  ValidationWhenNeeded,
} from "./push_validation.ts";
import { unreadableSnapshotText } from "./validate.ts";
import { pathFlags } from "./restore_intent.ts";
import { nextStep as printedStep } from "./next_step.ts";
import { deniedPath } from "../fs/denied_path.ts";
import { InterruptedError, stopIfInterrupted } from "../sys/interrupt.ts";
import { isDirectory } from "../fs/probe.ts";
import { giveTreeBelowLike } from "../fs/give_tree.ts";

/** Which local snapshots to push. */
export type PushSelection = { stamp: string } | { latest: true } | { all: true };

/** Options of {@linkcode pushLocalSnapshots}. */
export interface LocalPushOptions {
  driver: SqliteDriver;
  reporter: Reporter;
  /** Recipients the operator expects; a repository with others is refused. */
  recipients?: readonly string[];
  /** The keys the snapshots' MACs are made with; none: unauthenticated pushes. */
  auth?: PushAuth;
  /**
   * How each snapshot is validated, beside its push (see `push_validation.ts`): `deep` (hashes), `quick` (sizes; the
   * push still checks each file it reads against the manifest), `none` (just validated by create).
   */
  validation: "deep" | "quick" | "none";
  /** Aborted to stop at the next safe point (before a snapshot, between blocks): nothing half is listed. */
  signal?: AbortSignal;
  /** Packs sealed and uploading at once (`--transfers`). */
  transfers?: number;
  /**
   * The flags a printed `push` needs to reach this run's backup folder and repository (see `pathFlags` and
   * `repositoryFlags`; none by default).
   */
  pushFlags?: string;
}

/** A snapshot that was not pushed because it did not validate. */
export interface RefusedSnapshot {
  stamp: string;
  errors: string[];
  /** Packs of it stored before the validation ended: kept for the next push, else `remote cleanup` removes them. */
  packs_stored: number;
}

/** What a push run did: each snapshot pushed (or already there), each refused, and the totals. */
export interface LocalPushResult {
  location: string;
  pushed: PushResult[];
  refused: RefusedSnapshot[];
  bytes_total: number;
  bytes_read: number;
  bytes_sent: number;
  objects_written: number;
  bytes_deduplicated: number;
  /** Pre-restore snapshots `--latest` or `--all` passed over (local undo points; `push STAMP` sends one). */
  passed_over_pre_restore: string[];
  /** Pre-restore snapshots pushed because they were named (`push STAMP`). */
  pre_restore_pushed: string[];
}

/**
 * Push the selected snapshots of the backup folder to `backend`, oldest first; snapshots whose stamp the repository
 * lists already are not validated again (the push sends nothing for them), nor, with `--all`, those this folder pushed
 * before that a remote cleanup removed since.
 *
 * @throws {UsageError} when no snapshot is selected; {@linkcode InvalidSnapshotError} (a refusal) when the one selected
 *   snapshot does not validate; a refusal when the repository is not the pinned one; {@linkcode OperationError} when a
 *   push fails (nothing of it is listed).
 */
export async function pushLocalSnapshots(
  config: Config,
  backend: Backend,
  selection: PushSelection,
  options: LocalPushOptions,
): Promise<LocalPushResult> {
  const { stamps, passedOver } = selectedStamps(config, selection, options);
  const result: LocalPushResult = {
    location: backend.location,
    pushed: [],
    refused: [],
    bytes_total: 0,
    bytes_read: 0,
    bytes_sent: 0,
    objects_written: 0,
    bytes_deduplicated: 0,
    passed_over_pre_restore: passedOver,
    pre_restore_pushed: [],
  };
  try {
    await pushEach(config, backend, { selection, stamps, options }, result);
  } finally {
    giveRemoteState(config.backupDir.path, backend.location);
  }
  return result;
}

/** Push each of `stamps` in turn into `result` (see {@linkcode pushLocalSnapshots}). */
async function pushEach(
  config: Config,
  backend: Backend,
  { selection, stamps, options }: { selection: PushSelection; stamps: string[]; options: LocalPushOptions },
  result: LocalPushResult,
): Promise<void> {
  for (const stamp of stamps) {
    stopIfInterrupted(options.signal, () => interruptedBetween(result, stamp));
    const validation = options.validation === "none"
      ? null
      : new ValidationWhenNeeded(() =>
        new ValidationBeside(config, stamp, options.driver, options.validation === "quick")
      );
    try {
      const pushed = await pushOne(
        config,
        backend,
        stamp,
        { ...options, all: "all" in selection },
        sentThisRun(result),
        validation,
      );
      if (result.pushed.length === 0) warnOfRecipientsWithoutKey(pushed, backend, options);
      add(result, pushed);
      if ("stamp" in selection && isPreRestoreSnapshot(config.backupDir.path, stamp)) {
        result.pre_restore_pushed.push(stamp);
      }
    } catch (error) {
      if (!(error instanceof InvalidSnapshotError && "all" in selection)) throw namingDone(error, result);
      const refused = { stamp, errors: error.errors, packs_stored: error.packsSent };
      options.reporter.event("warning", "push_refused_invalid", { ...refused });
      result.refused.push(refused);
      result.bytes_sent += error.bytesSent; // what it stored is sent all the same, kept for the next push
      result.objects_written += error.packsSent;
    }
  }
}

/**
 * Warn, once a run, when the authentication key file holds no key for some of the repository's recipients: their
 * identities cannot check what this host pushes, so a restore with one of them alone would be refused.
 */
function warnOfRecipientsWithoutKey(pushed: PushResult, backend: Backend, options: LocalPushOptions): void {
  if (pushed.recipients_without_key.length === 0 || options.auth === undefined) return;
  options.reporter.event("warning", "push_auth_key_incomplete", {
    auth_key: options.auth.source,
    recipients: pushed.recipients_without_key,
    location: backend.location,
  });
}

/** The snapshots this run pushed (not those it found pushed already). */
function sentThisRun(result: LocalPushResult): string[] {
  return result.pushed.filter((pushed) => !pushed.already_pushed && !pushed.removed_since_pushed).map((pushed) =>
    pushed.stamp
  );
}

/** `error`, its message naming the snapshots this run pushed (listed) before it, when there are any. */
function namingDone(error: unknown, result: LocalPushResult): unknown {
  const done = sentThisRun(result);
  if (done.length > 0 && error instanceof ToolError && !(error instanceof InterruptedError)) {
    error.message += `; pushed (listed) before it in this run: ${done.join(", ")}`;
  }
  return error;
}

/** The words of a push run stopped before snapshot `next`. */
function interruptedBetween(result: LocalPushResult, next: string): [string, string] {
  const done = sentThisRun(result);
  return [
    `push to ${result.location}`,
    `${done.length ? `${done.join(", ")} pushed (listed); ` : ""}${next} not pushed (nothing of it sent): ` +
    "run the push again",
  ];
}

/**
 * Push the snapshot `stamp` just made by create (validated before it was published), and report how it went instead
 * of throwing: a failed push does not undo a good snapshot.
 */
export async function pushAfterCreate(
  config: Config,
  backend: Backend,
  stamp: string,
  options: Omit<LocalPushOptions, "validation">,
): Promise<{ result: LocalPushResult } | { error: ToolError }> {
  try {
    return { result: await pushLocalSnapshots(config, backend, { stamp }, { ...options, validation: "none" }) };
  } catch (error) {
    if (error instanceof ToolError) return { error };
    return { error: new OperationError(`push of ${stamp} failed (${describeOsError(error)})`, { cause: error }) };
  }
}

/**
 * Give this host's state about the repository at `location` (see {@linkcode remoteStateDir}) that a root push or
 * remote cleanup made or replaced the backup folder's owner, as a snapshot is given: the service's user's own runs
 * update it.
 */
export function giveRemoteState(backupDir: string, location: string): void {
  try {
    giveTreeBelowLike(backupDir, relative(backupDir, remoteStateDir(backupDir, location)));
  } catch {
    // the push's outcome is what the operator needs to hear; a later push by that user names what it cannot write
  }
}

/** A push run's totals, as its metrics record them. */
export function pushFacts(result: LocalPushResult): PushFacts {
  return {
    bytesRead: result.bytes_read,
    bytesSent: result.bytes_sent,
    objectsWritten: result.objects_written,
    bytesDeduplicated: result.bytes_deduplicated,
  };
}

/**
 * The stamps `selection` pushes, oldest first, and the pre-restore snapshots `--latest` and `--all` pass over (the store
 * as it was before a restore, newest after it: pushed, it would stand for its day in the repository and a remote
 * cleanup would keep it in place of that day's real snapshot).
 */
function selectedStamps(
  config: Config,
  selection: PushSelection,
  { reporter, pushFlags = "" }: LocalPushOptions,
): { stamps: string[]; passedOver: string[] } {
  const backupDir = config.backupDir.path;
  if ("stamp" in selection) {
    return { stamps: [checkedStamp(selection.stamp, listStep(pathFlags(config, {}, ["backupDir"])))], passedOver: [] };
  }
  const stamps = snapshotNames(backupDir).filter(isStamp);
  if (stamps.length === 0) {
    // printed with this run's store paths, so that it makes one where this push looks
    const create = printedStep("run 'atocore-backup create' first", "make one first with", "create", pathFlags(config));
    throw new UsageError(`no snapshots to push in ${backupDir}; ${create}`);
  }
  if ("all" in selection) {
    const passedOver = stamps.filter((stamp) => isPreRestoreSnapshot(backupDir, stamp));
    return { stamps: stamps.filter((stamp) => !passedOver.includes(stamp)), passedOver: passedOver.reverse() };
  }
  const { stamp, skippedInFuture, sequenceIgnored, preRestore } = latestStamp(backupDir, new Date(), true);
  if (skippedInFuture.length) {
    reporter.event("warning", "push_latest_skipped_future", { stamps: skippedInFuture, chosen: stamp });
  }
  if (sequenceIgnored.length) {
    reporter.event("warning", "push_latest_sequence_ignored", { stamps: sequenceIgnored, chosen: stamp });
  }
  if (stamp !== null) return { stamps: [stamp], passedOver: preRestore };
  const what = [
    skippedInFuture.length ? "stamped in the future" : "",
    preRestore.length ? "a pre-restore snapshot" : "",
  ];
  const newest = skippedInFuture[0] ?? preRestore[0];
  const clock = skippedInFuture.length ? "check the clock, then " : "";
  const push = printedStep(
    `${clock}push one by its stamp ('atocore-backup push ${newest}')`,
    `${clock}push one by its stamp with`,
    `push ${newest}`,
    pushFlags,
  );
  throw new UsageError(
    `every snapshot in ${backupDir} is ${what.filter(Boolean).join(" or ")} (newest ${newest}); ${push}`,
  );
}

async function pushOne(
  config: Config,
  backend: Backend,
  stamp: string,
  options: LocalPushOptions & { all: boolean },
  before: string[],
  validation: ValidationWhenNeeded | null,
): Promise<PushResult> {
  if (!isDirectory(snapshotDir(config.backupDir.path, stamp))) {
    throw noSuchSnapshot(config.backupDir.path, stamp, pathFlags(config, {}, ["backupDir"]));
  }
  options.reporter.event("info", "push_started", { stamp, location: backend.location });
  const tracked = trackingWrites(backend);
  let pushed: PushResult;
  try {
    pushed = await pushSnapshot(config, tracked.backend, snapshotDir(config.backupDir.path, stamp), {
      recipients: options.recipients,
      auth: options.auth,
      transfers: options.transfers,
      onProgress: (done, total) => options.reporter.progress("pushing", done, total),
      signal: options.signal,
      gate: validation ?? (options.validation === "none" ? new CheckedAtCreate(config, stamp) : undefined),
      passOverRemoved: options.all,
    });
  } catch (error) {
    const all = options.all;
    throw await pushFailure(error, { stamp, location: backend.location, before, tracked, validation, config, all });
  }
  for (const warning of pushed.warnings) options.reporter.event("warning", "push_warning", { stamp, warning });
  options.reporter.event("info", "push_finished", {
    stamp,
    snapshot: pushed.snapshot,
    already_pushed: pushed.already_pushed,
    removed_since_pushed: pushed.removed_since_pushed,
    bytes_read: pushed.bytes_read,
    bytes_sent: pushed.bytes_sent,
    objects_written: pushed.objects_written,
  });
  return pushed;
}

/**
 * The error a failed push of `stamp` ends with: the validation's verdict first (a file edited since the snapshot was
 * made is its finding as well; metadata the push cannot read, a refusal as validate's), but a stop asked for is not
 * kept waiting for it; then what was kept and the next step.
 */
async function pushFailure(
  error: unknown,
  context: {
    stamp: string;
    location: string;
    before: string[];
    tracked: Tracked;
    validation: ValidationWhenNeeded | null;
    config: Config;
    /** Pushing `--all`: a snapshot this user may not read is then refused as an invalid one, and the others pushed. */
    all?: boolean;
  },
): Promise<unknown> {
  const { stamp, location, before, tracked, validation, config } = context;
  validation?.release();
  if (isUnusablePath(error) && tracked.packs === 0) return error; // the path given names nothing: a usage error
  const changed = error instanceof SnapshotFileChangedError ? error.path : null;
  let errors = error instanceof UnreadableSnapshotError
    ? [error.reason]
    : validation && !(error instanceof InterruptedError)
    ? await validation.verdict(changed)
    : [];
  const root = snapshotDir(config.backupDir.path, stamp);
  // what this user may not read is no damage: validate says so too (--all goes on past it, as past an invalid one)
  const denied = errors.length > 0 || error instanceof Deno.errors.PermissionDenied ? deniedPath(root) : null;
  if (denied !== null && !context.all) {
    return new OperationError(unreadableSnapshotText(stamp, denied, storedMeanwhile(tracked.packs)), { cause: error });
  }
  if (denied !== null) errors = [`snapshot_unreadable: permission denied: ${denied}`];
  if (errors.length > 0) return new InvalidSnapshotError(stamp, root, errors, tracked.packs, config, tracked.bytes);
  const kept =
    `the ${tracked.packs} new pack${tracked.packs === 1 ? "" : "s"} sent ${tracked.packs === 1 ? "is" : "are"}` +
    " kept";
  if (error instanceof InterruptedError) {
    const told = error.told(
      `push of ${stamp} to ${location}`,
      `${before.length ? `${before.join(", ")} pushed (listed); ` : ""}${stoppedState(error, stamp, tracked, kept)}`,
    );
    return error instanceof StoppedPublishing ? new StoppedPublishing(told, error.published) : told;
  }
  if (error instanceof MaybeListedError) return error; // its state said: "is not listed" would not be true
  if (isUnreachable(error)) {
    const sent = tracked.packs === 0 ? "" : `, and ${kept} for the next push to reuse`;
    return new OperationError(`${(error as Error).message}; ${stamp} is not listed${sent}`, { cause: error });
  }
  if (error instanceof ToolError) return withPacksKept(error, stamp, tracked.packs, kept);
  const where = tracked.failed === null ? osErrorPath(error) : ` writing ${tracked.failed}`;
  return new OperationError(
    `push of ${stamp} to ${location} failed${where}: ${describeOsError(error)}; nothing of it is listed; ` +
      nextStep(error, config.backupDir.path),
    { cause: error },
  );
}

/** What a push of `stamp` stopped by `stop` left, and the next step: a stop while publishing says what a look found. */
function stoppedState(stop: InterruptedError, stamp: string, tracked: Tracked, kept: string): string {
  const lease = LEASE_WORDS[tracked.lease];
  const published = stop instanceof StoppedPublishing ? stop.published : "not listed";
  if (published === "listed") {
    return `${stamp} is listed (its snapshot object was stored whole before the stop)${lease}; nothing to push again`;
  }
  if (published === "unknown") {
    return `${stamp} may be listed (the stop cut the upload of its snapshot object and no look after it told; ` +
      `'remote list' tells)${lease}; ${kept}: push again, it says already pushed when listed, else reuses them`;
  }
  return `${stamp} is not listed${lease}; ${kept}: push again, it reuses them`;
}

/**
 * A refusal or failure that came in the middle of a push (a host key changed, a key withdrawn) as the push left
 * things: its "nothing was done" is not true once packs were sent.
 */
function withPacksKept(error: ToolError, stamp: string, packs: number, kept: string): ToolError {
  if (packs === 0) return error;
  const state = `${stamp} is not listed, and ${kept} for the next push to reuse`;
  const message = error.message.includes("nothing was done")
    ? error.message.replace("nothing was done", state)
    : `${error.message}; ${state}`;
  return new ToolError(message, error.exitCode, { cause: error });
}

/** What a push did to the repository so far, for its messages: the write that failed, the packs, its lease. */
interface Tracked {
  backend: Backend;
  failed: string | null;
  packs: number;
  /** Bytes of the packs written. */
  bytes: number;
  lease: "none" | "held" | "removed";
}

/** How a stopped push's message tells of its lease. */
const LEASE_WORDS: Record<Tracked["lease"], string> = {
  none: "",
  held: " and its lease stays until it expires ('remote cleanup' removes it then)",
  removed: " and its lease is removed",
};

/** `backend` as it is, noting the name of the object whose write failed, the packs written and the lease. */
function trackingWrites(backend: Backend): Tracked {
  const tracked: Tracked = {
    failed: null,
    packs: 0,
    bytes: 0,
    lease: "none",
    backend: {
      location: backend.location,
      list: (prefix) => backend.list(prefix),
      read: (name, into, maxBytes) => backend.read(name, into, maxBytes),
      stat: (name) => backend.stat(name),
      remove: async (name) => {
        await backend.remove(name);
        if (parseName(name)?.kind === "lease") tracked.lease = "removed";
      },
      unlisted: backend.unlisted && ((prefix) => backend.unlisted!(prefix)), // a link among markers: reuse nothing
      write: async (name, bytes, writeOptions) => {
        try {
          await backend.write(name, bytes, writeOptions);
          const kind = parseName(name)?.kind;
          if (kind === "pack") [tracked.packs, tracked.bytes] = [tracked.packs + 1, tracked.bytes + bytes.length];
          if (kind === "lease") tracked.lease = "held";
        } catch (error) {
          // an object found there is the boundary's to judge (its own, whose answer was lost, is taken as written)
          if (!(error instanceof ObjectExistsError)) tracked.failed ??= name;
          throw error;
        }
      },
    },
  };
  return tracked;
}

/** What to do after a push failed on `error`: on the backup folder's disk (its state there) or the repository's. */
function nextStep(error: unknown, backupDir: string): string {
  const code = (error as { code?: unknown } | null)?.code;
  const local = osErrorPath(error).startsWith(` at ${backupDir}/`);
  if (code === "ENOSPC") {
    return `free space on ${
      local ? "the backup folder's disk" : "that disk"
    }, then push again (what was sent is reused)`;
  }
  if (code === "EROFS" || error instanceof Deno.errors.PermissionDenied) {
    return `make ${local ? "the backup folder" : "the repository"} writable for this user (a read-only mount?), then ` +
      "push again";
  }
  return "fix the cause, then push again (what was sent is reused)";
}

function add(total: LocalPushResult, pushed: PushResult): void {
  total.pushed.push(pushed);
  total.bytes_total += pushed.bytes_total;
  total.bytes_read += pushed.bytes_read;
  total.bytes_sent += pushed.bytes_sent;
  total.objects_written += pushed.objects_written;
  total.bytes_deduplicated += pushed.bytes_deduplicated;
}
