/**
 * A local snapshot folder as a push sees it: its stamp, its metadata, and every file and link to send (from its
 * manifest, or from a walk for the module's snapshots, which have none), with the metadata file itself.
 *
 * @module
 */
import { hash } from "node:crypto";
import { basename, join } from "node:path";
import { OperationError } from "../errors.ts";
import { walkTree } from "../fs/tree.ts";
import { checkedStamp, METADATA_FILE, metadataPath } from "../snapshot/layout.ts";
import { readMetadata, type SnapshotMetadata } from "../snapshot/metadata.ts";
import { isCleanPath } from "./document.ts";
import { readRegularFile } from "../fs/regular_file.ts";

/** A file to send (`sha256` from the manifest, `null` when unknown) or a link. */
export type LocalEntry =
  | { kind: "file"; path: string; size: number; sha256: string | null }
  | { kind: "link"; path: string; target: string };

/** A local snapshot ready to push. */
export interface LocalSnapshot {
  root: string;
  stamp: string;
  metadata: SnapshotMetadata;
  /** The SHA-256 of its `backup-metadata.json` (which holds every file's hash): which snapshot of its stamp it is. */
  metadataSha256: string;
  entries: LocalEntry[];
}

/** A snapshot whose metadata cannot be read or whose manifest lists a path that is not clean: an invalid snapshot. */
export class UnreadableSnapshotError extends OperationError {
  /** Snapshot `stamp` cannot be pushed because of `reason`. */
  constructor(readonly stamp: string, readonly reason: string) {
    super(`snapshot ${stamp}: ${reason}; run 'validate ${stamp}'`);
  }
}

/**
 * Read the snapshot at `root` (a folder named by its stamp): metadata, then entries sorted by path.
 *
 * @throws {UnreadableSnapshotError} naming the snapshot when its metadata is unreadable or a listed path is not clean.
 */
export function readLocalSnapshot(root: string): LocalSnapshot {
  const stamp = checkedStamp(basename(root));
  const read = readMetadata(metadataPath(root));
  if (!read.ok) throw new UnreadableSnapshotError(stamp, read.error);
  const metadata = read.metadata;
  const entries: LocalEntry[] = Array.isArray(metadata.manifest)
    ? metadata.manifest.map((entry): LocalEntry => {
      if (!isCleanPath(entry?.path)) {
        throw new UnreadableSnapshotError(stamp, `manifest path ${JSON.stringify(entry?.path)} is not clean`);
      }
      return "symlink" in entry
        ? { kind: "link", path: entry.path, target: entry.symlink }
        : { kind: "file", path: entry.path, size: entry.size, sha256: entry.sha256 };
    })
    : walked(root);
  const info = Deno.lstatSync(metadataPath(root));
  entries.push({ kind: "file", path: METADATA_FILE, size: info.size, sha256: null });
  entries.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return {
    root,
    stamp,
    metadata,
    metadataSha256: hash("sha256", readRegularFile(metadataPath(root)), "hex"),
    entries,
  };
}

/** The files and links of a snapshot without a manifest (the module's), never following a link. */
function walked(root: string): LocalEntry[] {
  return walkTree(root, (path) => path === METADATA_FILE).flatMap((entry): LocalEntry[] => {
    if (entry.kind === "symlink") {
      return [{ kind: "link", path: entry.path, target: Deno.readLinkSync(join(root, entry.path)) }];
    }
    if (entry.kind === "file") return [{ kind: "file", path: entry.path, size: entry.size, sha256: null }];
    return [];
  });
}

/**
 * Check that a link is still what the snapshot recorded.
 *
 * @throws {OperationError} when it is missing, no longer a link, or points elsewhere.
 */
export function checkLink(root: string, stamp: string, entry: { path: string; target: string }): void {
  const path = join(root, entry.path);
  const info = Deno.lstatSync(path);
  if (!info.isSymlink || Deno.readLinkSync(path) !== entry.target) {
    throw new OperationError(`snapshot ${stamp}: ${entry.path} changed since it was made; run 'validate ${stamp}'`);
  }
}
