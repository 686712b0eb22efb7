/**
 * `backup-metadata.json`: the reference module's keys plus this tool's, written with the module's absolute
 * paths (so the module reads it) and read with paths resolved against where the snapshot is found (so a moved
 * backup folder validates).
 *
 * @module
 */
import { isAbsolute, join, normalize, relative, sep } from "node:path";
import { describeOsError } from "../errors.ts";
import { TOOL_NAME, TOOL_VERSION } from "../version.ts";
import type { ManifestEntry } from "./manifest.ts";

/** Version of the metadata format this tool writes (absent in the module's). */
export const FORMAT_VERSION = 1;

const NOTE_WITH_CHROMA = "Chroma snapshot included as cold directory copy.";
const NOTE_WITHOUT_CHROMA =
  "Chroma hot backup is not included; rerun with include_chroma=True under exclusive_ingestion().";

/** The metadata of a snapshot, as written to and read from `backup-metadata.json`. */
export interface SnapshotMetadata {
  created_at: string;
  backup_root: string;
  db_snapshot_path: string;
  db_size_bytes: number;
  registry_snapshot_path: string;
  chroma_snapshot_path: string;
  chroma_snapshot_bytes: number;
  chroma_snapshot_files: number;
  chroma_snapshot_included: boolean;
  vector_store_note: string;
  format_version?: number;
  tool?: string;
  tool_version?: string;
  sqlite_driver?: string;
  sqlite_version?: string;
  /** `pre-restore` for the undo point a restore takes of the live store; `snapshot` for every other (absent in the module's). */
  kind?: SnapshotKind;
  /** For a pre-restore snapshot: the stamp whose restore it was taken before. */
  restoring_stamp?: string;
  /**
   * Publication order: one more than the highest among the snapshots present when it was made. Unlike the stamp,
   * a clock set back does not change it (absent in the module's and in older ones).
   */
  sequence?: number;
  manifest?: ManifestEntry[];
}

/** What a snapshot was made for. */
export type SnapshotKind = "snapshot" | "pre-restore";

/** What a new snapshot holds, to be recorded in its metadata. */
export interface MetadataInput {
  createdAt: string;
  backupRoot: string;
  dbSnapshotPath: string;
  dbSizeBytes: number;
  registrySnapshotPath: string;
  chromaSnapshotPath: string;
  chromaBytes: number;
  chromaFiles: number;
  includeChroma: boolean;
  driver: { name: string; version: string };
  manifest: ManifestEntry[];
  /** The stamp being restored, for a pre-restore snapshot. */
  restoringStamp?: string;
  /** See {@linkcode SnapshotMetadata.sequence}. */
  sequence: number;
}

/** Build the metadata of a new snapshot, with the module's keys first and in its order. */
export function buildMetadata(input: MetadataInput): SnapshotMetadata {
  return {
    created_at: input.createdAt,
    backup_root: input.backupRoot,
    db_snapshot_path: input.dbSnapshotPath,
    db_size_bytes: input.dbSizeBytes,
    registry_snapshot_path: input.registrySnapshotPath,
    chroma_snapshot_path: input.chromaSnapshotPath,
    chroma_snapshot_bytes: input.chromaBytes,
    chroma_snapshot_files: input.chromaFiles,
    chroma_snapshot_included: input.includeChroma,
    vector_store_note: input.includeChroma && input.chromaSnapshotPath ? NOTE_WITH_CHROMA : NOTE_WITHOUT_CHROMA,
    format_version: FORMAT_VERSION,
    tool: TOOL_NAME,
    tool_version: TOOL_VERSION,
    sqlite_driver: input.driver.name,
    sqlite_version: input.driver.version,
    kind: input.restoringStamp === undefined ? "snapshot" : "pre-restore",
    ...(input.restoringStamp === undefined ? {} : { restoring_stamp: input.restoringStamp }),
    sequence: input.sequence,
    manifest: input.manifest,
  };
}

/** Serialise metadata as the module does: two-space indent, ASCII only, final newline. */
export function serializeMetadata(metadata: SnapshotMetadata): string {
  const json = JSON.stringify(metadata, null, 2);
  return json.replace(/[\u007f-\uffff]/g, (char) => "\\u" + char.charCodeAt(0).toString(16).padStart(4, "0")) +
    "\n";
}

/** The outcome of reading a snapshot's metadata file. */
export type MetadataRead =
  | { ok: true; metadata: SnapshotMetadata }
  | { ok: false; error: "metadata_missing" | `metadata_invalid_json: ${string}` | `metadata_unreadable: ${string}` };

/**
 * Read and parse `backup-metadata.json` at `path`; a JSON value that is not an object is invalid.
 * A file that cannot be read (permissions, a folder in its place) is an answer too, so one such
 * snapshot does not stop `list` or `validate --all` from reporting the others.
 */
export function readMetadata(path: string): MetadataRead {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { ok: false, error: "metadata_missing" };
    return { ok: false, error: `metadata_unreadable: ${describeOsError(error)}` };
  }
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { ok: false, error: "metadata_invalid_json: not a JSON object" };
    }
    return { ok: true, metadata: value as SnapshotMetadata };
  } catch (error) {
    return { ok: false, error: `metadata_invalid_json: ${(error as Error).message}` };
  }
}

/** A recorded path resolved inside the snapshot where it was found. */
export type LocatedPath = { ok: true; path: string; relative: string } | { ok: false; recorded: string };

/**
 * Resolve a path recorded in metadata (such as `db_snapshot_path`) against the
 * folder `root` where the snapshot is found now.
 *
 * The recorded path is taken relative to the recorded `backup_root` (or as given,
 * when relative). A path that would leave the snapshot, or holds a NUL byte, is refused (`ok: false`).
 */
export function locateRecordedPath(root: string, metadata: SnapshotMetadata, recorded: string): LocatedPath {
  const recordedRoot = typeof metadata.backup_root === "string" ? metadata.backup_root : "";
  let inside = recorded;
  if (isAbsolute(recorded)) {
    if (!recordedRoot) return { ok: false, recorded };
    inside = relative(normalize(recordedRoot), normalize(recorded));
  }
  inside = normalize(inside);
  if (
    inside === "." || inside === ".." || inside.startsWith(".." + sep) || isAbsolute(inside) || inside.includes("\0")
  ) {
    return { ok: false, recorded };
  }
  return { ok: true, path: join(root, inside), relative: inside.split(sep).join("/") };
}

/** A recorded path field as a string, or `""` when absent or of another type. */
export function recordedPath(metadata: SnapshotMetadata, key: keyof SnapshotMetadata): string {
  const value = metadata[key];
  return typeof value === "string" ? value : "";
}

/**
 * The bytes a snapshot holds, from its metadata alone: the manifest's file sizes, or
 * (for a module snapshot, which has none) the database and Chroma sizes it records.
 */
export function snapshotBytes(metadata: SnapshotMetadata): number {
  if (Array.isArray(metadata.manifest)) return manifestBytes(metadata.manifest);
  return numberOr0(metadata.db_size_bytes) + numberOr0(metadata.chroma_snapshot_bytes);
}

/** The bytes of the files a manifest lists (entries read from disk may lack a numeric size: counted as 0). */
export function manifestBytes(manifest: readonly ManifestEntry[]): number {
  return manifest.reduce((sum, entry) => sum + ("size" in entry ? numberOr0(entry.size) : 0), 0);
}

/** A recorded number, or 0 when absent or of another type (metadata is read from disk, so any JSON). */
export function numberOr0(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

/** Tell whether metadata marks its snapshot as a restore's pre-restore snapshot. */
export function isPreRestore(metadata: SnapshotMetadata | null | undefined): boolean {
  return metadata?.kind === "pre-restore";
}

/** The metadata's publication sequence, or `null` when it has none (the module's, older ones) or it is not a count. */
export function sequenceOf(metadata: SnapshotMetadata | null | undefined): number | null {
  const value = metadata?.sequence;
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : null;
}
