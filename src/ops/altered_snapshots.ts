/**
 * Snapshot objects swapped by hand for a link, a folder or a special file: never taken for no snapshot, and never
 * passed over unremarked by a "latest" that picks an older one.
 *
 * @module
 */
import type { Reporter } from "../report/reporter.ts";
import { AlteredObjectError, type Backend } from "../repo/backend.ts";
import { parseSnapshotKey, PREFIXES } from "../repo/layout.ts";
import { isInFuture } from "../snapshot/clock.ts";

/**
 * The snapshot names under `snapshots/` that hold a link, a folder or a special file (see `Backend.unlisted`): a
 * snapshot object swapped for one by hand, which is not taken for no snapshot.
 */
export async function alteredNames(backend: Backend): Promise<string[]> {
  const found = await backend.unlisted?.(PREFIXES.snapshots) ?? [];
  return found.map((name) => name.slice(PREFIXES.snapshots.length)).filter((key) => parseSnapshotKey(key) !== null);
}

/** The error for snapshot `name` of the repository at `location` swapped by hand; `list` says how to list others. */
export function alteredSnapshot(location: string, name: string, list: string): AlteredObjectError {
  return new AlteredObjectError(
    `${PREFIXES.snapshots}${name} in ${location} is a symbolic link, folder or special file where the snapshot's ` +
      `object belongs, made by hand: the repository was altered; nothing was read; put the object back from a copy ` +
      `of the repository, or pick another snapshot; ${list}`,
    "not an object",
  );
}

/**
 * Warn (`remote_latest_passed_over_altered`) of the `altered` names stamped in the second of `chosen` or later, up to
 * `now` (a "latest" passes over one stamped in the future anyway): by stamp, not push id (random), as any of them may
 * be the true latest that a "latest" passed over for `chosen`.
 */
export function warnPassedOverAltered(
  altered: string[],
  chosen: string,
  { location, now, reporter }: { location: string; now: Date; reporter: Reporter },
): void {
  const stamp = chosen.split("_")[0];
  const passed = altered.filter((name) => name.split("_")[0] >= stamp && !isInFuture(name.split("_")[0], now));
  if (passed.length > 0) {
    reporter.event("warning", "remote_latest_passed_over_altered", { location, names: passed, chosen });
  }
}
