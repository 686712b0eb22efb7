/**
 * What a restore reads and writes, and every refusal made before anything changes: the acknowledgment, other
 * processes holding the live files, a snapshot that does not validate, and `--to` targets that are unsafe.
 *
 * @module
 */
import { sharedWith } from "../fs/shared_folder.ts";
import { basename, dirname, join } from "node:path";
import type { Config } from "../config.ts";
import { describeOsError, OperationError, RefusedError, UsageError } from "../errors.ts";
import { ensureDir } from "../fs/durable.ts";
import { entriesOrNone, lstatOrNull, statOrNull } from "../fs/probe.ts";
import { isSameOrInside, realPathAsFarAsExists } from "../fs/real_path.ts";
import { findOpeners, type OpenFile, type OpenFilesScan } from "../sys/open_files.ts";
import { isMountPoint, mountPointsAt } from "../sys/mounts.ts";
import type { Reporter } from "../report/reporter.ts";
import { locatePart, type SnapshotMetadata, type SnapshotPart } from "../snapshot/metadata.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { SIDECAR_SUFFIXES } from "../sqlite/file_format.ts";
import { CHROMA_DB_FILE } from "../snapshot/chroma.ts";
import { type FolderIdentity, folderIdentity } from "./chroma_folder.ts";
import { targetsUnder } from "./to_layout.ts";
import { ManifestProof } from "./restore_proof.ts";
import { refuseForeignLinks } from "./live_links.ts";
import { unreadableSnapshotText, validateSnapshot, type ValidationResult } from "./validate.ts";
import { pathFlags, type RemoteOrigin } from "./restore_intent.ts";
import { nextStep } from "./next_step.ts";
import { runUser } from "../sys/run_user.ts";

/** Where each part of the snapshot comes from; `chroma` is `null` when Chroma is not restored. */
export interface Sources {
  db: string;
  registry: string | null;
  chroma: string | null;
}

/** Where each part goes. */
export interface Targets {
  db: string;
  registry: string;
  chroma: string;
}

/** What a restore reads and writes, checked before anything is changed. */
export interface RestorePlan {
  sources: Sources;
  targets: Targets;
  /** The Chroma folder as checked here (`null`: none yet, or Chroma not restored); the swap acts on that one only. */
  chromaSeen: FolderIdentity | null;
  /** The validated manifest, which each copy is checked against before it goes live. */
  proof: ManifestProof;
}

/**
 * Refuse, before any other work, a `to` that is not a folder (exit 2: a file, or a path through a file), one that
 * overlaps the live store or the backup folder or leads through another user's link to what that user does not own
 * (exit 3), and, without `force`, a folder that already holds entries
 * (exit 3): the restore would replace a database there without a word. A folder that does not exist yet is fine.
 */
export function checkToFolder(config: Config, to: string, force: boolean): void {
  const fix = "give a folder that is empty or does not exist yet (it is created)";
  let info: Deno.FileInfo | null;
  try {
    info = statOrNull(to);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotADirectory)) throw error;
    throw new UsageError(`--to ${to}: a part of this path is a file, not a folder; ${fix}`);
  }
  if (info === null && lstatOrNull(to) !== null) {
    throw new UsageError(`--to ${to} is a symbolic link to nothing; ${fix}`);
  }
  if (info !== null && !info.isDirectory) throw new UsageError(`--to ${to} is a file, not a folder; ${fix}`);
  const overlap = protectedPaths(config).find((path) => overlaps(canonical(to), canonical(path)));
  if (overlap !== undefined) {
    throw new RefusedError(
      `--to ${to} overlaps ${overlap} (live store or backups); nothing was changed; give a folder of its own`,
    );
  }
  refuseForeignLinks([to], "restore"); // a root run would fill a folder the link's owner may not write
  refuseSharedPlace(to);
  const names = entriesOrNone(to).map((entry) => entry.name).sort();
  if (force || names.length === 0) return;
  const shown = names.slice(0, 3).join(", ") + (names.length > 3 ? `, and ${names.length - 3} more` : "");
  throw new RefusedError(
    `--to ${to} already holds ${shown}; restore would replace the store's files there; nothing was changed; ` +
      `${fix}, or pass --force to restore into it anyway`,
  );
}

/**
 * Refuse a `--to` folder `to` made, or found, in a folder another user may rename entries of (see `sharedWith`), or one
 * found that another user owns or may write: that user could swap it (or what the restore makes in it) for a link to a
 * folder of root's, even in the sticky `/tmp`, and the restore would go on in the link's target.
 *
 * @throws {RefusedError} naming that folder.
 */
function refuseSharedPlace(to: string): void {
  let found = to; // or the nearest folder above it that is there
  while (statOrNull(found) === null && dirname(found) !== found) found = dirname(found);
  const shared = sharedWith(found);
  if (shared === null) return;
  const where = found === to ? shared : `the folder it is in, ${found}: ${shared}`;
  throw new RefusedError(
    `--to ${to} is no place for a restore (${where}), so another user could swap ` +
      "it for a link while the store is written through its path; nothing was changed; give a folder in one that only " +
      "this user or root may write",
  );
}

/**
 * Make the `--to` folder `to` (and its missing parents), or probe the one found, before anything is written into it,
 * so that a folder that cannot be made or written (a read-only mount, no permission) is said to be that, with
 * nothing rebuilt there, rather than the failure of the first copy made inside it.
 *
 * @throws {OperationError} naming `to` and the cause; nothing was written.
 */
export function makeToFolder(to: string): void {
  if (statOrNull(to) !== null) return probeToFolder(to); // found a folder (checkToFolder): a read-only mount, say
  try {
    ensureDir(to);
  } catch (error) {
    throw cannotMake(to, error);
  }
}

/**
 * Refuse, before a fetch, a `--to` folder that could not be written: a folder is made and removed where the first
 * would be (in `to` when it exists, else in its nearest existing parent). Nothing is left, so a refusal or a fetch that
 * fails after it changed nothing; a read-only mount is said in a moment, not after the snapshot crossed the network.
 *
 * @throws {OperationError} as {@linkcode makeToFolder}'s.
 */
export function probeToFolder(to: string): void {
  let parent = to;
  while (lstatOrNull(parent) === null && dirname(parent) !== parent) parent = dirname(parent);
  try {
    Deno.removeSync(Deno.makeTempDirSync({ dir: parent, prefix: ".atocore-probe-" }));
  } catch (error) {
    throw cannotMake(to, error, parent === to);
  }
}

function cannotMake(to: string, error: unknown, found = false): OperationError {
  const [what, may] = found ? ["write in", "write in"] : ["make", "create"];
  return new OperationError(
    `restore cannot ${what} ${to} (${describeOsError(error)}); nothing was restored (the live store was not ` +
      `touched); give --to a folder this user may ${may}, then run again`,
    { cause: error },
  );
}

/**
 * Refuse, before any other work (a fetch included), live paths of the wrong kind (a path through a file, a folder for
 * the database) or in a folder that does not exist (the record kept beside the database could not be written).
 */
export function checkLivePaths(config: Config): void {
  checkTargetKinds({ db: config.db.path, registry: config.registry.path, chroma: config.chromaDir.path });
  const live = [["database", config.db, "--db"], ["registry", config.registry, "--registry"]] as const;
  for (const [what, resolved, flag] of live) {
    const folder = dirname(resolved.path);
    if (statOrNull(folder) !== null) continue;
    const [given, check] = resolved.source === "default"
      ? [`the default under ${resolved.from}`, `${resolved.from} or ${flag}`]
      : [resolved.from, resolved.from];
    throw new UsageError(
      `the folder of the live ${what} does not exist: ${folder} (${given}); nothing was changed; check ${check} ` +
        `(see 'config'), or rebuild elsewhere with --to DIR`,
    );
  }
}

/** Refuse to restore over the live store (`to` is `null`) without the operator's word that the service is stopped. */
export function requireAcknowledgment(config: Config, to: string | null, confirmServiceStopped: boolean): void {
  if (to !== null || confirmServiceStopped) return;
  throw new RefusedError(
    `restore replaces the live database ${config.db.path} and refuses without --confirm-service-stopped; ` +
      `stop the AtoCore service (docker compose down), then run again with it, or rebuild elsewhere with --to DIR`,
  );
}

/**
 * Refuse while other processes hold the live database (or Chroma's, unless Chroma is left out).
 *
 * @returns Whether a scan was made: `false` with `to`, with `ignoreOpenFiles`, or where no scan could be made.
 */
export function checkOpenFiles(
  config: Config,
  to: string | null,
  options: { ignoreOpenFiles: boolean; includeChroma?: boolean; reporter: Reporter },
): boolean {
  return to === null && !options.ignoreOpenFiles &&
    refuseOpenFiles(config, options.includeChroma !== false, options.reporter);
}

/**
 * Look again, just before the first live change, after a validation and a pre-restore snapshot that may take minutes
 * (long enough for a supervisor to start the service again); only when the first look ran, and without its warnings.
 */
export function recheckOpenFiles(
  config: Config,
  firstChecked: boolean,
  preStamp: string | null,
  options: { includeChroma?: boolean },
): void {
  if (firstChecked) refuseOpenFiles(config, options.includeChroma !== false, null, preStamp);
}

/**
 * Who holds the old database once the restore has replaced it (through `oldDatabase`, a link to it), described, or
 * `null`: a process that opened it after the last look before the first change (a supervisor restarting the service)
 * may have written to it, which the store no longer uses, or a WAL beside the restored one. One that opened the
 * restored database is the service come back: not counted. Only `live` (not with `to`), and with `ignoreOpenFiles` too:
 * it lets the restore start despite holders, whose writes to the old database are lost all the same. A look that
 * failed part way (a listing of `/proc`) is said instead: it may have missed one.
 */
export function openedDuringRestore(live: boolean, oldDatabase: string | null): string | null {
  if (!live || oldDatabase === null) return null;
  const scan = findOpeners([oldDatabase]);
  if (scan.failed !== undefined) return `which processes hold the replaced database cannot be told (${scan.failed})`;
  return scan.openers.length === 0 ? null : describeHolders(scan.openers, "the replaced database");
}

/** The live files a restore replaces and a service holds open: the database and its sidecars, the registry, Chroma's. */
function storePaths(config: Config, chromaToo: boolean): string[] {
  const paths = [config.db.path, `${config.db.path}-wal`, `${config.db.path}-shm`, config.registry.path];
  if (chromaToo) {
    const chromaDb = join(config.chromaDir.path, CHROMA_DB_FILE);
    paths.push(chromaDb, `${chromaDb}-wal`, `${chromaDb}-shm`);
  }
  return paths;
}

/**
 * Refuse while other processes hold the live database, its `-wal` or `-shm`, the registry (restore replaces it, and a
 * service holding it would write its old view back), or Chroma's database; `false` when no scan could be made. A scan
 * that failed part way (a listing of `/proc`) may have missed one: it stops the restore too (exit 1).
 */
function refuseOpenFiles(
  config: Config,
  chromaToo: boolean,
  reporter: Reporter | null,
  preStamp: string | null = null,
): boolean {
  const paths = storePaths(config, chromaToo);
  const scan = findOpeners(paths);
  const unchanged = preStamp
    ? `the live store was not changed (only the pre-restore snapshot ${preStamp} was taken)`
    : "nothing was changed";
  if (scan.failed !== undefined) {
    throw new OperationError(
      `cannot tell which processes hold the live store: ${scan.failed}; ${unchanged}; run the restore again, or ` +
        "pass --ignore-open-files once you are sure the service is stopped",
    );
  }
  if (reporter) warnUnchecked(scan, paths, reporter);
  if (scan.openers.length === 0) return scan.scanned;
  throw new RefusedError(
    `${describeHolders(scan.openers)}; ${unchanged}; stop the service (docker compose down), ` +
      `or pass --ignore-open-files if you are sure those processes are not the service`,
  );
}

/** Warn about what the scan could not look at. */
function warnUnchecked(scan: OpenFilesScan, paths: string[], reporter: Reporter): void {
  if (!scan.scanned) reporter.event("warning", "open_files_check_unavailable", { paths });
  if (scan.scanned && !scan.locksChecked) {
    reporter.event("warning", "open_files_locks_unreadable", { path: "/proc/locks" });
  }
  if (scan.unreadable > 0) {
    const fields = { count: scan.unreadable, as_root: runUser() === 0 }; // root told to run as root would be lost
    reporter.event("warning", "open_files_unreadable_processes", fields);
  }
}

/**
 * `process 4242 still holds the live store: /srv/atocore.db (open as /data/atocore.db, locked), ...`; with several
 * holders, each one's files after its id (`4242: ...; 4300: ...`).
 */
function describeHolders(openers: OpenFile[], what = "the live store"): string {
  const byPid = [...Map.groupBy(openers, (opener) => opener.pid)];
  const pids = byPid.flatMap(([pid]) => pid === null ? [] : [pid]);
  const who = [
    ...(pids.length ? [`process${pids.length > 1 ? "es" : ""} ${pids.join(", ")}`] : []),
    ...(pids.length < byPid.length ? ["a holder the kernel gives no process id (an open-file-description lock)"] : []),
  ].join(" and ");
  const files = (held: OpenFile[]) =>
    held.map(({ path, ways, seenAs }) => {
      const how = ways.map((way) => way === "open" && seenAs ? `open as ${seenAs}` : way);
      return `${path} (${how.join(", ")})`;
    }).join(", ");
  const held = byPid.length === 1
    ? files(byPid[0][1])
    : byPid.map(([pid, held]) => `${pid ?? "no id"}: ${files(held)}`).join("; ");
  return `${who} still ${byPid.length > 1 ? "hold" : "holds"} ${what}: ${held}`;
}

/** Validate the snapshot `stamp` (deeply unless `quick`) and refuse it when it is not valid. */
export async function validatedSnapshot(
  config: Config,
  stamp: string,
  options: {
    driver: SqliteDriver;
    quick?: boolean;
    reporter: Reporter;
    sourceDir?: string;
    verified?: ReadonlyMap<string, string>;
    integrityChecked?: ReadonlySet<string>;
    /** The repository snapshot fetched into `sourceDir`, named by a refusal (the scratch copy is gone by then). */
    remote?: RemoteOrigin;
    /** With `remote`: a refusal's next step, where other snapshots are listed. */
    anotherSnapshot?: string;
  },
): Promise<ValidationResult> {
  const { reporter } = options;
  const validation = await validateSnapshot(options.sourceDir ?? config.backupDir.path, stamp, {
    driver: options.driver,
    quick: options.quick ?? false,
    verified: options.verified,
    integrityChecked: options.integrityChecked,
    onProgress: (done, total) => reporter.progress("hashing", done, total),
  });
  if (validation.unreadable !== undefined) {
    throw new OperationError(unreadableSnapshotText(stamp, validation.unreadable, "nothing was changed"));
  }
  if (!validation.valid) throw invalidSnapshot(config, stamp, validation, options);
  const byPush = validation.integrity_checked_by_push;
  reporter.event("info", "restore_snapshot_validated", {
    stamp,
    quick: validation.quick,
    ...(byPush ? { integrity_checked_by_push: byPush } : {}),
  });
  return validation;
}

/** The refusal of snapshot `stamp` that failed `validation`: its folder and the backup folder's list, or its object. */
function invalidSnapshot(
  config: Config,
  stamp: string,
  validation: ValidationResult,
  options: { sourceDir?: string; remote?: RemoteOrigin; anotherSnapshot?: string },
): RefusedError {
  const errors = validation.errors.join("; ");
  const { remote, anotherSnapshot } = options;
  if (remote && anotherSnapshot) {
    return new RefusedError(
      `snapshot ${remote.snapshot} of ${remote.location} failed validation once fetched (${errors}); nothing was ` +
        `changed; ${anotherSnapshot}`,
    );
  }
  const flags = options.sourceDir === undefined ? pathFlags(config, {}, ["backupDir"]) : "";
  const list = nextStep("pick another snapshot (see 'list')", "pick another snapshot, listed by", "list", flags);
  return new RefusedError(
    `snapshot ${stamp} failed validation (${errors}): ${validation.path}; nothing was changed; ${list}`,
  );
}

/**
 * Where each part of the validated snapshot `stamp` comes from and goes (the live paths, or under `to`); Chroma is
 * restored when the snapshot has it, unless `includeChroma` is `false`.
 *
 * @throws {UsageError} for a target of the wrong kind.
 * @throws {RefusedError} for a `to` target that is a symbolic link or overlaps the live store or the backups, or a
 *   Chroma folder to replace with a filesystem mounted inside it.
 */
export function planRestore(
  config: Config,
  stamp: string,
  validation: ValidationResult,
  to: string | null,
  options: { includeChroma?: boolean; reporter: Reporter },
): RestorePlan {
  const located = locateSources(validation.path, validation.metadata!);
  const targets = restoreTargets(config, located, to);
  if (options.includeChroma && located.chroma === null) {
    throw new RefusedError(
      `snapshot ${stamp} holds no Chroma copy, and --chroma asks for one; nothing was changed; restore it without ` +
        "--chroma (the database and registry only: the Chroma folder is left as it is), or pick a snapshot made with " +
        "create --chroma",
    );
  }
  checkTargets(config, targets, to);
  const sources = { ...located, chroma: options.includeChroma === false ? null : located.chroma };
  if (sources.chroma !== null) refuseMountsInside(targets.chroma);
  refuseFileMountPoint(targets.db, "database");
  if (sources.registry !== null) refuseFileMountPoint(targets.registry, "registry");
  const chromaSeen = sources.chroma === null ? null : folderIdentity(targets.chroma);
  return {
    sources,
    targets,
    chromaSeen,
    proof: new ManifestProof(validation.path, stamp, validation.metadata!.manifest),
  };
}

/**
 * Refuse a database or registry that is itself a mount point (one file bind-mounted, as compose files do): a rename
 * cannot replace it (EBUSY), and a restore would stop after replacing the parts before it.
 */
function refuseFileMountPoint(path: string, what: string): void {
  if (statOrNull(path)?.isFile !== true) return;
  if (!isMountPoint(path)) return;
  throw new RefusedError(
    `the ${what} ${path} is a mount point (a file mounted there), which a restore cannot replace by renaming; ` +
      "nothing was changed; mount its folder instead, or restore with --to DIR and copy the file in with the service " +
      "stopped",
  );
}

/**
 * Refuse a Chroma folder with another filesystem mounted below it: the swap moves its entries aside and removes them,
 * and a recursive removal crosses into a mount. The folder itself may be a mount point (a bind mount in production).
 */
function refuseMountsInside(chroma: string): void {
  if (statOrNull(chroma)?.isDirectory !== true) return;
  const inside = (mountPointsAt(chroma) ?? []).filter((point) => point !== Deno.realPathSync(chroma));
  if (inside.length === 0) return;
  throw new RefusedError(
    `a filesystem is mounted at ${inside[0]}, inside the Chroma folder ${chroma} that this restore replaces, and ` +
      "removing the old Chroma would remove what it holds; nothing was changed; unmount it, then run the restore again",
  );
}

/** Each part's place in the snapshot, from the layout (the metadata gives at most a file name; validated before). */
function locateSources(root: string, metadata: SnapshotMetadata): Sources {
  const locate = (part: SnapshotPart) => {
    const located = locatePart(root, metadata, part);
    return located?.ok ? located.path : null;
  };
  return { db: locate("db")!, registry: locate("registry"), chroma: locate("chroma") };
}

function restoreTargets(config: Config, sources: Sources, to: string | null): Targets {
  if (to === null) return { db: config.db.path, registry: config.registry.path, chroma: config.chromaDir.path };
  const registryName = sources.registry === null ? null : basename(sources.registry);
  return targetsUnder(to, basename(sources.db), registryName, basename(config.registry.path));
}

/**
 * Refuse targets of the wrong kind; and, with `to`, a target (or the database's `-wal`/`-shm`, which
 * the checkpoint writes) that is a symbolic link (it would be written through, outside the folder),
 * or one that overlaps the live store or the backup folder.
 */
function checkTargets(config: Config, targets: Targets, to: string | null): void {
  if (to !== null) refuseLinkedTargets(targets, to);
  checkTargetKinds(targets);
  if (to !== null) refuseOverlappingTargets(config, targets, to);
  if (to !== null) refuseSharedSidecars(targets, to);
}

function refuseLinkedTargets(targets: Targets, to: string): void {
  const written = [targets.db, `${targets.db}-wal`, `${targets.db}-shm`, targets.registry, targets.chroma];
  // the folders of their own the database and registry get when their names collide (see to_layout.ts)
  written.push(...[dirname(targets.db), dirname(targets.registry)].filter((folder) => folder !== to));
  const notFolder = [dirname(targets.db), dirname(targets.registry)].find((folder) =>
    folder !== to && lstatOrNull(folder) !== null && !lstatOrNull(folder)!.isDirectory && !isSymlink(folder)
  );
  if (notFolder !== undefined) {
    throw new RefusedError(
      `--to ${to} holds ${notFolder}, which is not a folder, where the restore puts a part of its own; nothing was ` +
        "changed; move it aside or give a folder of its own",
    );
  }
  const link = written.find(isSymlink);
  if (link === undefined) return;
  throw new RefusedError(
    `--to ${to} holds a symbolic link at ${link}, which restore would write through, outside the folder; ` +
      `nothing was changed; remove the link or give a folder of its own`,
  );
}

/**
 * Refuse a `to` whose database sidecars have another name: SQLite empties or writes a `-wal`, `-shm` or `-journal` in
 * place, so a hard link of any file there (a live Chroma file, a snapshot's) would lose it. (The database and registry
 * are replaced by renames, and a hard link of a live file among them is an overlap.)
 */
function refuseSharedSidecars(targets: Targets, to: string): void {
  const shared = SIDECAR_SUFFIXES.map((suffix) => `${targets.db}${suffix}`)
    .find((path) => (lstatOrNull(path)?.nlink ?? 1) > 1);
  if (shared === undefined) return;
  throw new RefusedError(
    `--to ${to} holds ${shared}, a file with more than one name (a hard link), which SQLite would write in place; ` +
      "nothing was changed; remove it or give a folder of its own",
  );
}

function checkTargetKinds(targets: Targets): void {
  for (const [path, flag] of [[targets.db, "--db"], [targets.registry, "--registry"]]) {
    const info = targetInfo(path, flag);
    if (info && !info.isFile) throw new UsageError(`restore target is not a file: ${path}; check ${flag} or --to`);
  }
  const chroma = targetInfo(targets.chroma, "--chroma-dir");
  if (chroma && !chroma.isDirectory) {
    throw new UsageError(`restore target for Chroma is not a folder: ${targets.chroma}; check --chroma-dir or --to`);
  }
}

/** `statOrNull` of a target, a path through a file being a usage error naming it, not a raw ENOTDIR. */
function targetInfo(path: string, flag: string): Deno.FileInfo | null {
  try {
    return statOrNull(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotADirectory)) throw error;
    throw new UsageError(`restore target ${path} lies under a file, not a folder; check ${flag} or --to`);
  }
}

/** The live store's paths and the backup folder, which a restore with `to` never writes to. */
function protectedPaths(config: Config): string[] {
  const db = config.db.path;
  return [db, `${db}-wal`, `${db}-shm`, config.registry.path, config.chromaDir.path, config.backupDir.path];
}

/** Refuse a `--to` target that is a live file or folder under another name: a hard link, a bind mount. */
function refuseOverlappingTargets(config: Config, targets: Targets, to: string): void {
  // SQLite checkpoints and removes the copy's -wal and -shm: a hard link of the live ones would lose committed rows
  const written = [targets.db, `${targets.db}-wal`, `${targets.db}-shm`, targets.registry, targets.chroma];
  for (const target of written) {
    const overlap = protectedPaths(config).find((path) => overlaps(canonical(target), canonical(path)));
    if (overlap !== undefined) {
      throw new RefusedError(
        `--to ${to} would write over ${overlap} (live store or backups) at ${target}; nothing was changed; ` +
          `give a folder of its own`,
      );
    }
  }
}

function isSymlink(path: string): boolean {
  return lstatOrNull(path)?.isSymlink ?? false;
}

/** Tell whether one path is the other or lies inside it (folders compared by identity too: bind mounts). */
function overlaps(first: string, second: string): boolean {
  return isSameOrInside(first, second) || isSameOrInside(second, first);
}

/** A path with its symbolic links resolved as far as it exists, to compare two paths. */
function canonical(path: string): string {
  return realPathAsFarAsExists(path);
}
