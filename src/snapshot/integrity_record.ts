/**
 * Create's record of the databases whose bytes passed `PRAGMA integrity_check`, by SHA-256: a push reading those very
 * bytes need not check them again. Only a hint: a record missing, unreadable or for other bytes means the check runs.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError } from "../errors.ts";
import { isStamp } from "./stamp.ts";
import { exists, lstatOrNull } from "../fs/probe.ts";
import { ensureDir, removeFileQuietly, writeFileAtomic } from "../fs/durable.ts";
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
  const folder = integrityRecordsDir(backupDir);
  try {
    const info = lstatOrNull(folder);
    if (info === null) ensureDir(folder);
    else if (!info.isDirectory) return `${folder} is ${info.isSymlink ? "a symbolic link" : "not a folder"}`;
    const record = { format: 1, sha256: Object.fromEntries(checked) };
    writeFileAtomic(integrityRecordPath(backupDir, stamp), JSON.stringify(record) + "\n");
    return null;
  } catch (error) {
    return describeOsError(error);
  }
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
    const record = JSON.parse(text);
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
  const folder = integrityRecordsDir(backupDir);
  try {
    if (!lstatOrNull(folder)?.isDirectory) return;
    for (const entry of Deno.readDirSync(folder)) {
      if (!entry.isFile) continue;
      if (RECORD_TEMPORARY.test(entry.name)) removeFileQuietly(join(folder, entry.name));
      const stamp = RECORD_NAME.exec(entry.name)?.[1];
      if (stamp === undefined || !isStamp(stamp)) continue;
      if (!exists(snapshotDir(backupDir, stamp))) removeFileQuietly(integrityRecordPath(backupDir, stamp));
    }
  } catch {
    // an unreadable folder or a record that cannot be removed stays, unused
  }
}
