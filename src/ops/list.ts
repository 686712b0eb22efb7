/**
 * Listing snapshots as the reference module lists them, plus size, manifest and validation state; and which is
 * the latest. Reads one small metadata file per snapshot, so it stays fast with thousands of them.
 *
 * @module
 */
import { join } from "node:path";
import { folderNames } from "../fs/probe.ts";
import { METADATA_FILE, snapshotsDir } from "../snapshot/layout.ts";
import { readMetadata, snapshotBytes, type SnapshotMetadata } from "../snapshot/metadata.ts";
import { isStamp, parseStamp } from "../snapshot/stamp.ts";

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
  /** Seconds since the stamp, or `null` for a folder whose name is not a stamp. */
  age_seconds: number | null;
  validation: ValidationState;
}

/**
 * List every folder under `<backup>/snapshots/`, sorted by name, as the module does.
 *
 * @param now The time ages are measured from.
 */
export function listSnapshots(backupDir: string, now: Date): ListEntry[] {
  return snapshotNames(backupDir).map((name) => listEntry(join(snapshotsDir(backupDir), name), name, now));
}

/** The names of the folders under `<backup>/snapshots/`, sorted; stamps and other names alike. */
export function snapshotNames(backupDir: string): string[] {
  return folderNames(snapshotsDir(backupDir));
}

/** The newest snapshot whose name is a plain stamp (what `--latest` means), or `null` when there is none. */
export function latestStamp(backupDir: string): string | null {
  return snapshotNames(backupDir).filter(isStamp).at(-1) ?? null;
}

function listEntry(path: string, stamp: string, now: Date): ListEntry {
  const read = readMetadata(join(path, METADATA_FILE));
  const time = parseStamp(stamp);
  const entry: ListEntry = {
    stamp,
    path,
    has_metadata: read.ok || read.error !== "metadata_missing",
    size_bytes: 0,
    has_manifest: false,
    manifest_files: 0,
    chroma_included: false,
    age_seconds: time ? Math.round((now.getTime() - time.getTime()) / 1000) : null,
    validation: "unknown",
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
  entry.validation = entry.has_manifest && isStamp(stamp) ? "validated_at_create" : "unknown";
  return entry;
}
