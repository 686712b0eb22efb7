/**
 * Creating a snapshot: the reference module's `create`, made atomic and durable (staged,
 * validated, fsynced, published with one rename; the README says how). Requires
 * `--allow-read`, `--allow-write` and, for the FFI driver, `--allow-ffi`.
 *
 * @module
 */
import { basename, dirname, join, relative } from "node:path";
import {
  describeOsError,
  isDiskFull,
  isIoError,
  isOpenFileLimit,
  OperationError,
  RefusedError,
  ToolError,
  UsageError,
} from "../errors.ts";
import { copiedMode, ensureDir, FILE_MODE, syncFileLater, syncTree } from "../fs/durable.ts";
import { followFile } from "../fs/follow_hash.ts";
import { moveBetweenFolders, NotPlainFolderError } from "../fs/move_between.ts";
import { exists, lstatOrNull, statOrNull, statThroughFilesOrNull } from "../fs/probe.ts";
import { FileTooLargeError, kindOf, SMALL_FILE_MAX_BYTES } from "../fs/regular_file.ts";
import {
  changedPaths,
  copyEntries,
  type CopyTotals,
  type TreeEntry,
  UnnamableEntryError,
  walkTree,
} from "../fs/tree.ts";
import { copyIntoHeld } from "../fs/held_copy.ts";
import { readReachedFile } from "../fs/reached_copy.ts";
import { reachedFile } from "../fs/reached_file.ts";
import type { Config, ResolvedPath } from "../config.ts";
import type { Reporter } from "../report/reporter.ts";
import {
  CHROMA_FOLDER,
  dbManifestPath,
  failedDir,
  integrityRecordPath,
  ownFolders,
  snapshotDir,
  type SnapshotPaths,
  snapshotPaths,
  snapshotsDir,
  stagingDir,
  stagingRoot,
  trashRoot,
} from "../snapshot/layout.ts";
import { buildManifest, type ManifestEntry } from "../snapshot/manifest.ts";
import { checkedBytes, writeIntegrityRecord } from "../snapshot/integrity_record.ts";
import { fileIdentity } from "../fs/file_identity.ts";
import { buildMetadata, serializeMetadata, type SnapshotMetadata } from "../snapshot/metadata.ts";
import { formatCreatedAt, formatStamp, parseStamp } from "../snapshot/stamp.ts";
import { BUSY_TIMEOUT_MS, isReadFailure, type SqliteDriver } from "../sqlite/driver.ts";
import { giveEntriesLike, giveTreeLike } from "../fs/give_tree.ts";
import { backupFollowedIfOffered } from "../sqlite/followed_backup.ts";
import { type JournalMode, setJournalMode, withJournalMode } from "../sqlite/journal_header.ts";
import { CHROMA_DB_FILE, CHROMA_DB_SIDECARS, CHROMA_OLD_PREFIX, CHROMA_STAGING_PREFIX } from "../snapshot/chroma.ts";
import { hasEmptySchema } from "../sqlite/empty_schema.ts";
import { newestStamp, nextSequence } from "./list.ts";
import { reachedLiveFile, readLiveFile, refuseForeignLinks } from "./live_links.ts";
import { requireOwnFolders } from "./own_folders.ts";
import { pathFlags, refuseUnfinishedRestore } from "./restore_intent.ts";
import { nextStep } from "./next_step.ts";
import { validateSnapshotAt, type ValidationResult } from "./validate.ts";
import { HeldStaging } from "./held_staging.ts";
import { backUpInto } from "./held_backup.ts";
import type { HeldFolder } from "../fs/held_folder.ts";
import { hasJournalBeside, liveSqliteCause, sidecarHazard } from "./live_sqlite_cause.ts";
import { MAX_JSON_VALUES, parseBoundedJson } from "../text/bounded_json.ts";
import { strictUtf8Text } from "../text/utf8_text.ts";

/** Attempts at a Chroma copy before a folder that keeps changing is reported. */
export const CHROMA_COPY_ATTEMPTS = 3;

/** Options of {@linkcode createSnapshot}. */
export interface CreateOptions {
  /** The SQLite driver. */
  driver: SqliteDriver;
  /** Also take the cold copy of the Chroma folder. */
  includeChroma: boolean;
  /** Where events and progress go. */
  reporter: Reporter;
  /** Mark the snapshot as the pre-restore snapshot of a restore of this stamp. */
  restoringStamp?: string;
  /**
   * Refuse a live database that is 0 bytes or has no tables (what a service sees when its volume did not
   * mount). The CLI sets it unless `--allow-empty-database`; a pre-restore snapshot keeps whatever is live.
   */
  refuseEmptyDatabase?: boolean;
  /**
   * Refuse when the newest snapshot's stamp is later than now by more than this many milliseconds (a clock set
   * back would stamp the new snapshot before it); no check when absent.
   */
  maxClockSkewMs?: number;
  /**
   * When the Chroma copy fails or does not validate, publish the database and registry without it (the metadata
   * says why) instead of publishing nothing: one broken part must not stop the backup of the others.
   */
  publishWithoutFailedChroma?: boolean;
  /**
   * Keep a live registry that is not JSON as it is, instead of refusing: only for the pre-restore snapshot, since a
   * restore is how such a file gets fixed and its undo must give the file back as it was.
   */
  keepInvalidRegistry?: boolean;
}

/** The result of create: the metadata written, with the post-backup validation. */
export type CreateResult = SnapshotMetadata & {
  stamp: string;
  validated: boolean;
  validation_errors: string[];
};

/**
 * Create and publish a snapshot of the store that `config` names.
 *
 * The caller holds the operation lock. A stamp already taken is never reused:
 * the run waits for the next second. A result with `chroma_error` was published
 * without Chroma (`publishWithoutFailedChroma`).
 *
 * @throws {UsageError} when the live database does not exist, or the backup folder's own
 * folders are links or other filesystems (no snapshot is made).
 * @throws {RefusedError} while a restore into the store is unfinished (it may be part old, part new), or when the
 * newest snapshot is stamped in the future (`maxClockSkewMs`).
 * @throws {OperationError} when the live registry is not JSON (checked before anything
 * is copied; unless `keepInvalidRegistry`), the live database is empty (`refuseEmptyDatabase`), copying fails, or the
 * snapshot does not validate.
 */
export async function createSnapshot(config: Config, options: CreateOptions): Promise<CreateResult> {
  refuseUnfinishedRestore(config);
  requireOwnFolders(config.backupDir.path);
  const db = config.db.given ?? config.db.path; // its links as given: the real path has none left to judge
  const live = [db, config.registry.path, ...(options.includeChroma ? [config.chromaDir.path] : [])];
  refuseForeignLinks(live, "create");
  requireDatabase(config.db, options.refuseEmptyDatabase ?? false);
  await requireParsableRegistry(config.registry.path, options);
  if (options.maxClockSkewMs !== undefined) refuseFutureSnapshot(config, options.maxClockSkewMs);
  const target = planSnapshot(config, await freeStampTime(config.backupDir.path));
  await using staging = await HeldStaging.make(
    target.staged.root,
    (path) => swappedFolder(path, "nothing was made", { since: "checked" }),
  );
  target.copiesByPath = staging.root.opened() === null; // without libc's calls: see held_backup.ts for the rest
  try {
    const parts = await copyParts(config, options, target, staging);
    const metadata = await validatedMetadata(config, options, target, parts, staging);
    // a root run (a restore's pre-restore snapshot) leaves nothing the service's user cannot read or move away
    giveStaged(target, staging, "nothing was published");
    publish(target, staging);
    giveFoldersMade(target);
    reportCreated(config, target, metadata, options.reporter);
    return { ...metadata, stamp: target.stamp, validated: true, validation_errors: [] };
  } catch (error) {
    const wasPublished = !exists(target.staged.root) && exists(target.published.root);
    const swapped = wasPublished ? null : staging.swapped();
    if (!wasPublished) staging.remove();
    try {
      giveFoldersMade(target);
    } catch {
      // the failure is what the operator needs to hear; a later run as the service's user names the folder it lacks
    }
    const failure = swapped === null ? error : swappedFolder(swapped, "nothing was published", target);
    throw failureOfCreate(failure, target, wasPublished, pathFlags(config, {}, ["backupDir"]));
  }
}

/**
 * Give the staged snapshot the backup folder's owner (see {@linkcode giveTreeLike}) through the folder create holds,
 * once it is checked to be still in `.staging` under its name: what is then published or set aside is what was built.
 *
 * @throws {UsageError} when another program moved it or `.staging`, or swapped one for a link (`refused`: what that
 * leaves).
 */
function giveStaged(target: SnapshotTarget, staging: HeldStaging, refused: string): void {
  const swapped = staging.swapped();
  if (swapped !== null) throw swappedFolder(swapped, refused, target);
  giveTreeLike(target.staged.root, target.backupDir, staging.root.opened()?.folder.fd);
}

/**
 * The refusal of the folder at `path` (`.staging` or a snapshot's folder in it) moved or swapped for a link `since`
 * create opened or made it; `copiesByPath` tells whether the database copies may have gone through the link.
 */
function swappedFolder(
  path: string,
  refused: string,
  { since, copiesByPath }: { since?: string; copiesByPath?: boolean },
): UsageError {
  const isStaging = basename(path) === basename(stagingRoot(path));
  const next = isStaging
    ? `make ${path} a plain folder of the backup folder again`
    : `the next create removes what is left in ${dirname(path)}`;
  const through = copiesByPath
    ? "nothing was removed through it, but the database copies, written by path (no FFI permission), may have gone " +
      "there"
    : "nothing was written or removed through it";
  return new UsageError(
    `${path} was moved or swapped for a symbolic link after create ${since ?? (isStaging ? "opened" : "made")} it ` +
      `(another program writes the backup folder); ${refused}; ${through}; stop that program (${next}), then run ` +
      `create again`,
  );
}

/** The refusal of a folder create made in the snapshot's staging folder and found a link or a file (`path`). */
function notStagedFolder(path: string): UsageError {
  return new UsageError(
    `${path} is a symbolic link or not a folder, never written through: another program changed the folder create ` +
      `builds the snapshot in; nothing was published; stop that program, then run create again`,
  );
}

/**
 * Give what a run as root may have made in the backup folder besides the snapshot (its own folders, the integrity
 * record) the backup folder's owner, as the snapshot is given: the service's user's own runs stage, publish, record,
 * set aside and clean up there.
 */
function giveFoldersMade({ backupDir, stamp }: SnapshotTarget): void {
  const paths = [...ownFolders(backupDir), integrityRecordPath(backupDir, stamp)];
  giveEntriesLike(backupDir, paths.map((path) => relative(backupDir, path)));
}

/** Report the published snapshot, and as a warning what it lacks when its Chroma copy failed. */
function reportCreated(config: Config, target: SnapshotTarget, metadata: SnapshotMetadata, reporter: Reporter): void {
  reporter.event("info", "runtime_backup_created", {
    backup_root: target.published.root,
    db_snapshot: metadata.db_snapshot_path,
    chroma_included: metadata.chroma_snapshot_included,
    chroma_bytes: metadata.chroma_snapshot_bytes,
    validated: true,
  });
  if (metadata.chroma_error !== undefined) {
    reporter.event("warning", "chroma_backup_failed", {
      path: config.chromaDir.path,
      backup_root: target.published.root,
      snapshot_holds: "the database and the registry, not Chroma",
      error: metadata.chroma_error,
    });
  }
}

/** Where one run of create builds its snapshot, and where it publishes it. */
interface SnapshotTarget {
  /** The backup folder. */
  backupDir: string;
  /** The snapshot's stamp, free when planned. */
  stamp: string;
  /** The creation time as the metadata records it. */
  createdAt: string;
  /** The snapshot's paths in its staging folder, where it is built. */
  staged: SnapshotPaths;
  /** The same paths once published under `snapshots/`, as the metadata records them. */
  published: SnapshotPaths;
  /**
   * Whether the database copies are written by path, SQLite unable to tell which file it opened (the built-in driver,
   * or no libc calls): a staging folder swapped for a link may have received them.
   */
  copiesByPath?: boolean;
}

/** The staging and published paths of a snapshot of the store that `config` names, taken at `now`. */
function planSnapshot(config: Config, now: Date): SnapshotTarget {
  const backupDir = config.backupDir.path;
  const stamp = formatStamp(now);
  const names = [basename(config.db.path), basename(config.registry.path)] as const;
  return {
    backupDir,
    stamp,
    createdAt: formatCreatedAt(now),
    staged: snapshotPaths(stagingDir(backupDir, stamp), ...names),
    published: snapshotPaths(snapshotDir(backupDir, stamp), ...names),
  };
}

/** Move a staged snapshot that failed validation to `failed/`, report it, and throw. */
function setAsideInvalid(target: SnapshotTarget, staging: HeldStaging, errors: string[], reporter: Reporter): never {
  const aside = failedDir(target.backupDir, target.stamp);
  const failure = `snapshot ${target.stamp} failed validation (${errors.join("; ")})`;
  giveStaged(target, staging, `${failure}; not kept aside, nothing was published`); // for the service's cleanup
  moveOutOfStaging(target, staging, aside, `${failure}; not kept aside, nothing was published`);
  reporter.event("warning", "post_backup_validation_failed", { backup_root: aside, errors });
  throw new OperationError(`${failure}; kept aside at ${aside}, not published; fix the source and run create again`);
}

/** Publish the staged snapshot with one rename, never over a snapshot already there. */
function publish(target: SnapshotTarget, staging: HeldStaging): void {
  ensureDir(trashRoot(target.backupDir)); // made now: a cleanup on a disk that filled later must not need room for it
  moveOutOfStaging(target, staging, target.published.root, "nothing was published", (finalRoot) =>
    new OperationError(
      `snapshot already exists, not overwritten: ${finalRoot}; another program wrote it this second; run create again`,
    ));
}

/**
 * Move the staged snapshot to `destination` (in `snapshots/` or `failed/`) by name between `.staging` and that folder,
 * each opened from the backup folder never through a link: one swapped for a link since create's checks is refused
 * (`refused` saying what that leaves), and nothing moves into the link's target (`refuseExisting`: see
 * {@linkcode moveBetweenFolders}). `staging` hears that it moved: it is not the failed staged copy to remove any more.
 *
 * @throws {UsageError} naming the folder that is a link.
 */
function moveOutOfStaging(
  target: SnapshotTarget,
  staging: HeldStaging,
  destination: string,
  refused: string,
  refuseExisting?: (path: string) => Error,
): void {
  try {
    const backupDir = dirname(snapshotsDir(target.backupDir)); // as `join` wrote it into the two paths
    moveBetweenFolders(backupDir, target.staged.root, destination, { refuseExisting, onMoved: () => staging.moved() });
  } catch (error) {
    if (!(error instanceof NotPlainFolderError)) throw error;
    throw new UsageError(
      `${error.message}: another program swapped it since create checked it; ${refused}; make it a plain folder of ` +
        `the backup folder again, then run create again`,
    );
  }
}

/**
 * The error create throws for `error`: the tool's own errors as they are; any other one
 * saying whether the snapshot was published (only its folder's flush failed) or not. `flags`: the path flags a
 * printed `validate` needs to reach the backup folder (see {@linkcode pathFlags}).
 */
function failureOfCreate(error: unknown, target: SnapshotTarget, wasPublished: boolean, flags: string): unknown {
  if (error instanceof ToolError) return error;
  if (wasPublished) {
    const short = `run 'validate ${target.stamp}', and create again if it fails`;
    const validate = nextStep(short, "validate it with", `validate ${target.stamp}`, flags, "create again if it fails");
    return new OperationError(
      `snapshot ${target.stamp} was published at ${target.published.root} but flushing its folder failed (${
        describeOsError(error)
      }); ${validate}`,
      { cause: error },
    );
  }
  return new OperationError(
    `create failed (${
      describeOsError(error)
    }) in ${target.backupDir}; nothing was published; fix the cause and run create again`,
    { cause: error },
  );
}

/** What was copied into staging, before the metadata is written. */
interface StagedParts {
  database: CopiedDatabase;
  hasRegistry: boolean;
  /** Why the registry copy is not JSON, when the pre-restore snapshot keeps it so. */
  registryKeptInvalid?: string;
  chroma: CopiedChroma | null;
  /** Why Chroma, asked for, is left out. */
  chromaError?: string;
}

/**
 * Copy the store into staging: the database (hashed and flushed behind the copy), the registry and, when asked,
 * Chroma; a Chroma copy that fails is left out when `publishWithoutFailedChroma` says so.
 */
async function copyParts(
  config: Config,
  options: CreateOptions,
  target: SnapshotTarget,
  staging: HeldStaging,
): Promise<StagedParts> {
  const { staged } = target;
  await using dbFolder = await staging.folder(basename(staged.dbFolder), notStagedFolder);
  await using configFolder = await staging.folder(basename(staged.configFolder), notStagedFolder);
  const database = await copyDatabase(config.db, staged.db, options, dbFolder);
  if (options.refuseEmptyDatabase && hasEmptySchema(staged.db)) throw emptyDatabase(config.db.path, "has no tables");
  const registry = await copyRegistry(config.registry.path, staged.registry, configFolder);
  const hasRegistry = registry !== null;
  const registryKeptInvalid = registry !== null && options.keepInvalidRegistry ? jsonError(registry) : undefined;
  const copied = { database, hasRegistry, registryKeptInvalid };
  if (!options.includeChroma) return { ...copied, chroma: null };
  try {
    return { ...copied, chroma: await copyChromaIfPresent(config.chromaDir.path, staged.chroma, options, staging) };
  } catch (error) {
    if (!(error instanceof ChromaCopyError) || !options.publishWithoutFailedChroma) throw error;
    staging.root.removeTree(basename(staged.chroma));
    return { ...copied, chroma: null, chromaError: error.reason };
  }
}

/**
 * Write the staged snapshot's manifest and metadata, validate it, and wait until all of it is durable. When only
 * its Chroma copy fails validation and `publishWithoutFailedChroma` says so, Chroma is left out and the rest is
 * written and validated again; a snapshot still invalid is set aside under `failed/` (which throws).
 */
async function validatedMetadata(
  config: Config,
  options: CreateOptions,
  target: SnapshotTarget,
  parts: StagedParts,
  staging: HeldStaging,
): Promise<SnapshotMetadata> {
  const before = databaseIdentities(target);
  let metadata = writeMetadata(config, options, target, parts, staging.root);
  const checked = new Map<string, string>();
  let validation = await validateStaged(target, options, checked);
  if (!validation.valid && options.publishWithoutFailedChroma && onlyChromaFailed(validation)) {
    staging.root.removeTree(basename(target.staged.chroma));
    const chromaError = `its copy failed validation (${validation.errors.join("; ")})`;
    metadata = writeMetadata(config, options, target, { ...parts, chroma: null, chromaError }, staging.root);
    validation = await validateStaged(target, options, checked);
  }
  await parts.database.flushed();
  syncTree(target.staged.root);
  if (!validation.valid) setAsideInvalid(target, staging, validation.errors, options.reporter);
  const checkedAt = checkedBytes(metadata.manifest ?? [], before, checked);
  const unrecorded = writeIntegrityRecord(target.backupDir, target.stamp, checkedAt);
  if (unrecorded !== null) {
    options.reporter.event("warning", "integrity_record_not_written", {
      path: integrityRecordPath(target.backupDir, target.stamp),
      error: unrecorded,
      effect: "a push of this snapshot runs the integrity check itself",
    });
  }
  return metadata;
}

/** The identity of each staged database (by path in the snapshot) once copied, before the manifest hashes them. */
function databaseIdentities(target: SnapshotTarget): Map<string, string | null> {
  const { root, db, chroma } = target.staged;
  return new Map([db, join(chroma, CHROMA_DB_FILE)].map((path) => {
    const info = lstatOrNull(path);
    return [relative(root, path), info?.isFile ? fileIdentity(info) : null];
  }));
}

/**
 * The post-backup validation of the staged snapshot (sizes, not hashes: they were taken from the copies), noting in
 * `checked` each database that passed its integrity check, with its identity.
 */
function validateStaged(
  target: SnapshotTarget,
  options: CreateOptions,
  checked: Map<string, string>,
): Promise<ValidationResult> {
  return validateSnapshotAt(target.staged.root, target.stamp, {
    driver: options.driver,
    quick: true,
    onIntegrityChecked: (path, identity) => checked.set(path, identity),
  });
}

/** Whether a validation failed on the Chroma copy alone (the database and registry are good). */
function onlyChromaFailed(validation: ValidationResult): boolean {
  return validation.db_ok && validation.registry_ok !== false && validation.chroma_ok === false &&
    validation.errors.every((error) => error.startsWith("chroma_"));
}

/**
 * Hash the staged files into a manifest and write the metadata recording `parts` into `root`, the snapshot's folder
 * held; returns the metadata.
 */
function writeMetadata(
  config: Config,
  options: CreateOptions,
  target: SnapshotTarget,
  parts: StagedParts,
  root: HeldFolder,
): SnapshotMetadata {
  const { staged } = target;
  const manifest = buildManifest(
    staged.root,
    (done, total) => options.reporter.progress("hashing", done, total),
    new Map([[dbManifestPath(basename(config.db.path)), parts.database.sha256]]),
  );
  const metadata = snapshotMetadata(target, options, { ...parts, manifest, dbJournalMode: parts.database.journalMode });
  // Staging is never listed: the metadata is made durable with the rest before publishing,
  // not now, when its fsync would wait behind the database copy's flush.
  root.removeTree(basename(staged.metadata)); // written again when Chroma is left out
  root.makeFile(basename(staged.metadata), new TextEncoder().encode(serializeMetadata(metadata)), FILE_MODE);
  return metadata;
}

/** The database copy: its SHA-256, the live database's journal mode, and a function that resolves once its flush is done. */
interface CopiedDatabase {
  sha256: string;
  journalMode: JournalMode | null;
  flushed: () => Promise<void>;
}

/**
 * Back up the live database `db` (its real path; the file its given path reaches now) into `copy`, hashed by a worker
 * behind the backup where the driver offers it (else after it), and start the copy's flush on a runtime thread. The
 * copy is marked rollback-journal mode before it is hashed (see `journal_header.ts`).
 */
async function copyDatabase(
  db: ResolvedPath,
  copy: string,
  options: CreateOptions,
  folder: HeldFolder,
): Promise<CopiedDatabase> {
  const { driver, reporter } = options;
  const source = db.path;
  refuseSidecarHazard(source);
  const reached = reachedLiveFile(db.given ?? source, "create"); // its links judged again now: the file SQLite must open
  using follower = followFile(copy);
  const made = await copyingFrom(
    "database",
    source,
    () =>
      backUpInto(folder, basename(copy), driver, (destination, made) =>
        backupFollowedIfOffered(
          driver,
          source,
          destination,
          (firstPage, bytes) => follower.settled(withJournalMode(firstPage, "rollback"), bytes),
          ({ remaining, total }) => reporter.progress("database pages", total - remaining, total),
          { source: reached?.identity, destination: made },
        )),
  );
  const journalMode = setJournalMode(copy, "rollback", made);
  folder.setFileMode(basename(copy), copiedMode(source));
  const flushed = syncFileLater(copy);
  const { sha256, hashed } = await follower.finish();
  if (hashed === "again") reporter.event("info", "database_hashed_after_copy", { path: copy });
  return { sha256, journalMode, flushed };
}

/**
 * Copy the live registry to `copy` in `folder` (held) when there is one; what was copied, `null` when there was none.
 * It is read from the file its links reach now, judged again: one swapped for another user's link since the check is
 * refused, never copied.
 */
async function copyRegistry(source: string, copy: string, folder: HeldFolder): Promise<Uint8Array | null> {
  if (!exists(source)) return null;
  return await copyingFrom("registry", source, () => {
    const bytes = readLiveFile(source, "create");
    folder.makeFile(basename(copy), bytes, copiedMode(source)); // less any write permission for group and others
    return bytes;
  });
}

/** The Chroma folder could not be copied; `reason` says why in a few words, for the metadata. */
class ChromaCopyError extends OperationError {
  /** Make one from the short reason and the full one-line message. */
  constructor(readonly reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Copy the live Chroma folder to `target`, or report that there is none and return `null`.
 *
 * @throws {ChromaCopyError} when the copy fails for a reason other than a full disk (reported against the
 * backup folder by the caller).
 */
async function copyChromaIfPresent(
  source: string,
  target: string,
  { driver, reporter }: CreateOptions,
  staging: HeldStaging,
): Promise<CopiedChroma | null> {
  const there = storePathInfo(source, "the Chroma folder", CHROMA_SETTING);
  if (!there?.isDirectory) {
    if (there !== null) {
      const kind = kindOf(there);
      throw new UsageError(
        `the Chroma folder ${source} is a ${kind}, not a folder; check ${CHROMA_SETTING}; nothing was published`,
      );
    }
    reporter.event("warning", "chroma_snapshot_skipped_missing", { path: source }); // asked for, not there
    return null;
  }
  refuseSidecarHazard(join(source, CHROMA_DB_FILE));
  try {
    return await copyChroma(source, target, { driver, reporter, staging });
  } catch (error) {
    if (error instanceof ToolError || isDiskFull(error)) throw error;
    const cause = liveSqliteCause(join(source, CHROMA_DB_FILE));
    if (cause !== null) {
      throw new ChromaCopyError(
        cause,
        `create failed copying the Chroma folder ${source}: ${cause}; then run create again (nothing was published)`,
        { cause: error },
      );
    }
    const hint = readableHint(error, SQLITE_FOLDER_HINT);
    throw new ChromaCopyError(
      `the copy failed (${describeOsError(error)}${hint && `;${hint}`})`,
      `create failed copying the Chroma folder ${source} (${
        describeOsError(error)
      }); nothing was published; fix the cause${hint && ` (${hint.trimStart()})`} and run create again`,
      { cause: error },
    );
  }
}

/** What was copied besides the database, as the metadata records it. */
interface CopiedParts {
  hasRegistry: boolean;
  /** Why the registry copy is not JSON, when the pre-restore snapshot keeps it so. */
  registryKeptInvalid?: string;
  chroma: CopiedChroma | null;
  chromaError?: string;
  manifest: ManifestEntry[];
  /** The live database's journal mode (`null`: an empty file, no header). */
  dbJournalMode: JournalMode | null;
}

/** The Chroma copy's totals, and the journal mode of the live `chroma.sqlite3` (`null`: none there). */
type CopiedChroma = CopyTotals & { dbJournalMode: JournalMode | null };

/** The metadata of the staged snapshot, with the paths it will have once published. */
function snapshotMetadata(target: SnapshotTarget, options: CreateOptions, parts: CopiedParts): SnapshotMetadata {
  const { staged, published } = target;
  return buildMetadata({
    createdAt: target.createdAt,
    backupRoot: published.root,
    dbSnapshotPath: published.db,
    dbSizeBytes: Deno.statSync(staged.db).size,
    registrySnapshotPath: parts.hasRegistry ? published.registry : "",
    chromaSnapshotPath: parts.chroma ? published.chroma : "",
    chromaBytes: parts.chroma?.bytes ?? 0,
    chromaFiles: parts.chroma?.files ?? 0,
    dbJournalMode: parts.dbJournalMode,
    chromaDbJournalMode: parts.chroma?.dbJournalMode ?? null,
    includeChroma: options.includeChroma,
    chromaError: parts.chromaError,
    driver: options.driver,
    manifest: parts.manifest,
    registryKeptInvalid: parts.registryKeptInvalid,
    restoringStamp: options.restoringStamp,
    sequence: nextSequence(target.backupDir),
  });
}

/**
 * Cold-copy the Chroma folder into `target`, made in the snapshot's folder `staging` holds and written through it, its
 * `chroma.sqlite3` through the backup API, and retry when a file changed during the copy (size or modification time).
 */
async function copyChroma(
  source: string,
  target: string,
  { driver, reporter, staging }: { driver: SqliteDriver; reporter: Reporter; staging: HeldStaging },
): Promise<CopiedChroma> {
  refuseLinkedChromaDatabase(source);
  const skip = leftOutOfChromaCopy;
  const progress = (done: number, total: number) => reporter.progress("chroma bytes", done, total);
  let changed: string[] = [];
  for (let attempt = 1; attempt <= CHROMA_COPY_ATTEMPTS; attempt++) {
    staging.root.removeTree(basename(target));
    await using folder = await staging.folder(basename(target), notStagedFolder);
    const before = walkOrNull(source, skip);
    if (before !== null) refuseUnrecordable(source, before);
    const totals = before && copyEntriesOrNull(source, folder, before, progress);
    if (!before || totals === null) {
      changed = ["(an entry vanished during the copy)"];
      reporter.event("warning", "chroma_copy_torn", { attempt, of: CHROMA_COPY_ATTEMPTS, changed });
      continue;
    }
    folder.setMode(copiedMode(source));
    const dbJournalMode = await backUpChromaDatabase(source, target, driver, folder);
    if (dbJournalMode !== undefined) {
      totals.files += 1;
      totals.bytes += Deno.statSync(join(target, CHROMA_DB_FILE)).size;
    }
    const after = walkOrNull(source, skip);
    changed = after ? changedPaths(before, after) : ["(an entry vanished while the folder was read)"];
    if (changed.length === 0) {
      const special = before.filter((entry) => entry.kind === "other").map((entry) => entry.path);
      if (special.length > 0) reporter.event("warning", "chroma_special_files_left_out", { paths: special });
      return { ...totals, dbJournalMode: dbJournalMode ?? null };
    }
    reporter.event("warning", "chroma_copy_torn", { attempt, of: CHROMA_COPY_ATTEMPTS, changed: changed.slice(0, 10) });
  }
  const reason = `kept changing during the copy (${CHROMA_COPY_ATTEMPTS} attempts; changed: ${
    changed.slice(0, 3).join(", ")
  })`;
  throw new ChromaCopyError(reason, `Chroma folder ${reason}: ${source}; stop ingestion and run create again`);
}

/**
 * The most a snapshot's metadata may hold: what every reader of it takes ({@linkcode MAX_JSON_VALUES} values, 8 MiB),
 * less room for all but the Chroma entries of its manifest; past it, no command could read the snapshot made.
 */
const METADATA_ROOM = { values: MAX_JSON_VALUES - 2_000, bytes: SMALL_FILE_MAX_BYTES - (64 << 10) };

/**
 * Refuse a Chroma folder whose manifest the snapshot's metadata cannot hold (see {@linkcode METADATA_ROOM}), before its
 * copy: the database and the registry are published without it, as for any Chroma failure. Each file is 4 JSON values
 * and 135 bytes besides its path and size, as `writeMetadata` lays it out.
 *
 * @throws {ChromaCopyError} saying how many entries and how large.
 */
function refuseUnrecordable(source: string, entries: TreeEntry[]): void {
  const recorded = entries.filter((entry) => entry.kind === "file" || entry.kind === "symlink");
  const bytes = recorded.reduce(
    (sum, entry) => sum + 135 + JSON.stringify(`${CHROMA_FOLDER}/${entry.path}`).length + String(entry.size).length,
    0,
  );
  if (recorded.length * 4 <= METADATA_ROOM.values && bytes <= METADATA_ROOM.bytes) return;
  const mib = (count: number) => `${(count / (1 << 20)).toFixed(1)} MiB`;
  const reason = `holds ${recorded.length} files and links (${mib(bytes)} of manifest), more than a snapshot's ` +
    `metadata records (${METADATA_ROOM.values / 4} entries, ${mib(METADATA_ROOM.bytes)})`;
  throw new ChromaCopyError(reason, `Chroma folder ${source} ${reason}; compact or split its collections`);
}

/**
 * Back up the live `chroma.sqlite3` of `source`, when there is one, into `target`'s (a new file SQLite opens in
 * `folder`, held), marked rollback-journal: the journal mode the live one was in; `undefined` when there is none.
 */
async function backUpChromaDatabase(
  source: string,
  target: string,
  driver: SqliteDriver,
  folder: HeldFolder,
): Promise<JournalMode | null | undefined> {
  const [live, copy] = [join(source, CHROMA_DB_FILE), join(target, CHROMA_DB_FILE)];
  if (!exists(live)) return undefined;
  const reached = reachedLiveFile(live, "create");
  const made = await backUpInto(
    folder,
    CHROMA_DB_FILE,
    driver,
    (destination, made) =>
      driver.backup(live, destination, undefined, { source: reached?.identity, destination: made }),
  );
  const mode = setJournalMode(copy, "rollback", made);
  folder.setFileMode(CHROMA_DB_FILE, copiedMode(live));
  return mode;
}

/**
 * Refuse a `chroma.sqlite3` that is a symbolic link: the backup API would read whatever database it points to
 * (anywhere this user may read) into the snapshot, and restore would put a file in the link's place.
 *
 * @throws {ChromaCopyError} naming the link and its target.
 */
function refuseLinkedChromaDatabase(source: string): void {
  const path = join(source, CHROMA_DB_FILE);
  if (!lstatOrNull(path)?.isSymlink) return;
  const reason = `${CHROMA_DB_FILE} is a symbolic link (to ${Deno.readLinkSync(path)}), which create never follows`;
  throw new ChromaCopyError(reason, `${path}: ${reason}; put the database file itself there, then run create again`);
}

/**
 * Whether the walk of the Chroma folder leaves out the entry at `path`: `chroma.sqlite3` (copied through the
 * backup API) and SQLite's own files beside it, and the hidden folders a restore stages in. Nothing else: an
 * operator's `chroma.sqlite3-bak` is copied like any file.
 */
function leftOutOfChromaCopy(path: string): boolean {
  return path === CHROMA_DB_FILE || CHROMA_DB_SIDECARS.includes(path) || path.startsWith(CHROMA_STAGING_PREFIX) ||
    path.startsWith(CHROMA_OLD_PREFIX);
}

/** The walk of the Chroma folder, or `null` when an entry vanished while it was read (a torn copy, to retry). */
function walkOrNull(...args: Parameters<typeof walkTree>): ReturnType<typeof walkTree> | null {
  try {
    return walkTree(...args);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    if (error instanceof UnnamableEntryError) { // the rest is published without Chroma, as for any Chroma failure
      throw new ChromaCopyError(error.message, `${error.message}, then run create again`);
    }
    throw error;
  }
}

/**
 * Copy the walked `entries` of `source` into `folder` (held: each entry made inside its parent's descriptor, each file
 * read from what its path reaches below the real `source`, never through a link put there since the walk; by path
 * without libc's calls), or return `null` when one vanished meanwhile (a torn copy, to retry).
 */
function copyEntriesOrNull(
  source: string,
  folder: HeldFolder,
  entries: TreeEntry[],
  onProgress: (done: number, total: number) => void,
): CopyTotals | null {
  const held = folder.opened();
  try {
    if (held === null) return copyEntries(source, folder.path, entries, onProgress);
    const root = reachedFile(source)?.path ?? source;
    const readFile = (from: string, entry: TreeEntry, onChunk: (chunk: Uint8Array) => void) =>
      readReachedFile(from, join(root, entry.path), onChunk);
    return copyIntoHeld(held.calls, source, entries, held.folder, { onProgress, readFile });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Refuse to open a live database (this store's or Chroma's) beside which SQLite would do harm. */
function refuseSidecarHazard(source: string): void {
  const hazard = sidecarHazard(source);
  if (hazard !== null) {
    throw new RefusedError(`create refused to open the database ${source}: ${hazard}; nothing was done`);
  }
}

/**
 * SQLite's "disk I/O error" reading a database with a journal beside it: most often the hot journal it rolled back could
 * not be removed (a folder this user may not write), not the storage.
 */
const HOT_JOURNAL_HINT = " a -journal is beside it, which SQLite rolls back into the database before reading it and " +
  "then removes: its folder must be writable by this user (or start the service once, which rolls it back); if it " +
  "is, the storage failed: check it, dmesg";

/** What SQLite needs beside a database it copies, said when a copy failed. */
const SQLITE_FOLDER_HINT =
  " SQLite also needs the folder of a WAL database writable, for its -shm file: not a read-only " +
  "mount";

/**
 * The guess said after a failed copy, " is it readable by this user?" and `more`; none when the open-file limit or
 * the storage (EIO) failed it (the message names that, and a permission is not at fault), but where SQLite's words
 * ("disk I/O error") do not say it was the storage.
 */
function readableHint(error: unknown, more: string): string {
  if (isOpenFileLimit(error) || isIoError(error)) return "";
  return isReadFailure(error) ? " the storage failed: check it, dmesg" : ` is it readable by this user?${more}`;
}

/**
 * Run one copy step; when it fails for a reason other than a full disk (reported
 * against the backup folder by the caller), say which live file or folder it was copying.
 */
async function copyingFrom<T>(what: string, source: string, step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    // a full disk is the copy's, reported against the backup folder
    if (error instanceof ToolError || isDiskFull(error)) throw error;
    const cause = what === "database" ? liveSqliteCause(source) : null;
    if (cause !== null) {
      throw new OperationError(
        `create failed copying the database ${source}: ${cause}; then run create again (nothing was published)`,
        { cause: error },
      );
    }
    if (error instanceof FileTooLargeError) throw overSizeLimit(what, source, error.maxBytes);
    if ((error as { code?: unknown }).code === "SQLITE_BUSY") {
      throw new OperationError( // a writer held its lock past the busy timeout: nothing is wrong with the file
        `create failed copying the ${what} ${source}: another process held it locked for more than ` +
          `${BUSY_TIMEOUT_MS / 1000} s (database is locked); nothing was published; run create again (a long ` +
          "write, or a rollback-journal writer that never pauses, keeps every reader out)",
        { cause: error },
      );
    }
    const hint = what === "database" && isReadFailure(error) && hasJournalBeside(source)
      ? HOT_JOURNAL_HINT
      : readableHint(error, what === "database" ? SQLITE_FOLDER_HINT : "");
    throw new OperationError(
      `create failed copying the ${what} ${source} (${describeOsError(error)}); nothing was published; fix the cause${
        hint && ` (${hint.trimStart()})`
      } and run create again`,
      { cause: error },
    );
  }
}

/** The failure of a live file over the most bytes read from it (`maxBytes`): no permission is at fault there. */
function overSizeLimit(what: string, source: string, maxBytes: number): OperationError {
  return new OperationError(
    `create failed copying the ${what} ${source}: it is over the ${maxBytes / (1 << 20)} MiB size limit for a ` +
      `${what}, so it was not read; nothing was published; check that this file is the ${what} (see 'config') or ` +
      "make it smaller, then run create again",
  );
}

/**
 * Refuse a database path that does not exist (the module would create an empty one and back it up), and when
 * `refuseEmpty`, one that is 0 bytes. Create runs it before it takes the lock too: a wrong path makes no backup folder.
 */
export function requireDatabase(db: ResolvedPath, refuseEmpty: boolean): void {
  const { path } = db;
  const info = statThroughFilesOrNull(path);
  if (!info?.isFile) {
    const what = info === null ? "not found" : `is a ${kindOf(info)}, not a file`;
    // a default path is the data folder's: that is what to check first
    const check = db.source !== "default"
      ? "check --db or ATOCORE_DB_PATH"
      : db.from === "ATOCORE_DATA_DIR"
      ? "check ATOCORE_DATA_DIR (the database defaults to atocore.db in it), or give --db or ATOCORE_DB_PATH"
      : "give --db or ATOCORE_DB_PATH, or ATOCORE_DATA_DIR (the default is ./data/atocore.db)";
    throw new UsageError(`database ${what}: ${path}; ${check} (see 'config')`);
  }
  if (refuseEmpty && info.size === 0) throw emptyDatabase(path, "is empty (0 bytes)");
}

/** The refusal of a live database that `is` empty or table-less: not the store, most likely. */
function emptyDatabase(path: string, is: string): OperationError {
  return new OperationError(
    `the live database ${is}: ${path}; a service whose volume did not mount sees such a database, so it is not ` +
      `backed up; check the mount and --db or ATOCORE_DB_PATH, or pass --allow-empty-database to back it up anyway`,
  );
}

/**
 * Refuse to make a snapshot in `config`'s backup folder when the newest one is stamped later than now by more than
 * `maxSkewMs`: the clock is behind (the new stamp would sort before it, and cleanup could remove the newest data) or
 * was ahead when it was made. `anyway` is the last way out, for the command that asks.
 *
 * @throws {RefusedError} naming that stamp, now, and the ways out.
 */
export function refuseFutureSnapshot(
  config: Config,
  maxSkewMs: number,
  anyway = (seconds: number) => `pass --max-clock-skew ${seconds} to create anyway`,
): void {
  const backupDir = config.backupDir.path;
  const newest = newestStamp(backupDir);
  const now = new Date();
  const ahead = newest === null ? 0 : parseStamp(newest)!.getTime() - now.getTime();
  if (ahead <= maxSkewMs) return;
  throw new RefusedError(
    `the newest snapshot ${newest} is stamped ${Math.ceil(ahead / 1000)} s after now (${
      formatStamp(now)
    } by this machine's clock), more than the allowed ${maxSkewMs / 1000} s: a new snapshot would sort before it ` +
      `and cleanup could remove the newest data; check the clock (timedatectl); if it is right, ${
        nextStep(
          `validate ${newest} and move it out of ${snapshotsDir(backupDir)}`,
          "validate it with",
          `validate ${newest}`,
          pathFlags(config, {}, ["backupDir"]),
          `move it out of ${snapshotsDir(backupDir)}`,
        )
      }, or ${anyway(Math.ceil(ahead / 1000))}`,
  );
}

/**
 * Refuse a live registry that exists but does not parse, before anything is copied:
 * its snapshot would fail validation and restore would refuse it. With `keepInvalidRegistry`
 * (the pre-restore snapshot), report it and go on: the file is kept as it is.
 */
async function requireParsableRegistry(path: string, options: CreateOptions): Promise<void> {
  const info = storePathInfo(path, "the registry", REGISTRY_SETTING);
  if (info === null && !exists(path)) return; // a dangling link is left to the read, which names it
  if (info !== null && !info.isFile) {
    throw new UsageError(`the registry ${path} is a ${kindOf(info)}, not a file; check ${REGISTRY_SETTING}`);
  }
  const bytes = await copyingFrom("registry", path, () => readLiveFile(path, "create"));
  const error = jsonError(bytes);
  if (error === undefined) return;
  if (options.keepInvalidRegistry) {
    options.reporter.event("warning", "pre_restore_registry_kept_invalid", { path, error });
    return;
  }
  throw new OperationError(
    `registry is not JSON (${error}): ${path}; fix the file or restore it from a snapshot, then run create again`,
  );
}

/** Where the registry's and Chroma's paths come from, as their errors name them. */
const REGISTRY_SETTING = "--registry or ATOCORE_PROJECT_REGISTRY_PATH (see 'config')";
const CHROMA_SETTING = "--chroma-dir or ATOCORE_CHROMA_PATH (see 'config')";

/**
 * `statOrNull` of a live path `what` names: a path through a file names nothing the setting could have meant, a usage
 * error naming it, not a raw ENOTDIR.
 */
function storePathInfo(path: string, what: string, setting: string): Deno.FileInfo | null {
  try {
    return statOrNull(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotADirectory)) throw error;
    throw new UsageError(`${what} ${path} lies under a file, not a folder; check ${setting}; nothing was published`);
  }
}

/** Why `bytes` are not JSON in UTF-8, or `undefined` when they are. */
function jsonError(bytes: Uint8Array): string | undefined {
  try {
    parseBoundedJson(strictUtf8Text(bytes));
    return undefined;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    return error.message;
  }
}

/** The current time, waiting for the next second while its stamp is already taken. */
async function freeStampTime(backupDir: string): Promise<Date> {
  while (true) {
    const now = new Date();
    if (!exists(snapshotDir(backupDir, formatStamp(now)))) return now;
    await new Promise((resolve) => setTimeout(resolve, 1000 - now.getMilliseconds() + 5));
  }
}
