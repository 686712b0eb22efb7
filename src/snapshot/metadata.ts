/**
 * `backup-metadata.json`: the reference module's keys plus this tool's, written with the module's absolute
 * paths (so the module reads it) and read with paths resolved against where the snapshot is found (so a moved
 * backup folder validates).
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { describeOsError } from "../errors.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";
import { TOOL_NAME, TOOL_VERSION } from "../version.ts";
import type { JournalMode } from "../sqlite/journal_header.ts";
import { bindMetadata } from "./binding.ts";
import { CHROMA_FOLDER, CONFIG_FOLDER, DB_FOLDER } from "./layout.ts";
import type { ManifestEntry } from "./manifest.ts";
import { parseBoundedJson } from "../text/bounded_json.ts";

/**
 * Version of the metadata format this tool writes (absent in the module's). 2: databases copied as rollback-journal
 * images with their live journal modes recorded, and the metadata bound by `metadata_sha256` (`binding.ts`).
 */
export const FORMAT_VERSION = 2;

const NOTE_WITH_CHROMA = "Chroma snapshot included as cold directory copy.";
const NOTE_WITHOUT_CHROMA =
  "Chroma hot backup is not included; rerun with include_chroma=True under exclusive_ingestion().";
const NOTE_CHROMA_FAILED = "Chroma was asked for but could not be backed up (see chroma_error); " +
  "this snapshot holds the database and registry only.";

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
  /** Why Chroma, asked for, is not in the snapshot (its copy failed or did not validate); absent otherwise. */
  chroma_error?: string;
  manifest?: ManifestEntry[];
  db_journal_mode?: JournalMode | "";
  chroma_db_journal_mode?: JournalMode | "";
  metadata_sha256?: string;
  /** Only in a pre-restore snapshot whose live registry did not parse: why; the file is kept as it was. */
  registry_kept_invalid?: string;
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
  /** Why Chroma, asked for, could not be backed up; the snapshot then records it as not included. */
  chromaError?: string;
  driver: { name: string; version: string };
  manifest: ManifestEntry[];
  /** The stamp being restored, for a pre-restore snapshot. */
  restoringStamp?: string;
  /** See {@linkcode SnapshotMetadata.sequence}. */
  sequence: number;
  /** The live databases' journal modes (`null`: no database header, or no Chroma database). */
  dbJournalMode: JournalMode | null;
  chromaDbJournalMode: JournalMode | null;
  /** Why the registry kept in a pre-restore snapshot does not parse, when it does not. */
  registryKeptInvalid?: string;
}

/** Build the metadata of a new snapshot, with the module's keys first and in its order, bound by its digest last. */
export function buildMetadata(input: MetadataInput): SnapshotMetadata {
  return bindMetadata({
    created_at: input.createdAt,
    backup_root: input.backupRoot,
    db_snapshot_path: input.dbSnapshotPath,
    db_size_bytes: input.dbSizeBytes,
    registry_snapshot_path: input.registrySnapshotPath,
    chroma_snapshot_path: input.chromaSnapshotPath,
    chroma_snapshot_bytes: input.chromaBytes,
    chroma_snapshot_files: input.chromaFiles,
    chroma_snapshot_included: input.includeChroma && input.chromaError === undefined,
    vector_store_note: input.chromaError !== undefined
      ? NOTE_CHROMA_FAILED
      : input.includeChroma && input.chromaSnapshotPath
      ? NOTE_WITH_CHROMA
      : NOTE_WITHOUT_CHROMA,
    format_version: FORMAT_VERSION,
    tool: TOOL_NAME,
    tool_version: TOOL_VERSION,
    sqlite_driver: input.driver.name,
    sqlite_version: input.driver.version,
    kind: input.restoringStamp === undefined ? "snapshot" : "pre-restore",
    ...(input.restoringStamp === undefined ? {} : { restoring_stamp: input.restoringStamp }),
    sequence: input.sequence,
    ...(input.chromaError !== undefined ? { chroma_error: input.chromaError } : {}),
    manifest: input.manifest,
    db_journal_mode: input.dbJournalMode ?? "",
    chroma_db_journal_mode: input.chromaDbJournalMode ?? "",
    ...(input.registryKeptInvalid === undefined ? {} : { registry_kept_invalid: input.registryKeptInvalid }),
  });
}

/**
 * Why the snapshot's registry is kept although it is not JSON, or `null`: only a pre-restore snapshot of this tool
 * keeps one (its manifest still checks the file's bytes), never a snapshot without a manifest.
 */
export function keptInvalidRegistry(metadata: SnapshotMetadata): string | null {
  const reason = metadata.registry_kept_invalid;
  return typeof reason === "string" && Array.isArray(metadata.manifest) ? reason : null;
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
 * A file that cannot be read (permissions, a folder, FIFO or link in its place, over 8 MiB, or holding more
 * JSON values than `parseBoundedJson` takes) is an answer too, so
 * one such snapshot does not stop `list` or `validate --all` from reporting the others, and none blocks them.
 */
export function readMetadata(path: string): MetadataRead {
  let text: string;
  try {
    text = readRegularTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { ok: false, error: "metadata_missing" };
    return { ok: false, error: `metadata_unreadable: ${describeOsError(error)}` };
  }
  try {
    const value = parseBoundedJson(text); // a writer of the backup folder's costly one is refused unparsed
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return { ok: false, error: "metadata_invalid_json: not a JSON object" };
    }
    return { ok: true, metadata: value as SnapshotMetadata };
  } catch (error) {
    return { ok: false, error: `metadata_invalid_json: ${(error as Error).message}` };
  }
}

/** The parts of a snapshot whose paths the metadata records. */
export type SnapshotPart = "db" | "registry" | "chroma";

/** The metadata key that records each part's path, and the sub-folder the layout puts it in. */
const PARTS = {
  db: { key: "db_snapshot_path", folder: DB_FOLDER },
  registry: { key: "registry_snapshot_path", folder: CONFIG_FOLDER },
  chroma: { key: "chroma_snapshot_path", folder: CHROMA_FOLDER },
} as const;

/**
 * A part located in the snapshot where it is found: its path, its path relative to the snapshot's folder, and the
 * file name the metadata gave (`""` for Chroma's folder); or, when the recorded path does not fit the layout, the
 * error that says so.
 */
export type LocatedPart =
  | { ok: true; path: string; relative: string; name: string }
  | { ok: false; recorded: string; error: string };

/**
 * Locate `part` of the snapshot found at `root` from the layout, never from where the metadata points: the database
 * is `db/<name>`, the registry `config/<name>`, Chroma `chroma/`. The metadata supplies only `<name>`, a plain file
 * name. Its recorded path (absolute under the recorded `backup_root`, as the module and this tool write it, or
 * relative) must be exactly that place; anything else is refused (`ok: false`).
 *
 * @returns `null` when the metadata records no path for the part (`""`, or not a string).
 */
export function locatePart(root: string, metadata: SnapshotMetadata, part: SnapshotPart): LocatedPart | null {
  const { key, folder } = PARTS[part];
  const recorded = recordedPath(metadata, key);
  if (!recorded) return null;
  const refused = { ok: false as const, recorded, error: `${key}_not_in_layout: ${printable(recorded)}` };
  const inside = insideRecordedRoot(metadata, recorded);
  if (inside === null) return refused;
  const [first, name, ...rest] = inside.split("/");
  if (first !== folder || rest.length > 0) return refused;
  if (part === "chroma") {
    return name === undefined ? { ok: true, path: join(root, folder), relative: folder, name: "" } : refused;
  }
  if (name === undefined || !isPlainName(name)) return refused;
  return { ok: true, path: join(root, folder, name), relative: `${folder}/${name}`, name };
}

/** The recorded path relative to the recorded `backup_root` (or as given, when relative); `null` when not below it. */
function insideRecordedRoot(metadata: SnapshotMetadata, recorded: string): string | null {
  if (!isAbsolute(recorded)) return recorded;
  const recordedRoot = recordedPath(metadata, "backup_root");
  if (!isAbsolute(recordedRoot)) return null;
  const prefix = `${recordedRoot.replace(/\/+$/, "")}/`;
  return recorded.startsWith(prefix) ? recorded.slice(prefix.length) : null;
}

/** A plain file name: not empty, not `.` or `..`, no NUL, no longer than a file name may be. */
export function isPlainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("\0") && !name.includes("/") &&
    new TextEncoder().encode(name).length <= 255;
}

/** A recorded value as one printable line (control characters escaped). */
export function printable(value: string): string {
  // deno-lint-ignore no-control-regex
  return value.replace(/[\u0000-\u001f\u007f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
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

/**
 * The metadata's publication sequence, or `null` when it has none (the module's, older ones) or it is not a count
 * below {@linkcode MAX_SEQUENCE}: one forged near 2^53 would make every next sequence equal. Past the bound, the next
 * ones are no count, and `--latest` goes by stamp with a warning.
 */
export function sequenceOf(metadata: SnapshotMetadata | null | undefined): number | null {
  const value = metadata?.sequence;
  return isSequenceCount(value) ? value : null;
}

/** Whether `value` is a publication sequence taken for a count: an integer from 0 below {@linkcode MAX_SEQUENCE}. */
export function isSequenceCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value < MAX_SEQUENCE;
}

/** The bound of a sequence taken for a count: a snapshot a second for 136 years. */
export const MAX_SEQUENCE = 2 ** 32;
