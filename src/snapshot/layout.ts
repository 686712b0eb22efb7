/**
 * The path arithmetic of a backup folder, and nothing else (drawn in the README, Configuration):
 * every path under the backup folder is computed here, and a snapshot's folder only ever from a plain stamp, so
 * no path computed here leaves the backup folder.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { CHROMA_DB_FILE } from "./chroma.ts";
import { isStamp } from "./stamp.ts";

/** The metadata file's name inside a snapshot. */
export const METADATA_FILE = "backup-metadata.json";
/** Sub-folder of a snapshot that holds the database copy. */
export const DB_FOLDER = "db";
/** Sub-folder of a snapshot that holds the registry copy. */
export const CONFIG_FOLDER = "config";
/** Sub-folder of a snapshot that holds the Chroma copy. */
export const CHROMA_FOLDER = "chroma";

/** The pin's name inside a repository's state folder. */
const PIN_FILE = "pin.json";

/** Longest text accepted as a stamp argument before any check (refuses 300-character input early). */
const MAX_STAMP_ARGUMENT = 64;

/** `<backup>/snapshots`: where published snapshots live. */
export function snapshotsDir(backupDir: string): string {
  return join(backupDir, "snapshots");
}

/** `<backup>/.staging`: where snapshots are built before they are published. */
export function stagingRoot(backupDir: string): string {
  return join(backupDir, ".staging");
}

/** `<backup>/.trash`: where cleanup moves a snapshot before removing it. */
export function trashRoot(backupDir: string): string {
  return join(backupDir, ".trash");
}

/** `<backup>/failed`: where a snapshot that failed post-backup validation is kept. */
export function failedRoot(backupDir: string): string {
  return join(backupDir, "failed");
}

/** `<backup>/integrity`: create's records of the databases it checked (see `snapshot/integrity_record.ts`). */
export function integrityRecordsDir(backupDir: string): string {
  return join(backupDir, "integrity");
}

/** `<backup>/integrity/<stamp>.json`, refusing any stamp that is not plain. */
export function integrityRecordPath(backupDir: string, stamp: string): string {
  return join(integrityRecordsDir(backupDir), `${checkedStamp(stamp)}.json`);
}

/**
 * `<database folder>/.<database name>.restore-intent.json`: the record of a live restore in progress, beside the store
 * it is about, whatever backup folder.
 */
export function restoreIntentPath(dbPath: string): string {
  return join(dirname(dbPath), `.${basename(dbPath)}.restore-intent.json`);
}

/** The form of the names {@linkcode restoreNeedsPath} gives: nothing else in the backup folder is read as such. */
export const RESTORE_NEEDS_NAME = /^\.restore-needs-[0-9a-f]{16}\.json$/;

/**
 * `<backup>/.restore-needs-<key>.json`: the snapshots an unfinished live restore into the database `dbPath` needs,
 * kept in the backup folder so that a cleanup that knows only that folder keeps them (key: hash of the database's
 * absolute path, one record per live store).
 */
export function restoreNeedsPath(backupDir: string, dbPath: string): string {
  const key = createHash("sha256").update(resolve(dbPath)).digest("hex").slice(0, 16);
  return join(backupDir, `.restore-needs-${key}.json`);
}

/** `<backup>/.lock`: the file locked for the length of create, restore and cleanup. */
export function lockPath(backupDir: string): string {
  return join(backupDir, ".lock");
}

/** `<backup>/remotes`: this host's state about each repository it pushed to or cleaned, a folder each. */
export function remotesRoot(backupDir: string): string {
  return join(backupDir, "remotes");
}

/** The folders of `<backup>` this tool owns and fills, clears or removes: nothing else may live in them. */
export function ownFolders(backupDir: string): string[] {
  return [snapshotsDir, stagingRoot, trashRoot, failedRoot, remotesRoot, integrityRecordsDir].map((f) => f(backupDir));
}

/** `<backup>/remotes/<key>`: local state about the repository at `location` (a location without credentials). */
export function remoteStateDir(backupDir: string, location: string): string {
  return join(remotesRoot(backupDir), createHash("sha256").update(location).digest("hex").slice(0, 16));
}

/**
 * The folders of this host's state about `location`, outermost first: `<backup>/remotes`, `remotes/<key>` and its
 * `journal`.
 */
export function remoteStateFolders(backupDir: string, location: string): string[] {
  return [remotesRoot(backupDir), remoteStateDir(backupDir, location), pushJournalDir(backupDir, location)];
}

/** `<backup>/remotes/<key>/pin.json`: the id and recipients of the repository at `location`, pinned by the first push. */
export function remotePinPath(backupDir: string, location: string): string {
  return join(remoteStateDir(backupDir, location), PIN_FILE);
}

/** `<backup>/remotes/<folder>/pin.json` for a folder found by listing `remotes/`, whatever location it is about. */
export function listedPinPath(backupDir: string, folderName: string): string {
  return join(remotesRoot(backupDir), folderName, PIN_FILE);
}

/** `<backup>/remotes/<key>/push-cache`: where the last finished push to `location` stored each block. */
export function pushCachePath(backupDir: string, location: string): string {
  return join(remoteStateDir(backupDir, location), "push-cache");
}

/**
 * `<backup>/remotes/<key>/pushed.json`: the stamps this backup folder pushed to `location` (those it still holds), so
 * that `push --all` does not send again one a remote cleanup removed.
 */
export function pushedRecordPath(backupDir: string, location: string): string {
  return join(remoteStateDir(backupDir, location), "pushed.json");
}

/**
 * `<backup>/remotes/<key>/condemned-seen.json`: when `remote cleanup` on this host first saw each condemned marker of
 * `location`, by this host's clock (a marker's own time is the writer's clock).
 */
export function condemnedSightingsPath(backupDir: string, location: string): string {
  return join(remoteStateDir(backupDir, location), "condemned-seen.json");
}

/**
 * `<backup>/remotes/<key>/block-maps-<push id>.tmp`: the block maps of a push to `location`, removed as soon as it is
 * opened (the push reads and writes it through its descriptor); the push id is 16 hex (checked).
 */
export function blockMapSpoolPath(backupDir: string, location: string, pushId: string): string {
  return join(remoteStateDir(backupDir, location), `block-maps-${checkedPushId(pushId)}.tmp`);
}

/** `<backup>/remotes/<key>/journal`: one file per unfinished push to `location`, listing the packs it sent. */
export function pushJournalDir(backupDir: string, location: string): string {
  return join(remoteStateDir(backupDir, location), "journal");
}

/** `<backup>/remotes/<key>/journal/<push id>`; the push id is 16 hex (checked). */
export function pushJournalPath(backupDir: string, location: string, pushId: string): string {
  return join(pushJournalDir(backupDir, location), checkedPushId(pushId));
}

function checkedPushId(pushId: string): string {
  if (!/^[0-9a-f]{16}$/.test(pushId)) throw new RangeError(`not a push id: ${JSON.stringify(pushId.slice(0, 40))}`);
  return pushId;
}

/**
 * `<backup>/snapshots/<stamp>`, refusing any stamp that is not plain.
 *
 * @throws {UsageError} when `stamp` is empty, too long, or not `YYYYMMDDTHHMMSSZ`.
 */
export function snapshotDir(backupDir: string, stamp: string): string {
  return join(snapshotsDir(backupDir), checkedStamp(stamp));
}

/**
 * `<backup>/snapshots/<name>` for a name read from a listing of `snapshots/` (a stamp or not, so that list and checks
 * can name what else lies there); the name is one segment (checked).
 */
export function listedSnapshotDir(backupDir: string, name: string): string {
  if (name === "" || name === "." || name === ".." || name.includes("/")) {
    throw new RangeError(`not a name in a folder: ${JSON.stringify(name.slice(0, 80))}`);
  }
  return join(snapshotsDir(backupDir), name);
}

/** `<snapshot>/backup-metadata.json`: the metadata of the snapshot folder at `root`. */
export function metadataPath(root: string): string {
  return join(root, METADATA_FILE);
}

/** `<snapshot>/db` and `<snapshot>/config`: the folders of the snapshot at `root` holding one copied file each. */
export function copiedFileFolders(root: string): string[] {
  return [join(root, DB_FOLDER), join(root, CONFIG_FOLDER)];
}

/** `<snapshot>/chroma/chroma.sqlite3`: Chroma's database in the snapshot at `root`. */
export function chromaDbPath(root: string): string {
  return join(root, CHROMA_FOLDER, CHROMA_DB_FILE);
}

/** A unique staging folder for a snapshot of `stamp`. */
export function stagingDir(backupDir: string, stamp: string): string {
  return join(stagingRoot(backupDir), `${checkedStamp(stamp)}.${uniqueSuffix()}`);
}

/** A unique trash folder for a snapshot of `stamp` being removed. */
export function trashDir(backupDir: string, stamp: string): string {
  return join(trashRoot(backupDir), `${checkedStamp(stamp)}.${uniqueSuffix()}`);
}

/** A folder under `failed/` for a snapshot of `stamp` that did not validate. */
export function failedDir(backupDir: string, stamp: string): string {
  return join(failedRoot(backupDir), `${checkedStamp(stamp)}.${uniqueSuffix()}`);
}

/** Paths inside one snapshot folder, given the live file names they copy. */
export interface SnapshotPaths {
  root: string;
  metadata: string;
  dbFolder: string;
  db: string;
  configFolder: string;
  registry: string;
  chroma: string;
}

/**
 * Whether the snapshot keeps a regular file at `relative` (a path inside its folder): the database `db/<name>`, the
 * registry `config/<name>` and Chroma's database. Restore copies those over live files, so a link there is refused.
 */
export function mustBeRegularFile(relative: string): boolean {
  const [folder, name, ...rest] = relative.split("/");
  if (folder === CHROMA_FOLDER) return name === CHROMA_DB_FILE && rest.length === 0;
  return (folder === DB_FOLDER || folder === CONFIG_FOLDER) && name !== undefined && rest.length === 0;
}

/** The path of the database copy relative to its snapshot's folder, as the manifest lists it. */
export function dbManifestPath(dbName: string): string {
  return `${DB_FOLDER}/${dbName}`;
}

/** The paths of the parts of a snapshot rooted at `root`. */
export function snapshotPaths(root: string, dbName: string, registryName: string): SnapshotPaths {
  return {
    root,
    metadata: join(root, METADATA_FILE),
    dbFolder: join(root, DB_FOLDER),
    db: join(root, DB_FOLDER, dbName),
    configFolder: join(root, CONFIG_FOLDER),
    registry: join(root, CONFIG_FOLDER, registryName),
    chroma: join(root, CHROMA_FOLDER),
  };
}

/**
 * Refuse a stamp argument that is not plain, before any file is touched.
 *
 * @param list The message's last step, where the snapshots are listed: `see 'list'`, or a `list` command written out
 *   with the flags that reach the backup folder (a command parsing its argument gives it; see `ops/next_step.ts`).
 * @throws {UsageError} naming the value and the expected form.
 */
export function checkedStamp(stamp: string, list = "see 'list'"): string {
  if (stamp.length > MAX_STAMP_ARGUMENT || !isStamp(stamp)) {
    const shown = JSON.stringify(stamp.length > MAX_STAMP_ARGUMENT ? stamp.slice(0, 40) + "…" : stamp);
    throw new UsageError(`not a snapshot stamp: ${shown}; give one like 20260409T010203Z; ${list}`);
  }
  return stamp;
}

function uniqueSuffix(): string {
  return `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}
