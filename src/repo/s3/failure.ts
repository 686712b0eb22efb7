/**
 * What an S3 failure means to an operator: each error code the server can answer (or a timeout, a reset) becomes one
 * line naming the request, the object and the next step, and is marked transient (worth another attempt) or not.
 *
 * @module
 */
import { ExitCode, ToolError } from "../../errors.ts";

/** What a failed request was doing, for its message. */
export interface RequestContext {
  /** `GET`, `PUT`, ... */
  method: string;
  /** The object's name within the repository (`""` for the repository itself). */
  name: string;
  /** The repository's location ({@linkcode Backend.location}). */
  location: string;
  /** Where the credentials came from (no value), for the hints of authentication failures. */
  credentialsFrom: string;
}

/** A request that failed: the HTTP status (0 when no answer came), the server's error code, and whether to retry. */
export class S3Error extends ToolError {
  /** Make an error; `transient` says whether another attempt may succeed. */
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly transient: boolean,
    exitCode: typeof ExitCode.Failed | typeof ExitCode.Usage = ExitCode.Failed,
    /** The wait the server asked for before another attempt (`Retry-After`), in milliseconds; 0 when none. */
    readonly retryAfterMs = 0,
  ) {
    super(message, exitCode);
  }

  /**
   * No answer (status 0), or a transient failure the retries did not heal: the server could not be reached (see
   * `isUnreachable`), unless it received the bytes changed each time (it was reached).
   */
  get unreachable(): boolean {
    return this.status === 0 || (this.transient && !CHANGED_IN_TRANSIT.has(this.code));
  }

  /** The same failure, its message saying it was the last of `attempts`. */
  afterAttempts(attempts: number): S3Error {
    const at = this.message.indexOf("; ");
    const message = at < 0
      ? `${this.message} (after ${attempts} attempts)`
      : `${this.message.slice(0, at)} (after ${attempts} attempts)${this.message.slice(at)}`;
    return new S3Error(message, this.status, this.code, this.transient, this.exitCode as 1 | 2, this.retryAfterMs);
  }
}

/** An S3 answer's `<Code>` and `<Message>` (empty when the body has none, as for HEAD). */
export function errorFields(body: string): { code: string; message: string } {
  const field = (tag: string) => unescapeXml(new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(body)?.[1] ?? "").trim();
  return { code: field("Code"), message: field("Message").slice(0, 200) };
}

/** The text of XML character data: the five predefined entities and numeric references. */
export function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|lt|gt|amp|quot|apos);/gi, (_, entity: string) => {
    const named: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
    if (entity[0] !== "#") return named[entity.toLowerCase()];
    const code = entity[1] === "x" || entity[1] === "X" ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10);
    return String.fromCodePoint(code);
  });
}

/** Codes of a body that reached the server other than it was sent (its signed SHA-256, or an MD5, differs). */
const CHANGED_IN_TRANSIT = new Set(["XAmzContentSHA256Mismatch", "BadDigest"]);

/** Codes that a later attempt can succeed after: throttling, timeouts, and a body changed in transit (sent again). */
const TRANSIENT_CODES = new Set([
  "SlowDown",
  "RequestTimeout",
  "InternalError",
  "ServiceUnavailable",
  "Throttling",
  ...CHANGED_IN_TRANSIT,
]);

/**
 * Whether a status and code are worth another attempt: 5xx (not 501, 505, 507), 408, 429, throttling, timeouts, a body
 * changed in transit.
 */
export function isTransientStatus(status: number, code: string): boolean {
  if (TRANSIENT_CODES.has(code)) return true;
  if (status === 501 || status === 505 || status === 507) return false;
  return status >= 500 || status === 408 || status === 429;
}

/**
 * The error of a request answered with `status` and `body`; the server's `Date` header (`serverDate`) shows the clock
 * difference when the server says the request time is skewed, and its `Retry-After` header (`retryAfter`) how long to
 * wait before a transient failure is tried again.
 */
export function s3Failure(
  context: RequestContext,
  status: number,
  body: string,
  { serverDate, retryAfter, redirect = null }: {
    serverDate: string | null;
    retryAfter: string | null;
    /** A redirect's `Location` header, whose host is named (redirects are not followed: a signed request is not). */
    redirect?: string | null;
  },
): S3Error {
  const { code, message } = errorFields(body);
  const what = `${context.method} ${context.name || "(the repository)"} in ${context.location}`;
  const explained = explain(code, status, context, serverDate);
  if (explained !== null) return new S3Error(`${explained[0]} (${what})`, status, code, false, explained[1]);
  const transient = isTransientStatus(status, code);
  const detail = [code, message].filter(Boolean).join(": ") || "no error code";
  const next = CHANGED_IN_TRANSIT.has(code)
    ? "the server received other bytes than were sent: check what lies between this host and it (a proxy that rewrites bodies)"
    : transient
    ? "it may pass on a later run"
    : status >= 300 && status < 400
    ? `the server redirects${redirectHost(redirect)}, so this endpoint or region is not the bucket's: check ` +
      "--s3-endpoint, --s3-region and --s3-addressing ('config')"
    : "check the server's log and the settings ('config')";
  const line = `S3 ${what} failed: HTTP ${status} (${detail}); ${next}`;
  return new S3Error(line, status, code, transient, ExitCode.Failed, retryAfterMs(retryAfter));
}

/** ` to HOST` for a redirect's `Location`, only its host (its query may carry a signature); `""` without one. */
function redirectHost(location: string | null): string {
  try {
    return location === null ? "" : ` to ${new URL(location).host}`;
  } catch {
    return "";
  }
}

/**
 * How the headers of a 200 answer to a GET show that no S3 server sent it, or `null` when they do not: an HTML page
 * without an S3 request id, or none of the headers S3 sends with every object (an ETag, `x-amz-*`). A captive portal or
 * a web server at the endpoint must not pass for an altered repository.
 */
export function notFromS3(headers: Headers): string | null {
  const requestId = headers.has("x-amz-request-id") || headers.has("x-amz-id-2");
  const type = headers.get("content-type") ?? "";
  if (/^\s*text\/html\b/i.test(type) && !requestId) {
    return `with an HTML page (${type.slice(0, 60)}) and no S3 request id`;
  }
  if (headers.has("etag") || [...headers.keys()].some((name) => name.startsWith("x-amz-"))) return null;
  return "without the headers S3 sends with an object (no ETag, no x-amz-request-id)";
}

/** A `Retry-After` value (seconds, or an HTTP date) as milliseconds from now; 0 when absent, past or unreadable. */
export function retryAfterMs(value: string | null): number {
  if (value === null) return 0;
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

type Explanation = [string, typeof ExitCode.Failed | typeof ExitCode.Usage];

/** The sentence for a failure the operator must fix (keys, bucket, clock, space), or `null`. */
function explain(code: string, status: number, context: RequestContext, serverDate: string | null): Explanation | null {
  const keys = `the credentials from ${context.credentialsFrom}`;
  switch (code) {
    case "SignatureDoesNotMatch":
      return [`the S3 server refused the signature (SignatureDoesNotMatch): the secret key is wrong; check ${keys}`, 2];
    case "InvalidAccessKeyId":
      return [`the S3 server does not know the access key (InvalidAccessKeyId); check ${keys}`, 2];
    case "NoSuchBucket":
      return ["the bucket does not exist (NoSuchBucket); create it, or correct the s3:// remote or the endpoint", 2];
    case "RequestTimeTooSkewed":
      return [
        `the S3 server refused the request time (RequestTimeTooSkewed): ${skew(serverDate)}; check the host's ` +
        "clock (NTP)",
        1,
      ];
    case "AccessDenied":
      return [`the S3 server denied access (AccessDenied); check the permissions granted to ${keys}`, 2];
    case "AuthorizationHeaderMalformed":
    case "PermanentRedirect":
      return [`the S3 server says the bucket is in another region (${code}); set --s3-region or AWS_REGION`, 2];
    case "QuotaExceeded":
    case "InsufficientCapacity":
    case "EntityTooLarge":
      return [`the S3 server has no room for the object (${code}, HTTP ${status}); free space or raise the quota`, 1];
  }
  if (status === 507) return [`the S3 server is out of space (HTTP 507); free space on it`, 1];
  return null;
}

function skew(serverDate: string | null): string {
  const server = serverDate === null ? NaN : Date.parse(serverDate);
  if (Number.isNaN(server)) return "this host's clock differs from the server's by more than it accepts";
  const minutes = Math.round((Date.now() - server) / 60_000);
  return `this host's clock is ${Math.abs(minutes)} minutes ${minutes >= 0 ? "ahead of" : "behind"} the server's`;
}

/**
 * The error for a request that got no answer: refused, reset, or timed out (`cause`), transient; or a TLS certificate
 * this host refused, which no other attempt changes. The cause's message is kept to its first line (it names the host,
 * never a credential: requests are signed in headers).
 */
export function noAnswer(context: RequestContext, cause: unknown): S3Error {
  const reason = firstLine(cause);
  const what = `${context.method} ${context.name || "(the repository)"} in ${context.location}`;
  const stalled = /no progress/.test(reason);
  const certificate = !stalled && /certificate/i.test(reason);
  // what answered speaks another protocol: TLS to a plain HTTP port, or a service that is not a web server
  const foreign = !stalled && FOREIGN_ANSWER.test(reason);
  if (foreign) {
    return new S3Error(
      `S3 ${what} was answered, but not in HTTP or HTTPS (${reason}); is the endpoint an S3 server? check ` +
        "--s3-endpoint: its port, and http:// for a server without TLS",
      0,
      "",
      false,
    );
  }
  const next = stalled
    ? "check that the server is reachable, or give a slow link more time (--stall-timeout)"
    : certificate
    ? "this host does not accept the server's TLS certificate (why is above: another name, self-signed, an unknown " +
      "CA): check the endpoint's host name; for a certificate of a private CA, set DENO_CERT to that CA's PEM file"
    : "check that the server is reachable";
  return new S3Error(`S3 ${what} got no answer (${reason}); ${next}`, 0, "", !certificate);
}

/**
 * The runtime's words for an answer in another protocol: hyper's HTTP parser reading no HTTP, rustls reading a record
 * that is no TLS (plain HTTP answering a TLS hello); not a TLS record corrupted on the way, which is tried again.
 */
const FOREIGN_ANSWER = /invalid HTTP version|invalid HTTP status|corrupt message of type InvalidContentType/i;

/** An error's first line, with its cause's when it has one ("fetch failed" says nothing of a refused certificate). */
function firstLine(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message.split("\n")[0]}` : "";
  // "; " would read as the end of the reason where the message adds its attempts
  return `${error.message.split("\n")[0]}${cause}`.replaceAll("; ", ", ").slice(0, 300);
}
