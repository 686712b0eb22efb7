/**
 * Requests against one S3 repository with bounded retries: each exchange is signed, sent under its timeouts, tried
 * again on what can heal (no answer, 5xx, throttling) and given up with one line naming the object, the last status
 * and the number of attempts; what cannot heal (keys, bucket, clock) fails at once.
 *
 * @module
 */
import { DEFAULT_RETRY, errorLine, type RetryListener, type RetryPolicy, withRetries } from "../retry.ts";
import { objectUrl, type S3Address, s3Location } from "./address.ts";
import type { S3Credentials } from "./credentials.ts";
import { noAnswer, type RequestContext, S3Error, s3Failure } from "./failure.ts";
import { type ListPage, listQuery, parseListPage } from "./listing.ts";
import { Deadline, DEFAULT_TIMEOUTS, type OutgoingRequest, readText, send, type Timeouts } from "./transport.ts";

/** Largest error document or listing page read. */
const TEXT_LIMIT = 8 << 20;

/** What {@linkcode S3Session.exchange} hands an answer to. */
export interface Answer {
  response: Response;
  deadline: Deadline;
  /** Which attempt this is (from 1). */
  attempt: number;
  context: RequestContext;
}

/** Tuning of a session; the defaults suit production, tests shorten them. */
export interface SessionOptions {
  timeouts?: Timeouts;
  retry?: RetryPolicy;
  /** Hears each request that is tried again. */
  onRetry?: RetryListener;
}

/** The signed, timed, retried requests of one repository. */
export class S3Session {
  /** The repository's location for messages ({@linkcode s3Location}). */
  readonly location: string;
  readonly timeouts: Timeouts;
  readonly retry: RetryPolicy;
  readonly #onRetry: RetryListener | undefined;

  /** A session for the repository at `address`, signing with `credentials`. */
  constructor(readonly address: S3Address, readonly credentials: S3Credentials, options: SessionOptions = {}) {
    this.location = s3Location(address);
    this.timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.#onRetry = options.onRetry;
  }

  /** The full key of the repository's object `name` (`""`: the repository's prefix). */
  key(name: string): string {
    return `${this.address.prefix}${name}`;
  }

  /** The URL of the object `name` with an encoded `query`, or of the bucket when `name` is `null`. */
  url(name: string | null, query = ""): string {
    return objectUrl(this.address, name === null ? "" : this.key(name), query);
  }

  /**
   * Send `request` (about the object `name`) until `accept` returns or throws an error that is not transient, at most
   * the policy's attempts; `accept` gets every answer, success or not, and calls {@linkcode fail} for those it does not
   * expect. The deadline is cleared after `accept`.
   */
  async exchange<T>(name: string, request: OutgoingRequest, accept: (answer: Answer) => Promise<T>): Promise<T> {
    const context = {
      method: request.method,
      name,
      location: this.location,
      credentialsFrom: this.credentials.from,
    };
    let attempts = 0;
    try {
      return await withRetries(
        async (attempt) => {
          attempts = attempt;
          const deadline = new Deadline();
          let response: Response | undefined;
          try {
            response = await send(this.credentials, this.address.region, request, this.timeouts, deadline);
            return await accept({ response, deadline, attempt, context });
          } catch (error) {
            if (error instanceof S3Error || !isNetworkFailure(error, deadline)) throw error;
            throw noAnswer(context, deadline.signal.aborted ? deadline.signal.reason : error);
          } finally {
            deadline.clear();
            if (response?.bodyUsed === false) await response.body?.cancel().catch(() => {});
          }
        },
        (error) => error instanceof S3Error && error.transient,
        this.retry,
        (error, attempt, waitMs) => this.#retrying(name, error, attempt, waitMs),
        (error) => error instanceof S3Error ? error.retryAfterMs : 0,
      );
    } catch (error) {
      if (error instanceof S3Error && error.transient && attempts > 1) throw error.afterAttempts(attempts);
      throw error;
    }
  }

  #retrying(name: string, error: unknown, attempt: number, waitMs: number): void {
    const notice = { location: this.location, object: name || "(the repository)", attempt, waitMs };
    this.#onRetry?.({ ...notice, attempts: this.retry.attempts, error: errorLine(error) });
  }

  /** The error of an answer `accept` did not expect: the server's error document read and explained. */
  async fail(answer: Answer): Promise<never> {
    const { response, deadline, context } = answer;
    const body = context.method === "HEAD" ? "" : await readText(response, TEXT_LIMIT, this.timeouts, deadline);
    const headers = {
      serverDate: response.headers.get("date"),
      retryAfter: response.headers.get("retry-after"),
      redirect: response.headers.get("location"),
    };
    throw s3Failure(context, response.status, body, headers);
  }

  /** One page of the keys under the full key prefix `keyPrefix`, continuing from `token`. */
  listPage(keyPrefix: string, token: string | null, maxKeys = 1000): Promise<ListPage> {
    const request: OutgoingRequest = { method: "GET", url: this.url(null, listQuery(keyPrefix, token, maxKeys)) };
    return this.exchange("", request, async (answer) => {
      if (answer.response.status !== 200) return await this.fail(answer);
      const xml = await readText(answer.response, TEXT_LIMIT, this.timeouts, answer.deadline);
      try {
        return parseListPage(xml);
      } catch (error) {
        throw new S3Error(
          `S3 listing of ${this.location} failed: ${(error as Error).message}; is the endpoint an S3 server?`,
          200,
          "",
          false,
        );
      }
    });
  }
}

/** Whether `error` is the request failing for want of an answer: a timeout of ours, a refused or reset connection. */
function isNetworkFailure(error: unknown, deadline: Deadline): boolean {
  if (deadline.signal.aborted) return true;
  return error instanceof TypeError || (error instanceof Error && /^(Connection|Http|Io|Interrupted)/.test(error.name));
}
