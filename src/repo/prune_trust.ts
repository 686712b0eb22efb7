/**
 * What a remote cleanup holding this host's authentication keys believes of each refs: which snapshots count in
 * retention and whose lists of packs it keeps packs by. Without keys it believes every refs (README, "Cleanup").
 *
 * @module
 */
import { type PushAuth, refsStanding, snapshotClaim } from "./authenticity.ts";
import { refsName, type SnapshotKey } from "./layout.ts";
import type { Refs } from "./public_objects.ts";

/** Why a refs is not believed: an `error` (a MAC that does not match) or a `warning` (no MAC to check). */
export type Doubt = { error: string } | { warning: string };

/** Judges refs by this host's keys; believes all without keys. */
export class RefsTrust {
  /** Keys `auth` (none: believe all) of the repository `repositoryId`; `allowUnauthenticated` believes refs without. */
  constructor(
    private readonly repositoryId: string,
    private readonly auth: PushAuth | undefined,
    private readonly allowUnauthenticated: boolean,
  ) {}

  /** Whether the snapshot `key` counts in retention (kept or removed by the rules): `null` when it does. */
  forRetention(key: SnapshotKey, refs: Refs): Doubt | null {
    const standing = this.standing(key, refs);
    if (standing === "forged") return this.forged(key, "no snapshot or pack deleted this run");
    if (standing !== "unsigned" || this.allowUnauthenticated) return null;
    return {
      warning: `${refsName(key)} holds no MAC of this host's authentication key (pushed without one, or by a writer ` +
        "of the repository): its snapshot is neither counted by retention nor removed; give --allow-unauthenticated " +
        "to count snapshots pushed without a key",
    };
  }

  /** Whether the packs `refs` lists are known to be its snapshot's: `null` when they are (or no keys are held). */
  forPacks(key: SnapshotKey, refs: Refs): Doubt | null {
    const standing = this.standing(key, refs);
    if (standing === "forged") return this.forged(key, "no pack deleted or condemned this run");
    if (standing === "vouched" || standing === null || this.allowUnauthenticated) return null;
    const why = standing === "unsigned"
      ? "holds no MAC of this host's authentication key"
      : "holds no MAC over its list of packs (pushed before it was recorded, or removed by a writer)";
    return {
      warning: `${refsName(key)} ${why}, so a writer of the repository could have edited that list: no pack deleted ` +
        "or condemned this run; give --allow-unauthenticated to trust it as it is",
    };
  }

  private standing(key: SnapshotKey, refs: Refs) {
    if (!this.auth) return null;
    return refsStanding(refs, this.auth.keys, snapshotClaim(this.repositoryId, key, refs.snapshot_sha256)).standing;
  }

  private forged(key: SnapshotKey, consequence: string): Doubt {
    return {
      error: `${refsName(key)}: a MAC there does not match its snapshot or the packs it lists (edited by a writer of ` +
        `the repository); ${consequence}: check it ('remote verify --identity FILE'), remove the snapshot's refs and ` +
        "object by hand if it is not to be kept",
    };
  }
}
