/**
 * Reading a snapshot from a repository for restore and drill: the name given resolved against the listing, the
 * snapshot fetched into a scratch folder laid out as a backup folder, which the existing engines then read from.
 *
 * @module
 */
import { sharedWith } from "../fs/shared_folder.ts";
import { dirname, join, resolve } from "node:path";
import type { Config } from "../config.ts";
import type { AgeIdentity } from "../crypto/age.ts";
import {
  describeOsError,
  ExitCode,
  isIoError,
  OperationError,
  RefusedError,
  ToolError,
  UsageError,
} from "../errors.ts";
import { nextStep } from "./next_step.ts";
import { flushSoon, FOLDER_MODE } from "../fs/durable.ts";
import { isSameOrInside } from "../fs/real_path.ts";
import { type LockedFolder, makeLockedFolder } from "../fs/locked_folder.ts";
import { formatBytes } from "../text/bytes.ts";
import { fileSystemSpace } from "../sys/free_space.ts";
import type { Reporter } from "../report/reporter.ts";
import {
  AlteredObjectError,
  type Backend,
  isUnreachable,
  RepositoryFindingError,
  RepositoryVanishedError,
  StorageError,
} from "../repo/backend.ts";
import { type FetchResult, fetchSnapshot } from "../repo/fetch.ts";
import { CONFIG_NAME, parseSnapshotKey, refsName, snapshotKeyText } from "../repo/layout.ts";
import { isAlteredRefs, listSnapshots, readRefs } from "../repo/snapshots.ts";
import {
  checkAuthenticity,
  refsStanding,
  snapshotClaim,
  unauthenticNext,
  UnauthenticSnapshotError,
} from "../repo/authenticity.ts";
import { deriveAuthKey } from "../crypto/auth_key.ts";
import { pushedRecordPath, snapshotDir, snapshotsDir } from "../snapshot/layout.ts";
import { PushedStamps } from "../repo/pushed_record.ts";
import { isInFuture } from "../snapshot/clock.ts";
import { alteredNames, alteredSnapshot, warnPassedOverAltered } from "./altered_snapshots.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { openForReading } from "./remote.ts";
import { type RestoreOptions, type RestoreResult, restoreSnapshot } from "./restore.ts";
import { checkLivePaths, checkToFolder, probeToFolder, requireAcknowledgment } from "./restore_plan.ts";
import { removeKilledScratch, SCRATCH_PREFIX, UNLOCKED_SCRATCH_PREFIX } from "./restore_leftovers.ts";
import { InterruptedError, stopIfInterrupted } from "../sys/interrupt.ts";
import { systemTempFolder } from "../fs/system_temp.ts";

/** Where a snapshot is read from: the repository and the identities that decrypt it. */
export interface RemoteSource {
  backend: Backend;
  identities: readonly AgeIdentity[];
  /** Recipients the operator gave, checked against the repository's. */
  recipients?: readonly string[];
  /** Packs read and opened at once (`--transfers`). */
  transfers?: number;
  /** Accept a snapshot whose refs hold no MAC for the identities (`--allow-unauthenticated`; warned). */
  allowUnauthenticated?: boolean;
  /** The identity file the identities were read from (absolute): an unfinished restore's next step names it. */
  identityFile?: string;
  /** The repository flags given, quoted, each with a leading space: the `remote list` a message prints carries them. */
  repositoryFlags?: string;
  /** `--identity FILE` (with a leading space) when the identity file was given as a flag: a printed verify needs it. */
  identityFlag?: string;
}

/** What was fetched, for the result of the command that used it. */
export interface FetchSummary {
  location: string;
  /** `<stamp>_<push id>`. */
  snapshot: string;
  files: number;
  bytes: number;
  packs_read: number;
  bytes_downloaded: number;
  fetch_seconds: number;
  /** Whether a MAC by the identity's auth key authenticated it (else it was accepted with --allow-unauthenticated). */
  authenticated: boolean;
}

/** A snapshot fetched into a scratch backup folder, removed at the end of the `using` scope. */
export interface FetchedSnapshot extends Disposable {
  /** The scratch folder, laid out as a backup folder: the snapshot is `<sourceDir>/snapshots/<stamp>`. */
  sourceDir: string;
  stamp: string;
  summary: FetchSummary;
  /** Each file's SHA-256 by path, taken from the bytes the fetch wrote and equal to the document's. */
  verified: ReadonlyMap<string, string>;
  /** The databases whose bytes, proven by `verified`, passed the push's integrity check (see `FetchResult`). */
  integrityChecked: ReadonlySet<string>;
}

/**
 * The snapshot `given` names in the repository (`<stamp>_<push id>`, or a stamp that one push has), or the newest
 * with `"latest"`. A stamp that several pushes share is refused naming them. The `remote list` and `push` a refusal
 * prints carry `flags` (see {@linkcode RemoteSource.repositoryFlags}).
 *
 * @throws {UsageError} when nothing or more than one snapshot matches; {@linkcode OperationError} when the repository
 *   lists no snapshot at all (for `"latest"`).
 */
export async function resolveRemoteSnapshot(
  backend: Backend,
  given: string | "latest",
  clock: { now: Date; reporter: Reporter },
  flags = "",
): Promise<string> {
  const names = (await listSnapshots(backend)).snapshots.map(({ key }) => snapshotKeyText(key));
  if (given === "latest") return await latestRemote(backend, names, clock, flags);
  const list = remoteListStep(flags);
  const isKey = checkedRemoteName(given, flags) === "key";
  if (isKey && names.includes(given)) return given;
  // by its stamp, one swapped among others of that second is refused too: it may be the one wanted
  const swapped = (await alteredNames(backend)).find((name) => isKey ? name === given : name.startsWith(`${given}_`));
  if (swapped !== undefined) throw alteredSnapshot(backend.location, swapped, list);
  if (!isKey) return unique(names, given, backend.location, list);
  throw new UsageError(`no snapshot ${given} in ${backend.location}; ${list}`);
}

/** The newest snapshot of `names` (see {@linkcode resolveRemoteSnapshot}), warning of swapped ones as new or newer. */
async function latestRemote(
  backend: Backend,
  names: string[],
  clock: { now: Date; reporter: Reporter },
  flags: string,
): Promise<string> {
  const altered = await alteredNames(backend);
  const list = remoteListStep(flags);
  if (names.length === 0) {
    // the newest not stamped in the future: what a latest would have been
    const current = altered.filter((name) => !isInFuture(name.split("_")[0], clock.now));
    if (altered.length > 0) throw alteredSnapshot(backend.location, current.at(-1) ?? altered.at(-1)!, list);
    // run where the backup folder is: this host (a CI runner) may have none
    const push = nextStep(
      "push one first ('atocore-backup push --latest')",
      "push one first with",
      "push --latest",
      flags,
    );
    throw new OperationError(`no snapshots in ${backend.location}; ${push}`);
  }
  const stamp = latestRemoteStamp(names, backend.location, clock, list);
  const pushes = names.filter((name) => name.startsWith(`${stamp}_`)); // hosts pushing in the same second
  if (pushes.length > 1) {
    clock.reporter.event("info", "latest_pushed_more_than_once", { pushes, chosen: pushes.at(-1) });
  }
  warnPassedOverAltered(altered, pushes.at(-1)!, { location: backend.location, ...clock });
  return pushes.at(-1)!;
}

/**
 * The newest stamp of `names` not in the future by this host's clock: one stamped later (a pushing host's clock was
 * ahead, or a writer of the repository named it so) would be drilled every night for ever; passed over with a warning.
 *
 * @throws {OperationError} when every one is in the future.
 */
function latestRemoteStamp(
  names: string[],
  location: string,
  clock: { now: Date; reporter: Reporter },
  list: string,
): string {
  const newestFirst = [...new Set(names.map((name) => name.split("_")[0]))].reverse();
  const skippedInFuture = newestFirst.filter((stamp) => isInFuture(stamp, clock.now));
  const stamp = newestFirst.find((stamp) => !isInFuture(stamp, clock.now));
  if (skippedInFuture.length) {
    clock.reporter.event("warning", "drill_latest_skipped_future", { stamps: skippedInFuture, chosen: stamp ?? null });
  }
  if (stamp !== undefined) return stamp;
  throw new OperationError(
    `every snapshot in ${location} is stamped in the future (newest ${skippedInFuture[0]}); check the pushing ` +
      `host's clock, then give one by its name; ${list}`,
  );
}

/**
 * What kind of name `given` is: a stamp, or `<stamp>_<push id>`.
 *
 * @param flags The repository's flags, for the `remote list` the error prints (see {@linkcode remoteListStep}).
 * @throws {UsageError} for anything else, before any work.
 */
export function checkedRemoteName(given: string, flags = ""): "stamp" | "key" {
  if (parseSnapshotKey(given) !== null) return "key";
  if (isStamp(given)) return "stamp";
  throw new UsageError(
    `not a snapshot stamp: ${JSON.stringify(given.slice(0, 60))}; give STAMP or STAMP_PUSHID; ${remoteListStep(flags)}`,
  );
}

/** See the repository's snapshots: short, or with `flags` (the repository's, as given) the command written out whole. */
function remoteListStep(flags: string): string {
  return nextStep("see 'atocore-backup remote list'", "see them with", "remote list", flags);
}

function unique(names: string[], stamp: string, location: string, list: string): string {
  const matching = names.filter((name) => name.startsWith(`${stamp}_`));
  if (matching.length === 1) return matching[0];
  if (matching.length === 0) {
    throw new UsageError(`no snapshot of ${stamp} in ${location}; ${list}`);
  }
  throw new UsageError(
    `${matching.length} pushes of ${stamp} are in ${location}: ${matching.join(", ")}; give one of them`,
  );
}

/**
 * A restore refuses a repository altered by hand where it looks for the snapshot (its object swapped for a link or a
 * FIFO, `snapshots/` a link or a mount point) with exit 3, as it does an altered pack; other errors rethrown.
 */
function refusedAltered(error: unknown): never {
  if (error instanceof AlteredObjectError) throw new RefusedError(error.message, { cause: error });
  throw error;
}

/**
 * Pick another snapshot or check the repository: short when the commands reach this run's repository as they are, else
 * both written out with its flags (see {@linkcode RemoteSource.repositoryFlags}), the verify with the identity given.
 */
function anotherOrVerify({ repositoryFlags = "", identityFlag = "" }: RemoteSource): string {
  if (repositoryFlags + identityFlag === "") {
    return "pick another snapshot ('remote list') or check the repository ('remote verify --read-data')";
  }
  return `pick another snapshot, listed by: atocore-backup remote list${repositoryFlags}; or check the repository ` +
    `with: atocore-backup remote verify --read-data${repositoryFlags}${identityFlag}`;
}

/** Options of {@linkcode fetchToScratch}. */
export interface ScratchFetchOptions {
  /** The folder the scratch folder is made in (default: the system's temporary folder). */
  scratchParent?: string;
  /**
   * Where to make the scratch folder when `scratchParent` is not given, so that a restore can move the files into
   * place (the target's filesystem); the system's temporary folder when it cannot be made there.
   */
  preferredParent?: string;
  reporter: Reporter;
  /** Aborted to stop between two packs: the scratch folder is removed and the signal's reason thrown. */
  signal?: AbortSignal;
  /** Flush the files as they are written (`FetchOptions.flushAhead`): a restore makes them durable next. */
  flushAhead?: boolean;
}

/**
 * Fetch snapshot `name` into a new scratch folder (the caller has checked the repository against this host's pin, see
 * {@linkcode checkSource}). Nothing is left behind when it fails.
 *
 * @throws {RefusedError} when the snapshot cannot be fetched intact (another key, an object missing, damaged,
 *   swapped); {@linkcode OperationError} when the scratch folder cannot take it or the network stopped the fetch.
 */
export async function fetchToScratch(
  config: Config,
  source: RemoteSource,
  name: string,
  options: ScratchFetchOptions,
): Promise<FetchedSnapshot> {
  refuseScratchInStore(config, options.scratchParent);
  const scratch = makeScratch(options.scratchParent, options.preferredParent, options.reporter);
  const sourceDir = scratch.path;
  const begun = performance.now();
  try {
    const stamp = name.split("_")[0];
    Deno.mkdirSync(snapshotsDir(sourceDir), { mode: FOLDER_MODE });
    options.reporter.event("info", "remote_fetch_started", { snapshot: name, location: source.backend.location });
    const fetched = await fetchSnapshot(source.backend, source.identities, name, snapshotDir(sourceDir, stamp), {
      onProgress: (done, total) => {
        stopIfInterrupted(options.signal); // between packs: only the scratch folder was written
        options.reporter.progress("fetching", done, total);
      },
      beforeWriting: (bytes) => requireScratchSpace(sourceDir, bytes, options.reporter),
      transfers: source.transfers,
      allowUnauthenticated: source.allowUnauthenticated,
      flushAhead: options.flushAhead,
    });
    if (!fetched.authenticated) {
      options.reporter.event("warning", "remote_snapshot_unauthenticated", {
        snapshot: name,
        refs: refsName(parseSnapshotKey(name)!),
      });
    }
    const summary = summarize(source.backend.location, fetched, (performance.now() - begun) / 1000);
    options.reporter.event("info", "remote_fetch_finished", { ...summary, scratch: sourceDir });
    const { verified, integrityChecked } = fetched;
    const dispose = () => scratch[Symbol.dispose]();
    return { sourceDir, stamp, summary, verified, integrityChecked, [Symbol.dispose]: dispose };
  } catch (error) {
    scratch[Symbol.dispose]();
    throw await repositoryGone(source.backend, name, error) ??
      fetchFailure(error, name, source, sourceDir);
  }
}

/**
 * When a fetch of `name` failed with `error`, a repository whose config is gone meanwhile (a mount gone, the folder
 * moved) as one line that says so, exit 1: the snapshot is not to blame for the objects missing. `null` when the config
 * is still there, or the failure had another cause (interrupted, the network, the access).
 */
async function repositoryGone(backend: Backend, name: string, error: unknown): Promise<OperationError | null> {
  if (error instanceof InterruptedError || error instanceof StorageError || isUnreachable(error)) return null;
  try {
    if (!(error instanceof RepositoryVanishedError) && await backend.stat(CONFIG_NAME) !== null) return null;
  } catch (looked) {
    // the config cannot be looked at: the fetch's own error says more
    if (!(looked instanceof RepositoryVanishedError)) return null;
  }
  return new OperationError(
    `fetching ${name} stopped: the repository ${backend.location} is no longer reachable (its config is gone: not ` +
      "mounted any more? moved?); nothing was changed, the scratch copy is removed; make it reachable again, then run " +
      "again",
    { cause: error },
  );
}

/** Who the repository of a restore is: its id, and this backup folder's source id there (`null`: it never pushed). */
export interface SourceCheck {
  repositoryId: string;
  own: string | null;
}

/**
 * Open the repository and check it against this host's pin (where it pushed there), the recipients given, and the
 * identities given (one must be a recipient of its).
 *
 * @throws {UsageError} when there is no repository; {@linkcode RefusedError} when it is not the pinned one, or no
 *   identity given is a recipient.
 */
export async function checkSource(config: Config, source: RemoteSource): Promise<SourceCheck> {
  const { repository, own } = await openForReading(config, source.backend, source);
  return { repositoryId: repository.config.id, own };
}

/**
 * Refuse a live restore of snapshot `name` when its refs name another source than this backup folder's (`own`, from
 * its pin): in a repository several hosts share, a stamp taken from 'remote list' may be another host's, whose store
 * would replace this one's. Not where this folder never pushed (`own` null: a rebuilt host restores what it finds),
 * for unreadable refs (the fetch says why), nor when allowed. The source is believed only where a MAC by the
 * identities' keys covers the refs' fields: a forged refs, or an unsigned one not allowed, is refused by the fetch for
 * what it is, never said to be another host's; refs (or none) without a MAC over their fields, which the fetch takes
 * (the snapshot's MAC verifies, or unsigned ones are allowed), may name a source a writer edited, and are refused unless
 * this folder's record of its pushes names the snapshot (`recorded`). Returns whether it is another's (allowed), which
 * the restore that finishes it needs to be told again.
 *
 * @throws {RefusedError} naming both sources and how to restore it all the same.
 */
async function refuseOtherSource(
  source: RemoteSource,
  name: string,
  { repositoryId, own, recorded }: SourceCheck & { recorded: (name: string) => boolean },
  allowed: boolean,
): Promise<boolean> {
  const { backend } = source;
  if (own === null) return false;
  const key = parseSnapshotKey(name)!;
  // the fetch's own judgement of the refs, made on these very refs: a writer who swaps them between this read and the
  // fetch's (missing here, another folder's genuine ones there) is refused here, never let through to it
  const refs = await readRefs(backend, key).catch((error) => {
    throw isAlteredRefs(error) ? new RefusedError(`${describeOsError(error)}; nothing was changed`) : error;
  });
  const claim = snapshotClaim(repositoryId, key, refs?.snapshot_sha256 ?? "");
  try {
    checkAuthenticity(refs, source.identities, claim, key, source.allowUnauthenticated ?? false);
  } catch (error) {
    if (!(error instanceof UnauthenticSnapshotError) || !source.repositoryFlags) throw error;
    throw new RefusedError(`${error.finding}; refused: ${unauthenticNext(error.allowable, source.repositoryFlags)}`);
  }
  const standing = refs === null
    ? "unsigned"
    : refsStanding(refs, source.identities.map(deriveAuthKey), claim).standing;
  // no MAC over the refs' fields: their source (or its absence) may be a writer's edit
  const untold = standing !== "vouched" && !recorded(name);
  if (!untold && (standing !== "vouched" || refs?.source === undefined || refs.source === own)) return false;
  if (allowed) return true;
  throw new RefusedError(
    untold
      ? `${name} in ${backend.location} carries no MAC over its refs' source (pushed without an auth key or by a ` +
        "version before that MAC, or stripped by a writer of the repository) and this backup folder's record of its " +
        "pushes does not name it, so whose store it is cannot be told; nothing was changed; if it is this host's, " +
        "add --other-source to restore it here all the same (--to DIR restores it aside)"
      : `${name} in ${backend.location} was pushed by another backup folder (source ${refs!.source}; this one's is ` +
        `${own}: see SOURCE in 'remote list'), so its store would replace this host's; nothing was changed; give ` +
        "this host's snapshot, or add --other-source to restore that one here all the same (--to DIR restores it aside)",
  );
}

function summarize(location: string, fetched: FetchResult, seconds: number): FetchSummary {
  return {
    location,
    snapshot: fetched.snapshot,
    files: fetched.files,
    bytes: fetched.bytes,
    packs_read: fetched.packs_read,
    bytes_downloaded: fetched.bytes_downloaded,
    fetch_seconds: Math.round(seconds * 1000) / 1000,
    authenticated: fetched.authenticated,
  };
}

/** A failed fetch as one line: a repository problem is a refusal (exit 3), a local one a failure (exit 1). */
function fetchFailure(error: unknown, name: string, source: RemoteSource, scratch: string): ToolError {
  const location = source.backend.location;
  if (error instanceof UnauthenticSnapshotError && source.repositoryFlags) { // its remote list reaches this repository
    const next = unauthenticNext(error.allowable, source.repositoryFlags);
    return new RefusedError(`${error.finding}; refused: ${next}`, { cause: error });
  }
  if (error instanceof UsageError || error instanceof RefusedError || error instanceof InterruptedError) return error;
  // the server refused this host (denied access, a wrong key or region): the settings, not the snapshot, are at fault
  if (error instanceof ToolError && error.exitCode === ExitCode.Usage) return error;
  if (error instanceof StorageError) { // the access or the disk, not the snapshot: its own next step, exit 1
    return new OperationError(`fetching ${name} stopped: ${error.message}; nothing was changed`, { cause: error });
  }
  if (isUnreachable(error)) { // the link, not the snapshot: its own next step, exit 1
    return new OperationError(`fetching ${name} stopped: ${(error as Error).message}; nothing was changed`, {
      cause: error,
    });
  }
  if (error instanceof ToolError) {
    // the finding without its own 'remote verify': the next step below gives one, with this run's flags
    const found = error instanceof RepositoryFindingError ? error.finding : error.message;
    return new RefusedError(
      `snapshot ${name} of ${location} cannot be read intact: ${found}; nothing was changed; ` +
        anotherOrVerify(source),
      { cause: error },
    );
  }
  const elsewhere = isIoError(error)
    ? "check that disk's storage (dmesg), or give --scratch-dir DIR on another disk" // room is not what failed
    : "give --scratch-dir DIR on a disk with room for one copy of the store";
  return new OperationError(
    `fetching ${name} from ${location} into the scratch folder ${scratch} failed (${describeOsError(error)}); ` +
      `nothing was changed; ${elsewhere}`,
    { cause: error },
  );
}

/** A scratch folder and the lock its fetch holds on it while it lives (a killed fetch's is free: a leftover). */
type Scratch = LockedFolder;

/**
 * A new scratch folder: in `parent` when given, else in `preferred` when one can be made there, else in the system's
 * temporary folder, with a warning saying why not in `preferred`. Leftovers of killed fetches there are removed first.
 *
 * @throws {OperationError} naming the folder when it cannot be made.
 */
function makeScratch(parent: string | undefined, preferred: string | undefined, reporter: Reporter): Scratch {
  const shared = preferred === undefined ? null : sharedWith(preferred);
  if (parent === undefined && preferred !== undefined && shared === null) {
    try {
      return lockedScratch(preferred, reporter);
    } catch (error) {
      // not there (no right to write, a read-only filesystem): the temporary folder, said with why
      const why = error instanceof ToolError ? error.message : describeOsError(error);
      reporter.event("warning", "remote_scratch_not_made", { folder: preferred, error: why, used: systemTempFolder() });
    }
  }
  if (parent === undefined && shared !== null) {
    reporter.event("warning", "remote_scratch_elsewhere", { folder: preferred, why: shared, used: systemTempFolder() });
  }
  const folder = parent ?? systemTempFolder();
  const tempShared = parent === undefined ? sharedWith(folder) : null; // a --scratch-dir given is taken as it is
  if (tempShared !== null) {
    throw new OperationError(
      `the temporary folder ${folder} is no place for the fetch's scratch copy (${tempShared}: that user could swap ` +
        "it for a link); nothing was changed; set TMPDIR to a folder only you may write, or give --scratch-dir DIR",
    );
  }
  try {
    return lockedScratch(folder, reporter);
  } catch (error) {
    if (error instanceof ToolError) throw error; // a leftover there that cannot be told from a fetch's: said already
    const where = parent ?? `the temporary folder ${folder}`;
    throw new OperationError(
      `cannot make a scratch folder in ${where} (${describeOsError(error)}); nothing was changed; ` +
        (parent === undefined ? "set TMPDIR or give --scratch-dir DIR" : "check --scratch-dir"),
      { cause: error },
    );
  }
}

/**
 * Remove killed fetches' leftovers in `parent`, then make a scratch folder there, locked (flock) before it takes its
 * name: another fetch clearing leftovers at that moment never takes it for one.
 */
function lockedScratch(parent: string, reporter: Reporter): Scratch {
  removeKilledScratch(parent, reporter);
  // one a kill leaves is removed by a later fetch (see restore_leftovers.ts)
  return makeLockedFolder(
    parent,
    { prefix: SCRATCH_PREFIX, unlockedPrefix: UNLOCKED_SCRATCH_PREFIX },
    (holder) => holder.lockSync(true),
  );
}

/**
 * Refuse (exit 3, nothing changed) a fetch of `bytes` that the scratch folder's filesystem has no room for; the
 * restore's own free-space check follows, with the fetched copy on disk.
 */
function requireScratchSpace(scratch: string, bytes: number, reporter: Reporter): void {
  const space = fileSystemSpace(scratch);
  if (space === null) return reporter.event("warning", "free_space_check_unavailable", { path: scratch });
  if (bytes <= space.available) return;
  throw new RefusedError(
    `not enough free space for the fetched copy in ${dirname(scratch)}: it needs ${formatBytes(bytes)} and has ` +
      `${formatBytes(space.available)} free; nothing was changed; free at least ` +
      `${formatBytes(bytes - space.available)} there, or give --scratch-dir DIR on a disk with room for the store`,
  );
}

/** Refuse a scratch folder inside the Chroma folder or the backup folder's snapshots (restore and cleanup change them). */
function refuseScratchInStore(config: Config, parent: string | undefined): void {
  if (parent === undefined) return;
  for (
    const [label, path] of [["the Chroma folder", config.chromaDir.path], [
      "the backup folder's snapshots",
      snapshotsDir(config.backupDir.path),
    ]]
  ) {
    if (isSameOrInside(parent, path)) {
      throw new UsageError(`--scratch-dir ${parent} is inside ${label} ${path}; give a folder of its own`);
    }
  }
}

/** A restore read from a repository: the restore's result and what was fetched. */
export type RemoteRestoreResult = RestoreResult & { remote: FetchSummary };

/**
 * Restore snapshot `given` (`STAMP` or `STAMP_PUSHID`) of the repository: the refusals that need no repository first
 * (target kinds), then the snapshot looked up (one the repository lacks is a usage error, as a local one is, before the
 * acknowledgment is asked for), the acknowledgment, the fetch into scratch, then the restore engine with every safety,
 * reading from the scratch folder (the pre-restore snapshot still goes to the configured backup folder); the scratch
 * copy is removed.
 *
 * @throws as {@linkcode restoreSnapshot} and {@linkcode fetchToScratch}.
 */
export async function restoreFromRemote(
  config: Config,
  source: RemoteSource,
  given: string,
  options: RestoreOptions & { scratchParent?: string; otherSource?: boolean },
): Promise<RemoteRestoreResult> {
  const to = options.to === undefined ? null : resolve(options.to);
  if (to !== null) checkToFolder(config, to, options.force ?? false);
  else checkLivePaths(config);
  const checked = await checkSource(config, source);
  const clock = { now: new Date(), reporter: options.reporter };
  const name = await resolveRemoteSnapshot(source.backend, given, clock, source.repositoryFlags).catch(refusedAltered);
  const recorded = (snapshot: string) =>
    PushedStamps.read(pushedRecordPath(config.backupDir.path, source.backend.location), checked.repositoryId)
      .lists(snapshot);
  const otherSource = to === null &&
    await refuseOtherSource(source, name, { ...checked, recorded }, options.otherSource ?? false);
  requireAcknowledgment(config, to, options.confirmServiceStopped);
  if (to !== null) probeToFolder(to); // a folder that cannot be written is refused before the fetch
  const words = (): [string, string] => [
    `restore of ${name} from ${source.backend.location}`,
    "nothing was changed, the scratch copy is removed; run the restore again",
  ];
  let fetched: FetchedSnapshot;
  try {
    // On the target's filesystem, the restore moves the fetched files into place instead of copying them.
    const preferredParent = dirname(to ?? config.db.path);
    fetched = await fetchToScratch(config, source, name, { ...options, preferredParent, flushAhead: true });
  } catch (error) {
    if (error instanceof InterruptedError) throw error.told(...words());
    throw error;
  }
  using _scratch = fetched;
  // the fetched files are fsynced before they replace anything: the disk starts on that beside the validation
  const fetchedRoot = snapshotDir(fetched.sourceDir, fetched.stamp);
  const flushed = flushSoon([...fetched.verified.keys()].map((path) => join(fetchedRoot, path)));
  try {
    stopIfInterrupted(options.signal, words);
    const result = await restoreSnapshot(config, fetched.stamp, {
      ...options,
      sourceDir: fetched.sourceDir,
      remote: {
        snapshot: name,
        location: source.backend.location,
        ...(fetched.summary.authenticated ? {} : { unauthenticated: true }),
        ...(otherSource ? { other_source: true } : {}),
        ...(source.identityFile ? { identity_file: source.identityFile } : {}),
      },
      anotherSnapshot: anotherOrVerify(source),
      moveSources: true,
      verified: fetched.verified,
      integrityChecked: fetched.integrityChecked,
      flushed,
    });
    return { ...result, remote: fetched.summary };
  } finally {
    await flushed().catch(() => {}); // said by the restore, or it stopped before for another reason
  }
}
