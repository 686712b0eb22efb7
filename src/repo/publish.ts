/**
 * A push's last steps: see every pack listed, write the refs and the snapshot object (its lease still holding), see the
 * object listed, and unlist it again when the storage did not keep it or the lease ran out meanwhile; and
 * what a stop in the middle left listed, by one look after it.
 *
 * @module
 */
import { describeOsError, OperationError } from "../errors.ts";
import type { Backend, ObjectInfo } from "./backend.ts";
import { type PackInfo, publicBytes, type SealedObject } from "./boundary.ts";
import { packName, refsName, type SnapshotKey, snapshotName } from "./layout.ts";
import type { Lease, Refs } from "./public_objects.ts";
import type { Repository } from "./repository.ts";
import { InterruptedError, tidyAfterStop } from "../sys/interrupt.ts";

/** The push's lease and its clocks: the wall clock (`now`) and when it was written by the monotonic one. */
export interface LeaseTime {
  now: () => Date;
  lease: Lease;
  /** When the lease was written by the monotonic clock, and its length: a wall clock set back does not fool it. */
  clock: { startedAt: number; leaseMs: number };
}

/** What the look found of the snapshot: listed whole with its refs, not listed, or no answer (or not whole). */
export type Published = "listed" | "not listed" | "unknown";

/** A push stopped while it wrote its refs or snapshot object, with what the look after the stop found. */
export class StoppedPublishing extends InterruptedError {
  /** The stop `stop`, and what became of the snapshot. */
  constructor(stop: InterruptedError, readonly published: Published) {
    super(stop.signal, stop.message);
  }
}

/**
 * Whether `snapshot` (listed = its object exists) is there with its size, and `refs` with theirs: one stat of each, at
 * once, so a stop waits for one request more at most; a failed look is `unknown`, never a guess.
 */
export async function publishedState(backend: Backend, refs: ObjectInfo, snapshot: ObjectInfo): Promise<Published> {
  try {
    const [foundRefs, found] = await tidyAfterStop(() =>
      Promise.all([backend.stat(refs.name), backend.stat(snapshot.name)])
    );
    if (found === null) return "not listed";
    return found.size === snapshot.size && foundRefs?.size === refs.size ? "listed" : "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * Refuse to go on unless every pack the snapshot names is listed with its size: the new ones, and the reused ones (a
 * lease keeps a cleanup from them only while the cleaner's clock does not jump ahead).
 */
export async function confirmPacks(backend: Backend, packs: PackInfo[], stamp: string): Promise<void> {
  const problem = await unlisted(backend, packs.map((pack) => ({ name: packName(pack.id), size: pack.size })));
  if (problem !== null) throw notKept(stamp, problem, "the next push sends it again");
}

/**
 * Write the refs, then (the lease still holding) the snapshot object, and see the object listed with its size. One the
 * storage did not keep whole is removed again with its refs, so that no snapshot readers refuse stays listed; so is one
 * whose lease ran out meanwhile. A stop in the middle says what a look after
 * it found ({@linkcode StoppedPublishing}): the storage may have kept an upload the stop cut.
 */
export async function publishSnapshot(
  repository: Repository,
  key: SnapshotKey,
  sealed: SealedObject,
  refs: Refs,
  context: LeaseTime,
) {
  const { io, backend } = repository;
  const snapshot = { name: sealed.name, size: sealed.bytes.length };
  const written = { name: refsName(key), size: publicBytes(refs).length };
  let problem: string | null;
  try {
    await io.putPublic(refsName(key), refs);
    const late = leaseOut(context); // a pause since the last safe point: a cleanup may be removing the refs now
    if (late !== null) {
      await io.remove(refsName(key)).catch(() => {}); // else a cleanup removes them, as a dead push's
      throw leaseEnded(key.stamp, late);
    }
    await io.writeSealed(sealed).catch(async (error) => {
      throw await afterFailedWrite(repository, key, { refs: written, snapshot }, error);
    });
    problem = await unlisted(backend, [snapshot]);
  } catch (error) {
    if (!(error instanceof InterruptedError)) throw error;
    const state = await publishedState(backend, written, snapshot);
    // past its lease, a cleanup may have removed what it needs meanwhile: "listed" would claim too much
    throw new StoppedPublishing(error, state === "listed" && leaseOut(context) !== null ? "unknown" : state);
  }
  if (problem === null) return await confirmAfterLease(repository, key, context);
  const removed = await unpublish(repository, key);
  throw notKept(key.stamp, problem, removed ? "removed again: nothing is listed" : "'remote verify' names it");
}

/**
 * Once the snapshot object is listed, if the lease ran out by then (a pause of this host or process: the wall clock
 * counts it, a suspended monotonic clock does not), unlist it again and fail: cleanups may have taken the push for a
 * dead one meanwhile, and one that has already decided to remove its refs and packs (paused itself, between its
 * listing and its removals) removes them whatever a look finds now.
 */
async function confirmAfterLease(repository: Repository, key: SnapshotKey, context: LeaseTime) {
  const late = leaseOut(context);
  if (late === null) return;
  const outcome = await unpublish(repository, key)
    ? "the snapshot was removed again: nothing is listed"
    : `removing it failed: remove ${snapshotName(key)} and ${refsName(key)} by hand ('remote verify' names them)`;
  throw new OperationError(
    `push of ${key.stamp}: its lease ran out (${late}) before its snapshot object was listed (a pause?), so a ` +
      `cleanup may take the push for a dead one and remove its refs and packs; ${outcome}: push again (the packs ` +
      "still there are reused)",
  );
}

/**
 * A write of the snapshot object failed (`error`), yet the storage may have kept it (a folder's flush failing once the
 * object was renamed in; an answer lost): one found is removed again, so that a failed push lists nothing, as it says.
 * Returns `error` once nothing is listed, else a {@linkcode MaybeListedError}; a stop as it is (its own look follows).
 */
async function afterFailedWrite(
  repository: Repository,
  key: SnapshotKey,
  objects: { refs: ObjectInfo; snapshot: ObjectInfo },
  error: unknown,
): Promise<unknown> {
  if (error instanceof InterruptedError) return error;
  const look = () => publishedState(repository.backend, objects.refs, objects.snapshot);
  if (await look() === "not listed") return error;
  await unpublish(repository, key);
  return await look() === "not listed" ? error : new MaybeListedError(key, objects.snapshot.name, error);
}

/** A push whose snapshot object's write failed, and which could not see it unlisted since: it may be listed. */
export class MaybeListedError extends OperationError {
  /** The snapshot `key`, its object `name`, and the write's `error`. */
  constructor(key: SnapshotKey, name: string, error: unknown) {
    super(
      `push of ${key.stamp}: writing ${name} failed (${describeOsError(error)}) and it could not be removed again, ` +
        `so it may be listed: every pack it needs was stored before it, so one 'remote list' shows restores ` +
        `('remote verify --read-data' checks it); else push again (what was sent is reused)`,
      { cause: error },
    );
  }
}

/** Remove the snapshot object of `key` (first: it is then no longer listed), then its refs; whether both went. */
async function unpublish(repository: Repository, key: SnapshotKey): Promise<boolean> {
  const { io } = repository;
  return await io.remove(snapshotName(key)).then(() => io.remove(refsName(key))).then(() => true, () => false);
}

/**
 * Which of `objects` the repository does not list with its size, in words (`null`: all are there): a server that
 * acknowledged a write it did not keep (or kept short) must not get a snapshot listed that cannot be restored.
 */
async function unlisted(backend: Backend, objects: ObjectInfo[]): Promise<string | null> {
  const missing = await firstUnlisted(backend, objects);
  if (missing === null) return null;
  return `${missing.name} was acknowledged by ${backend.location} but is ${missing.found} when listed back`;
}

/** The first of `objects` not listed with its size, and what was found in words (`null`: all are there). */
async function firstUnlisted(backend: Backend, objects: ObjectInfo[]): Promise<{ name: string; found: string } | null> {
  const listed = new Map<string, number>();
  for (const folder of foldersToList(objects.map((object) => object.name))) {
    for (const info of await backend.list(folder)) listed.set(info.name, info.size);
  }
  const missing = objects.find((object) => listed.get(object.name) !== object.size);
  if (missing === undefined) return null;
  const found = listed.get(missing.name);
  return { name: missing.name, found: found === undefined ? "not there" : `${found} bytes, not ${missing.size}` };
}

/** The failure of a push whose object the storage did not keep: `problem`, then what became of it (`outcome`). */
function notKept(stamp: string, problem: string, outcome: string): OperationError {
  return new OperationError(
    `push of ${stamp}: ${problem} (the storage did not keep what it accepted; ${outcome}); check the server ` +
      `(its disk, a proxy that answers for it) and push again`,
  );
}

/** Pack folders listed one by one when few hold the objects to confirm (a daily push); more, and `packs/` whole. */
const FOLDERS_LISTED_APART = 8;

/** The prefixes to list to see every one of `names`: each one's folder, or their top folder when many. */
function foldersToList(names: string[]): string[] {
  const folders = new Set(names.map((name) => name.slice(0, name.lastIndexOf("/") + 1)));
  if (folders.size <= FOLDERS_LISTED_APART) return [...folders];
  return [...new Set(names.map((name) => name.slice(0, name.indexOf("/") + 1)))];
}

/**
 * Refuse to go on with a push whose lease has (nearly) run out, by the wall clock or by the monotonic one (a clock set
 * back must not stretch the lease): a cleanup may by then delete packs it needs.
 */
export function checkLeaseTime(context: LeaseTime, stamp: string): void {
  const late = leaseOut(context);
  if (late !== null) throw leaseEnded(stamp, late);
}

/** How the push's lease has (nearly) run out, in words, or `null` while it holds (see {@linkcode checkLeaseTime}). */
function leaseOut(context: LeaseTime): string | null {
  const expires = Date.parse(context.lease.expires_at);
  const margin = Math.min(10 * 60_000, context.clock.leaseMs / 10);
  const elapsed = performance.now() - context.clock.startedAt;
  if (context.now().getTime() > expires - margin) return `until ${context.lease.expires_at}`;
  if (elapsed > context.clock.leaseMs - margin) return "by the monotonic clock; the wall clock was set back";
  return null;
}

/** The failure of a push that ran into the end of its lease (`how`: see {@linkcode leaseOut}) before listing it. */
function leaseEnded(stamp: string, how: string): OperationError {
  return new OperationError(
    `push of ${stamp} ran into the end of its lease (${how}); nothing of it is listed (a cleanup may delete ` +
      "packs of an expired lease): push again, the packs sent are reused",
  );
}
