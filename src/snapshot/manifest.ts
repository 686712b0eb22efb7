/**
 * The manifest of a snapshot: every file with its relative path, size and SHA-256,
 * and every symbolic link with its target; how it is built and checked.
 *
 * Requires `--allow-read`.
 *
 * @module
 */
import { isAbsolute, join, normalize } from "node:path";
import { describeOsError, isIoError } from "../errors.ts";
import { sha256File } from "../fs/hash.ts";
import { lstatOrNull } from "../fs/probe.ts";
import { walkTree } from "../fs/tree.ts";
import { METADATA_FILE } from "./layout.ts";

/** One file or symbolic link of a snapshot. */
export type ManifestEntry =
  | { path: string; size: number; sha256: string }
  | { path: string; symlink: string };

/** Progress of hashing: bytes hashed so far, out of `total`. */
export type HashProgress = (done: number, total: number) => void;

/** What checking a snapshot against its manifest found. */
export interface ManifestCheck {
  /** One line per problem, e.g. `manifest_sha256_mismatch: db/atocore.db`. */
  errors: string[];
  /** Files and links checked. */
  filesChecked: number;
  /** Bytes read to hash (0 with `quick`). */
  bytesHashed: number;
  /** Files whose bytes the storage failed to give (EIO), by path: their other errors are the storage's too. */
  storageFailed: string[];
}

/**
 * Build the manifest of the snapshot at `root`: every entry but the metadata file.
 *
 * @param onProgress Called as files are read with the bytes hashed so far and the total (for progress).
 * @param hashed SHA-256 already computed for some files (by relative path), which are not read again.
 */
export function buildManifest(
  root: string,
  onProgress?: HashProgress,
  hashed: ReadonlyMap<string, string> = new Map(),
): ManifestEntry[] {
  const entries = walkTree(root, (path) => path === METADATA_FILE);
  const toRead = entries.map((entry) => entry.kind === "file" && !hashed.has(entry.path) ? entry.size : 0);
  const onBytes = hashCounter(toRead, onProgress);
  const manifest: ManifestEntry[] = [];
  for (const entry of entries) {
    if (entry.kind === "symlink") {
      manifest.push({ path: entry.path, symlink: Deno.readLinkSync(join(root, entry.path)) });
    } else if (entry.kind === "file") {
      const sha256 = hashed.get(entry.path) ?? sha256File(join(root, entry.path), onBytes);
      manifest.push({ path: entry.path, size: entry.size, sha256 });
    }
  }
  return manifest;
}

/** How {@linkcode checkManifest} checks the files' content. */
export interface ManifestCheckOptions {
  /** Sizes only, no SHA-256. */
  quick: boolean;
  onProgress?: HashProgress;
  /**
   * SHA-256 already proven for files of this very folder (a fetch hashed each one as written, against its document), by path:
   * such a file's entry is compared with it as text instead of the file being read again.
   */
  verified?: ReadonlyMap<string, string>;
  /**
   * SHA-256 taken just before by another thread (see {@linkcode filesToHash}), by path: such a file is checked for its
   * kind and size here and its hash compared, instead of being read on this thread.
   */
  hashed?: ReadonlyMap<string, string>;
}

/**
 * The files `manifest` lists that a full check hashes, each with its recorded size: the path relative to the snapshot,
 * inside it, and not proven already by `verified`.
 */
export function filesToHash(
  manifest: unknown,
  verified: ReadonlyMap<string, string> = new Map(),
): { path: string; size: number }[] {
  if (!Array.isArray(manifest)) return [];
  return manifest.flatMap((entry) =>
    typeof entry?.size === "number" && typeof entry.path === "string" && isInside(entry.path) &&
      !verified.has(entry.path)
      ? [{ path: entry.path, size: entry.size }]
      : []
  );
}

/**
 * Check the snapshot at `root` against `manifest`: every entry present, of its kind,
 * size and (unless `quick`) SHA-256; no file or link that the manifest does not list.
 */
export function checkManifest(root: string, manifest: unknown, options: ManifestCheckOptions): ManifestCheck {
  const check: ManifestCheck = { errors: [], filesChecked: 0, bytesHashed: 0, storageFailed: [] };
  if (!Array.isArray(manifest)) return { ...check, errors: ["manifest_invalid: not a list"] };
  const verified = options.verified ?? new Map<string, string>();
  const sizes = manifest.map((entry) => typeof entry?.size === "number" && !verified.has(entry?.path) ? entry.size : 0);
  const onBytes = options.quick ? undefined : hashCounter(sizes, options.onProgress);
  const listed = new Set<string>();
  const linkedFolders = new Map<string, boolean | null>();
  for (const entry of manifest as ManifestEntry[]) {
    const path = typeof entry?.path === "string" ? entry.path : "";
    if (!isInside(path)) {
      check.errors.push(`manifest_path_outside_snapshot: ${JSON.stringify(path)}`);
      continue;
    }
    listed.add(path);
    if (throughLink(root, path, linkedFolders)) { // a hand-made entry below a link would check the link's target
      check.errors.push(`manifest_path_through_link: ${path}`);
      continue;
    }
    check.filesChecked += 1;
    const known = { verified: verified.get(path), hashed: options.hashed?.get(path) };
    const problem = checkEntry(root, entry, { quick: options.quick, onBytes, ...known }, check);
    if (problem) check.errors.push(`${problem}: ${path}`);
  }
  for (const entry of walkTree(root, (path) => path === METADATA_FILE)) {
    if (entry.kind !== "dir" && !listed.has(entry.path)) check.errors.push(`manifest_unexpected_file: ${entry.path}`);
  }
  return { ...check, errors: boundedErrors(check.errors) };
}

/** The most errors a manifest check lists; the rest are counted in one more (a hand-made manifest may have millions). */
const MAX_LISTED_ERRORS = 1000;

function boundedErrors(errors: string[]): string[] {
  if (errors.length <= MAX_LISTED_ERRORS) return errors;
  const more = errors.length - MAX_LISTED_ERRORS;
  return [...errors.slice(0, MAX_LISTED_ERRORS), `manifest_errors_not_listed: ${more} more`];
}

function checkEntry(
  root: string,
  entry: ManifestEntry,
  options: { quick: boolean; onBytes?: (bytes: number) => void; verified?: string; hashed?: string },
  check: ManifestCheck,
): string | null {
  const path = join(root, entry.path);
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return "manifest_file_missing";
    }
    throw error;
  }
  if ("symlink" in entry) {
    if (!info.isSymlink) return "manifest_kind_mismatch";
    return Deno.readLinkSync(path) === entry.symlink ? null : "manifest_symlink_mismatch";
  }
  if (!info.isFile) return "manifest_kind_mismatch";
  if (info.size !== entry.size) return `manifest_size_mismatch (recorded ${entry.size}, found ${info.size})`;
  if (options.verified !== undefined) return options.verified === entry.sha256 ? null : "manifest_sha256_mismatch";
  if (options.quick) return null;
  check.bytesHashed += info.size;
  try {
    return (options.hashed ?? sha256File(path, options.onBytes)) === entry.sha256 ? null : "manifest_sha256_mismatch";
  } catch (error) {
    if (isIoError(error)) check.storageFailed.push(entry.path);
    return `manifest_file_unreadable (${describeOsError(error)})`; // one bad file must not stop the others' checks
  }
}

/**
 * Whether a folder on the way to `path` (relative, inside `root`) is a symbolic link (a file or nothing there is the
 * entry's own finding: missing); `seen` keeps each folder's answer for the next entries.
 */
function throughLink(root: string, path: string, seen: Map<string, boolean | null>): boolean {
  const parts = path.split("/").slice(0, -1);
  for (let at = 1; at <= parts.length; at++) {
    const folder = parts.slice(0, at).join("/");
    let linked = seen.get(folder);
    if (linked === undefined) {
      const info = lstatOrNull(join(root, folder));
      linked = info?.isSymlink ? true : info?.isDirectory ? false : null; // null: nothing to walk below
      seen.set(folder, linked);
    }
    if (linked !== false) return linked === true;
  }
  return false;
}

function isInside(path: string): boolean {
  if (!path || isAbsolute(path) || path.includes("\0")) return false;
  const normal = normalize(path);
  return normal === path && normal !== ".." && !normal.startsWith("../") && normal !== METADATA_FILE;
}

/** A per-chunk byte callback that reports the running sum against the sum of `sizes`. */
function hashCounter(sizes: number[], onProgress?: HashProgress): ((bytes: number) => void) | undefined {
  if (!onProgress) return undefined;
  const total = sizes.reduce((sum, size) => sum + size, 0);
  let done = 0;
  return (bytes) => onProgress(done += bytes, total);
}
