/**
 * Preloaded (`deno run --preload`) into a CLI run whose host clock must be wrong: `Date` reads 20 minutes ahead, as
 * under libfaketime, while the program itself is unchanged. radosgw accepts 15 minutes of skew, so it answers
 * RequestTimeTooSkewed with its own (true) time.
 *
 * @module
 */
const AHEAD_MS = 20 * 60_000;
const TrueDate = Date;

/** `Date` with the clock moved ahead; dates built from a value are unchanged. */
class AheadDate extends TrueDate {
  constructor(...args: ConstructorParameters<DateConstructor> | []) {
    super(...((args.length === 0 ? [TrueDate.now() + AHEAD_MS] : args) as [number]));
  }

  static override now(): number {
    return TrueDate.now() + AHEAD_MS;
  }
}

globalThis.Date = AheadDate as DateConstructor;
