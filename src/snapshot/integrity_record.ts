/**
 * Create's record of the databases whose bytes passed `PRAGMA integrity_check`, by SHA-256: a push reading those very
 * bytes need not check them again. Only a hint: a record missing, unreadable or for other bytes means the check runs.
 *
 * @module
 */
import { parseBoundedJson } from "../text/bounded_json.ts";
import { basename } from "node:path";
import { describeOsError } from "../errors.ts";
import { isStamp } from "./stamp.ts";
import { exists, lstatOrNull } from "../fs/probe.ts";
import { StateFolder } from "../fs/state_folder.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";
import type { ManifestEntry } from "./manifest.ts";
import { integrityRecordPath, integrityRecordsDir, snapshotDir } from "./layout.ts";

/** Most bytes of a record read: two paths and two hashes take about 200. */
const MAX_RECORD_BYTES = 65536;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const RECORD_NAME = /^(.+)\.json$/;
/** A record's temporary file that a create killed, or a failed rename, left (see `temporaryPath`). */
const RECORD_TEMPORARY = /^\..+\.json\.tmp-/;

/**
 * Record that the databases of `checked` (path in snapshot `stamp` → SHA-256 of the bytes checked) passed. Best effort,
 * as a record only saves work: why nothing was written (the folder is a link or a file, the disk is full), or `null`.
 */
export function writeIntegrityRecord(
  backupDir: string,
  stamp: string,
  checked: ReadonlyMap<string, string>,
): string | null {
  if (checked.size === 0) return null;
  try {
    const info = lstatOrNull(integrityRecordsDir(backupDir));
    if (info !== null && !info.isDirectory) {
      return `${integrityRecordsDir(backupDir)} is ${info.isSymlink ? "a symbolic link" : "not a folder"}`;
    }
    using folder = openRecords(backupDir); // and should it be swapped for one now, refused all the same
    const record = { format: 1, sha256: Object.fromEntries(checked) };
    folder.replace(basename(integrityRecordPath(backupDir, stamp)), JSON.stringify(record) + "\n");
    return null;
  } catch (error) {
    return describeOsError(error);
  }
}

/**
 * `integrity/` held open from the backup folder (made when missing), never through a link: a writer of the backup
 * folder who swaps it for one after this gets nothing written or removed in the link's target.
 *
 * @throws {Error} naming it when it is a symbolic link or not a folder.
 */
function openRecords(backupDir: string): StateFolder {
  using backup = StateFolder.open(backupDir);
  return backup.child(basename(integrityRecordsDir(backupDir)), (path) => {
    const what = lstatOrNull(path)?.isSymlink ? "a symbolic link" : "not a folder";
    return Object.assign(new Error(`${path} is ${what}`), { path });
  });
}

/**
 * What a create records: each database checked (`after`: path → its identity, the same before and after the check)
 * whose identity was the same before the manifest was built (`before`), with its SHA-256 from `manifest`: the bytes
 * checked are the bytes hashed.
 */
export function checkedBytes(
  manifest: readonly ManifestEntry[],
  before: ReadonlyMap<string, string | null>,
  after: ReadonlyMap<string, string>,
): Map<string, string> {
  const checked = new Map<string, string>();
  for (const entry of manifest) {
    const identity = after.get(entry.path);
    if ("sha256" in entry && identity !== undefined && before.get(entry.path) === identity) {
      checked.set(entry.path, entry.sha256);
    }
  }
  return checked;
}

/** The record of snapshot `stamp` (path → SHA-256 checked); empty when there is none or it is not one. */
export function readIntegrityRecord(backupDir: string, stamp: string): Map<string, string> {
  const found = new Map<string, string>();
  try {
    if (!lstatOrNull(integrityRecordsDir(backupDir))?.isDirectory) return found;
    const text = readRegularTextFile(integrityRecordPath(backupDir, stamp), { maxBytes: MAX_RECORD_BYTES });
    const record = parseBoundedJson(text) as { format?: unknown; sha256?: unknown } | null;
    if (record?.format !== 1 || typeof record.sha256 !== "object" || record.sha256 === null) return found;
    for (const [path, sha256] of Object.entries(record.sha256)) {
      if (typeof sha256 === "string" && SHA256_HEX.test(sha256)) found.set(path, sha256);
    }
  } catch {
    found.clear();
  }
  return found;
}

/**
 * Remove the records whose snapshot is no longer published, and temporary files of records (after a cleanup, under the
 * lock no create runs without); links and folders are left alone. Best effort: a record left behind is never used
 * for other bytes.
 */
export function pruneIntegrityRecords(backupDir: string): void {
  try {
    if (!lstatOrNull(integrityRecordsDir(backupDir))?.isDirectory) return;
    using folder = openRecords(backupDir); // removed by name in it, whatever its path leads to meanwhile
    for (const name of folder.files()) {
      if (RECORD_TEMPORARY.test(name)) folder.removeFile(name);
      const stamp = RECORD_NAME.exec(name)?.[1];
      if (stamp === undefined || !isStamp(stamp)) continue;
      if (!exists(snapshotDir(backupDir, stamp))) folder.removeFile(name);
    }
  } catch {
    // an unreadable folder or a record that cannot be removed stays, unused
  }
}
