/**
 * The public objects a push and a cleanup coordinate through (refs, leases, condemned markers): their shapes, and
 * reading them back checked, so that verify and cleanup need no identity.
 *
 * @module
 */
import { OperationError } from "../errors.ts";
import type { Backend } from "./backend.ts";
import { getPublic } from "./boundary.ts";
import { isSequenceCount } from "../snapshot/metadata.ts";
import { isPackId, isRandomId, parseName, PREFIXES, type SnapshotKey, snapshotKeyText } from "./layout.ts";

/** `refs/<key>`: the snapshot object's SHA-256, the backup folder it came from, every pack it needs with its size. */
export interface Refs {
  snapshot: string;
  snapshot_sha256: string;
  /** The pushing backup folder's random id (absent in refs of the first pushes of format 1: one source). */
  source?: string;
  /** The SHA-256 of the local snapshot's `backup-metadata.json` (absent in refs written before it was recorded). */
  local_sha256?: string;
  /**
   * The local snapshot's publication sequence, as its metadata vouches for it (absent when it records none, and in refs
   * written before): orders one source's snapshots where a clock set back misorders their stamps. `refs_mac` covers it.
   */
  sequence?: number;
  packs: { id: string; size: number }[];
  /** One MAC per authentication key the push held (absent from unauthenticated pushes): see `repo/authenticity.ts`. */
  auth?: RefsAuth[];
}

/** An entry of `refs.auth`: the MACs of the snapshot and of the refs' fields under the key of one recipient's identity. */
export interface RefsAuth {
  recipient: string;
  mac: string;
  /** The MAC of `source`, `local_sha256`, `packs`, `sequence` (`crypto/auth_key.ts`, `refsMac`); absent in older refs. */
  refs_mac?: string;
}

/** `leases/<push id>`: a push in progress and the packs it may reuse. */
export interface Lease {
  created_at: string;
  expires_at: string;
  packs: string[];
}

/** `condemned/<run id>`: packs a cleanup found unreferenced, deleted by a later run after the grace period. */
export interface Condemned {
  created_at: string;
  packs: string[];
}

/** Refs that are not refs of the snapshot they are named for: the repository was altered. */
export class MalformedRefsError extends OperationError {}

/**
 * Parse refs read from `name` for snapshot `key`.
 *
 * @throws {MalformedRefsError} naming the object when a field is wrong.
 */
export function parseRefs(value: unknown, name: string, key: SnapshotKey): Refs {
  const refs = value as Partial<Refs> | null;
  const ok = refs !== null && typeof refs === "object" && refs.snapshot === snapshotKeyText(key) &&
    isPackId(refs.snapshot_sha256) && (refs.source === undefined || isRandomId(refs.source)) &&
    (refs.local_sha256 === undefined || isPackId(refs.local_sha256)) &&
    Array.isArray(refs.packs) &&
    refs.packs.every((pack) => isPackId(pack?.id) && Number.isSafeInteger(pack?.size) && pack.size > 0) &&
    (refs.auth === undefined || (Array.isArray(refs.auth) && refs.auth.every(isRefsAuth)));
  if (!ok) throw new MalformedRefsError(`${name} is malformed or names another snapshot; the repository was altered`);
  // one that is no count orders nothing: the refs stand without it for a reader without the key, whose MAC then fails
  return isSequenceCount(refs.sequence) ? refs as Refs : { ...refs as Refs, sequence: undefined };
}

function isRefsAuth(entry: unknown): boolean {
  const { recipient, mac, refs_mac } = (entry ?? {}) as Partial<RefsAuth>;
  const hex = (value: unknown) => typeof value === "string" && /^[0-9a-f]{64}$/.test(value);
  return typeof recipient === "string" && /^age1[02-9ac-hj-np-z]{58}$/.test(recipient) && hex(mac) &&
    (refs_mac === undefined || hex(refs_mac));
}

/** Parse a lease; `null` when it is not one (an unknown object is never trusted, and never deleted). */
export function parseLease(value: unknown): Lease | null {
  const lease = value as Partial<Lease> | null;
  const ok = lease !== null && typeof lease === "object" && isTime(lease.created_at) && isTime(lease.expires_at) &&
    Array.isArray(lease.packs) && lease.packs.every(isPackId);
  return ok ? lease as Lease : null;
}

/** Parse a condemned marker; `null` when it is not one. */
export function parseCondemned(value: unknown): Condemned | null {
  const marker = value as Partial<Condemned> | null;
  const ok = marker !== null && typeof marker === "object" && isTime(marker.created_at) &&
    Array.isArray(marker.packs) && marker.packs.every(isPackId);
  // only what a marker is: anything else a writer padded it with is not kept (markers are held for the whole run)
  return ok ? { created_at: marker.created_at!, packs: marker.packs! } : null;
}

function isTime(value: unknown): value is string {
  return typeof value === "string" && !Number.isNaN(Date.parse(value));
}

/**
 * The leases of a repository at `now`: the push ids of active ones and every pack they name (one set: only which packs
 * are leased matters, and a set holds an id named by several leases once), expired and unreadable ones by name.
 */
export interface LeaseState {
  active: Set<string>;
  packs: Set<string>;
  expired: string[];
  unreadable: string[];
  /** Active leases that expire implausibly far ahead (see {@linkcode LEASE_HORIZON_MS}): kept, but named. */
  farAhead: string[];
}

/**
 * A push's lease lasts 6 hours; one expiring more than a day from now was written by a clock far ahead or not by this
 * tool, and would keep its refs and packs from cleanup for as long.
 */
const LEASE_HORIZON_MS = 24 * 3600_000;

/**
 * The most bytes a lease may have: about 125,000 pack ids, 1 TB of packs a pushing host may reuse. The JSON of a lease
 * takes several times its size while it is parsed; a larger one is taken for unreadable (no pack deleted that run).
 */
const LEASE_MAX_BYTES = 8 << 20;
/** The most packs the active leases may name together; past it, the rest are taken for unreadable, unread. */
const LEASED_PACKS_MAX = 250_000;

/**
 * Read every lease. A lease that vanished between listing and reading (its push ended) is skipped; one too large, or
 * whose packs would take the leased packs past {@linkcode LEASED_PACKS_MAX}, counts as unreadable (after the latter,
 * so do the leases after it, unread): memory stays bounded however many leases a writer of the repository leaves.
 */
export async function readLeases(backend: Backend, now: Date): Promise<LeaseState> {
  const state: LeaseState = { active: new Set(), packs: new Set(), expired: [], unreadable: [], farAhead: [] };
  let full = false;
  for (const { name } of await backend.list(PREFIXES.leases)) {
    const parsed = parseName(name);
    if (parsed?.kind !== "lease") continue;
    const lease = full ? null : parseLease(await readOrNull(backend, name, LEASE_MAX_BYTES));
    if (lease === null) {
      if (full || await backend.stat(name)) state.unreadable.push(name);
    } else if (Date.parse(lease.expires_at) <= now.getTime()) state.expired.push(name);
    else if (state.packs.size + lease.packs.length > LEASED_PACKS_MAX) {
      state.unreadable.push(name);
      full = true;
    } else {
      state.active.add(parsed.pushId);
      for (const id of lease.packs) state.packs.add(id);
      if (Date.parse(lease.expires_at) > now.getTime() + LEASE_HORIZON_MS) state.farAhead.push(name);
    }
  }
  return state;
}

/**
 * The most bytes a condemned marker may have (about 125,000 pack ids; a cleanup writes at most
 * {@linkcode MARKER_PACKS} to one): past it, the marker counts as unreadable, so that memory stays bounded.
 */
const MARKER_MAX_BYTES = 8 << 20;

/**
 * The most packs the condemned markers may name together: past it, the marker and those after it (unread) count as
 * unreadable, so that memory stays bounded however many markers a writer of the repository leaves.
 */
export const CONDEMNED_PACKS_MAX = 250_000;

/**
 * The most packs a cleanup names in one marker, which stays well under {@linkcode MARKER_MAX_BYTES}; a run condemns no
 * more than keeps all markers under {@linkcode CONDEMNED_PACKS_MAX} together (the rest go in later runs).
 */
export const MARKER_PACKS = 50_000;

/**
 * Every condemned marker by name. Unreadable ones are listed apart: a cleanup never acts on them, and a push that sees
 * one reuses no pack (it cannot tell which are condemned). A marker removed between listing and reading is skipped.
 */
export async function readCondemned(
  backend: Backend,
): Promise<{ markers: Map<string, Condemned>; unreadable: string[] }> {
  const markers = new Map<string, Condemned>();
  const unreadable: string[] = [];
  let named = 0;
  for (const { name } of await backend.list(PREFIXES.condemned)) {
    if (parseName(name)?.kind !== "condemned") continue;
    const full = named > CONDEMNED_PACKS_MAX;
    const marker = full ? null : parseCondemned(await readOrNull(backend, name, MARKER_MAX_BYTES));
    named += marker?.packs.length ?? 0;
    if (marker && named <= CONDEMNED_PACKS_MAX) markers.set(name, marker);
    else if (full || marker || await backend.stat(name)) unreadable.push(name);
  }
  // a link or special file where a marker would be is not listed, and cannot be read: the packs it names are unknown
  const odd = await backend.unlisted?.(PREFIXES.condemned) ?? [];
  return { markers, unreadable: [...unreadable, ...odd] };
}

async function readOrNull(backend: Backend, name: string, maxBytes?: number): Promise<unknown> {
  try {
    return await getPublic(backend, name, maxBytes);
  } catch {
    return null;
  }
}
