/**
 * One signed S3 request (Signature V4 by `aws4fetch`, payload signed, whole body with Content-Length)
 * under timeouts: an answer must start within a limit that grows with the body sent, and a download that stalls is
 * aborted; the body is read into a caller's buffer when it fits.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { AwsV4Signer } from "aws4fetch";
import type { S3Credentials } from "./credentials.ts";
import { interruptSignal } from "../../sys/interrupt.ts";
import { PROGRESS_BYTES } from "../progress.ts";

/** How long to wait before a request is given up as stalled. */
export interface Timeouts {
  /** From sending a request (connecting included) to its answer's headers, plus the upload's allowance. */
  answerMs: number;
  /** Most time a body may take to bring 64 KiB (or the rest of a smaller one). */
  stallMs: number;
  /** The slowest upload accepted: a body of N bytes gets N / this seconds more to be sent. */
  uploadBytesPerSecond: number;
}

/** Defaults: 30 s to an answer, 30 s for each 64 KiB of a body, uploads no slower than 256 KiB/s. */
export const DEFAULT_TIMEOUTS: Timeouts = { answerMs: 30_000, stallMs: 30_000, uploadBytesPerSecond: 256 * 1024 };

/**
 * A request's timer: aborts its signal with a timeout error unless re-armed or cleared in time, or at once when the
 * command is asked to stop (a slow body that keeps its timer armed does not hold a stop up).
 */
export class Deadline {
  readonly #controller = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #stop = interruptSignal();
  readonly #stopped = () => this.#controller.abort(this.#stop?.reason);

  /** A deadline not armed yet. */
  constructor() {
    if (this.#stop?.aborted) this.#stopped();
    else this.#stop?.addEventListener("abort", this.#stopped, { once: true });
  }

  /** The signal the request and its body read listen to. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Abort in `ms` (replacing any earlier timer), saying what was awaited. */
  arm(ms: number, what: string): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => this.#controller.abort(new TimeoutError(`${what}: no progress in ${ms / 1000} s`)),
      ms,
    );
  }

  /** Stop the timer. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#stop?.removeEventListener("abort", this.#stopped);
  }
}

/** A request gave up waiting (transient). */
export class TimeoutError extends Error {
  /** Make the error. */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/** What to send. */
export interface OutgoingRequest {
  method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** The body's SHA-256 as hex when known (see `WriteOptions.sha256`); hashed here otherwise. */
  sha256?: string;
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * Sign and send `request`; resolves with the answer once its headers are in, the deadline re-armed for the body (the
 * caller reads it and then clears the deadline). The payload is signed (its SHA-256 in `x-amz-content-sha256`, which
 * the server checks the bytes against) and a body is sent whole: never aws-chunked.
 */
export async function send(
  credentials: S3Credentials,
  region: string,
  request: OutgoingRequest,
  timeouts: Timeouts,
  deadline: Deadline,
): Promise<Response> {
  const body = request.body as Uint8Array<ArrayBuffer> | undefined; // fetch's types take no SharedArrayBuffer view
  const headers: Record<string, string> = { ...request.headers };
  headers["x-amz-content-sha256"] = body
    ? request.sha256 ?? createHash("sha256").update(body).digest("hex")
    : EMPTY_SHA256;
  const signer = new AwsV4Signer({
    method: request.method,
    url: request.url,
    headers,
    body,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    service: "s3",
    region,
  });
  const signed = await signer.sign();
  const allowance = body ? Math.ceil((body.length / timeouts.uploadBytesPerSecond) * 1000) : 0;
  deadline.arm(timeouts.answerMs + allowance, "waiting for the answer");
  const response = await fetch(signed.url, {
    method: signed.method,
    headers: signed.headers,
    body: body ?? null,
    signal: deadline.signal,
    redirect: "manual",
  });
  deadline.arm(timeouts.stallMs, "reading the answer");
  return response;
}

/** What {@linkcode readBody} reads into and what it does with a body past its `limit`. */
export interface BodyOptions {
  /** A buffer lent by the caller, used when the body fits (or its length is not known). */
  into?: Uint8Array;
  /** The error thrown as soon as the bytes received go past `limit`; without it the body is cut off there. */
  tooLong?: () => Error;
}

/**
 * Read the body of `response` (of `length` bytes when known, else up to `limit`) into `options.into` when it fits,
 * else into a new buffer; every {@linkcode PROGRESS_BYTES} received re-arm the deadline. A body longer than announced is
 * cut off there, and so is one longer than `limit` unless `options.tooLong` refuses it: the caller's checks (sizes,
 * hashes) refuse what was cut. Without a length the bytes are copied into blocks and joined once at the end, so a body
 * that never ends costs `limit` bytes, not a buffer doubled past it.
 */
export async function readBody(
  response: Response,
  length: number | null,
  limit: number,
  timeouts: Timeouts,
  deadline: Deadline,
  options: BodyOptions = {},
): Promise<Uint8Array> {
  const expected = Math.min(length ?? limit, limit);
  const { into, tooLong } = options;
  // without a length (a server that streams without Content-Length) the lent buffer is started on all the same
  const fits = into !== undefined && (length === null || length <= into.length);
  const received = new Received(fits ? into : new Uint8Array(length === null ? 0 : expected), expected);
  let armedAt = 0;
  const reader = response.body?.getReader();
  if (reader === undefined) return received.bytes();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const got = received.got;
      if (got + value.length - armedAt >= PROGRESS_BYTES) {
        deadline.arm(timeouts.stallMs, "reading the answer, 64 KiB at a time");
        armedAt = got + value.length;
      }
      if (tooLong !== undefined && got + value.length > limit) throw tooLong();
      received.add(value.subarray(0, expected - got));
      if (got + value.length > expected) break;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return received.bytes();
}

/** The smallest and the largest block {@linkcode Received} copies a body of unknown length into. */
const BLOCK_BYTES = { least: 64 * 1024, most: 4 << 20 };

/**
 * A body's bytes as they come: in a first buffer while they fit, then copied into blocks (each as large as what came
 * before, within {@linkcode BLOCK_BYTES}, and none past `most` bytes in all), joined once at the end. The stream's
 * chunks are not kept: each is a view of a 64 KiB buffer, however few bytes a trickling server put in it.
 */
class Received {
  got = 0;
  readonly #blocks: Uint8Array[] = [];
  #free = 0;

  /** Bytes go into `first` while they fit; `most` is the most that will be added. */
  constructor(readonly first: Uint8Array, readonly most: number) {}

  /** Copy `chunk` in. */
  add(chunk: Uint8Array): void {
    let from = Math.max(0, Math.min(chunk.length, this.first.length - this.got));
    if (from > 0) this.first.set(chunk.subarray(0, from), this.got);
    this.got += from;
    while (from < chunk.length) {
      if (this.#free === 0) {
        const size = Math.min(this.most - this.got, Math.max(BLOCK_BYTES.least, Math.min(this.got, BLOCK_BYTES.most)));
        this.#blocks.push(new Uint8Array(size));
        this.#free = size;
      }
      const block = this.#blocks.at(-1)!;
      const count = Math.min(this.#free, chunk.length - from);
      block.set(chunk.subarray(from, from + count), block.length - this.#free);
      [from, this.got, this.#free] = [from + count, this.got + count, this.#free - count];
    }
  }

  /** All the bytes received, in `first` when they fit there. */
  bytes(): Uint8Array {
    if (this.#blocks.length === 0) return this.first.subarray(0, this.got);
    const joined = new Uint8Array(this.got);
    let at = Math.min(this.first.length, this.got);
    joined.set(this.first.subarray(0, at));
    for (const block of this.#blocks) {
      const used = block.subarray(0, Math.min(block.length, this.got - at));
      joined.set(used, at);
      at += used.length;
    }
    return joined;
  }
}

/** The body as text (error documents and listings), at most `limit` bytes of it. */
export async function readText(
  response: Response,
  limit: number,
  timeouts: Timeouts,
  deadline: Deadline,
): Promise<string> {
  const length = Number(response.headers.get("content-length"));
  const bytes = await readBody(
    response,
    Number.isFinite(length) && length > 0 ? length : null,
    limit,
    timeouts,
    deadline,
  );
  return new TextDecoder().decode(bytes);
}
