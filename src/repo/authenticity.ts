/**
 * Snapshot authenticity: the MACs a push adds to a snapshot's refs, and their check by every reader that holds the
 * identity, so that a writer of the repository who knows only public values cannot add or re-label a snapshot.
 *
 * @module
 */
import { type AuthKey, deriveAuthKey, macMatches, type SnapshotClaim, snapshotMac } from "../crypto/auth_key.ts";
import type { AgeIdentity } from "../crypto/age.ts";
import { RefusedError } from "../errors.ts";
import { refsName, type SnapshotKey, snapshotName } from "./layout.ts";
import type { Refs, RefsAuth } from "./public_objects.ts";

/** The authentication keys a push signs with, and the file they came from (named in errors). */
export interface PushAuth {
  keys: readonly AuthKey[];
  source: string;
}

/** What a push claims of snapshot `key`: this repository, this name, these bytes. */
export function snapshotClaim(repositoryId: string, key: SnapshotKey, sha256: string): SnapshotClaim {
  return { repositoryId, objectName: snapshotName(key), sha256 };
}

/**
 * Refuse a key whose recipient is not one of the repository's: it was derived from another identity, and no reader of
 * this repository could check its MAC.
 *
 * @throws {RefusedError} naming the file, the line and the repository's recipients.
 */
export function checkPushAuth(auth: PushAuth, recipients: readonly string[], location: string): void {
  const foreign = auth.keys.find((key) => !recipients.includes(key.recipient));
  if (foreign === undefined) return;
  throw new RefusedError(
    `${auth.source}:${foreign.line}: the authentication key of ${foreign.recipient} is not for a recipient of ` +
      `${location} (${recipients.join(", ")}); nothing was pushed: run 'atocore-backup remote auth-key' with the ` +
      "repository's identity and install its output here",
  );
}

/** The `auth` entries of refs: one MAC per key. */
export function refsAuth(auth: PushAuth, claim: SnapshotClaim): RefsAuth[] {
  return auth.keys.map((key) => ({ recipient: key.recipient, mac: snapshotMac(key, claim) }));
}

/** Whether `refs` carry a matching MAC for every key of `auth`: a snapshot this pushing host made. */
export function signedBy(refs: Refs, auth: PushAuth, claim: SnapshotClaim): boolean {
  const entries = refs.auth ?? [];
  return auth.keys.every((key) =>
    entries.some((entry) => entry.recipient === key.recipient && macMatches(key, claim, entry.mac))
  );
}

/**
 * Check snapshot `key`'s refs against the keys of `identities`: every MAC there for one of their recipients must match,
 * and at least one must be there, unless `allowUnauthenticated` (then a snapshot with none is accepted, `false`).
 *
 * @returns whether the snapshot is authenticated.
 * @throws {RefusedError} naming the refs: a MAC that does not match (always), or none for these recipients.
 */
export function checkAuthenticity(
  refs: Refs | null,
  identities: readonly AgeIdentity[],
  claim: SnapshotClaim,
  key: SnapshotKey,
  allowUnauthenticated: boolean,
): boolean {
  const keys = identities.map(deriveAuthKey);
  const ours = (refs?.auth ?? []).flatMap((entry) => {
    const found = keys.find((candidate) => candidate.recipient === entry.recipient);
    return found ? [{ entry, key: found }] : [];
  });
  const wrong = ours.find(({ entry, key }) => !macMatches(key, claim, entry.mac));
  if (wrong) {
    throw new RefusedError(
      `${refsName(key)}: the MAC for ${wrong.entry.recipient} does not match ${claim.objectName} (forged, renamed or ` +
        "copied from another repository by a writer of the repository); refused: pick another snapshot ('remote list')",
    );
  }
  if (ours.length > 0) return true;
  if (allowUnauthenticated) return false;
  throw new RefusedError(
    `${refsName(key)}: no MAC for the identity's recipient (${keys.map((k) => k.recipient).join(", ")}), so ` +
      `${claim.objectName} may be a writer's forgery; refused: give --allow-unauthenticated only for a snapshot ` +
      "you know was pushed without an auth key",
  );
}
