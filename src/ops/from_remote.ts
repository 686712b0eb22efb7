/**
 * Reading a snapshot from a repository for restore and drill: the name given resolved against the listing, the
 * snapshot fetched into a scratch folder laid out as a backup folder, which the existing engines then read from.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { Config } from "../config.ts";
import type { AgeIdentity } from "../crypto/age.ts";
import { describeOsError, OperationError, RefusedError, ToolError, UsageError } from "../errors.ts";
import { removeQuietly } from "../fs/durable.ts";
import { isSameOrInside } from "../fs/real_path.ts";
import type { Reporter } from "../report/reporter.ts";
import type { Backend } from "../repo/backend.ts";
import { type FetchResult, fetchSnapshot } from "../repo/fetch.ts";
import { parseSnapshotKey, snapshotKeyText } from "../repo/layout.ts";
import { openRepository } from "../repo/repository.ts";
import { listSnapshots } from "../repo/snapshots.ts";
import { snapshotsDir } from "../snapshot/layout.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { checkPinIfPinned } from "./remote.ts";
import { type RestoreOptions, type RestoreResult, restoreSnapshot } from "./restore.ts";
import { checkLivePaths, checkToFolder, requireAcknowledgment } from "./restore_plan.ts";
import { InterruptedError, stopIfInterrupted } from "../sys/interrupt.ts";

/** Where a snapshot is read from: the repository and the identities that decrypt it. */
export interface RemoteSource {
  backend: Backend;
  identities: readonly AgeIdentity[];
  /** Recipients the operator gave, checked against the repository's. */
  recipients?: readonly string[];
  /** Packs read and opened at once (`--transfers`). */
  transfers?: number;
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
}

/** A snapshot fetched into a scratch backup folder, removed at the end of the `using` scope. */
export interface FetchedSnapshot extends Disposable {
  /** The scratch folder, laid out as a backup folder: the snapshot is `<sourceDir>/snapshots/<stamp>`. */
  sourceDir: string;
  stamp: string;
  summary: FetchSummary;
}

/**
 * The snapshot `given` names in the repository (`<stamp>_<push id>`, or a stamp that one push has), or the newest
 * with `"latest"`. A stamp that several pushes share is refused naming them.
 *
 * @throws {UsageError} when nothing or more than one snapshot matches; {@linkcode OperationError} when the repository
 *   lists no snapshot at all (for `"latest"`).
 */
export async function resolveRemoteSnapshot(backend: Backend, given: string | "latest"): Promise<string> {
  const names = (await listSnapshots(backend)).snapshots.map(({ key }) => snapshotKeyText(key));
  if (given === "latest") {
    if (names.length === 0) {
      throw new OperationError(`no snapshots in ${backend.location}; push one first ('atocore-backup push --latest')`);
    }
    return unique(names, names.at(-1)!.split("_")[0], backend.location);
  }
  if (checkedRemoteName(given) === "key") {
    if (names.includes(given)) return given;
    throw new UsageError(`no snapshot ${given} in ${backend.location}; see 'atocore-backup remote list'`);
  }
  return unique(names, given, backend.location);
}

/**
 * What kind of name `given` is: a stamp, or `<stamp>_<push id>`.
 *
 * @throws {UsageError} for anything else, before any work.
 */
export function checkedRemoteName(given: string): "stamp" | "key" {
  if (parseSnapshotKey(given) !== null) return "key";
  if (isStamp(given)) return "stamp";
  throw new UsageError(
    `not a snapshot stamp: ${JSON.stringify(given.slice(0, 60))}; give STAMP or STAMP_PUSHID ('remote list')`,
  );
}

function unique(names: string[], stamp: string, location: string): string {
  const matching = names.filter((name) => name.startsWith(`${stamp}_`));
  if (matching.length === 1) return matching[0];
  if (matching.length === 0) {
    throw new UsageError(`no snapshot of ${stamp} in ${location}; see 'atocore-backup remote list'`);
  }
  throw new UsageError(
    `${matching.length} pushes of ${stamp} are in ${location}: ${matching.join(", ")}; give one of them`,
  );
}

/** Options of {@linkcode fetchToScratch}. */
export interface ScratchFetchOptions {
  /** The folder the scratch folder is made in (default: the system's temporary folder). */
  scratchParent?: string;
  /** The caller validates the fetched snapshot deeply (manifest hashes): files it hashes are not hashed twice. */
  deepValidation?: boolean;
  reporter: Reporter;
  /** Aborted to stop between two packs: the scratch folder is removed and the signal's reason thrown. */
  signal?: AbortSignal;
}

/**
 * Fetch snapshot `name` into a new scratch folder (the caller has checked the repository against this host's pin, see
 * {@linkcode checkSource}). Nothing is left behind when it fails.
 *
 * @throws {RefusedError} when the snapshot cannot be fetched intact (another key, an object missing, damaged,
 *   swapped); {@linkcode OperationError} when the scratch folder cannot take it.
 */
export async function fetchToScratch(
  config: Config,
  source: RemoteSource,
  name: string,
  options: ScratchFetchOptions,
): Promise<FetchedSnapshot> {
  refuseScratchInStore(config, options.scratchParent);
  const sourceDir = makeScratch(options.scratchParent);
  const begun = performance.now();
  try {
    const stamp = name.split("_")[0];
    Deno.mkdirSync(snapshotsDir(sourceDir));
    options.reporter.event("info", "remote_fetch_started", { snapshot: name, location: source.backend.location });
    const fetched = await fetchSnapshot(source.backend, source.identities, name, join(snapshotsDir(sourceDir), stamp), {
      onProgress: (done, total) => {
        stopIfInterrupted(options.signal); // between packs: only the scratch folder was written
        options.reporter.progress("fetching", done, total);
      },
      manifestCheckFollows: options.deepValidation ?? false,
      transfers: source.transfers,
    });
    const summary = summarize(source.backend.location, fetched, (performance.now() - begun) / 1000);
    options.reporter.event("info", "remote_fetch_finished", { ...summary });
    return { sourceDir, stamp, summary, [Symbol.dispose]: () => removeQuietly(sourceDir) };
  } catch (error) {
    removeQuietly(sourceDir);
    throw fetchFailure(error, name, source.backend.location, sourceDir);
  }
}

/**
 * Open the repository and check it against this host's pin (where it pushed there) and the recipients given.
 *
 * @throws {UsageError} when there is no repository; {@linkcode RefusedError} when it is not the pinned one.
 */
export async function checkSource(config: Config, source: RemoteSource): Promise<void> {
  checkPinIfPinned(config, await openRepository(source.backend), source.recipients);
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
  };
}

/** A failed fetch as one line: a repository problem is a refusal (exit 3), a local one a failure (exit 1). */
function fetchFailure(error: unknown, name: string, location: string, scratch: string): ToolError {
  if (error instanceof UsageError || error instanceof RefusedError || error instanceof InterruptedError) return error;
  if (error instanceof ToolError) {
    return new RefusedError(
      `snapshot ${name} of ${location} cannot be read intact: ${error.message}; nothing was changed; ` +
        `pick another snapshot ('remote list') or check the repository ('remote verify --read-data')`,
      { cause: error },
    );
  }
  return new OperationError(
    `fetching ${name} from ${location} into the scratch folder ${scratch} failed (${describeOsError(error)}); ` +
      `nothing was changed; give --scratch-dir DIR on a disk with room for one copy of the store`,
    { cause: error },
  );
}

/**
 * A new scratch folder in `parent` (default: the system's temporary folder).
 *
 * @throws {OperationError} naming the folder when it cannot be made.
 */
function makeScratch(parent: string | undefined): string {
  try {
    return Deno.makeTempDirSync({ dir: parent, prefix: "atocore-fetch-" });
  } catch (error) {
    const where = parent ?? `the temporary folder ${Deno.env.get("TMPDIR") ?? "/tmp"}`;
    throw new OperationError(
      `cannot make a scratch folder in ${where} (${describeOsError(error)}); nothing was changed; ` +
        (parent === undefined ? "set TMPDIR or give --scratch-dir DIR" : "check --scratch-dir"),
      { cause: error },
    );
  }
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
 * Restore snapshot `given` (`STAMP` or `STAMP_PUSHID`) of the repository: the refusals that need no snapshot first
 * (target kinds, acknowledgment), then the fetch into scratch, then the restore engine with every safety, reading
 * from the scratch folder (the pre-restore snapshot still goes to the configured backup folder); the scratch copy is
 * removed.
 *
 * @throws as {@linkcode restoreSnapshot} and {@linkcode fetchToScratch}.
 */
export async function restoreFromRemote(
  config: Config,
  source: RemoteSource,
  given: string,
  options: RestoreOptions & { scratchParent?: string },
): Promise<RemoteRestoreResult> {
  const to = options.to === undefined ? null : resolve(options.to);
  if (to !== null) checkToFolder(config, to, options.force ?? false);
  else checkLivePaths(config);
  requireAcknowledgment(config, to, options.confirmServiceStopped);
  await checkSource(config, source);
  const name = await resolveRemoteSnapshot(source.backend, given);
  const words = (): [string, string] => [
    `restore of ${name} from ${source.backend.location}`,
    "nothing was changed, the scratch copy is removed; run the restore again",
  ];
  let fetched: FetchedSnapshot;
  try {
    fetched = await fetchToScratch(config, source, name, { ...options, deepValidation: !options.quick });
  } catch (error) {
    if (error instanceof InterruptedError) throw error.told(...words());
    throw error;
  }
  using _scratch = fetched;
  stopIfInterrupted(options.signal, words);
  const result = await restoreSnapshot(config, fetched.stamp, { ...options, sourceDir: fetched.sourceDir });
  return { ...result, remote: fetched.summary };
}
