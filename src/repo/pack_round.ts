/**
 * The packs a verify gathers ranges for in one pass over the snapshot documents: a span of pack ids, cut short while
 * the ranges held pass a budget, so that a long history is read back in rounds instead of holding all its ranges at once.
 *
 * @module
 */
import type { PackRanges } from "./pack_ranges.ts";

/** Pack ids are placed by their first eight hex digits: a number below this. */
const SPAN = 2 ** 32;

/** One round: the packs whose ids' first eight hex digits, as a number, lie in `[low, high)`. */
export class PackRound {
  /** The round of every pack from `low` on, until the ranges it holds pass `budget` bytes. */
  constructor(private readonly budget: number, private readonly low = 0, private high = SPAN) {}

  /** Whether this round gathers the ranges of pack `id`. */
  includes(id: string): boolean {
    const at = placeOf(id);
    return at >= this.low && at < this.high;
  }

  /**
   * When `checks` hold more than the budget, end the round before the first pack (in id order) that passes it, and
   * drop the ranges let go; the packs of the lowest place held always stay, so that no round is empty.
   */
  fit(checks: Map<string, PackRanges>): void {
    const held = [...checks].map(([id, ranges]) => ({ id, place: placeOf(id), bytes: ranges.heldBytes }));
    if (held.reduce((sum, pack) => sum + pack.bytes, 0) <= this.budget) return;
    held.sort((a, b) => a.place - b.place);
    let bytes = 0;
    const cut = held.find((pack) => (bytes += pack.bytes) > this.budget && pack.place > held[0].place);
    if (!cut) return;
    this.high = cut.place;
    for (const { id, place } of held) if (place >= this.high) checks.delete(id);
  }

  /** The round after this one, or `null` when this one reaches the last pack. */
  next(): PackRound | null {
    return this.high >= SPAN ? null : new PackRound(this.budget, this.high);
  }
}

/** Where pack `id` falls in the span: its first eight hex digits as a number. */
function placeOf(id: string): number {
  return parseInt(id.slice(0, 8), 16);
}
