/**
 * An HTTP/1.1-aware fault proxy of the tests' own between the tool and a real S3 server: it reads each request (head
 * and Content-Length body, keep-alive) and answers chosen ones itself (503 SlowDown, 429: the throttling radosgw
 * cannot be made to do) or stalls in the middle of their body, forwarding the rest to the server untouched.
 *
 * @module
 */

/**
 * A request as the proxy read it: the method, the path and the query of its target, its body's length, and the
 * payload hash it was signed with (`x-amz-content-sha256`, `null` when absent) and its Content-MD5 (`null` when absent).
 */
export interface SeenRequest {
  method: string;
  path: string;
  query: string;
  bodyBytes: number;
  contentSha256: string | null;
  contentMd5: string | null;
}

/** What the proxy does to a request a rule matches. */
export type HttpFault =
  /** Answer it with `status` and an S3 error document of `code` (the server never sees it); optionally Retry-After. */
  | { kind: "answer"; status: number; code: string; retryAfterSeconds?: number }
  /** Forward its head and `afterBytes` of its body (one byte short of it at most), then stop reading, keeping it open. */
  | { kind: "stall-body"; afterBytes: number }
  /** Forward it with the byte at `at` of its body (the last one at most) inverted: bytes changed in transit. */
  | { kind: "flip-body"; at: number }
  /** Read it whole and answer 200 OK itself (the server never sees it): a store that acknowledges and keeps nothing. */
  | { kind: "swallow" }
  /** Answer it with `status`, exactly these `headers` and `body` (the server never sees it): a captive portal, say. */
  | { kind: "page"; status: number; headers: Record<string, string>; body: string }
  /** Send it to the server on a connection of its own, wait for the answer, then cut the client: stored, unanswered. */
  | { kind: "store-then-cut" }
  /** As `store-then-cut`, but the client is held unanswered (counted as stalled) until cutOpen: stored, answer late. */
  | { kind: "store-then-stall" };

/** A fault for the next `times` requests that `match` accepts. */
export interface HttpRule {
  match: (request: SeenRequest) => boolean;
  fault: HttpFault;
  times: number;
}

/** What the proxy has done so far. */
export interface HttpProxyStats {
  /** Every request read, in order. */
  seen: SeenRequest[];
  /** Requests answered by the proxy itself (swallowed too), stalled, and whose body had a byte changed. */
  answered: number;
  stalled: number;
  flipped: number;
}

/** A running HTTP fault proxy. */
export interface HttpFaultProxy extends AsyncDisposable {
  readonly port: number;
  readonly stats: HttpProxyStats;
  /** Replace the rules (none: forward everything); the first rule that matches a request and has times left applies. */
  setRules(rules: HttpRule[]): void;
  /** Close every connection open now (the stalled ones included). */
  cutOpen(): void;
}

/** The kind of an S3 request of the tool's (path-style): a pack written or read, a listing, or anything else. */
export function s3Kind(request: SeenRequest): "pack-put" | "pack-get" | "list" | "other" {
  if (/(^|&)list-type=2(&|$)/.test(request.query)) return "list";
  if (!/\/packs\//.test(request.path)) return "other";
  if (request.method === "PUT") return "pack-put";
  return request.method === "GET" ? "pack-get" : "other";
}

/** Start a proxy on 127.0.0.1 (a free port) in front of the HTTP server at `target`. */
export function startHttpProxy(target: { hostname: string; port: number }): HttpFaultProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const stats: HttpProxyStats = { seen: [], answered: 0, stalled: 0, flipped: 0 };
  let rules: HttpRule[] = [];
  const take = (request: SeenRequest): HttpFault | null => {
    const rule = rules.find((candidate) => candidate.times > 0 && candidate.match(request));
    if (rule === undefined) return null;
    rule.times--;
    return rule.fault;
  };
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const client of listener) served.push(serve(client, target, { open, stats, take }));
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stats,
    setRules: (next) => rules = next.map((rule) => ({ ...rule })),
    cutOpen: () => closeAll(open),
    async [Symbol.asyncDispose]() {
      listener.close();
      closeAll(open);
      await accepting;
      await Promise.allSettled(served);
    },
  };
}

interface Shared {
  open: Set<Deno.Conn>;
  stats: HttpProxyStats;
  take: (request: SeenRequest) => HttpFault | null;
}

/** Serve one client connection: request after request, each forwarded, answered, or stalled. */
async function serve(client: Deno.Conn, target: { hostname: string; port: number }, shared: Shared): Promise<void> {
  shared.open.add(client);
  const input = new Reader(client);
  let upstream: Deno.Conn | null = null;
  let stalled = false;
  try {
    for (;;) {
      const head = await input.head();
      if (head === null) break;
      const request = parseHead(head);
      shared.stats.seen.push(request);
      const fault = shared.take(request);
      if (fault?.kind === "answer" || fault?.kind === "swallow" || fault?.kind === "page") {
        await input.skip(request.bodyBytes);
        shared.stats.answered++;
        const answer = fault.kind === "answer"
          ? errorAnswer(request, fault)
          : fault.kind === "page"
          ? pageAnswer(fault)
          : okAnswer();
        await writeAll(client, answer);
        continue;
      }
      if (fault?.kind === "store-then-cut" || fault?.kind === "store-then-stall") {
        await storeUnanswered(target, head, input, request.bodyBytes);
        if (fault.kind === "store-then-stall") {
          shared.stats.stalled++;
          stalled = true; // the client stays open, unanswered, until cutOpen or the end
          return;
        }
        shared.stats.answered++;
        break; // the client's connection is closed below, its answer never sent
      }
      upstream ??= await connectUpstream(target, client, shared.open);
      await writeAll(upstream, head);
      if (fault?.kind === "stall-body") {
        await input.forward(upstream, Math.min(fault.afterBytes, Math.max(0, request.bodyBytes - 1)));
        shared.stats.stalled++;
        stalled = true; // both sides stay open, unread, until cutOpen or the end
        return;
      }
      const flipAt = fault?.kind === "flip-body" ? Math.min(fault.at, request.bodyBytes - 1) : -1;
      if (flipAt >= 0) shared.stats.flipped++;
      await input.forward(upstream, request.bodyBytes, flipAt);
    }
  } catch {
    // either side closed: the connection ends
  } finally {
    if (!stalled) {
      for (const conn of [client, upstream]) if (conn !== null) closeQuietly(conn, shared.open);
    }
  }
}

/** Connect to the server and copy its answers to the client as they come; the client is closed when the server closes. */
async function connectUpstream(
  target: { hostname: string; port: number },
  client: Deno.Conn,
  open: Set<Deno.Conn>,
): Promise<Deno.Conn> {
  const upstream = await Deno.connect(target);
  open.add(upstream);
  (async () => {
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const read = await upstream.read(buffer).catch(() => null);
      if (read === null || !await writeAll(client, buffer.subarray(0, read)).then(() => true, () => false)) break;
    }
    closeQuietly(client, open);
    closeQuietly(upstream, open);
  })();
  return upstream;
}

/** Send one request (`head`, then its body from `input`) on a connection of its own and wait for the answer's head. */
async function storeUnanswered(
  target: { hostname: string; port: number },
  head: Uint8Array,
  input: Reader,
  bodyBytes: number,
): Promise<void> {
  const side = await Deno.connect(target);
  try {
    await writeAll(side, head);
    await input.forward(side, bodyBytes);
    await new Reader(side).head(); // an answer's head ends with a blank line as a request's does
  } finally {
    side.close();
  }
}

/** Reads a connection as HTTP requests: a head up to the blank line, then body bytes. */
class Reader {
  #pending = new Uint8Array(0);
  constructor(private readonly conn: Deno.Conn) {}

  /** The next request's head (through its blank line), or `null` at the end of the connection. */
  async head(): Promise<Uint8Array | null> {
    for (;;) {
      const end = indexOfBlankLine(this.#pending);
      if (end >= 0) {
        const head = this.#pending.slice(0, end + 4);
        this.#pending = this.#pending.slice(end + 4);
        return head;
      }
      if (this.#pending.length > 64 * 1024) throw new Error("request head too long");
      if (!await this.#fill()) return null;
    }
  }

  /** Copy `bytes` of body to `to`, the byte at `flipAt` of them inverted (none when negative). */
  async forward(to: Deno.Conn, bytes: number, flipAt = -1): Promise<void> {
    for (let left = bytes; left > 0;) {
      if (this.#pending.length === 0 && !await this.#fill()) throw new Error("the body ended early");
      const take = this.#pending.subarray(0, Math.min(left, this.#pending.length));
      const at = flipAt - (bytes - left);
      if (at >= 0 && at < take.length) take[at] ^= 0xff;
      await writeAll(to, take);
      left -= take.length;
      this.#pending = this.#pending.slice(take.length);
    }
  }

  /** Read `bytes` of body and drop them. */
  async skip(bytes: number): Promise<void> {
    for (let left = bytes; left > 0;) {
      if (this.#pending.length === 0 && !await this.#fill()) throw new Error("the body ended early");
      const take = Math.min(left, this.#pending.length);
      left -= take;
      this.#pending = this.#pending.slice(take);
    }
  }

  async #fill(): Promise<boolean> {
    const buffer = new Uint8Array(64 * 1024);
    const read = await this.conn.read(buffer);
    if (read === null) return false;
    const joined = new Uint8Array(this.#pending.length + read);
    joined.set(this.#pending);
    joined.set(buffer.subarray(0, read), this.#pending.length);
    this.#pending = joined;
    return true;
  }
}

function indexOfBlankLine(bytes: Uint8Array): number {
  for (let at = 0; at + 3 < bytes.length; at++) {
    if (bytes[at] === 13 && bytes[at + 1] === 10 && bytes[at + 2] === 13 && bytes[at + 3] === 10) return at;
  }
  return -1;
}

/** The request line and the body's length; a chunked body is refused (the tool sends whole bodies). */
function parseHead(head: Uint8Array): SeenRequest {
  const [line, ...fields] = new TextDecoder().decode(head).split("\r\n");
  const [method, target] = line.split(" ");
  const headers = new Map(
    fields.filter(Boolean).map((field) => {
      const colon = field.indexOf(":");
      return [field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim()];
    }),
  );
  if (headers.has("transfer-encoding")) throw new Error(`a ${headers.get("transfer-encoding")} body is not handled`);
  const question = target.indexOf("?");
  return {
    method,
    path: question < 0 ? target : target.slice(0, question),
    query: question < 0 ? "" : target.slice(question + 1),
    bodyBytes: Number(headers.get("content-length") ?? 0),
    contentSha256: headers.get("x-amz-content-sha256") ?? null,
    contentMd5: headers.get("content-md5") ?? null,
  };
}

/** The proxy's own answer: `status` with an S3 error document (none for HEAD), the connection kept alive. */
function errorAnswer(request: SeenRequest, fault: { status: number; code: string; retryAfterSeconds?: number }) {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code>` +
    `<Message>Please reduce your request rate.</Message><Resource>${request.path}</Resource>` +
    `<RequestId>fault-proxy</RequestId></Error>`;
  const body = request.method === "HEAD" ? "" : xml;
  const reason = fault.status === 503 ? "Slow Down" : fault.status === 429 ? "Too Many Requests" : "Error";
  const lines = [
    `HTTP/1.1 ${fault.status} ${reason}`,
    "Content-Type: application/xml",
    `Content-Length: ${new TextEncoder().encode(body).length}`,
    `Date: ${new Date().toUTCString()}`,
    ...(fault.retryAfterSeconds === undefined ? [] : [`Retry-After: ${fault.retryAfterSeconds}`]),
  ];
  return new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

/** The proxy's own answer of a `page` fault: its status, its headers and no others but the length, its body. */
function pageAnswer(fault: { status: number; headers: Record<string, string>; body: string }): Uint8Array {
  const body = new TextEncoder().encode(fault.body);
  const lines = [
    `HTTP/1.1 ${fault.status} ${fault.status === 200 ? "OK" : "Answer"}`,
    ...Object.entries(fault.headers).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${body.length}`,
  ];
  const head = new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
  const answer = new Uint8Array(head.length + body.length);
  answer.set(head);
  answer.set(body, head.length);
  return answer;
}

/** The proxy's own 200 OK to a PUT, as S3 answers one (an ETag, no body), the connection kept alive. */
function okAnswer(): Uint8Array {
  const lines = ["HTTP/1.1 200 OK", 'ETag: "fault-proxy"', "Content-Length: 0", `Date: ${new Date().toUTCString()}`];
  return new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`);
}

async function writeAll(to: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) written += await to.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn, open: Set<Deno.Conn>): void {
  open.delete(conn);
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function closeAll(open: Set<Deno.Conn>): void {
  for (const conn of [...open]) closeQuietly(conn, open);
}
