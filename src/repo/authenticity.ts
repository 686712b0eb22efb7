/**
 * Snapshot authenticity: the MACs a push adds to a snapshot's refs, and their check by every reader that holds the
 * identity, so that a writer of the repository who knows only public values cannot add or re-label a snapshot.
 *
 * @module
 */
import {
  type AuthKey,
  deriveAuthKey,
  macMatches,
  refsMac,
  refsMacMatches,
  type SnapshotClaim,
  snapshotMac,
} from "../crypto/auth_key.ts";
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
export function checkPushAuth(
  auth: PushAuth,
  recipients: readonly string[],
  location: string,
  done = "nothing was pushed",
): void {
  const foreign = auth.keys.find((key) => !recipients.includes(key.recipient));
  if (foreign === undefined) return;
  throw new RefusedError(
    `${auth.source}:${foreign.line}: the authentication key of ${foreign.recipient} is not for a recipient of ` +
      `${location} (${recipients.join(", ")}); ${done}: run 'atocore-backup remote auth-key' with the ` +
      "repository's identity and install its output here",
  );
}

/** The `auth` entries of `refs`: per key, the snapshot's MAC and the MAC of the refs' own fields. */
export function refsAuth(auth: PushAuth, claim: SnapshotClaim, refs: Refs): RefsAuth[] {
  return auth.keys.map((key) => ({
    recipient: key.recipient,
    mac: snapshotMac(key, claim),
    refs_mac: refsMac(key, claim, refs),
  }));
}

/**
 * What `keys` make of `refs` (of the snapshot `claim` names): `"vouched"` when they hold a matching MAC of the
 * snapshot and of the refs' fields for one of the keys, and none that does not match; `"forged"` when one does not
 * match; `"unsigned"` with none for these keys; `"fields-unvouched"` when the snapshot's MAC matches but no MAC covers
 * the refs' fields (refs pushed before it was recorded, or a writer removed it).
 */
export type RefsStanding = "vouched" | "forged" | "unsigned" | "fields-unvouched";

/** See {@linkcode RefsStanding}; `recipient`: the one whose MAC does not match, when forged. */
export function refsStanding(
  refs: Refs,
  keys: readonly AuthKey[],
  claim: SnapshotClaim,
): { standing: RefsStanding; recipient?: string } {
  const ours = (refs.auth ?? []).flatMap((entry) => {
    const key = keys.find((candidate) => candidate.recipient === entry.recipient);
    return key ? [{ entry, key }] : [];
  });
  if (ours.length === 0) return { standing: "unsigned" };
  const fieldsMatch = (entry: RefsAuth, key: AuthKey) =>
    entry.refs_mac === undefined || refsMacMatches(key, claim, refs, entry.refs_mac);
  const wrong = ours.find(({ entry, key }) => !macMatches(key, claim, entry.mac) || !fieldsMatch(entry, key));
  if (wrong) return { standing: "forged", recipient: wrong.entry.recipient };
  return { standing: ours.some(({ entry }) => entry.refs_mac !== undefined) ? "vouched" : "fields-unvouched" };
}

/**
 * The recipients of `auth`'s keys for which `refs` carry no matching MAC: none for a snapshot pushed with these keys;
 * some but not all for one pushed before the key file gained the others.
 */
export function keysWithoutMac(refs: Refs, auth: PushAuth, claim: SnapshotClaim): string[] {
  const entries = refs.auth ?? [];
  return auth.keys.filter((key) =>
    !entries.some((entry) => entry.recipient === key.recipient && macMatches(key, claim, entry.mac))
  ).map((key) => key.recipient);
}

/**
 * The repository's `recipients` that `auth` holds no key for: their identities cannot check the snapshots it pushes
 * (restore, drill and verify with one refuse them), so losing the others' identities would lose those snapshots.
 */
export function recipientsWithoutKey(auth: PushAuth, recipients: readonly string[]): string[] {
  return recipients.filter((recipient) => !auth.keys.some((key) => key.recipient === recipient));
}

/**
 * A snapshot refused for its refs: a MAC that does not match, or none (`allowable`: `--allow-unauthenticated` would
 * take it); `finding` says which, and the message adds the next step with no flags (see {@linkcode unauthenticNext}).
 */
export class UnauthenticSnapshotError extends RefusedError {
  /** The refusal of what `finding` says. */
  constructor(readonly finding: string, readonly allowable: boolean) {
    super(`${finding}; refused: ${unauthenticNext(allowable, "")}`);
  }
}

/**
 * The next step of an {@linkcode UnauthenticSnapshotError}: pick another snapshot (the `remote list` written out with
 * `flags`, those that reach the run's repository, when there are any: last on the line, for a shell to run as printed),
 * or, for one that carries no MAC, give `--allow-unauthenticated` for a snapshot known to be pushed so.
 */
export function unauthenticNext(allowable: boolean, flags: string): string {
  const allow = "give --allow-unauthenticated only for a snapshot you know was pushed without an auth key";
  if (flags === "") return `pick another snapshot ('remote list')${allowable ? `, or ${allow}` : ""}`;
  const list = `pick another snapshot, listed by: atocore-backup remote list${flags}`;
  return allowable ? `${allow}, or ${list}` : list;
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
  const { standing, recipient } = refs === null ? { standing: "unsigned" } : refsStanding(refs, keys, claim);
  if (standing === "forged") {
    throw new UnauthenticSnapshotError(
      `${refsName(key)}: the MAC for ${recipient} does not match ${claim.objectName} or the refs' fields (forged, ` +
        "renamed, edited or copied from another repository by a writer of the repository)",
      false,
    );
  }
  if (standing !== "unsigned") return true;
  if (allowUnauthenticated) return false;
  if (refs === null) {
    throw new UnauthenticSnapshotError(
      `${refsName(key)}: missing, so ${claim.objectName} carries no MAC and may be a writer's forgery`,
      true,
    );
  }
  throw new RefusedError(
    `${refsName(key)}: no MAC for the identity's recipient (${keys.map((k) => k.recipient).join(", ")}), so ` +
      `${claim.objectName} may be a writer's forgery; refused: give --allow-unauthenticated only for a snapshot ` +
      "you know was pushed without an auth key",
  );
}
