/**
 * The tests' HTTP fault proxy does what the S3 throttling tests rely on: forwards requests and bodies intact over
 * kept-alive connections, answers the next K matching requests itself (503 SlowDown, 429) then forwards again, and
 * stalls a request in the middle of its body.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { s3Kind, startHttpProxy } from "../_http_proxy.ts";

const BODY = new Uint8Array(3 << 20).map((_, index) => index * 31);

/** A server that answers each request with the SHA-256 of its body and the method, counting what it got. */
async function withServer(
  body: (url: string, proxy: ReturnType<typeof startHttpProxy>, got: string[]) => Promise<void>,
) {
  const got: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    let bytes;
    try {
      bytes = new Uint8Array(await request.arrayBuffer());
    } catch {
      return new Response("the body broke off", { status: 400 }); // a stalled request, its connection cut
    }
    got.push(`${request.method} ${new URL(request.url).pathname}`);
    return new Response(`${request.method} ${createHash("sha256").update(bytes).digest("hex")}`);
  });
  await using proxy = startHttpProxy({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await body(`http://127.0.0.1:${proxy.port}`, proxy, got);
  } finally {
    await server.shutdown();
  }
}

Deno.test("http fault proxy: forwards requests and whole bodies over one kept-alive connection", async () => {
  await withServer(async (url, proxy, got) => {
    using client = Deno.createHttpClient({});
    const digest = createHash("sha256").update(BODY).digest("hex");
    for (let round = 0; round < 3; round++) {
      const answer = await fetch(`${url}/bucket/packs/ab/${round}`, { method: "PUT", body: BODY, client });
      assert.equal(await answer.text(), `PUT ${digest}`);
    }
    assert.equal(got.length, 3);
    assert.deepEqual(proxy.stats.seen.map(s3Kind), ["pack-put", "pack-put", "pack-put"]);
    assert.equal(proxy.stats.seen[0].bodyBytes, BODY.length);
  });
});

Deno.test("http fault proxy: answers the next K matching requests itself with an S3 error, then forwards", async () => {
  await withServer(async (url, proxy, got) => {
    using client = Deno.createHttpClient({});
    proxy.setRules([
      {
        match: (request) => s3Kind(request) === "list",
        fault: { kind: "answer", status: 429, code: "Throttling" },
        times: 1,
      },
      {
        match: (request) => s3Kind(request) === "pack-put",
        fault: { kind: "answer", status: 503, code: "SlowDown", retryAfterSeconds: 1 },
        times: 2,
      },
    ]);
    const statuses: number[] = [];
    for (let round = 0; round < 3; round++) {
      const answer = await fetch(`${url}/bucket/packs/cd/${round}`, { method: "PUT", body: BODY, client });
      const text = await answer.text();
      statuses.push(answer.status);
      if (answer.status === 503) {
        assert.match(text, /<Code>SlowDown<\/Code>/);
        assert.equal(answer.headers.get("retry-after"), "1");
      }
    }
    const listed = await fetch(`${url}/bucket?list-type=2&prefix=x`, { client });
    assert.match(await listed.text(), /<Code>Throttling<\/Code>/);
    assert.equal(listed.status, 429);
    assert.deepEqual(statuses, [503, 503, 200]);
    assert.deepEqual(got, ["PUT /bucket/packs/cd/2"], "the server saw only the forwarded request");
    assert.equal(proxy.stats.answered, 3);
  });
});

Deno.test("http fault proxy: a request stalled in the middle of its body gets no answer", async () => {
  await withServer(async (url, proxy, got) => {
    using client = Deno.createHttpClient({});
    proxy.setRules([{ match: () => true, fault: { kind: "stall-body", afterBytes: 100_000 }, times: 1 }]);
    const signal = AbortSignal.timeout(500);
    await assert.rejects(fetch(`${url}/bucket/packs/ef/0`, { method: "PUT", body: BODY, client, signal }));
    assert.equal(proxy.stats.stalled, 1);
    assert.deepEqual(got, [], "the server never got the whole request");
    proxy.cutOpen();
    using fresh = Deno.createHttpClient({});
    const answer = await fetch(`${url}/bucket/packs/ef/0`, { method: "PUT", body: BODY, client: fresh });
    assert.equal(answer.status, 200, "the next request passes");
    await answer.body?.cancel();
  });
});
