/**
 * Listing a repository's snapshots: from names and public refs alone without an identity (stamp, push id, stored
 * bytes), and with one from each decrypted document (pushed when, from which host, files, bytes, Chroma or not).
 *
 * @module
 */
import type { AgeIdentity } from "../crypto/age.ts";
import { AccessDeniedError, type Backend, isUnreachable } from "./backend.ts";
import { ToolError } from "../errors.ts";
import { isDocumentFile } from "./document.ts";
import { PREFIXES, type SnapshotKey, snapshotKeyText } from "./layout.ts";
import { readLeases, type Refs } from "./public_objects.ts";
import { openRepository } from "./repository.ts";
import { listSnapshots, readRefs, readSnapshot } from "./snapshots.ts";
import { collectGarbage } from "../sys/collect_garbage.ts";

/** One listed snapshot. */
export interface RemoteSnapshotEntry {
  snapshot: string;
  stamp: string;
  push_id: string;
  /** Whether its refs exist (without them `remote verify` reports it). */
  refs: boolean;
  /** The backup folder that pushed it, as its refs name it (a random id); `null` without refs or one recorded. */
  source: string | null;
  /** Whether its refs carry MACs (checked only with an identity: see `authenticated`). */
  mac: boolean;
  /** Packs it needs and their bytes in the repository (shared packs counted for each snapshot). */
  packs: number;
  stored_bytes: number;
  /** With an identity: from the document. */
  pushed_at?: string;
  host?: string;
  files?: number;
  bytes?: number;
  chroma?: boolean;
  /** With an identity: whether a MAC of its refs is valid for the identity's key (a wrong one is an `error`). */
  authenticated?: boolean;
  /** With an identity: why the document could not be read. */
  error?: string;
  /** Why its refs, which exist, could not be read (altered: too large, not JSON, malformed). */
  refs_error?: string;
}

/**
 * A snapshot's refs, `null` when they do not exist, with why when they exist but cannot be read: altered refs are not
 * missing ones. The storage refusing this host or not answering stops the listing (its own one line).
 */
async function refsOf(backend: Backend, key: SnapshotKey): Promise<{ refs: Refs | null; refsError?: string }> {
  try {
    return { refs: await readRefs(backend, key) };
  } catch (error) {
    if (!(error instanceof ToolError) || error instanceof AccessDeniedError || isUnreachable(error)) throw error;
    return { refs: null, refsError: error.message };
  }
}

/** A repository's listing. */
export interface RemoteListing {
  location: string;
  repository_id: string;
  recipients: string[];
  /** Oldest first. */
  snapshots: RemoteSnapshotEntry[];
  /** Pushes holding an unexpired lease. */
  pushes_in_progress: number;
  /** Links and special files under `snapshots/`: no snapshot, but a snapshot object may have been swapped for one. */
  not_objects: string[];
}

/** List the snapshots of the repository at `backend`; `identities` (optional) add what only documents tell. */
export async function listRemote(
  backend: Backend,
  identities: readonly AgeIdentity[] = [],
  now: Date = new Date(),
): Promise<RemoteListing> {
  const repository = await openRepository(backend);
  const listing = await listSnapshots(backend);
  const snapshots: RemoteSnapshotEntry[] = [];
  for (const { key } of listing.snapshots) {
    const { refs, refsError } = await refsOf(backend, key);
    const entry: RemoteSnapshotEntry = {
      snapshot: snapshotKeyText(key),
      stamp: key.stamp,
      push_id: key.pushId,
      refs: refs !== null,
      source: refs?.source ?? null,
      mac: (refs?.auth?.length ?? 0) > 0,
      packs: refs?.packs.length ?? 0,
      stored_bytes: refs?.packs.reduce((sum, pack) => sum + pack.size, 0) ?? 0,
      ...(refsError === undefined ? {} : { refs_error: refsError }),
    };
    if (identities.length > 0) {
      try {
        const read = await readSnapshot(repository, identities, key, { allowUnauthenticated: true });
        const document = read.document;
        entry.authenticated = read.authenticated;
        const files = document.files.filter(isDocumentFile);
        entry.pushed_at = document.pushed_at;
        entry.host = document.host;
        entry.files = document.files.length;
        entry.bytes = files.reduce((sum, file) => sum + file.size, 0);
        entry.chroma = document.metadata.chroma_snapshot_included === true;
      } catch (error) {
        entry.error = (error as Error).message;
      }
      collectGarbage(); // one document at a time, whatever the history
    }
    snapshots.push(entry);
  }
  const leases = await readLeases(backend, now);
  return {
    location: backend.location,
    repository_id: repository.config.id,
    recipients: repository.config.recipients,
    snapshots,
    pushes_in_progress: leases.active.size,
    not_objects: await backend.unlisted?.(PREFIXES.snapshots) ?? [],
  };
}
