/**
 * The snapshot document sealed in `snapshots/<stamp>_<push id>`: which packs a snapshot uses and, for each file, the
 * extents that tile it. Parsing checks every field read back, so nothing from a repository is trusted unchecked.
 *
 * @module
 */
import { OperationError } from "../errors.ts";
import { METADATA_FILE, mustBeRegularFile } from "../snapshot/layout.ts";
import type { Compression, PackInfo } from "./boundary.ts";
import { DocumentJsonError, readDocumentJson } from "./document_json.ts";
import { type Extent, extentsOf, type ExtentTable, isExtentTable } from "./extent_table.ts";
import { isPackId, type SnapshotKey, snapshotKeyText } from "./layout.ts";

/**
 * The document format a push writes: 2 hashes an extent by its blocks (`extent_hash.ts`). A reader takes 1 and 2.
 */
export const DOCUMENT_FORMAT = 2;
/** The document formats a reader takes. */
const READABLE_FORMATS: readonly unknown[] = [1, DOCUMENT_FORMAT];
/** Plaintext bytes a pack is filled to; a reader refuses an extent that ends beyond a pack's plaintext. */
export const PACK_TARGET_BYTES = 8 << 20;
/** The largest plaintext a pack may hold: a full pack plus one largest block. */
export const PACK_MAX_BYTES = PACK_TARGET_BYTES + 65536;
/** A buffer that holds any pack, sealed (age adds 16 bytes per 64 KiB and ~150 per recipient) or open; reused. */
export const PACK_BUFFER_BYTES = PACK_MAX_BYTES + 65536;

/**
 * A regular file: its size, SHA-256, the block size it was split at, and the extents that tile it in order (read back
 * as a table: a store's document holds hundreds of thousands).
 */
export interface DocumentFile {
  path: string;
  size: number;
  sha256: string;
  block: number;
  extents: ExtentTable;
}

/** A symbolic link, restored as a link (never followed). */
export interface DocumentLink {
  path: string;
  link: string;
}

/** The snapshot document. */
export interface SnapshotDocument {
  format: 1 | typeof DOCUMENT_FORMAT;
  repository_id: string;
  stamp: string;
  push_id: string;
  pushed_at: string;
  host: string;
  metadata: Record<string, unknown>;
  packs: PackInfo[];
  files: (DocumentFile | DocumentLink)[];
  /**
   * The databases (paths of `files`) whose bytes, as the push read and stored them, passed `PRAGMA integrity_check` in
   * the push's validation; absent in documents pushed before it was recorded.
   */
  integrity_checked?: string[];
}

/** A regular file as a push writes it: its extents as a table or as a list (written as the same JSON). */
export type WritableFile = Omit<DocumentFile, "extents"> & { extents: Extent[] | ExtentTable };

/** The snapshot document as a push writes it. */
export type WritableDocument = Omit<SnapshotDocument, "files"> & { files: (WritableFile | DocumentLink)[] };

/** Whether a document entry is a regular file. */
export function isDocumentFile(entry: DocumentFile | DocumentLink): entry is DocumentFile {
  return "extents" in entry;
}

/**
 * Extents turned into JSON text at once while serializing: each piece's text (about 100 KiB) stays in V8's young
 * generation, where a 4096-extent piece went to the large-object space and stayed until a full collection.
 */
const EXTENTS_PER_PIECE = 1024;

/**
 * The document as JSON text, piece by piece: one line, the same text as `JSON.stringify` (with `files` last), so that
 * a writer never holds the text of a whole store's extents at once.
 */
export function* documentText(document: WritableDocument): Generator<string> {
  const { files, ...head } = document;
  yield JSON.stringify({ ...head, files: [] }).slice(0, -2); // open: `..."files":[`
  for (const [index, entry] of files.entries()) {
    const comma = index > 0 ? "," : "";
    if ("link" in entry) {
      yield comma + JSON.stringify(entry);
      continue;
    }
    const { extents, ...fields } = entry;
    yield comma + JSON.stringify({ ...fields, extents: [] }).slice(0, -2);
    const count = Array.isArray(extents) ? extents.length : extents.at.length;
    for (let at = 0; at < count; at += EXTENTS_PER_PIECE) {
      const slice = Array.isArray(extents)
        ? extents.slice(at, at + EXTENTS_PER_PIECE)
        : extentsOf(extents, at, at + EXTENTS_PER_PIECE);
      yield (at > 0 ? "," : "") + JSON.stringify(slice).slice(1, -1);
    }
    yield "]}";
  }
  yield "]}";
}

/**
 * Parse and check a document read from `name`: it must belong to repository `repositoryId` and be snapshot `key`;
 * paths must be relative and clean; extents must tile each file exactly and point into listed packs.
 *
 * @throws {OperationError} naming the object and the first thing wrong.
 */
export function parseDocument(
  bytes: Uint8Array,
  name: string,
  repositoryId: string,
  key: SnapshotKey,
): SnapshotDocument {
  let value: unknown;
  try {
    value = readDocumentJson(bytes);
  } catch (error) {
    if (!(error instanceof DocumentJsonError)) throw error;
    throw new OperationError(`${name}: not a valid document (${error.message}); the snapshot cannot be trusted`);
  }
  const problem = documentProblem(value, repositoryId, key);
  if (problem) throw new OperationError(`${name}: ${problem}; the snapshot cannot be trusted`);
  return value as SnapshotDocument;
}

function documentProblem(value: unknown, repositoryId: string, key: SnapshotKey): string | null {
  if (!isObject(value)) return "not a JSON object";
  const doc = value as Record<string, unknown>;
  if (!READABLE_FORMATS.includes(doc.format)) {
    return `document format ${JSON.stringify(doc.format)} is not one this version reads (1 or 2; a newer one may)`;
  }
  if (doc.repository_id !== repositoryId) return "it belongs to another repository (copied in from elsewhere)";
  if (doc.stamp !== key.stamp || doc.push_id !== key.pushId) {
    return `it is snapshot ${String(doc.stamp)}_${String(doc.push_id)}, not ${snapshotKeyText(key)} (swapped)`;
  }
  if (typeof doc.pushed_at !== "string" || typeof doc.host !== "string") return "pushed_at or host is missing";
  if (!isObject(doc.metadata)) return "metadata is not an object";
  if (!Array.isArray(doc.packs) || !doc.packs.every(isPackInfo)) return "a pack entry is malformed";
  if (new Set(doc.packs.map((pack: PackInfo) => pack.id)).size !== doc.packs.length) return "a pack is listed twice";
  if (!Array.isArray(doc.files)) return "files is not a list";
  return filesProblem(doc.files, doc.packs.length) ?? checkedProblem(doc.integrity_checked, doc.files);
}

/** `integrity_checked`, when present, names regular files of the document, each once. */
function checkedProblem(checked: unknown, files: unknown[]): string | null {
  if (checked === undefined) return null;
  const regular = new Set((files as (DocumentFile | DocumentLink)[]).filter(isDocumentFile).map((file) => file.path));
  const valid = Array.isArray(checked) && new Set(checked).size === checked.length &&
    checked.every((path) => regular.has(path));
  return valid ? null : "integrity_checked does not name regular files of the snapshot, each once";
}

function filesProblem(files: unknown[], packCount: number): string | null {
  const kinds = new Map<string, "file" | "link">();
  for (const entry of files) {
    if (!isObject(entry) || !isCleanPath((entry as { path?: unknown }).path)) {
      return `a path is not relative and clean: ${JSON.stringify((entry as { path?: unknown })?.path)}`;
    }
    const path = (entry as { path: string }).path;
    if (kinds.has(path)) return `${path} is listed twice`;
    const link = (entry as { link?: unknown }).link;
    if (link !== undefined) {
      if (typeof link !== "string" || link === "" || link.includes("\0")) return `${path}: link target is malformed`;
      if ("extents" in entry) return `${path}: a link with extents`;
      if (mustBeRegularFile(path)) return `${path} is a link where the snapshot keeps a regular file`;
      kinds.set(path, "link");
      continue;
    }
    const problem = fileProblem(entry as Record<string, unknown>, packCount);
    if (problem) return `${path}: ${problem}`;
    kinds.set(path, "file");
  }
  for (const path of kinds.keys()) {
    const segments = path.split("/");
    for (let depth = 1; depth < segments.length; depth++) {
      if (kinds.has(segments.slice(0, depth).join("/"))) return `${path} lies below a file or link`;
    }
  }
  return kinds.get(METADATA_FILE) === "file" ? null : `${METADATA_FILE} is not listed`;
}

function fileProblem(file: Record<string, unknown>, packCount: number): string | null {
  const { size, sha256, block, extents } = file;
  if (!isCount(size) || !isPackId(sha256)) return "size or sha256 is malformed";
  if (!isCount(block) || block < 512 || block > 65536) return "block size is out of range";
  if (!isExtentTable(extents)) return "extents is not a list";
  let next = 0;
  // the reader took each field as a plain integer in its column's range, and each hash as 64 hex digits
  for (let row = 0; row < extents.at.length; row++) {
    if (extents.at[row] !== next) return `extents do not tile the file (gap or overlap at ${next})`;
    if (extents.packs[row] >= packCount) return "an extent points to no listed pack";
    const length = extents.lengths[row];
    if (length === 0 || extents.offsets[row] + length > PACK_MAX_BYTES) return "an extent's range is malformed";
    next += length;
  }
  return next === size ? null : `extents cover ${next} bytes, the file has ${size}`;
}

/**
 * Whether `path` is relative, clean (no empty, `.` or `..` segment, no NUL) and not too long. A backslash is an ordinary
 * character of a name on the systems this tool runs on, and a local snapshot may hold one: it is kept, never split.
 */
export function isCleanPath(path: unknown): path is string {
  if (typeof path !== "string" || path === "" || path.length > 4096 || path.includes("\0")) return false;
  const encoder = new TextEncoder();
  return path.split("/").every((segment) =>
    segment !== "" && segment !== "." && segment !== ".." && encoder.encode(segment).length <= 255 // NAME_MAX
  );
}

function isPackInfo(value: unknown): value is PackInfo {
  if (!isObject(value)) return false;
  const pack = value as Record<string, unknown>;
  return isPackId(pack.id) && isCount(pack.size) && pack.size > 0 && isCompression(pack.compression);
}

function isCompression(value: unknown): value is Compression {
  return value === "zstd" || value === "none";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
