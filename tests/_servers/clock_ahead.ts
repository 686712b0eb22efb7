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
    if (args.length === 0) super(TrueDate.now() + AHEAD_MS);
    else super(...(args as [string]));
  }

  static override now(): number {
    return TrueDate.now() + AHEAD_MS;
  }
}

globalThis.Date = AheadDate as DateConstructor;
