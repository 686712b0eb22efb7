/**
 * A few worker threads that open packs (SHA-256 of the object, ChaCha20-Poly1305, zstd, the hashes of the ranges
 * read), so a fetch or a verify uses every core while the main thread reads and writes. Buffers move to a worker and
 * back (never copied); when no worker can start, the same work runs inline.
 *
 * @module
 */
import { type AgeIdentity, identityText } from "../crypto/age.ts";
import { OperationError } from "../errors.ts";
import { collectGarbage } from "../sys/collect_garbage.ts";
import { type JobFailure, type OpenDone, type OpenJob, runJob, transferables } from "./crypto_jobs.ts";
import { GC_EVERY_PACKS } from "./pack_writer.ts";
import { runSealJob, type SealDone, type SealJob } from "./seal_jobs.ts";
import { newWorker } from "../sys/descriptor_room.ts";

export type { OpenDone };

/**
 * A pack that could not be opened, with the job's buffers (sealed, into, then plainInto if given) handed back: a verify
 * goes on with the next pack in the same buffers instead of making new ones for each damaged pack.
 */
export class PackOpenError extends OperationError {
  /** Make the failure of a job that returned `buffers`. */
  constructor(message: string, readonly buffers: readonly Uint8Array[]) {
    super(message);
  }
}

/** Workers a pool starts at most: one per core, up to 4. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(4, navigator.hardwareConcurrency ?? 1));
}

interface Slot {
  worker: Worker;
  busy: number;
  pending: Map<number, { resolve: (result: never) => void; reject: (error: Error) => void }>;
}

/** Opens packs on worker threads; dispose it to stop them. */
export class CryptoPool implements Disposable {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private inline = false;
  private readonly texts = new WeakMap<AgeIdentity, string>();

  /** A pool of at most `workers` threads (0: everything inline), started as jobs come. */
  constructor(private readonly workers = defaultWorkers()) {}

  /**
   * Open a sealed pack and hash `ranges` of its plaintext (see {@linkcode OpenJob}); `sealed` and `into` move to the
   * worker and come back in the result.
   *
   * @throws {PackOpenError} naming the pack, as {@linkcode openBytes} does, with the buffers.
   */
  async open(job: Omit<OpenJob, "identities">, identities: readonly AgeIdentity[]): Promise<OpenDone> {
    const texts = identities.map((identity) => {
      let text = this.texts.get(identity);
      if (text === undefined) this.texts.set(identity, text = identityText(identity));
      return text;
    });
    const full: OpenJob = { ...job, identities: texts };
    const slot = this.slot();
    if (!slot && ++this.nextId % GC_EVERY_PACKS === 0) collectGarbage();
    const result = slot ? await this.post(slot, full) : runJob(full);
    if ("error" in result) {
      throw result.operation ? new PackOpenError(result.error, result.buffers) : new Error(result.error);
    }
    return result;
  }

  /**
   * Seal a pack and hash ranges of its plaintext (see {@linkcode SealJob}); `plain` and `out` move to the worker and
   * come back in the result.
   */
  async seal(job: SealJob): Promise<SealDone> {
    const slot = this.slot();
    if (!slot && ++this.nextId % GC_EVERY_PACKS === 0) collectGarbage();
    const result = slot ? await this.postSeal(slot, job) : runSealJob(job);
    if ("error" in result) throw result.operation ? new OperationError(result.error) : new Error(result.error);
    return result;
  }

  /** Stop the workers; a job still running is rejected. */
  [Symbol.dispose](): void {
    for (const slot of this.slots.splice(0)) this.stop(slot, new Error("crypto pool closed"));
  }

  private post(slot: Slot, job: OpenJob): Promise<OpenDone | JobFailure> {
    const id = this.nextId++;
    slot.busy += 1;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      const buffers = [job.sealed, job.into, ...(job.plainInto ? [job.plainInto] : [])];
      slot.worker.postMessage({ ...job, id }, transferables(buffers));
    });
  }

  private postSeal(slot: Slot, job: SealJob): Promise<SealDone | JobFailure> {
    const id = this.nextId++;
    slot.busy += 1;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...job, id }, transferables([job.plain, job.out]));
    });
  }

  /** An idle worker, else a new one while fewer than asked run, else the least busy; `null` to run inline. */
  private slot(): Slot | null {
    const idle = this.slots.find((slot) => slot.busy === 0);
    if (idle) return idle;
    if (this.inline || this.slots.length >= this.workers) {
      return this.slots.reduce<Slot | null>((best, slot) => (!best || slot.busy < best.busy ? slot : best), null);
    }
    let worker: Worker;
    try {
      worker = newWorker(new URL("./_crypto_worker.ts", import.meta.url));
    } catch {
      this.inline = true; // no worker here: the same work inline
      return this.slot();
    }
    const slot: Slot = { worker, busy: 0, pending: new Map() };
    worker.onmessage = (event) => {
      const pending = slot.pending.get(event.data.id);
      slot.pending.delete(event.data.id);
      slot.busy -= 1;
      pending?.resolve(event.data.result as never);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      if (this.slots.includes(slot)) this.slots.splice(this.slots.indexOf(slot), 1);
      this.stop(slot, new Error(`crypto worker failed: ${event.message}`));
    };
    this.slots.push(slot);
    return slot;
  }

  private stop(slot: Slot, error: Error): void {
    slot.worker.terminate();
    for (const pending of slot.pending.values()) pending.reject(error);
    slot.pending.clear();
  }
}
