/**
 * The packs a verify gathers ranges for in one pass over the snapshot documents: a span of pack ids, halved while the
 * ranges held pass a budget, so that a long history is read back in rounds instead of holding all its ranges at once.
 *
 * @module
 */
import type { PackRanges } from "./pack_ranges.ts";

/** Pack ids are placed by their first eight hex digits: a number below this. */
const SPAN = 2 ** 32;

/** One round: the packs whose ids' first eight hex digits, as a number, lie in `[low, high)`. */
export class PackRound {
  /** The round of every pack from `low` on, until the ranges it holds pass `budget` bytes. */
  constructor(private readonly budget: number, readonly low = 0, private high = SPAN) {}

  /** Whether this round gathers the ranges of pack `id`. */
  includes(id: string): boolean {
    const at = placeOf(id);
    return at >= this.low && at < this.high;
  }

  /** Narrow the round to its first half while `checks` hold more than the budget, dropping the ranges let go. */
  fit(checks: Map<string, PackRanges>): void {
    while (this.high - this.low > 1 && heldBytes(checks) > this.budget) {
      this.high = this.low + Math.ceil((this.high - this.low) / 2);
      for (const id of checks.keys()) if (placeOf(id) >= this.high) checks.delete(id);
    }
  }

  /** The round after this one, or `null` when this one reaches the last pack. */
  next(): PackRound | null {
    return this.high >= SPAN ? null : new PackRound(this.budget, this.high);
  }
}

function placeOf(id: string): number {
  return parseInt(id.slice(0, 8), 16);
}

function heldBytes(checks: Map<string, PackRanges>): number {
  let bytes = 0;
  for (const ranges of checks.values()) bytes += ranges.heldBytes;
  return bytes;
}
