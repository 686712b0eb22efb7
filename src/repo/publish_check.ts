/**
 * What a push stopped while it published its snapshot left listed: the stop can cut the snapshot object's upload after
 * the storage kept it, so one look (in the tidying after the stop) tells, instead of a guess.
 *
 * @module
 */
import type { Backend, ObjectInfo } from "./backend.ts";
import { InterruptedError, tidyAfterStop } from "../sys/interrupt.ts";

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
