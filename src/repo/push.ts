/**
 * Pushing one local snapshot to a repository, in the format's order: check the pin, write a lease, list what may be
 * reused, upload new packs, write refs, write the snapshot object last, save the cache, record the stamp, remove the
 * lease. Killed at any moment before the snapshot object, nothing is listed and the next push reuses the packs sent.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { describeOsError, OperationError } from "../errors.ts";
import {
  blockMapSpoolPath,
  pushCachePath,
  pushedRecordPath,
  pushJournalDir,
  pushJournalPath,
  remotePinPath,
  snapshotDir,
} from "../snapshot/layout.ts";
import { isDirectory } from "../fs/probe.ts";
import { PushedStamps } from "./pushed_record.ts";
import { MapFile, Spool } from "./block_maps.ts";
import { type Backend, isFolderBackend, ObjectNotFoundError, ObjectTooLargeError } from "./backend.ts";
import { DOCUMENT_FORMAT, documentText, type WritableDocument } from "./document.ts";
import { leaseName, newRandomId, parseName, PREFIXES, type SnapshotKey, snapshotName } from "./layout.ts";
import { type LocalSnapshot, readLocalSnapshot } from "./local_snapshot.ts";
import { DEFAULT_TRANSFERS } from "./lanes.ts";
import { CryptoPool } from "./crypto_pool.ts";
import { PackWriter } from "./pack_writer.ts";
import type { Lease, Refs } from "./public_objects.ts";
import { readCondemned } from "./public_objects.ts";
import {
  clearJournals,
  KnownBlocks,
  loadJournals,
  loadPushCache,
  type PushCache,
  PushJournal,
  savePushCache,
} from "./push_cache.ts";
import { PushSession, type ReadFile } from "./push_session.ts";
import { checkPin, openRepository, type Repository } from "./repository.ts";
import { checkLink } from "./local_snapshot.ts";
import { hostName } from "../sys/host_name.ts";
import { stopIfInterrupted, tidyAfterStop } from "../sys/interrupt.ts";
import { checkLeaseTime, confirmPacks, type LeaseTime, publishSnapshot } from "./publish.ts";
import { collectGarbage } from "../sys/collect_garbage.ts";
import { basename } from "node:path";
import { trustedSequence } from "../snapshot/trusted_sequence.ts";
import { HostState } from "./host_state.ts";
import type { PackInfo } from "./boundary.ts";
import {
  checkPushAuth,
  keysWithoutMac,
  type PushAuth,
  recipientsWithoutKey,
  refsAuth,
  refsStanding,
  snapshotClaim,
} from "./authenticity.ts";
import type { SnapshotClaim } from "../crypto/auth_key.ts";
import { MAX_SNAPSHOT_OBJECT_BYTES, readRefs, REFS_MAX_BYTES } from "./snapshots.ts";
import { sha256Hex } from "./sealing.ts";

/** How long a push's lease holds off a cleanup by default: 6 hours. */
export const DEFAULT_LEASE_MS = 6 * 3600_000;

/** Options of {@linkcode pushSnapshot}. */
export interface PushOptions {
  /** Recipients the operator expects (flag or environment); refused when they differ from the repository's. */
  recipients?: readonly string[];
  /** The keys the refs' MACs are made with (each for a recipient of the repository); none: an unauthenticated push. */
  auth?: PushAuth;
  /** Packs sealed and uploading at once (default {@linkcode DEFAULT_TRANSFERS}): one sealed pack buffer each. */
  transfers?: number;
  /** Lease length in milliseconds (default 6 h); a push that would outlive it stops before listing anything. */
  leaseMs?: number;
  /** The clock (tests). */
  now?: () => Date;
  /** Called as bytes of the snapshot are processed, with the total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Aborted to stop the push at its next safe point (between blocks, before the refs): it then throws the signal's
   * reason once the uploads in flight have ended, having listed nothing and removed its lease.
   */
  signal?: AbortSignal;
  /** A check running beside the push (the local snapshot's validation): nothing is listed before it has passed. */
  gate?: PushGate;
  /**
   * Send nothing for a stamp this backup folder pushed before, by its record, with these very metadata, when no
   * snapshot of the stamp is listed any more (a remote cleanup removed it): `push --all`.
   */
  passOverRemoved?: boolean;
}

/** What a push waits on before it lists the snapshot (see {@linkcode PushOptions.gate}). */
export interface PushGate {
  /** Throw once the snapshot may not be listed; called between blocks, so it must be cheap. */
  check(): void;
  /**
   * Resolve once the snapshot may be listed, with the databases whose integrity check vouches for the bytes the push
   * read (recorded in the document); throw when it may not. `read`: each file the push read, by path, with its SHA-256
   * (checked against the manifest as it was read) and its identity then.
   */
  passed(read: ReadonlyMap<string, ReadFile>): Promise<readonly string[]>;
}

/** What a push did, as plain data. */
export interface PushResult {
  stamp: string;
  /** `<stamp>_<push id>` in the repository. */
  snapshot: string;
  /** True when a snapshot of this stamp was in the repository already: nothing was sent. */
  already_pushed: boolean;
  /** True when this folder pushed the stamp before as `snapshot`, since removed, and nothing was sent (`--all`). */
  removed_since_pushed: boolean;
  /** True when this push pinned the repository's id and recipients on this host. */
  pinned: boolean;
  files: number;
  bytes_total: number;
  bytes_read: number;
  bytes_sent: number;
  objects_written: number;
  bytes_deduplicated: number;
  packs_written: number;
  packs_reused: number;
  /** Problems that did not fail the push (the local cache could not be saved). */
  warnings: string[];
  /** The repository's recipients the authentication key file holds no key for: their identities cannot check it. */
  recipients_without_key: string[];
}

/**
 * Push the local snapshot at `snapshotRoot` (a published snapshot folder, validated by the caller) to `backend`.
 * Needs only the repository's public recipients. The caller holds the backup folder's lock.
 *
 * @throws {RefusedError} when the repository differs from the pinned one or from `options.recipients`, or a key of
 *   `options.auth` is for another recipient.
 * @throws {OperationError} when a file changed since the snapshot was made, or the repository fails.
 */
export async function pushSnapshot(
  config: Config,
  backend: Backend,
  snapshotRoot: string,
  options: PushOptions = {},
): Promise<PushResult> {
  const local = readLocalSnapshot(snapshotRoot);
  const repository = await openRepository(backend);
  using hostState = new HostState(config.backupDir.path, backend.location); // written by name in the folders held
  const { pinned, sourceId } = checkPin(config.backupDir.path, repository, options.recipients, hostState);
  if (options.auth) checkPushAuth(options.auth, repository.config.recipients, backend.location);
  const unkeyed = options.auth ? recipientsWithoutKey(options.auth, repository.config.recipients) : [];
  const recordFile = hostState.file(pushedRecordPath(config.backupDir.path, backend.location));
  const record = PushedStamps.load(recordFile, repository.config.id);
  const found = await pushedAlready(repository, local, { sourceId, record }, options.auth);
  const done = nothingToSend(found, record, local, { ...options, backupDir: config.backupDir.path });
  if (done) return { ...done, pinned, recipients_without_key: unkeyed };
  const shared = sameStampWarnings(found, local.stamp, remotePinPath(config.backupDir.path, backend.location));
  stopIfInterrupted(options.signal);
  const now = options.now ?? (() => new Date());
  const key: SnapshotKey = { stamp: local.stamp, pushId: newRandomId() };
  const state = { backupDir: config.backupDir.path, location: backend.location, id: repository.config.id };
  const cachePath = pushCachePath(state.backupDir, state.location);
  hostState.file(cachePath).removeTemporaries(); // a cache a killed push was writing (the lock rules out a live one)
  const cache = loadPushCache(cachePath, state.id);
  using _cacheFile = cache !== null && cache !== "unusable" ? cache.file : null;
  const spoolName = basename(blockMapSpoolPath(state.backupDir, state.location, key.pushId));
  using spoolFile = MapFile.spoolIn(hostState.folder(), spoolName);
  const spool = new Spool(spoolFile);
  const known = new KnownBlocks(
    cache === "unusable" ? null : cache,
    loadJournals(pushJournalDir(state.backupDir, state.location), state.id, spool),
  );
  const started = now();
  const clock = { startedAt: performance.now(), leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS };
  const lease: Lease = {
    created_at: started.toISOString(),
    expires_at: new Date(started.getTime() + clock.leaseMs).toISOString(),
    packs: known.packIds(),
  };
  await repository.io.putPublic(leaseName(key.pushId), lease);
  let leaseKept: string | null = null;
  let pushed: PushResult;
  try {
    const reusable = await markUsable(backend, known);
    const context = { ...options, now, lease, clock, reusable, backupDir: state.backupDir, sourceId, hostState };
    const result = await upload(repository, local, key, { known, spool }, context);
    const ignored = cache === "unusable" ? [unusableCacheWarning(cachePath, result.warnings.length === 0)] : [];
    const recorded = remember(record, local, result.snapshot, state.backupDir);
    const warnings = [...shared, ...ignored, ...result.warnings, ...recorded];
    pushed = { ...result, warnings, pinned, recipients_without_key: unkeyed };
  } finally {
    // even after a stop; an expired lease is removed by cleanup
    leaseKept = await removeLease(repository, key, lease);
  }
  return leaseKept === null ? pushed : { ...pushed, warnings: [...pushed.warnings, leaseKept] };
}

/** The warning of a push that could not use its cache at `path`; `saved`: a new one took its place. */
function unusableCacheWarning(path: string, saved: boolean): string {
  return `push cache ${path} could not be used (damaged, unreadable, not a regular file, or another repository's): ` +
    `this push read every file and sent what no journal showed stored${
      saved ? "; a new one was saved in its place" : ""
    }`;
}

/**
 * Remove the push's lease; `null` when it is gone, else why it stays (a push that succeeded says so in a warning): a
 * lease left holds the packs it names from cleanup until it expires, when `remote cleanup` removes it.
 */
async function removeLease(repository: Repository, key: SnapshotKey, lease: Lease): Promise<string | null> {
  try {
    await tidyAfterStop(() => repository.io.remove(leaseName(key.pushId)));
    return null;
  } catch (error) {
    return `the lease ${leaseName(key.pushId)} could not be removed (${
      describeOsError(error)
    }); it keeps the packs it ` +
      `names from cleanup until it expires (${lease.expires_at}), when 'remote cleanup' removes it`;
  }
}

/**
 * The result of a push that sends nothing, recorded (without `pinned`), or `null`: the stamp is listed as this folder
 * pushed it, or, with `passOverRemoved`, this folder pushed it before (its record), no snapshot of it is listed, and a
 * later one this folder pushed is (so a cleanup may have removed it; a repository rolled back to an older copy has none).
 */
function nothingToSend(
  found: SameStamp,
  record: PushedStamps,
  local: LocalSnapshot,
  { passOverRemoved, backupDir }: { passOverRemoved?: boolean; backupDir: string },
): Omit<PushResult, "pinned"> | null {
  if (found.existing) {
    const warnings = remember(record, local, found.existing, backupDir);
    return { ...emptyResult(local.stamp, found.existing), already_pushed: true, warnings };
  }
  const before = record.pushedAs(local.stamp, local.metadataSha256);
  // a cleanup keeps each source's newest: with none of this folder's later listed, the repository was rolled back
  if (!passOverRemoved || before === null || found.listed || !record.listedLater(local.stamp, found.names)) return null;
  return { ...emptyResult(local.stamp, before), removed_since_pushed: true };
}

/** Record `local` as listed under `snapshot` (keeping the stamps the folder still holds); the record's problems. */
function remember(record: PushedStamps, local: LocalSnapshot, snapshot: string, backupDir: string): string[] {
  const held = (stamp: string) => isDirectory(snapshotDir(backupDir, stamp));
  record.add(local.stamp, { local_sha256: local.metadataSha256, snapshot }, held);
  return record.problems;
}

/** What {@linkcode pushedAlready} found of the stamp in the repository. */
interface SameStamp {
  existing: string | null;
  /** Whether any snapshot of the stamp is listed (this folder's or not, readable or not). */
  listed: boolean;
  /** Every snapshot listed (`<stamp>_<push id>`). */
  names: Set<string>;
  /** Snapshots under this source with other local metadata (a copied backup folder). */
  others: string[];
  /** Snapshots whose refs name no source (pushed before sources existed): this folder's or another's, untold. */
  sourceless: string[];
  /** This folder's pushes of the stamp whose refs lack the MACs of some keys (`recipients`): sent again. */
  fewerKeys: { name: string; recipients: string[] }[];
  /** Snapshots under this source whose refs' MAC does not verify (edited by a writer): not this folder's push. */
  forged: string[];
}

/** The warnings of a push about snapshots of its stamp that it lists its own beside (`pin`: the folder's pin). */
function sameStampWarnings(found: SameStamp, stamp: string, pin: string): string[] {
  const shared = found.others.map((name) =>
    `${name} carries this backup folder's source id but another snapshot of ${stamp}: another backup folder ` +
    `pushes under this one's id (a copy of it?), and remote cleanup counts both as one; in the copy, remove ` +
    `${pin} so that it pushes as a source of its own (unless a writer of the repository edited its refs: ` +
    `'remote verify --identity FILE' tells)`
  );
  const sourceless = found.sourceless.map((name) =>
    `${name} has refs without a source (pushed by a version before sources, by this backup folder or another with ` +
    `the same key: a push cannot tell): this push lists its own snapshot of ${stamp} beside it, so name one by ` +
    `STAMP_PUSHID ('remote cleanup' counts the older one with the snapshots without a source)`
  );
  const resent = found.fewerKeys.map(({ name, recipients }) =>
    `${name} is this backup folder's push of ${stamp}, but its refs hold no MAC for ${recipients.join(", ")} (the ` +
    `authentication key file gained ${recipients.length > 1 ? "their keys" : "its key"} since), so ` +
    `${recipients.length > 1 ? "those identities" : "that identity"} could not check it: sent again with every ` +
    `key's MAC (deduplicated); the stamp now has two snapshots, so name one by STAMP_PUSHID`
  );
  const forged = found.forged.map((name) =>
    `${name} names this backup folder's source, but the MAC of its refs does not verify (a writer of the repository ` +
    `edited them): not taken for this folder's push of ${stamp}, which is listed beside it; 'remote verify ` +
    `--identity FILE' names what else was altered`
  );
  return [...shared, ...sourceless, ...resent, ...forged];
}

/**
 * The name of a snapshot of `local` that this backup folder pushed already (`existing`), or `null`: its refs name this
 * source and the local metadata's hash, its sealed object hashes as they record and, with keys, its refs carry this
 * host's MACs; without keys, `record` names it (refs and source ids are public: a writer of the repository could copy
 * them). Another backup folder's snapshot of the same second, or one a writer of the repository made under this stamp,
 * does not stop the push; one under this source with other metadata is named in `others` (a copied folder).
 */
async function pushedAlready(
  repository: Repository,
  local: LocalSnapshot,
  { sourceId, record }: { sourceId: string; record: PushedStamps },
  auth: PushAuth | undefined,
): Promise<SameStamp> {
  const { backend } = repository;
  const others: string[] = [];
  const sourceless: string[] = [];
  const fewerKeys: SameStamp["fewerKeys"] = [];
  const forged: string[] = [];
  let listed = false;
  const all = await backend.list(PREFIXES.snapshots);
  const names = new Set(all.map(({ name }) => name.slice(PREFIXES.snapshots.length)));
  for (const { name } of all) {
    const parsed = parseName(name);
    if (parsed?.kind !== "snapshot" || parsed.key.stamp !== local.stamp) continue;
    listed = true;
    const shortName = name.slice(PREFIXES.snapshots.length);
    const refs = await readRefs(backend, parsed.key).catch(() => null);
    // refs without a source (format 1's) are not taken as this folder's: anyone can write such refs, and a MAC proves
    // only a holder of the key (every host pushing with it), not this folder; a second snapshot is safe, a skip is not
    if (refs && refs.source === undefined) sourceless.push(name);
    if (!refs || refs.source !== sourceId) continue;
    if (refs.local_sha256 !== undefined && refs.local_sha256 !== local.metadataSha256) {
      others.push(name);
      continue;
    }
    const sealed = await backend.read(snapshotName(parsed.key), undefined, MAX_SNAPSHOT_OBJECT_BYTES).catch((error) => {
      // removed by a cleanup since the listing, or larger than any this tool writes: not this folder's push
      if (error instanceof ObjectNotFoundError || error instanceof ObjectTooLargeError) return null;
      throw error;
    });
    if (!sealed) continue;
    const sha256 = sha256Hex(sealed);
    if (sha256 !== refs.snapshot_sha256) continue;
    const claim = snapshotClaim(repository.config.id, parsed.key, sha256);
    const unsigned = auth ? keysWithoutMac(refs, auth, claim) : [];
    // MACs of some keys: this host's push from before its key file gained the others, which could not check it
    if (unsigned.length > 0 && unsigned.length < auth!.keys.length) {
      fewerKeys.push({ name: shortName, recipients: unsigned });
    }
    if (unsigned.length > 0 || !fieldsOwn(refs, auth, claim, record.pushedAs(local.stamp, local.metadataSha256))) {
      if (auth && refsStanding(refs, auth.keys, claim).standing === "forged") forged.push(shortName);
      continue;
    }
    return { existing: shortName, listed, names, others, sourceless, fewerKeys, forged };
  }
  return { existing: null, listed, names, others, sourceless, fewerKeys, forged };
}

/**
 * Whether refs that name this source and carry this host's MAC of the snapshot are this folder's by their fields: a MAC
 * of the refs' fields verifies (a writer cannot edit another folder's source, or strip its local metadata's hash, into
 * this one's); refs without one (pushed before it existed, or stripped by a writer) only when this folder's record of
 * its pushes (`recorded`) names them, as refs without any MAC (no keys) are.
 */
function fieldsOwn(refs: Refs, auth: PushAuth | undefined, claim: SnapshotClaim, recorded: string | null): boolean {
  const standing = auth ? refsStanding(refs, auth.keys, claim).standing : "unsigned";
  return standing === "vouched" ||
    (standing !== "forged" && recorded === claim.objectName.slice(PREFIXES.snapshots.length));
}

/** After the lease is written: which known packs exist with their size and are in no condemned marker. */
async function markUsable(backend: Backend, known: KnownBlocks): Promise<number> {
  const condemned = await readCondemned(backend);
  if (condemned.unreadable.length > 0) return known.markUsable(new Map(), new Set()); // cannot tell: reuse none
  const ids = new Set([...condemned.markers.values()].flatMap((marker) => marker.packs));
  const listed = new Map<string, number>();
  for (const { name, size } of await backend.list(PREFIXES.packs)) {
    const parsed = parseName(name);
    if (parsed?.kind === "pack") listed.set(parsed.id, size);
  }
  return known.markUsable(listed, ids);
}

interface UploadContext extends PushOptions, LeaseTime {
  backupDir: string;
  /** This host's state about the repository, held open (see {@linkcode HostState}). */
  hostState: HostState;
  /** This backup folder's id in the refs (see {@linkcode checkPin}). */
  sourceId: string;
  now: () => Date;
  reusable: number;
}

async function upload(
  repository: Repository,
  local: LocalSnapshot,
  key: SnapshotKey,
  { known, spool }: { known: KnownBlocks; spool: Spool },
  context: UploadContext,
): Promise<PushResult> {
  const { backend, io, config } = repository;
  const backupDir = context.backupDir;
  const journalName = basename(pushJournalPath(backupDir, backend.location, key.pushId));
  using journal = new PushJournal(() => context.hostState.journalFolder(), journalName, config.id);
  const parallel = context.transfers ?? DEFAULT_TRANSFERS;
  using pool = new CryptoPool(SEAL_WORKERS); // starts its worker at the first pack sealed there
  const writer = new PackWriter(io, {
    parallel,
    onStored: (_slot, pack, tags, offsets) => {
      journal.record(pack, tags, offsets);
      session.stored(tags);
    },
    sealer: sealsOnWorker(backend) ? (job) => pool.seal(job) : undefined,
  });
  const total = local.entries.reduce((sum, entry) => sum + (entry.kind === "file" ? entry.size : 0), 0);
  const safePoint = () => {
    stopIfInterrupted(context.signal);
    context.gate?.check();
    checkLeaseTime(context, local.stamp);
  };
  const onProgress = (done: number, all: number) => {
    safePoint(); // between blocks: a stop here lists nothing, and the journal keeps what was stored
    context.onProgress?.(done, all);
  };
  const session = new PushSession(known, writer, spool, local.root, local.stamp, total, onProgress);
  const stored = await storeEntries(local, session, writer);
  pool[Symbol.dispose](); // every pack is sealed: the worker's heap goes before the document is made
  collectGarbage(); // the reading's garbage too: the document's copies grow with the store's extents
  const checked = await context.gate?.passed(session.readFiles()) ?? [];
  const { packs, files, cache } = session.resolve(stored);
  await confirmPacks(backend, packs, local.stamp);
  const document = snapshotDocument(config.id, key, local, context.now(), { packs, files });
  if (checked.length > 0) document.integrity_checked = [...checked];
  const sealed = await io.prepareSealed(snapshotName(key), documentText(document));
  const refs = refsOf(sealed, packs, { local, key, repositoryId: config.id, context });
  refuseOversized(refs, sealed.bytes.length, local.stamp);
  safePoint();
  await publishSnapshot(repository, key, sealed, refs, context);
  const cacheSaved = { repositoryId: config.id, packs, files: cache };
  const warnings = saveCache(context.hostState, backupDir, backend.location, journal, cacheSaved);
  return {
    ...emptyResult(local.stamp, refs.snapshot),
    warnings,
    files: files.length,
    bytes_total: session.totals.bytesTotal,
    bytes_read: session.totals.bytesRead,
    bytes_deduplicated: session.totals.bytesDeduplicated,
    bytes_sent: io.sent.bytes,
    objects_written: io.sent.objects,
    packs_written: stored.length,
    packs_reused: packs.length - stored.length,
  };
}

/** The public refs of the snapshot object `sealed`: its packs, this source, the local metadata's hash, the MACs. */
function refsOf(
  sealed: { name: string; sha256: string },
  packs: PackInfo[],
  { local, key, repositoryId, context }: {
    local: LocalSnapshot;
    key: SnapshotKey;
    repositoryId: string;
    context: UploadContext;
  },
): Refs {
  const refs: Refs = {
    snapshot: sealed.name.slice(PREFIXES.snapshots.length),
    snapshot_sha256: sealed.sha256,
    source: context.sourceId,
    local_sha256: local.metadataSha256,
    packs: packs.map(({ id, size }) => ({ id, size })),
  };
  const sequence = trustedSequence(local.metadata, local.stamp);
  if (sequence !== null) refs.sequence = sequence;
  if (context.auth) refs.auth = refsAuth(context.auth, snapshotClaim(repositoryId, key, sealed.sha256), refs);
  return refs;
}

/** Refuse to list a snapshot whose refs or sealed object every reader would refuse as too large (`snapshots.ts`). */
function refuseOversized(refs: Refs, sealedBytes: number, stamp: string): void {
  const refsBytes = new TextEncoder().encode(JSON.stringify(refs)).length + 1;
  const what = refsBytes > REFS_MAX_BYTES
    ? `its refs would take ${refsBytes} bytes (${refs.packs.length} packs), more than readers accept (${REFS_MAX_BYTES})`
    : sealedBytes > MAX_SNAPSHOT_OBJECT_BYTES
    ? `its snapshot object would take ${sealedBytes} bytes, more than readers accept (${MAX_SNAPSHOT_OBJECT_BYTES})`
    : null;
  if (what === null) return;
  throw new OperationError(
    `push of ${stamp}: ${what}; nothing of it is listed (the packs sent are reused by a later push): a store this ` +
      "large or this fragmented is not supported yet",
  );
}

/**
 * One worker seals packs while the main thread reads and fills the next ones: packs are sealed in the order they fill,
 * so a killed push has stored a prefix of them, as when the main thread sealed. A second worker measured no faster on
 * 2 CPUs and about 30 MiB more; with several, a small pack can be stored before a full one that filled first.
 */
const SEAL_WORKERS = 1;

/**
 * Whether packs are sealed on the worker: for a folder repository. A network backend holds its own copies of the packs
 * it uploads, and with the worker's heap and the packs it seals an S3 first push peaked at 262 to 274 MiB (228 MiB
 * sealing on the main thread): over the network packs are sealed on the main thread, within the memory bound.
 */
function sealsOnWorker(backend: Backend): boolean {
  return isFolderBackend(backend);
}

/** The snapshot document of a push: where it belongs, what it restores, and the packs and files that hold it. */
function snapshotDocument(
  repositoryId: string,
  key: SnapshotKey,
  local: LocalSnapshot,
  pushedAt: Date,
  content: Pick<WritableDocument, "packs" | "files">,
): WritableDocument {
  return {
    format: DOCUMENT_FORMAT,
    repository_id: repositoryId,
    stamp: key.stamp,
    push_id: key.pushId,
    pushed_at: pushedAt.toISOString(),
    host: hostName(),
    metadata: local.metadata as unknown as Record<string, unknown>,
    ...content,
  };
}

/** Read every entry of `local` into packs and wait for their uploads; whatever stops it, no upload is cut off. */
async function storeEntries(local: LocalSnapshot, session: PushSession, writer: PackWriter): Promise<PackInfo[]> {
  try {
    for (const entry of local.entries) {
      if (entry.kind === "link") checkLink(local.root, local.stamp, entry);
      await session.add(entry);
    }
    return await writer.finish();
  } catch (error) {
    await writer.settle(); // each upload that ends is journaled, so the next push reuses it
    throw error;
  }
}

/** Save the push cache and drop the journals; a failure here does not fail the push (the cache is a hint). */
function saveCache(
  state: HostState,
  backupDir: string,
  location: string,
  journal: PushJournal,
  cache: PushCache,
): string[] {
  const path = pushCachePath(backupDir, location);
  try {
    collectGarbage(); // the document's copies go before the cache's
    savePushCache(state.file(path), cache);
  } catch (error) {
    return [
      `push cache ${path} not saved (${
        describeOsError(error)
      }): the next push deduplicates against the cache as it was (when there ` +
      "is one) and this push's journal",
    ];
  }
  try {
    journal.remove();
    clearJournals(state.journalFolder());
    return [];
  } catch (error) {
    return [
      `the journals in ${pushJournalDir(backupDir, location)} could not be removed (${describeOsError(error)}); ` +
      "harmless (the next push reads them again): remove them by hand once no push runs",
    ];
  }
}

function emptyResult(stamp: string, snapshot: string): PushResult {
  return {
    stamp,
    snapshot,
    already_pushed: false,
    removed_since_pushed: false,
    pinned: false,
    files: 0,
    bytes_total: 0,
    bytes_read: 0,
    bytes_sent: 0,
    objects_written: 0,
    bytes_deduplicated: 0,
    packs_written: 0,
    packs_reused: 0,
    warnings: [],
    recipients_without_key: [],
  };
}
