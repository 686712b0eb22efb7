/**
 * What a remote cleanup holding this host's authentication keys believes of each refs: which snapshots count in
 * retention and whose lists of packs it keeps packs by. Without keys it believes every refs (README, "Cleanup").
 *
 * @module
 */
import { type PushAuth, refsStanding, snapshotClaim } from "./authenticity.ts";
import { refsName, type SnapshotKey } from "./layout.ts";
import type { Refs } from "./public_objects.ts";

/**
 * Why a refs is not believed, an error of the run: a MAC that does not match stops every deletion (`stopsAll`); no MAC
 * to check keeps its snapshot out of retention and stops the packs' deletion.
 */
export interface Doubt {
  error: string;
  stopsAll: boolean;
}

/** Judges refs by this host's keys; believes all without keys. */
export class RefsTrust {
  /** Keys `auth` (none: believe all) of the repository `repositoryId`; `allowUnauthenticated` believes refs without. */
  constructor(
    private readonly repositoryId: string,
    private readonly auth: PushAuth | undefined,
    private readonly allowUnauthenticated: boolean,
  ) {}

  /**
   * `null` when the refs of snapshot `key` may be believed: its snapshot counts in retention, and the packs it lists
   * are its snapshot's (always without keys, or with `allowUnauthenticated` unless a MAC does not match); else why not,
   * the same for both (so it is said once).
   */
  doubt(key: SnapshotKey, refs: Refs): Doubt | null {
    const standing = this.standing(key, refs);
    if (standing === "forged") {
      return {
        error: `${refsName(key)}: a MAC there does not match its snapshot or the refs' fields (edited by a writer of ` +
          "the repository); nothing deleted this run: check it ('remote verify --identity FILE'), remove the " +
          "snapshot's refs and object by hand if it is not to be kept",
        stopsAll: true,
      };
    }
    if (standing === null || standing === "vouched" || this.allowUnauthenticated) return null;
    const why = standing === "unsigned"
      ? "holds no MAC of this host's authentication key (pushed without one, or by a writer of the repository)"
      : "holds no MAC over its source and list of packs (pushed before it was recorded, or removed by a writer)";
    return {
      error: `${refsName(key)} ${why}: its snapshot is neither counted by retention nor removed, and no pack is ` +
        "deleted or condemned while it is kept; give --allow-unauthenticated to trust such refs as they are only if " +
        "you know how they were pushed ('remote verify --identity FILE' names them, but cannot tell an edit of their " +
        "source or packs)",
      stopsAll: false,
    };
  }

  private standing(key: SnapshotKey, refs: Refs) {
    if (!this.auth) return null;
    return refsStanding(refs, this.auth.keys, snapshotClaim(this.repositoryId, key, refs.snapshot_sha256)).standing;
  }
}
