/**
 * The snapshot `drill --from-remote --latest` takes: the newest one the identity's key vouches for (of one backup
 * folder, a source, with `--source`), and of its source the one published last, as the refs' MAC vouches.
 *
 * @module
 */
import type { AgeIdentity } from "../crypto/age.ts";
import { deriveAuthKey } from "../crypto/auth_key.ts";
import { OperationError } from "../errors.ts";
import type { Reporter } from "../report/reporter.ts";
import { type RefsStanding, refsStanding, snapshotClaim } from "../repo/authenticity.ts";
import type { Refs } from "../repo/public_objects.ts";
import type { Backend } from "../repo/backend.ts";
import { type SnapshotKey, snapshotKeyText } from "../repo/layout.ts";
import { isAlteredRefs, listSnapshots, readRefs } from "../repo/snapshots.ts";
import { isInFuture } from "../snapshot/clock.ts";
import { nextStep } from "./next_step.ts";
import { alteredNames, warnPassedOverAltered } from "./altered_snapshots.ts";

/** Who asks for a latest: the repository read, its id, the identities whose keys vouch for refs. */
export interface SourceLookup {
  backend: Backend;
  repositoryId: string;
  identities: readonly AgeIdentity[];
  /** The flags a printed `remote list` needs to reach this run's repository (see `RemoteSource`; none by default). */
  repositoryFlags?: string;
}

/** A snapshot of the repository, its refs (`null`: none, or unreadable: forged) and what the keys make of them. */
interface Judged {
  key: SnapshotKey;
  refs: Refs | null;
  standing: RefsStanding;
}

/** The newer snapshots passed over for the one taken, named in warnings. */
interface PassedOver {
  skippedInFuture: string[];
  forged: string[];
  unsigned: string[];
}

/**
 * The name (`<stamp>_<push id>`) of the newest snapshot of source `sourceId` not stamped in the future by this host's
 * clock. A refs' source is believed only where a MAC by one of the identities' keys covers it (`"vouched"`, as a live
 * restore judges another host's snapshot): a writer of the repository who edits, copies or strips a refs cannot make
 * another host's snapshot, or an old one, stand for this source's latest. Those of the source stamped in the future
 * are passed over with a warning (`drill_latest_skipped_future`), and so, whatever source they name, are newer refs whose
 * MAC by one of those keys does not verify (`drill_latest_passed_over_forged`): a writer's edit of the newest refs; and
 * newer refs that carry no MAC by those keys (`drill_latest_passed_over_unsigned`): pushed so, or stripped; and newer
 * snapshot objects swapped by hand, whose refs are not read (`remote_latest_passed_over_altered`). Of the source, the
 * one published last is taken ({@linkcode publishedLast}).
 *
 * @throws {OperationError} naming the repository and the source when it has none to drill.
 */
export async function latestOfSource(
  lookup: SourceLookup,
  sourceId: string,
  clock: { now: Date; reporter: Reporter },
): Promise<string> {
  const judge = judgeOf(lookup);
  const newestFirst = (await listSnapshots(lookup.backend)).snapshots.map(({ key }) => key).reverse();
  const passed: PassedOver = { skippedInFuture: [], forged: [], unsigned: [] };
  let unvouched = 0;
  for (const key of newestFirst) {
    const judged = await judge(key);
    const passedOver = notePassed(judged, passed, false); // whatever source it names: perhaps this one's, altered
    if (judged.refs?.source !== sourceId) continue;
    if (passedOver) unvouched += 1;
    else if (isInFuture(key.stamp, clock.now)) passed.skippedInFuture.push(key.stamp);
    else {
      warnPassed(key, passed, clock.reporter);
      const chosen = await publishedLast(judged, newestFirst, judge, clock);
      warnPassedOverAltered(await alteredNames(lookup.backend), chosen, {
        location: lookup.backend.location,
        ...clock,
      });
      return chosen;
    }
  }
  throw noneOfSource(lookup, sourceId, passed.skippedInFuture, unvouched);
}

/**
 * Of the snapshots up to `byStamp` (the newest by stamp not in the future: `resolveRemoteSnapshot`), the newest that a
 * fetch with these identities accepts: newer ones whose MAC does not verify, or that carry none (unless
 * `allowUnauthenticated`), are passed over with the warnings of {@linkcode latestOfSource}, so that a writer of the
 * repository cannot make the nightly drill fail by copying a snapshot under a newer name; then, of its source, the one
 * published last ({@linkcode publishedLast}). With none the fetch accepts, `byStamp`: its fetch says why it is refused.
 */
export async function latestVouched(
  lookup: SourceLookup & { allowUnauthenticated: boolean },
  byStamp: string,
  clock: { now: Date; reporter: Reporter },
): Promise<string> {
  const judge = judgeOf(lookup);
  const newestFirst = (await listSnapshots(lookup.backend)).snapshots.map(({ key }) => key).reverse();
  const passed: PassedOver = { skippedInFuture: [], forged: [], unsigned: [] };
  const from = newestFirst.findIndex((key) => snapshotKeyText(key) === byStamp);
  for (const key of newestFirst.slice(Math.max(from, 0))) {
    if (isInFuture(key.stamp, clock.now)) continue; // warned of by the choice by stamp
    const judged = await judge(key);
    if (notePassed(judged, passed, lookup.allowUnauthenticated)) continue;
    warnPassed(key, passed, clock.reporter);
    return await publishedLast(judged, newestFirst, judge, clock);
  }
  return byStamp;
}

/** Each snapshot's refs read once and judged by the identities' keys. */
function judgeOf(lookup: SourceLookup): (key: SnapshotKey) => Promise<Judged> {
  const keys = lookup.identities.map(deriveAuthKey);
  const judged = new Map<string, Judged>();
  return async (key) => {
    const name = snapshotKeyText(key);
    const known = judged.get(name);
    if (known) return known;
    const refs = await readRefs(lookup.backend, key).catch(alteredAsUndefined); // undefined: there, but altered
    const claim = refs && snapshotClaim(lookup.repositoryId, key, refs.snapshot_sha256);
    const standing = refs === undefined
      ? "forged"
      : refs === null
      ? "unsigned"
      : refsStanding(refs, keys, claim!).standing;
    judged.set(name, { key, refs: refs ?? null, standing });
    return judged.get(name)!;
  };
}

/** `undefined` for refs a writer altered past reading ({@linkcode isAlteredRefs}); any other failure is thrown. */
function alteredAsUndefined(error: unknown): undefined {
  if (isAlteredRefs(error)) return undefined;
  throw error;
}

/**
 * Note `judged` in `passed` when it is forged, or its refs' fields carry no MAC by the keys (none at all, or none over
 * the fields: pushed without the key or before that MAC existed, or stripped), unless `allowUnvouched`; whether it was.
 */
function notePassed(judged: Judged, passed: PassedOver, allowUnvouched: boolean): boolean {
  const name = snapshotKeyText(judged.key);
  if (judged.standing === "forged") passed.forged.push(name);
  else if (judged.standing !== "vouched" && !allowUnvouched) passed.unsigned.push(name);
  else return false;
  return true;
}

/** Warn of the newer snapshots passed over for `key`. */
function warnPassed(key: SnapshotKey, passed: PassedOver, reporter: Reporter): void {
  const chosen = snapshotKeyText(key);
  if (passed.skippedInFuture.length) {
    reporter.event("warning", "drill_latest_skipped_future", { stamps: passed.skippedInFuture, chosen: key.stamp });
  }
  if (passed.forged.length) {
    // a writer who edits the newest refs' source would otherwise make the drill pass on an older snapshot unremarked
    reporter.event("warning", "drill_latest_passed_over_forged", { snapshots: passed.forged, chosen });
  }
  if (passed.unsigned.length) {
    // a writer who strips the newest refs' MACs would make it no snapshot of any source, the same way unremarked
    reporter.event("warning", "drill_latest_passed_over_unsigned", { snapshots: passed.unsigned, chosen });
  }
}

/**
 * Of `newest`'s source, the snapshot of the highest sequence a MAC by the identities' keys vouches for, not stamped in
 * the future: a clock set back stamps the newest data before an older snapshot, which the newest stamp would stand for
 * (warned: `drill_latest_by_sequence`). `newest` itself when its sequence is not vouched for (refs pushed without a key,
 * or before sequences were recorded: the stamps are all there is).
 */
async function publishedLast(
  newest: Judged,
  keys: SnapshotKey[],
  judge: (key: SnapshotKey) => Promise<Judged>,
  { now, reporter }: { now: Date; reporter: Reporter },
): Promise<string> {
  const sequenceOf = (judged: Judged) => judged.standing === "vouched" ? judged.refs?.sequence : undefined;
  if (sequenceOf(newest) === undefined || newest.refs?.source === undefined) return snapshotKeyText(newest.key);
  let last = newest;
  for (const key of keys) {
    if (isInFuture(key.stamp, now)) continue;
    const judged = await judge(key);
    if (judged.refs?.source === newest.refs.source && (sequenceOf(judged) ?? -1) > sequenceOf(last)!) last = judged;
  }
  const chosen = snapshotKeyText(last.key);
  if (last !== newest) {
    reporter.event("warning", "drill_latest_by_sequence", {
      newest_stamp: snapshotKeyText(newest.key),
      chosen,
      sequence: sequenceOf(last),
    });
  }
  return chosen;
}

/**
 * The one line for a source without a snapshot to drill: every one in the future, or none its refs vouch for. The
 * `remote list` it prints reaches this run's repository (`repositoryFlags`).
 */
function noneOfSource(
  { backend, repositoryFlags = "" }: SourceLookup,
  sourceId: string,
  skippedInFuture: string[],
  unvouched: number,
): OperationError {
  const location = backend.location;
  if (skippedInFuture.length) {
    const short = "give one by its name ('atocore-backup remote list')";
    const list = nextStep(short, "give one by its name, listed by", "remote list", repositoryFlags);
    return new OperationError(
      `every snapshot of source ${sourceId} in ${location} is stamped in the future (newest ${skippedInFuture[0]}); ` +
        `check that host's clock, then ${list}`,
    );
  }
  const unbelieved = unvouched === 0
    ? ""
    : ` (${unvouched} name it in refs no MAC by the identity's key covers: pushed without that auth key, or edited; ` +
      "not believed)";
  const short = "its push timer, and the id against SOURCE in 'atocore-backup remote list'";
  const list = nextStep(
    short,
    "its push timer, and the id against SOURCE in the list of",
    "remote list",
    repositoryFlags,
  );
  return new OperationError(
    `no snapshot of source ${sourceId} in ${location}${unbelieved}; has that backup folder stopped pushing? check ${list}`,
  );
}
