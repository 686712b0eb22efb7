/**
 * Checking a repository: without an identity, each listed snapshot's refs, object hash and packs; with one, every
 * document and its refs' MAC; with `readData`, every pack (or a random subset) read once and each extent hash-checked.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { AgeIdentity } from "../crypto/age.ts";
import { UsageError } from "../errors.ts";
import { type Backend, isSftpBackend, isUnreachable, ObjectNotFoundError } from "./backend.ts";
import { collectGarbage } from "../sys/collect_garbage.ts";
import { sha256Hex } from "./boundary.ts";
import { extentUnit } from "./extent_hash.ts";
import { CryptoPool, defaultWorkers, type OpenDone, PackOpenError } from "./crypto_pool.ts";
import { DEFAULT_TRANSFERS, inLanes } from "./lanes.ts";
import { GC_EVERY_PACKS } from "./pack_writer.ts";
import { isDocumentFile, PACK_BUFFER_BYTES, PACK_MAX_BYTES, type SnapshotDocument } from "./document.ts";
import { packName, parseName, PREFIXES, refsName, type SnapshotKey, snapshotKeyText, snapshotName } from "./layout.ts";
import { type DistinctRanges, PackRanges } from "./pack_ranges.ts";
import { PackRound } from "./pack_round.ts";
import { openRepository, type Repository } from "./repository.ts";
import { listSnapshots, MAX_SNAPSHOT_OBJECT_BYTES, readRefs, type ReadSnapshot, readSnapshot } from "./snapshots.ts";
import { refsStanding, snapshotClaim } from "./authenticity.ts";
import { deriveAuthKey } from "../crypto/auth_key.ts";

/** Options of {@linkcode verifyRepository}. */
export interface VerifyOptions {
  /** Identities to decrypt documents (and packs, with `readData`). */
  identities?: readonly AgeIdentity[];
  /** Read, decrypt and check the content of packs. */
  readData?: boolean;
  /** With `readData`: the percentage of packs to read, chosen at random (default 100). */
  subset?: number;
  /** The random source for `subset` (tests). */
  random?: () => number;
  /** Packs read and opened at once (default {@linkcode DEFAULT_TRANSFERS}): one pack buffer each. */
  transfers?: number;
  /** With identities: accept snapshots without a MAC for their recipients (listed in `unauthenticated`). */
  allowUnauthenticated?: boolean;
  /** With `readData`: bytes of ranges held before packs are read in rounds (default {@linkcode RANGE_BUDGET_BYTES}). */
  rangeBudget?: number;
}

/**
 * Ranges held at once by default (44 bytes each, room to grow included): past it, a verify reads the packs in rounds
 * by their ids, reading the documents again for each round. The small-row store's 21 daily snapshots held 44 MiB.
 */
export const RANGE_BUDGET_BYTES = 32 << 20;

/** What verify found. */
export interface VerifyResult {
  ok: boolean;
  snapshots: number;
  /** Distinct packs the snapshots use that are there: a missing one is an error, named with a snapshot needing it. */
  packs_referenced: number;
  packs_read: number;
  extents_checked: number;
  bytes_read: number;
  /** One line per problem, naming the object. */
  errors: string[];
  /** With identities and `allowUnauthenticated`: the snapshots accepted without a MAC (`<stamp>_<push id>`). */
  unauthenticated: string[];
  /** Things that are not errors: refs of pushes in progress or interrupted, names that are not the format's. */
  notes: string[];
}

/**
 * Verify the repository at `backend`.
 *
 * @throws {UsageError} when `readData` is asked without identities.
 */
export async function verifyRepository(backend: Backend, options: VerifyOptions = {}): Promise<VerifyResult> {
  const identities = options.identities ?? [];
  if (options.readData && identities.length === 0) {
    throw new UsageError("verify --read-data needs the identity (--identity FILE) to decrypt packs");
  }
  const repository = await openRepository(backend);
  const result: VerifyResult = {
    ok: false,
    snapshots: 0,
    packs_referenced: 0,
    packs_read: 0,
    extents_checked: 0,
    bytes_read: 0,
    errors: [],
    unauthenticated: [],
    notes: [],
  };
  const listing = await listSnapshots(backend);
  const foreign = [...listing.unknown];
  const packs = await listedPacks(backend, foreign);
  const listed = new Set(listing.snapshots.map(({ key }) => snapshotKeyText(key)));
  for (const key of listing.refs) {
    if (!listed.has(snapshotKeyText(key))) {
      result.notes.push(`${refsName(key)}: no snapshot object (a push in progress or interrupted)`);
    }
  }
  noteForeign(foreign, result);
  tellUnlisted(await backend.unlisted?.() ?? [], result);
  const referenced = new Set<string>();
  const allowUnauthenticated = options.allowUnauthenticated ?? false;
  const round = options.readData ? new PackRound(options.rangeBudget ?? RANGE_BUDGET_BYTES) : null;
  const gather: Gather = { round, checks: new Map(), result, seen: new Set(), chosen: null };
  let readable: SnapshotKey[] = [];
  for (const { key } of listing.snapshots) {
    result.snapshots += 1;
    const context = { packs, referenced, result, allowUnauthenticated, gather };
    if (await checkSnapshot(repository, key, identities, context)) readable.push(key);
    collectGarbage(); // each document is garbage once its ranges are taken: one at a time, whatever the history
  }
  result.packs_referenced = referenced.size;
  if ((options.subset ?? 100) < 100) gather.chosen = new Set(sampled([...gather.seen].sort(), options)); // once
  let damaged = false; // a pack's content found wrong: pushes go on reusing it
  while (gather.round) {
    for (const ranges of gather.checks.values()) ranges.trim();
    const ids = [...gather.checks.keys()].sort().filter((id) => gather.chosen?.has(id) ?? true);
    damaged = await readPacks(backend, identities, ids, gather.checks, options, result) || damaged;
    [gather.round, gather.checks] = [gather.round.next(), new Map()];
    if (gather.round) readable = await gatherAgain(repository, identities, readable, gather, allowUnauthenticated);
  }
  result.ok = result.errors.length === 0;
  if (damaged) result.notes.push(DAMAGED_PACK_STEP);
  return result;
}

/** The next step for a damaged pack, which a push (holding no identity, it cannot read one) would go on reusing. */
const DAMAGED_PACK_STEP = "a pack whose content is damaged stays reused by every push while it is listed with its " +
  "size: move it out of the repository (keep it to look at), then push: its blocks are sent anew; the snapshots " +
  "that need it do not restore whole: 'remote cleanup --forget' them once a later one passes 'remote verify --read-data'";

/**
 * Read the documents of `keys` again for the ranges of the packs of a next round; the keys still readable. One that is
 * gone was removed meanwhile (a cleanup: its packs stay through the grace period), a note; any other failure an error.
 */
async function gatherAgain(
  repository: Repository,
  identities: readonly AgeIdentity[],
  keys: readonly SnapshotKey[],
  gather: Gather,
  allowUnauthenticated: boolean,
): Promise<SnapshotKey[]> {
  const { result } = gather;
  const readable: SnapshotKey[] = [];
  for (const key of keys) {
    try {
      const read = await readSnapshot(repository, identities, key, { allowUnauthenticated });
      const text = snapshotKeyText(key);
      if (!read.authenticated && !result.unauthenticated.includes(text)) result.unauthenticated.push(text);
      collectChecks(read.document, gather);
      readable.push(key);
    } catch (error) {
      stopIfUnreachable(error);
      const gone = error instanceof ObjectNotFoundError;
      (gone ? result.notes : result.errors).push(`${finding(error)} (read again for a next round of packs)`);
    }
    collectGarbage();
  }
  return readable;
}

async function listedPacks(backend: Backend, foreign: string[]): Promise<Map<string, number>> {
  const packs = new Map<string, number>();
  for (const { name, size } of await backend.list(PREFIXES.packs)) {
    const parsed = parseName(name);
    if (parsed?.kind === "pack") packs.set(parsed.id, size);
    else foreign.push(name);
  }
  return packs;
}

/** The most names of one kind told one by one: a writer may leave millions of names that are not objects. */
const NAMES_TOLD = 20;

/**
 * Tell what a listing of objects leaves out: a hidden name is a note; a link, a folder or a special file where objects
 * are is an error (a snapshot object replaced so would look like a push still running), the first
 * {@linkcode NAMES_TOLD} by name, then how many more.
 */
function tellUnlisted(names: readonly string[], result: VerifyResult): void {
  let odd = 0;
  for (const name of names) {
    if (name.startsWith(".")) result.notes.push(`${name}: a hidden name, not an object of this format; ignored`);
    else if (++odd <= NAMES_TOLD) {
      result.errors.push(
        `${name}: a symbolic link, folder or special file where objects are, made by hand; put the object back from a copy of the repository, or remove it`,
      );
    }
  }
  if (odd > NAMES_TOLD) {
    result.errors.push(
      `${odd - NAMES_TOLD} more symbolic links, folders or special files where objects are (not named)`,
    );
  }
}

function noteForeign(names: readonly string[], result: VerifyResult): void {
  for (const name of names.slice(0, NAMES_TOLD)) result.notes.push(`${name}: not an object of this format; ignored`);
  if (names.length > NAMES_TOLD) {
    result.notes.push(`${names.length - NAMES_TOLD} more names not objects of this format; ignored (not named)`);
  }
}

/** Where documents' ranges go: those of the packs of the current round (none without `readData`). */
interface Gather {
  round: PackRound | null;
  checks: Map<string, PackRanges>;
  result: VerifyResult;
  /** Every pack the documents use, seen in the first pass: what `subset` samples from. */
  seen: Set<string>;
  /** With `subset`: the packs chosen to be read, drawn from `seen` after the first pass; `null` for every pack. */
  chosen: Set<string> | null;
}

interface SnapshotContext {
  packs: Map<string, number>;
  referenced: Set<string>;
  result: VerifyResult;
  allowUnauthenticated: boolean;
  gather: Gather;
}

/** Check snapshot `key`'s refs and packs, and with identities its document; whether its document was read. */
async function checkSnapshot(
  repository: Repository,
  key: SnapshotKey,
  identities: readonly AgeIdentity[],
  context: SnapshotContext,
): Promise<boolean> {
  const { result } = context;
  try {
    const refs = await readRefs(repository.backend, key);
    if (!refs) {
      result.errors.push(`${refsName(key)}: missing, so the packs ${snapshotKeyText(key)} needs are unknown`);
    } else {
      const sha256 = sha256Hex(await repository.backend.read(snapshotName(key), undefined, MAX_SNAPSHOT_OBJECT_BYTES));
      if (sha256 !== refs.snapshot_sha256) result.errors.push(`${snapshotName(key)}: SHA-256 differs from its refs`);
      checkPacks(refs.packs, key, context);
    }
    if (identities.length > 0) {
      const { allowUnauthenticated } = context;
      const read = await readSnapshot(repository, identities, key, { allowUnauthenticated });
      if (!read.authenticated) result.unauthenticated.push(snapshotKeyText(key));
      else noteFieldsUnvouched(repository, key, read, identities, result);
      collectChecks(read.document, context.gather);
      return true;
    }
  } catch (error) {
    stopIfUnreachable(error);
    result.errors.push(finding(error));
  }
  return false;
}

/**
 * Note refs whose snapshot's MAC verifies but that carry no MAC over their fields: their source, sequence and packs
 * (what retention, a drill's latest and a live restore go by) may be a writer's edit, which no check here could see.
 */
function noteFieldsUnvouched(
  repository: Repository,
  key: SnapshotKey,
  read: ReadSnapshot,
  identities: readonly AgeIdentity[],
  result: VerifyResult,
): void {
  if (read.refs === null) return;
  const claim = snapshotClaim(repository.config.id, key, read.sha256);
  if (refsStanding(read.refs, identities.map(deriveAuthKey), claim).standing !== "fields-unvouched") return;
  result.notes.push(
    `${refsName(key)}: its snapshot's MAC verifies, but no MAC covers the refs' source, sequence and packs (pushed ` +
      "by a version before that MAC, or stripped by a writer of the repository, who may have edited them): a cleanup " +
      "given the auth key leaves it out of retention unless --allow-unauthenticated, and a live restore takes it only " +
      "when this backup folder's record of its pushes names it, or with --other-source",
  );
}

/** The most pack findings told one by one per snapshot: a forged refs may name 100,000 packs that are not there. */
const PACK_FINDINGS_TOLD = 20;

/** The most ranges of one pack told one by one as not matching their hashes: a forged document may record 100,000. */
const RANGE_FINDINGS_TOLD = 20;

/** Check that each pack `refs` names is listed with its size; note the listed ones as referenced. */
function checkPacks(packs: readonly { id: string; size: number }[], key: SnapshotKey, context: SnapshotContext): void {
  let findings = 0;
  const tell = (line: string) => {
    if (++findings <= PACK_FINDINGS_TOLD) context.result.errors.push(line);
  };
  for (const { id, size } of packs) {
    const found = context.packs.get(id);
    if (found === undefined) tell(`${packName(id)}: missing (needed by ${snapshotKeyText(key)})`);
    else {
      context.referenced.add(id); // only listed ones: the set stays within the listing's bound
      if (found !== size) {
        tell(
          `${packName(id)}: ${found} bytes, refs record ${size} (${
            found < size ? "truncated" : "grown or replaced"
          }; ` +
            `needed by ${snapshotKeyText(key)})`,
        );
      }
    }
  }
  if (findings > PACK_FINDINGS_TOLD) {
    const more = findings - PACK_FINDINGS_TOLD;
    context.result.errors.push(`${refsName(key)}: ${more} more of its packs missing or of another size (not named)`);
  }
}

/**
 * Rethrow a backend's giving up on the link (its one line names the object and the repository): the next object would
 * wait out the same retries, so a repository that went away would take time in proportion to its size to say so.
 */
function stopIfUnreachable(error: unknown): void {
  if (isUnreachable(error)) throw error;
}

/** An error as one of verify's findings: without the advice to run `remote verify`, which the reader is doing. */
function finding(error: unknown): string {
  return (error as Error).message
    .replace(/,? check it \('remote verify'\)$/, "")
    .replace(/ \('remote verify'\)$/, "")
    .replace(/[;,]? (the repository was altered: )?run 'remote verify[^']*'( to see what else is missing)?$/, "");
}

/** Take the ranges `document` records in the packs of the round, then fit the round to the budget. */
function collectChecks(document: SnapshotDocument, { round, checks, result, seen, chosen }: Gather): void {
  if (!round) return;
  for (const pack of document.packs) seen.add(pack.id);
  const included = document.packs.map((pack) => round.includes(pack.id) && (chosen?.has(pack.id) ?? true));
  for (const file of document.files.filter(isDocumentFile)) {
    const extents = file.extents;
    for (let row = 0; row < extents.at.length; row++) {
      if (!included[extents.packs[row]]) continue;
      const pack = document.packs[extents.packs[row]];
      let ranges = checks.get(pack.id);
      if (!ranges) checks.set(pack.id, ranges = new PackRanges(pack.compression));
      if (ranges.compression !== pack.compression) twoCompressions(pack.id, result);
      const unit = extentUnit(document.format, file.block, extents.lengths[row]);
      ranges.add(extents.offsets[row], extents.lengths[row], unit, extents.hashes, row * 32);
    }
  }
  round.fit(checks);
}

/** Report that snapshots record pack `id` with two compressions: once, though every extent and round finds it. */
function twoCompressions(id: string, result: VerifyResult): void {
  const line = `${packName(id)}: recorded with two compressions by different snapshots`;
  if (!result.errors.includes(line)) result.errors.push(line);
}

/** Read packs `ids` (in that order, `transfers` at once) and check the ranges `checks` hold for each. */
async function readPacks(
  backend: Backend,
  identities: readonly AgeIdentity[],
  ids: readonly string[],
  checks: Map<string, PackRanges>,
  options: VerifyOptions,
  result: VerifyResult,
): Promise<boolean> {
  const lanes = Math.max(1, options.transfers ?? DEFAULT_TRANSFERS);
  let damaged = false;
  const buffers: Uint8Array[] = [];
  const plainBuffers: Uint8Array[] = [];
  const errors: string[][] = ids.map(() => []);
  using pool = new CryptoPool(Math.min(lanes, verifyWorkers(backend)));
  await inLanes(ids.length, lanes, async (at, lane) => {
    if (at % GC_EVERY_PACKS === GC_EVERY_PACKS - 1) collectGarbage();
    const name = packName(ids[at]);
    const pack = checks.get(ids[at])!;
    const found = pack.distinct(); // this pack's only
    try {
      if (!buffers[lane]?.byteLength) buffers[lane] = new Uint8Array(PACK_BUFFER_BYTES); // new, or kept by a failure
      const sealed = await backend.read(name, buffers[lane], PACK_BUFFER_BYTES); // larger: refused unread
      result.bytes_read += sealed.length;
      result.packs_read += 1;
      const { compression } = pack;
      let plainInto: Uint8Array | undefined; // else each pack's plaintext was a new buffer, and sent to this thread
      if (compression === "zstd") {
        if (!plainBuffers[lane]?.byteLength) plainBuffers[lane] = new Uint8Array(PACK_BUFFER_BYTES);
        plainInto = plainBuffers[lane];
      }
      const opened = await pool.open(
        { name, sealed, into: sealed, compression, maxBytes: PACK_MAX_BYTES, ranges: found.triples, plainInto },
        identities,
      );
      buffers[lane] = new Uint8Array(opened.sealed.buffer);
      if (opened.plainInto) plainBuffers[lane] = opened.plainInto;
      const checked = checkRanges(name, found, opened, errors[at]);
      result.extents_checked += checked.entries;
      damaged ||= checked.damaged;
    } catch (error) {
      stopIfUnreachable(error);
      damaged ||= error instanceof PackOpenError; // read, and found wrong: not missing, a link, or a disk that failed
      errors[at].push(finding(error));
      if (error instanceof PackOpenError) keepBuffers(error.buffers, lane, buffers, plainBuffers);
    }
  });
  for (const lines of errors) for (const line of lines) result.errors.push(line); // in pack order, not the lanes
  return damaged;
}

/**
 * Compare the hashes of pack `name`'s ranges `found` that `opened` computed with those recorded, telling at most
 * {@linkcode RANGE_FINDINGS_TOLD} of those that differ in `lines`; the entries checked, and whether any differed.
 */
function checkRanges(name: string, found: DistinctRanges, opened: OpenDone, lines: string[]) {
  const { triples, first, hashes } = found;
  let mismatched = 0;
  for (let range = 0; range < first.length - 1; range++) {
    const [offset, length] = [triples[3 * range], triples[3 * range + 1]];
    const one = first[range + 1] - first[range] === 1 && offset + length <= opened.plain.length;
    const expected = hashes.subarray(32 * first[range], 32 * first[range] + 32);
    if (one && Buffer.compare(opened.hashes.subarray(32 * range, 32 * range + 32), expected) === 0) continue;
    if (++mismatched <= RANGE_FINDINGS_TOLD) lines.push(`${name}: bytes ${offset}:${length} do not match their hash`);
  }
  if (mismatched > RANGE_FINDINGS_TOLD) {
    lines.push(`${name}: ${mismatched - RANGE_FINDINGS_TOLD} more of its ranges do not match their hashes (not named)`);
  }
  return { entries: first.at(-1)!, damaged: mismatched > 0 };
}

/** Take back the buffers of a pack that failed to open (`[sealed, into, plainInto?]`) as the lane's. */
function keepBuffers(given: readonly Uint8Array[], lane: number, buffers: Uint8Array[], plainBuffers: Uint8Array[]) {
  buffers[lane] = new Uint8Array(given[0].buffer);
  if (given[2]) plainBuffers[lane] = given[2];
}

/**
 * Workers that open packs for a read-back: one per core, but one over SFTP, where this thread runs the SSH client and
 * its garbage: the small-row store's 2-day repository there peaked at 258.5 MiB with two (`task bench --only network
 * --network-store small --days 2`); a 1- and a 2-snapshot repository at 210 to 220 MiB with one, 227 to 251 with two,
 * 5 to 12% slower.
 */
function verifyWorkers(backend: Backend): number {
  return isSftpBackend(backend) ? 1 : defaultWorkers();
}

/** The packs to read: all, or `subset` percent of them chosen at random. */
function sampled(ids: string[], options: VerifyOptions): string[] {
  const percent = options.subset ?? 100;
  if (percent >= 100) return ids;
  const random = options.random ?? Math.random;
  const keep = Math.ceil(ids.length * Math.max(0, percent) / 100);
  return ids.map((id) => ({ id, order: random() })).sort((a, b) => a.order - b.order).slice(0, keep).map((x) => x.id);
}
