/**
 * Listing snapshots as the reference module lists them, plus size, manifest and validation state; and which is
 * the latest. Reads one small metadata file per snapshot, so it stays fast with thousands of them.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { entriesOrNone, folderNames, lstatOrNull, statThroughFilesOrNull } from "../fs/probe.ts";
import { listNames } from "../fs/listing.ts";
import { kindOf } from "../fs/regular_file.ts";
import { isInFuture, stampAgeSeconds } from "../snapshot/clock.ts";
import { listedSnapshotDir, metadataPath, snapshotDir, snapshotsDir } from "../snapshot/layout.ts";
import {
  isPreRestore,
  readMetadata,
  snapshotBytes,
  type SnapshotKind,
  type SnapshotMetadata,
} from "../snapshot/metadata.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { isBoundAs, madeAs, trustedSequence } from "../snapshot/trusted_sequence.ts";
import { DIGEST_KEY, metadataDigest } from "../snapshot/binding.ts";
import { nextStep } from "./next_step.ts";

/** What is known of a snapshot's validity without validating it now. */
export type ValidationState = "validated_at_create" | "unknown";

/** One snapshot as listed: the module's keys, then this tool's. */
export interface ListEntry {
  stamp: string;
  path: string;
  has_metadata: boolean;
  /** The metadata without its manifest (which can be long); `null` when it is not JSON or cannot be read. */
  metadata?: Omit<SnapshotMetadata, "manifest"> | null;
  /** Why `metadata` is `null`: `invalid_json` or `unreadable`. */
  metadata_error?: "invalid_json" | "unreadable";
  /** Bytes recorded for the snapshot (manifest sum, else database plus Chroma). */
  size_bytes: number;
  has_manifest: boolean;
  manifest_files: number;
  chroma_included: boolean;
  /** Seconds since the stamp, or `null` for a folder whose name is not a stamp or a stamp in the future. */
  age_seconds: number | null;
  validation: ValidationState;
  /** The stamp is later than now beyond the allowed skew: the clock was wrong when it was made, or is now. */
  stamp_in_future: boolean;
  /** `pre-restore` for the undo point a restore took; `snapshot` for every other. */
  kind: SnapshotKind;
  /** For a pre-restore snapshot, the stamp whose restore it was taken before; else `null`. */
  restoring_stamp: string | null;
}

/**
 * List every folder under `<backup>/snapshots/`, sorted by name, as the module does.
 *
 * @param now The time ages are measured from.
 */
export function listSnapshots(backupDir: string, now: Date): ListEntry[] {
  return listEntries(backupDir, snapshotNames(backupDir), now);
}

/**
 * The entries of the folders `names` under `<backup>/snapshots/`, leaving out each one that is no longer there
 * (a cleanup removed it after the folder was read): nothing that is gone is listed.
 */
export function listEntries(backupDir: string, names: readonly string[], now: Date): ListEntry[] {
  return names.flatMap((name) => {
    const entry = listEntry(listedSnapshotDir(backupDir, name), name, now);
    return entry.has_metadata || lstatOrNull(entry.path)?.isDirectory ? [entry] : [];
  });
}

/**
 * What under `<backup>/snapshots/` has a stamp's name but is not a folder (a link, a file): never followed, listed,
 * validated or removed; reported (warning `snapshot_not_a_folder`) so that it is not silently passed over.
 */
export function strayStamps(backupDir: string): { path: string; kind: string }[] {
  return entriesOrNone(snapshotsDir(backupDir)).filter((entry) => isStamp(entry.name) && !entry.isDirectory)
    .map((entry) => listedSnapshotDir(backupDir, entry.name)).sort()
    .map((path) => ({ path, kind: kindOrGone(path) }));
}

/**
 * What under `<backup>/snapshots/` has a name that is not UTF-8: Deno lists it with U+FFFD, a name that reaches
 * nothing, so it is never listed, validated or removed; reported (warning `snapshot_name_not_utf8`) so that it is not
 * passed over in silence.
 */
export function unnamableSnapshots(backupDir: string): string[] {
  let names: string[];
  try {
    names = listNames(snapshotsDir(backupDir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return [];
    throw error;
  }
  return names.filter((name) => name.includes("\uFFFD")).map((name) => listedSnapshotDir(backupDir, name))
    .filter((path) => lstatOrNull(path) === null).sort();
}

function kindOrGone(path: string): string {
  const info = lstatOrNull(path);
  return info === null ? "gone" : kindOf(info);
}

/** The names of the folders under `<backup>/snapshots/`, sorted; stamps and other names alike. */
export function snapshotNames(backupDir: string): string[] {
  return folderNames(snapshotsDir(backupDir));
}

/** What `--latest` picks: the newest stamp not in the future (or `null`), and the newer ones passed over. */
export interface LatestPick {
  stamp: string | null;
  /** Stamps later than now beyond the allowed skew, newest first: never "the latest" forever. */
  skippedInFuture: string[];
  /** Stamps whose `sequence` was not used (not a count, or in metadata not bound by create or edited since), newest first. */
  sequenceIgnored: string[];
  /** Pre-restore snapshots passed over (only when asked: a push's), newest first. */
  preRestore: string[];
}

/**
 * The newest snapshot whose name is a plain stamp, in the future or not (`null` when none): what create compares
 * with the clock before it stamps a new one.
 */
export function newestStamp(backupDir: string): string | null {
  return snapshotNames(backupDir).filter(isStamp).at(-1) ?? null;
}

/**
 * What `--latest` means: of the snapshots whose name is a plain stamp not in the future, the last published (the
 * highest `sequence`: a clock set back a few minutes stamps the newest data before an older snapshot), or the newest
 * stamp when that one records no sequence (the module's). A sequence that is no count, or in metadata not bound by
 * create or edited since (no `metadata_sha256`, or one that differs), counts as none: a hand-edited one must not make
 * an old snapshot "the latest"; those are named in `sequenceIgnored`. With `passOverPreRestore`,
 * a restore's pre-restore snapshot (newest after the restore) is not a candidate either; those are named in
 * `preRestore`.
 */
export function latestStamp(backupDir: string, now: Date, passOverPreRestore = false): LatestPick {
  const newestFirst = snapshotNames(backupDir).filter(isStamp).reverse();
  const skippedInFuture = newestFirst.filter((stamp) => isInFuture(stamp, now));
  const current: string[] = [];
  const sequences: (number | null)[] = [];
  const sequenceIgnored: string[] = [];
  const preRestore: string[] = [];
  for (const stamp of newestFirst.filter((stamp) => !isInFuture(stamp, now))) {
    const read = readMetadata(metadataPath(snapshotDir(backupDir, stamp)));
    if (passOverPreRestore && read.ok && boundPreRestore(read.metadata, stamp)) {
      preRestore.push(stamp);
      continue;
    }
    const sequence = read.ok ? trustedSequence(read.metadata, stamp) : null;
    if (read.ok && sequence === null && read.metadata.sequence !== undefined) sequenceIgnored.push(stamp);
    current.push(stamp);
    sequences.push(sequence);
  }
  return { stamp: lastPublished(current, sequences), skippedInFuture, sequenceIgnored, preRestore };
}

/** Whether the snapshot `stamp` is a restore's pre-restore snapshot (its metadata says so): a local undo point. */
export function isPreRestoreSnapshot(backupDir: string, stamp: string): boolean {
  const read = readMetadata(metadataPath(snapshotDir(backupDir, stamp)));
  return read.ok && boundPreRestore(read.metadata, stamp);
}

/** Whether the metadata says a pre-restore snapshot and is as create bound it: a `kind` added by hand passes nothing over. */
function boundPreRestore(metadata: SnapshotMetadata, stamp: string): boolean {
  return isPreRestore(metadata) && isBoundAs(metadata, stamp);
}

/** Of `newestFirst`, the one of the highest sequence; the first when it records none; `null` when there is none. */
function lastPublished(newestFirst: string[], sequences: (number | null)[]): string | null {
  if (sequences[0] === null || sequences[0] === undefined) return newestFirst[0] ?? null;
  let best = 0;
  sequences.forEach((value, index) => {
    if (value !== null && value > sequences[best]!) best = index;
  });
  return newestFirst[best];
}

/**
 * Refuse a stamp that names no snapshot folder, before any other work, so that the operator hears that at once.
 *
 * @param flags The path flags a printed `list` needs to reach this folder (see `pathFlags`; none by default).
 * @throws {UsageError} `no snapshot STAMP in <backup>/snapshots; see 'list'` (with the flags: `see the snapshots
 *   with: atocore-backup list FLAGS`).
 */
export function requireSnapshot(backupDir: string, stamp: string, flags = ""): void {
  const path = snapshotDir(backupDir, stamp);
  let info: Deno.FileInfo | null;
  try {
    info = lstatOrNull(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotADirectory)) throw error;
    info = null;
  }
  if (info?.isDirectory) return;
  throw new UsageError(`no snapshot ${stamp} in ${snapshotsDir(backupDir)}; ${listStep(flags)}`);
}

/**
 * See the snapshots: `see 'list'`, or with `flags` (the path flags that reach this run's backup folder, see
 * `pathFlags`) the `list` command written out whole, last in a message (see {@linkcode nextStep}).
 */
export function listStep(flags: string): string {
  return nextStep("see 'list'", "see the snapshots with", "list", flags);
}

/**
 * Refuse a backup folder that is not there (or is not a folder): a mistyped `--backup-dir` must not pass for an empty
 * one, nor be made. A folder without `snapshots/` yet is fine: nothing was created there. `flags`: the path flags a
 * printed `create` needs to make its snapshot in this run's store (see `pathFlags`; none by default).
 *
 * @param next The way out besides checking the path (default: run create first, with `flags`).
 * @throws {UsageError} naming the path.
 */
export function requireBackupFolder(backupDir: string, flags = "", next?: string): void {
  const info = statThroughFilesOrNull(backupDir);
  if (info?.isDirectory) return;
  const there = info === null ? "" : ` (a ${kindOf(info)} is there)`;
  throw new UsageError(
    `no backup folder at ${backupDir}${there}; check --backup-dir or ATOCORE_BACKUP_DIR (see 'config'), or ` +
      (next ?? nextStep("run create first", "make one first with", "create", flags)),
  );
}

/**
 * The publication sequence of a new snapshot: one more than the highest recorded under `snapshots/` (1 when none
 * records one), of those `--latest` trusts (a hand-edited huge one would leave every new snapshot without a count). The caller holds the operation lock, so no other snapshot is published meanwhile.
 */
export function nextSequence(backupDir: string): number {
  let highest = 0;
  for (const name of snapshotNames(backupDir)) {
    const read = readMetadata(metadataPath(listedSnapshotDir(backupDir, name)));
    highest = Math.max(highest, read.ok ? trustedSequence(read.metadata, name) ?? 0 : 0); // as --latest reads them
  }
  return highest + 1;
}

function listEntry(path: string, stamp: string, now: Date): ListEntry {
  const read = readMetadata(metadataPath(path));
  const entry: ListEntry = {
    stamp,
    path,
    has_metadata: read.ok || read.error !== "metadata_missing",
    size_bytes: 0,
    has_manifest: false,
    manifest_files: 0,
    chroma_included: false,
    age_seconds: stampAgeSeconds(stamp, now),
    validation: "unknown",
    stamp_in_future: isInFuture(stamp, now),
    kind: "snapshot",
    restoring_stamp: null,
  };
  if (!read.ok) {
    if (entry.has_metadata) {
      entry.metadata = null;
      entry.metadata_error = read.error.startsWith("metadata_unreadable") ? "unreadable" : "invalid_json";
    }
    return entry;
  }
  const { manifest, ...metadata } = read.metadata;
  entry.metadata = metadata;
  entry.has_manifest = Array.isArray(manifest);
  entry.manifest_files = Array.isArray(manifest) ? manifest.length : 0;
  entry.size_bytes = snapshotBytes(read.metadata);
  entry.chroma_included = Boolean(metadata.chroma_snapshot_path);
  const recorded = (read.metadata as unknown as Record<string, unknown>)[DIGEST_KEY];
  const edited = recorded !== undefined && recorded !== metadataDigest(read.metadata); // by hand, since create
  const copied = !madeAs(read.metadata, stamp); // under another stamp: its validation fails
  entry.validation = entry.has_manifest && isStamp(stamp) && !edited && !copied ? "validated_at_create" : "unknown";
  if (isPreRestore(read.metadata)) {
    entry.kind = "pre-restore";
    // Shown on a terminal: only a plain stamp is taken from the file, never other text.
    const restoring = metadata.restoring_stamp;
    entry.restoring_stamp = typeof restoring === "string" && isStamp(restoring) ? restoring : null;
  }
  return entry;
}
