/**
 * Remote cleanup: the local retention rules applied to a repository's snapshots (the newest is always kept), then packs
 * no snapshot needs deleted in two phases: a run condemns them (a public marker), and a run at least the grace period
 * later deletes those still unreferenced by every refs and every unexpired lease. Needs no identity.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import type { KeepReason, RetentionPolicy } from "../snapshot/retention.ts";
import { retainByPolicy, withGuards } from "../snapshot/retention_guards.ts";
import { isInFuture } from "../snapshot/clock.ts";
import type { Backend } from "./backend.ts";
import { condemnedName, newRandomId, packName, parseName, PREFIXES, refsName } from "./layout.ts";
import { type SnapshotKey, snapshotKeyText, snapshotName } from "./layout.ts";
import {
  type Condemned,
  CONDEMNED_PACKS_MAX,
  type LeaseState,
  MARKER_PACKS,
  readCondemned,
  readLeases,
} from "./public_objects.ts";
import { openRepository, type Repository } from "./repository.ts";
import { listSnapshots, readRefs } from "./snapshots.ts";
import { stopIfInterrupted } from "../sys/interrupt.ts";
import { MarkerSightings } from "./sightings.ts";
import type { StateFile } from "../fs/state_folder.ts";
import type { PushAuth } from "./authenticity.ts";
import { type Doubt, RefsTrust } from "./prune_trust.ts";

/** Default grace between condemning a pack and deleting it: 24 hours (four times the default lease). */
export const DEFAULT_GRACE_MS = 24 * 3600_000;

/**
 * The most packs the kept refs and leases may name together (a store of several TB in 8 MiB packs): past it, a writer
 * of the repository is taken to have padded them, and no pack is deleted that run (memory stays bounded).
 */
const REFERENCED_PACKS_MAX = 500_000;

/** How far a time from another host (or this one's sighting) may lie ahead of this host's clock and be believed. */
const CLOCK_TOLERANCE_MS = 10 * 60_000;

/** Options of {@linkcode cleanupRemote}. */
export interface RemoteCleanupOptions {
  policy: RetentionPolicy;
  /** Delete; without it nothing is written or deleted (dry run). */
  confirm: boolean;
  /** Grace between condemning and deleting a pack (default 24 h); must exceed every push's lease. */
  graceMs?: number;
  /**
   * The file where this host keeps when it first saw each condemned marker (`condemnedSightingsPath`): a marker's
   * packs go only once both its own time and its first sighting here are a grace period old.
   */
  sightingsFile: StateFile;
  /**
   * The clock (tests; default the system's). Ages and expiries are judged by its reading at the start (the earlier, the
   * younger everything looks); what the run records (a marker it writes, a first sighting) is dated by a reading taken
   * after the listing that saw it, so a run paused between its start and its listings cannot date anything older than
   * it is.
   */
  clock?: () => Date;
  /** Aborted to stop before the next deletion or write (each leaves the repository consistent). */
  signal?: AbortSignal;
  /** This host's authentication keys: refs are then checked by them (see `prune_trust.ts`). */
  auth?: PushAuth;
  /** With `auth`: believe refs that hold no MAC to check (pushed without a key). */
  allowUnauthenticated?: boolean;
  /**
   * Snapshots (`STAMP_PUSHID`) to remove whatever the policy says (a push by mistake; one stamped in the future, which
   * the policy keeps until the clock passes its stamp); each must be listed.
   */
  forget?: readonly string[];
}

/** What a remote cleanup did (or, in a dry run, would do). */
export interface RemoteCleanupResult {
  dry_run: boolean;
  kept: string[];
  /** Why each kept snapshot is kept, by its name (`<stamp>_<push id>`: two sources' snapshots may share a stamp). */
  reasons: Record<string, KeepReason[]>;
  /** The source its refs name, by snapshot name (`""`: refs from before sources were recorded); none when unreadable. */
  sources: Record<string, string>;
  /** Snapshots deleted (or that would be). */
  deleted: string[];
  refs_removed: string[];
  leases_removed: string[];
  packs_condemned: number;
  packs_deleted: number;
  bytes_freed: number;
  markers_removed: string[];
  /** Why packs were left alone this run (a refs unreadable, a marker unreadable). */
  errors: string[];
  /** What did not stop the run but delays deletions (a marker from a clock ahead, the sightings file unwritable). */
  warnings: string[];
  /** Files left in the backend's staging area by writers killed mid-write, older than the grace: removed. */
  staging_removed: string[];
}

/**
 * Clean up the repository at `backend`.
 *
 * @throws {UsageError} for a policy that keeps nothing.
 */
export async function cleanupRemote(backend: Backend, options: RemoteCleanupOptions): Promise<RemoteCleanupResult> {
  if (options.policy.daily + options.policy.weekly + options.policy.monthly === 0) {
    throw new UsageError("a retention policy that keeps nothing is refused; give --keep-daily 1 at least");
  }
  const clock = options.clock ?? (() => new Date());
  const now = clock();
  const repository = await openRepository(backend);
  const condemned = await readCondemned(backend); // before refs and leases: README, "Cleanup and concurrent pushes"
  const listing = await listSnapshots(backend);
  requireListed(options.forget ?? [], listing.snapshots.map((snapshot) => snapshotKeyText(snapshot.key)), backend);
  const leases = await readLeases(backend, now);
  const result = newResult(options);
  result.warnings.push(...await storageWarnings(backend, leases));
  const odd = (await backend.unlisted?.() ?? []).filter((name) => !name.startsWith("."));
  result.errors.push(...objectErrors(odd, condemned.unreadable));
  // a snapshot object made a link would pass for an interrupted push, its data for garbage
  if (odd.length > 0) return result;
  const sightings = MarkerSightings.load(options.sightingsFile, repository.config.id);
  const seenAt = clock().getTime(); // after the listings above
  for (const name of condemned.markers.keys()) sightings.firstSeen(name, seenAt, CLOCK_TOLERANCE_MS);
  const markers = new Map(condemned.markers);
  const orphanNames: string[] = [];
  const trust = new RefsTrust(repository.config.id, options.auth, options.allowUnauthenticated ?? false);
  try {
    const keys = listing.snapshots.map((s) => s.key);
    const listed = new Set(keys.map(snapshotKeyText)); // a set: a repository may list tens of thousands
    const orphans = listing.refs.filter((key) => !listed.has(snapshotKeyText(key)));
    const stop = await anyForged(backend, orphans, trust, result); // as a listed snapshot's forged refs stops all
    const remaining = await applyPolicy(repository, keys, { ...options, now, trust, stop }, result);
    const keptOrphans = stop
      ? orphans
      : await removeStale(repository, orphans, leases, { ...options, clock, now, seenAt, sightings }, result);
    orphanNames.push(...keptOrphans.map(refsName));
    const live = [...remaining, ...keptOrphans];
    const referenced = await referencedPacks(backend, live, { leases, trust }, result);
    if (referenced === null || condemned.unreadable.length > 0) return result;
    const context = { ...options, clock, now, seenAt, sightings };
    const deleted = await deletePacks(repository, markers, referenced, context, result);
    await condemnPacks(repository, markers, new Set([...referenced, ...deleted]), context, result);
    await clearStaging(backend, context, result);
  } finally {
    if (options.confirm) sightings.save([...markers.keys(), ...condemned.unreadable, ...orphanNames]);
    result.warnings.push(...sightings.problems);
  }
  return result;
}

/**
 * Refuse, before anything is written, a snapshot to forget that the repository does not list.
 *
 * @throws {UsageError} naming them.
 */
function requireListed(forget: readonly string[], listed: string[], backend: Backend): void {
  const missing = forget.filter((name) => !listed.includes(name));
  if (missing.length === 0) return;
  throw new UsageError(
    `--forget: ${missing.map((name) => JSON.stringify(name.slice(0, 80))).join(", ")} not among the snapshots of ` +
      `${backend.location}; nothing was changed; give STAMP_PUSHID as 'remote list' shows it`,
  );
}

function newResult(options: RemoteCleanupOptions): RemoteCleanupResult {
  return {
    dry_run: !options.confirm,
    kept: [],
    reasons: {},
    sources: {},
    deleted: [],
    refs_removed: [],
    leases_removed: [],
    packs_condemned: 0,
    packs_deleted: 0,
    bytes_freed: 0,
    markers_removed: [],
    errors: [],
    warnings: [],
    staging_removed: [],
  };
}

/** What about the storage may make a cleanup do less than it says: leases far ahead, a bucket that keeps versions. */
async function storageWarnings(backend: Backend, leases: LeaseState): Promise<string[]> {
  const warnings = leases.farAhead.map((name) =>
    `${name}: a lease expiring more than a day from now (a pushing host's clock far ahead, or not written by this ` +
    "tool) keeps its push's refs and packs until then; if no push runs, remove it"
  );
  if (await backend.keepsDeletedVersions?.()) {
    warnings.push(
      `${backend.location} is in a bucket with versioning: what this cleanup deletes stays stored (and billed) as ` +
        "noncurrent versions, so bytes_freed are not freed there until a lifecycle rule " +
        "(NoncurrentVersionExpiration) removes them; add one, or turn versioning off",
    );
  }
  return warnings;
}

/** Links and special files among the objects, then unreadable markers (a link among markers named once). */
function objectErrors(odd: string[], unreadableMarkers: string[]): string[] {
  const links = new Set(odd); // a writer may leave 100,000 links: no quadratic search, no line for each
  const unreadable = unreadableMarkers.filter((name) => !links.has(name));
  const told = (names: string[], line: (name: string) => string, more: string) => [
    ...names.slice(0, NAMES_TOLD).map(line),
    ...names.length > NAMES_TOLD ? [`${names.length - NAMES_TOLD} more ${more} (not named)`] : [],
  ];
  return [
    ...told(
      odd,
      (name) =>
        `${name}: a symbolic link, folder or special file where objects are, made by hand; nothing deleted this run: put ` +
        "the object back or remove it",
      "symbolic links, folders or special files where objects are; nothing deleted this run",
    ),
    ...told(unreadable, (name) => `${name}: unreadable marker; no pack deleted this run`, "unreadable markers"),
  ];
}

/** The most names of one kind a run's errors tell one by one. */
const NAMES_TOLD = 20;

/**
 * Apply retention to each source's stamps apart (the backup folders pushing here: one host's snapshots never count
 * against another's); every snapshot of a removed stamp goes, each source's newest stays. Returns those kept.
 */
async function applyPolicy(
  repository: Repository,
  keys: SnapshotKey[],
  options: RemoteCleanupOptions & { now: Date; trust: RefsTrust; stop: boolean },
  result: RemoteCleanupResult,
): Promise<SnapshotKey[]> {
  const removed = new Set<string>();
  const { groups, sequences, unknown, forged, vanished } = await bySource(
    repository.backend,
    keys,
    options.trust,
    result,
  );
  for (const name of unknown) {
    result.errors.push(
      `${name}: unreadable or missing, so its snapshot's source is unknown; no snapshot deleted this run (its ` +
        `host's newest could be among them): check the repository ('remote verify')`,
    );
  }
  for (const group of unknown.length || forged || options.stop ? [] : groups.values()) {
    for (const name of removedOfSource(group, sequences, options, result)) removed.add(name);
  }
  const kept: SnapshotKey[] = [];
  const vanishedKeys = new Set(vanished);
  for (const key of keys.filter((key) => !vanishedKeys.has(key))) {
    if (!removed.has(snapshotKeyText(key))) {
      kept.push(key);
      result.kept.push(snapshotKeyText(key));
      continue;
    }
    result.deleted.push(snapshotKeyText(key));
    if (options.confirm) {
      stopIfInterrupted(options.signal);
      await repository.io.remove(snapshotName(key)); // unlisted first, then its refs
      await repository.io.remove(refsName(key));
    }
  }
  return kept;
}

/**
 * The names of one source's snapshots (`group`) that go: those forgotten, and those the rules remove from the rest, as
 * if the forgotten had never been pushed (forgetting a day's newest leaves its other one standing for it, and the
 * source's newest among the rest kept); the reasons of those kept set in `result`.
 */
function removedOfSource(
  group: SnapshotKey[],
  sequences: Map<SnapshotKey, number>,
  options: RemoteCleanupOptions & { now: Date },
  result: RemoteCleanupResult,
): string[] {
  const forgotten = group.filter((key) => options.forget?.includes(snapshotKeyText(key)));
  const rest = group.filter((key) => !forgotten.includes(key));
  const stamps = rest.map((key) => key.stamp);
  const decision = withGuards(
    retainByPolicy(stamps, options.policy, options.now),
    guards(rest, sequences, options.now),
  );
  for (const key of rest) {
    const reasons = decision.reasons[key.stamp];
    if (reasons) result.reasons[snapshotKeyText(key)] = reasons;
  }
  const gone = new Set(decision.remove);
  return [...forgotten, ...rest.filter((key) => gone.has(key.stamp))].map(snapshotKeyText);
}

/**
 * What keeps snapshots of one source whatever the policy: the newest stamp not in the future, and the last published
 * (the highest sequence its refs record): a clock set back stamps newer data before an older snapshot, which the
 * newest stamp alone would keep in its place. A sequence no key checked (a run without one) can only keep one more.
 */
function guards(keys: SnapshotKey[], sequences: Map<SnapshotKey, number>, now: Date): Record<string, KeepReason[]> {
  const found: Record<string, KeepReason[]> = {};
  const newest = keys.map((key) => key.stamp).filter((stamp) => !isInFuture(stamp, now)).sort().at(-1);
  if (newest !== undefined) found[newest] = [{ rule: "newest", bucket: "by stamp, of its source" }];
  const last = keys.filter((key) => sequences.has(key)).reduce<SnapshotKey | null>(
    (best, key) => best !== null && sequences.get(best)! >= sequences.get(key)! ? best : key,
    null,
  );
  if (last !== null) (found[last.stamp] ??= []).push({ rule: "last-published", bucket: "by sequence, of its source" });
  return found;
}

/**
 * The snapshots grouped by the source their refs name (`""`: refs from before sources were recorded), and the refs
 * that could not be read or are missing (their snapshot's source unknown). A snapshot `trust` doubts is in no group
 * (kept, not counted), said in `result`; a forged refs (`forged`) stops every deletion, as an unknown one. One removed
 * whole since the listing (`vanished`: another cleanup) is in none either, and said in a warning: no host's newest now.
 */
async function bySource(
  backend: Backend,
  keys: SnapshotKey[],
  trust: RefsTrust,
  result: RemoteCleanupResult,
): Promise<{
  groups: Map<string, SnapshotKey[]>;
  sequences: Map<SnapshotKey, number>;
  unknown: string[];
  forged: boolean;
  vanished: SnapshotKey[];
}> {
  const groups = new Map<string, SnapshotKey[]>();
  const sequences = new Map<SnapshotKey, number>();
  const unknown: string[] = [];
  const vanished: SnapshotKey[] = [];
  let forged = false;
  for (const key of keys) {
    const refs = await readRefs(backend, key).catch(() => undefined); // undefined: unreadable; null: not there
    if (refs === null && await removedWhole(backend, key, result)) {
      vanished.push(key);
      continue;
    }
    if (!refs) unknown.push(refsName(key));
    else result.sources[snapshotKeyText(key)] = refs.source ?? "";
    const doubt = refs && trust.doubt(key, refs);
    if (doubt) {
      forged = noteDoubt(doubt, result) || forged;
      continue;
    }
    const source = refs?.source ?? "";
    groups.set(source, [...groups.get(source) ?? [], key]);
    if (refs?.sequence !== undefined) sequences.set(key, refs.sequence);
  }
  return { groups, sequences, unknown, forged, vanished };
}

/** Whether the snapshot `key`, whose refs was not found, is gone whole (another cleanup removed it), said in `result`. */
async function removedWhole(backend: Backend, key: SnapshotKey, result: RemoteCleanupResult): Promise<boolean> {
  if ((await backend.stat(snapshotName(key))) !== null) return false;
  result.warnings.push(`${snapshotName(key)}: removed by another run since this one listed it`);
  return true;
}

/** Whether the refs of any of `keys` (unfinished pushes') is forged by `trust`, each doubt put in `result`. */
async function anyForged(
  backend: Backend,
  keys: SnapshotKey[],
  trust: RefsTrust,
  result: RemoteCleanupResult,
): Promise<boolean> {
  let forged = false;
  for (const key of keys) {
    const refs = await readRefs(backend, key).catch(() => null); // unreadable: said when packs are counted
    const doubt = refs && trust.doubt(key, refs);
    if (doubt) forged = noteDoubt(doubt, result) || forged;
  }
  return forged;
}

/** Put a doubt in the result, its error once; whether it stops every deletion of the run. */
function noteDoubt(doubt: Doubt, result: RemoteCleanupResult): boolean {
  if (!result.errors.includes(doubt.error)) result.errors.push(doubt.error);
  return doubt.stopsAll;
}

/**
 * Remove refs left by pushes that died before their snapshot object, and expired leases; returns the orphan refs kept.
 * A refs without its snapshot object is removed only once this host has seen it so (and no lease for its push) for the
 * grace period: a push that wrote its refs, then its snapshot, then removed its lease between this run's listings and
 * its reading of the leases looks the same for a moment (found by two hosts pushing during a cleanup over SFTP).
 */
async function removeStale(
  repository: Repository,
  orphans: SnapshotKey[],
  leases: LeaseState,
  context: CleanupContext,
  result: RemoteCleanupResult,
): Promise<SnapshotKey[]> {
  const remove = async (name: string) => {
    if (!context.confirm) return;
    stopIfInterrupted(context.signal);
    await repository.io.remove(name);
  };
  const now = context.now.getTime();
  const kept: SnapshotKey[] = [];
  for (const key of orphans) {
    const seenFor = now - context.sightings.firstSeen(refsName(key), context.seenAt, CLOCK_TOLERANCE_MS);
    const leased = leases.active.has(key.pushId) || leases.unreadable.length > 0; // an unreadable lease may be its
    if (leased || seenFor < (context.graceMs ?? DEFAULT_GRACE_MS)) {
      kept.push(key);
      continue;
    }
    result.refs_removed.push(refsName(key));
    await remove(refsName(key));
  }
  for (const name of leases.expired) {
    result.leases_removed.push(name);
    await remove(name);
  }
  return kept;
}

/** Every pack a kept snapshot, a push in progress's refs, or an unexpired lease needs; `null` when a refs is unreadable. */
async function referencedPacks(
  backend: Backend,
  live: SnapshotKey[],
  { leases, trust }: { leases: LeaseState; trust: RefsTrust },
  result: RemoteCleanupResult,
): Promise<Set<string> | null> {
  const referenced = new Set<string>(leases.packs);
  for (const key of live) {
    let left = `${refsName(key)} and ${snapshotName(key)}`;
    try {
      const refs = await readRefs(backend, key);
      if (!refs && await removedWhole(backend, key, result)) continue; // it needs no pack now
      if (!refs) left = snapshotName(key);
      if (!refs) throw new Error(`${refsName(key)}: missing`);
      const doubt = trust.doubt(key, refs);
      if (doubt) {
        noteDoubt(doubt, result);
        return null;
      }
      for (const pack of refs.packs) referenced.add(pack.id);
      if (referenced.size > REFERENCED_PACKS_MAX) throw new Error(`${refsName(key)}: the refs name too many packs`);
    } catch (error) {
      result.errors.push(
        `${(error as Error).message.split(";")[0]}; no pack deleted or condemned this run: restore it from a copy, ` +
          `or, if no snapshot of that name is to be kept, remove ${left} by hand`,
      );
      return null;
    }
  }
  for (const name of leases.unreadable) {
    result.errors.push(
      `${name}: unreadable or too large lease; no pack deleted or condemned this run (a push in progress may need ` +
        `the packs it names): check it, and once no push is running remove it by hand`,
    );
    return null;
  }
  return referenced;
}

/** Phase 2: packs of markers older than the grace, still unreferenced, are deleted; then the markers. */
async function deletePacks(
  repository: Repository,
  markers: Map<string, Condemned>,
  referenced: Set<string>,
  options: CleanupContext,
  result: RemoteCleanupResult,
): Promise<Set<string>> {
  const sizes = await packSizes(repository.backend);
  const deleted = new Set<string>();
  const grace = options.graceMs ?? DEFAULT_GRACE_MS;
  for (const [name, marker] of markers) {
    if (markerAge(name, marker, options, result) < grace) continue;
    for (const id of marker.packs) {
      if (referenced.has(id) || !sizes.has(id)) continue;
      result.packs_deleted += 1;
      result.bytes_freed += sizes.get(id)!;
      sizes.delete(id);
      deleted.add(id);
      if (options.confirm) {
        stopIfInterrupted(options.signal);
        await repository.io.remove(packName(id));
      }
    }
    result.markers_removed.push(name);
    markers.delete(name);
    if (options.confirm) {
      stopIfInterrupted(options.signal);
      await repository.io.remove(name);
    }
  }
  return deleted;
}

/**
 * Remove what killed writers left in the backend's staging area, once older than the grace period by the storage's
 * clock: no write of one object takes that long, so none of it belongs to a write in progress.
 */
async function clearStaging(backend: Backend, context: CleanupContext, result: RemoteCleanupResult): Promise<void> {
  if (!backend.clearStaging) return;
  stopIfInterrupted(context.signal);
  result.staging_removed = await backend.clearStaging(context.graceMs ?? DEFAULT_GRACE_MS, !context.confirm);
}

/**
 * What removing, deleting and condemning need besides the options: the clock, its reading at the start (`now`: what
 * ages are judged by) and after the listings (`seenAt`: what a first sighting is dated by), and the sightings.
 */
type CleanupContext = RemoteCleanupOptions & {
  clock: () => Date;
  now: Date;
  seenAt: number;
  sightings: MarkerSightings;
};

/**
 * How long ago marker `name` was condemned, as far as this host can tell: the lesser of its own time (the writer's
 * clock) and the time since this host first saw it (its own clock); a marker time ahead of this clock is not
 * believed (noted in the result's warnings), and the first sighting alone counts.
 */
function markerAge(name: string, marker: Condemned, context: CleanupContext, result: RemoteCleanupResult): number {
  const now = context.now.getTime();
  const sinceSeen = now - context.sightings.firstSeen(name, context.seenAt, CLOCK_TOLERANCE_MS);
  const created = Date.parse(marker.created_at);
  if (created <= now + CLOCK_TOLERANCE_MS) return Math.min(now - created, sinceSeen);
  result.warnings.push(
    `${name} is dated ${marker.created_at}, ahead of this host's clock: written by a host whose clock is ahead; ` +
      "its packs go a grace period after this host first saw it",
  );
  return sinceSeen;
}

/** Phase 1: listed packs not in `spared` (referenced, or just deleted) nor in a remaining marker get a new marker. */
async function condemnPacks(
  repository: Repository,
  markers: Map<string, Condemned>,
  spared: Set<string>,
  options: CleanupContext,
  result: RemoteCleanupResult,
): Promise<void> {
  const already = new Set([...markers.values()].flatMap((marker) => marker.packs));
  const room = Math.max(0, CONDEMNED_PACKS_MAX - already.size); // every marker stays readable; the rest next run
  const packs = [...(await packSizes(repository.backend)).keys()].filter((id) => !spared.has(id) && !already.has(id))
    .slice(0, room);
  result.packs_condemned = packs.length;
  if (result.dry_run) return;
  const condemnedAt = options.clock(); // after the listing that found the packs: a push's pack is never dated older
  for (let from = 0; from < packs.length; from += MARKER_PACKS) { // markers every reader can read (public_objects.ts)
    stopIfInterrupted(options.signal);
    const marker: Condemned = { created_at: condemnedAt.toISOString(), packs: packs.slice(from, from + MARKER_PACKS) };
    const name = condemnedName(newRandomId());
    options.sightings.firstSeen(name, condemnedAt.getTime(), CLOCK_TOLERANCE_MS);
    markers.set(name, marker);
    await repository.io.putPublic(name, marker);
  }
}

async function packSizes(backend: Backend): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const { name, size } of await backend.list(PREFIXES.packs)) {
    const parsed = parseName(name);
    if (parsed?.kind === "pack") sizes.set(parsed.id, size);
  }
  return sizes;
}
