/**
 * A few reusable pack buffers shared by a fetch's lanes: a lane takes one (waiting while all are out) and gives it back,
 * so memory is a fixed number of buffers however many lanes read.
 *
 * @module
 */

/** Buffers to take and give back; one given back detached (moved to a worker that failed) is replaced by a new one. */
export class BufferPool {
  private readonly free: Uint8Array[] = [];
  private readonly waiting: ((buffer: Uint8Array) => void)[] = [];

  /**
   * A pool of `count` buffers of `bytes` each, made at once: made as first taken, in the middle of a fetch, they raised
   * its peak by about 15 MiB.
   */
  constructor(count: number, private readonly bytes: number) {
    for (let made = 0; made < count; made++) this.free.push(new Uint8Array(bytes));
  }

  /** A buffer, once one is free. */
  take(): Promise<Uint8Array> {
    const buffer = this.free.pop();
    return buffer ? Promise.resolve(buffer) : new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Give a buffer back, to the lane waiting longest if any. */
  give(buffer: Uint8Array): void {
    const usable = buffer.byteLength > 0 ? buffer : new Uint8Array(this.bytes);
    const next = this.waiting.shift();
    if (next) next(usable);
    else this.free.push(usable);
  }
}
