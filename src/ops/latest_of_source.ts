/**
 * The newest snapshot one backup folder (a source) pushed to a repository several share (`drill --from-remote --latest
 * --source ID`): a CI job drilling each host's latest notices the one that stopped pushing.
 *
 * @module
 */
import type { AgeIdentity } from "../crypto/age.ts";
import { deriveAuthKey } from "../crypto/auth_key.ts";
import { OperationError } from "../errors.ts";
import type { Reporter } from "../report/reporter.ts";
import { refsStanding, snapshotClaim } from "../repo/authenticity.ts";
import type { Backend } from "../repo/backend.ts";
import { type SnapshotKey, snapshotKeyText } from "../repo/layout.ts";
import { listSnapshots, readRefs } from "../repo/snapshots.ts";
import { isInFuture } from "../snapshot/clock.ts";
import { nextStep } from "./next_step.ts";
import { alteredNames, warnPassedOverAltered } from "./altered_snapshots.ts";

/** Who asks for a source's latest: the repository read, its id, the identities whose keys vouch for a refs' source. */
export interface SourceLookup {
  backend: Backend;
  repositoryId: string;
  identities: readonly AgeIdentity[];
  /** The flags a printed `remote list` needs to reach this run's repository (see `RemoteSource`; none by default). */
  repositoryFlags?: string;
}

/**
 * The name (`<stamp>_<push id>`) of the newest snapshot of source `sourceId` not stamped in the future by this host's
 * clock. A refs' source is believed only where a MAC by one of the identities' keys covers it (`"vouched"`, as a live
 * restore judges another host's snapshot): a writer of the repository who edits, copies or strips a refs cannot make
 * another host's snapshot, or an old one, stand for this source's latest. Those of the source stamped in the future
 * are passed over with a warning (`drill_latest_skipped_future`), and so, whatever source they name, are newer refs whose
 * MAC by one of those keys does not verify (`drill_latest_passed_over_forged`): a writer's edit of the newest refs; and
 * newer refs that carry no MAC by those keys (`drill_latest_passed_over_unsigned`): pushed so, or stripped; and newer
 * snapshot objects swapped by hand, whose refs are not read (`remote_latest_passed_over_altered`).
 *
 * @throws {OperationError} naming the repository and the source when it has none to drill.
 */
export async function latestOfSource(
  lookup: SourceLookup,
  sourceId: string,
  clock: { now: Date; reporter: Reporter },
): Promise<string> {
  const keys = lookup.identities.map(deriveAuthKey);
  const newestFirst = (await listSnapshots(lookup.backend)).snapshots.map(({ key }) => key).reverse();
  const skippedInFuture: string[] = [];
  const forged: string[] = []; // newer refs a writer altered, whichever source they now name: the true latest?
  const unsigned: string[] = []; // newer refs without a MAC by these keys: pushed so, or stripped by a writer
  let unvouched = 0;
  for (const key of newestFirst) {
    const refs = await readRefs(lookup.backend, key).catch(() => null); // unreadable: no source to believe
    if (refs === null) continue;
    const { standing } = refsStanding(refs, keys, snapshotClaim(lookup.repositoryId, key, refs.snapshot_sha256));
    if (standing === "forged") forged.push(snapshotKeyText(key));
    if (standing === "unsigned") unsigned.push(snapshotKeyText(key));
    if (refs.source !== sourceId) continue;
    if (standing !== "vouched") unvouched += 1;
    else if (isInFuture(key.stamp, clock.now)) skippedInFuture.push(key.stamp);
    else {
      const chosen = found(key, { skippedInFuture, forged, unsigned }, clock.reporter);
      warnPassedOverAltered(await alteredNames(lookup.backend), chosen, {
        location: lookup.backend.location,
        ...clock,
      });
      return chosen;
    }
  }
  throw noneOfSource(lookup, sourceId, skippedInFuture, unvouched);
}

/** `key`'s name, once the source's snapshots stamped in the future passed over for it are warned about. */
function found(
  key: SnapshotKey,
  passed: { skippedInFuture: string[]; forged: string[]; unsigned: string[] },
  reporter: Reporter,
): string {
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
