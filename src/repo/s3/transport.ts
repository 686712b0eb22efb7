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

/**
 * Bytes that must come within one stall timeout for the body to count as moving: a server that trickles a byte now
 * and then (never silent for the whole timeout) would otherwise hold a read for ever.
 */
const PROGRESS_BYTES = 64 * 1024;

/**
 * Read the body of `response` (of `length` bytes when known, else up to `limit`) into `into` when it fits, else into a
 * new buffer; every {@linkcode PROGRESS_BYTES} received re-arm the deadline. A body longer than announced or than
 * `limit` is cut off there: the caller's checks (sizes, hashes) refuse it.
 */
export async function readBody(
  response: Response,
  length: number | null,
  limit: number,
  timeouts: Timeouts,
  deadline: Deadline,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const expected = Math.min(length ?? limit, limit);
  // without a length (a server that streams without Content-Length) the lent buffer is started on all the same
  const fits = into !== undefined && (length === null || length <= into.length);
  let buffer = fits ? into! : new Uint8Array(length === null ? Math.min(65536, limit) : expected);
  let got = 0;
  let armedAt = 0;
  const reader = response.body?.getReader();
  if (reader === undefined) return buffer.subarray(0, 0);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (got + value.length - armedAt >= PROGRESS_BYTES) {
        deadline.arm(timeouts.stallMs, "reading the answer, 64 KiB at a time");
        armedAt = got + value.length;
      }
      const take = Math.min(value.length, expected - got);
      if (got + take > buffer.length) buffer = grown(buffer, got, got + take, expected);
      buffer.set(value.subarray(0, take), got);
      got += take;
      if (take < value.length) break;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return buffer.subarray(0, got);
}

/** A larger buffer holding the first `used` bytes: twice the size, never more than `most`, at least `needed`. */
function grown(buffer: Uint8Array, used: number, needed: number, most: number): Uint8Array {
  const next = new Uint8Array(Math.max(needed, Math.min(buffer.length * 2, most)));
  next.set(buffer.subarray(0, used));
  return next;
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
