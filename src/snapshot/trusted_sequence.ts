/**
 * A snapshot's publication sequence as far as its metadata vouches for it: what orders snapshots where a clock set back
 * would misorder their stamps (`--latest`, cleanup's `last-published`, a push's refs).
 *
 * @module
 */
import { basename } from "node:path";
import { DIGEST_KEY, metadataDigest } from "./binding.ts";
import { sequenceOf, type SnapshotMetadata } from "./metadata.ts";

/**
 * The metadata's sequence when it is a count and the metadata is as create bound it: `null` for unbound metadata (the
 * module's, which records none) or metadata edited since, so that a sequence added or changed by hand orders nothing.
 */
export function trustedSequence(metadata: SnapshotMetadata | null, stamp: string): number | null {
  return isBoundAs(metadata, stamp) ? sequenceOf(metadata) : null;
}

/**
 * Whether `metadata` holds create's digest of itself, unchanged since, in the folder create made for it: a snapshot
 * copied under another stamp (`backup_root` names the one it was made as) fails validation and vouches for nothing.
 */
export function isBoundAs(metadata: SnapshotMetadata | null, stamp: string): boolean {
  const recorded = (metadata as unknown as Record<string, unknown> | null)?.[DIGEST_KEY];
  return recorded !== undefined && recorded === metadataDigest(metadata!) && madeAs(metadata!, stamp);
}

/** Whether `metadata` was made for the snapshot `stamp`: its `backup_root`, where it records one, ends in that stamp. */
export function madeAs(metadata: SnapshotMetadata, stamp: string): boolean {
  const root = metadata.backup_root;
  return root === undefined || (typeof root === "string" && basename(root) === stamp);
}
