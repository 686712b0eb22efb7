/**
 * The tests' TCP fault proxy does what the network-fault tests rely on: passes bytes intact, cuts a transfer at a
 * byte count, stalls one (or every open one), and applies a fault only to as many connections as told.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startProxy } from "../_proxy.ts";

const BODY = new Uint8Array(1 << 20).map((_, index) => index * 31);

/** Fetch the whole body over a connection of its own (no pooled connection is reused). */
async function fetchBody(url: string, signal?: AbortSignal): Promise<Uint8Array> {
  using client = Deno.createHttpClient({});
  return new Uint8Array(await (await fetch(url, { client, signal })).arrayBuffer());
}

async function withServer(body: (proxyUrl: string, proxy: ReturnType<typeof startProxy>) => Promise<void>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response(BODY));
  await using proxy = startProxy({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await body(`http://127.0.0.1:${proxy.port}/`, proxy);
  } finally {
    await server.shutdown();
  }
}

Deno.test("fault proxy: passes a transfer intact; cuts one at a byte count for the next connection only", async () => {
  await withServer(async (url, proxy) => {
    assert.deepEqual(await fetchBody(url), BODY);
    proxy.setFault({ kind: "cut", afterBytes: 100_000 }, 1);
    await assert.rejects(fetchBody(url));
    assert.deepEqual(await fetchBody(url), BODY, "the next connection passes");
    assert.equal(proxy.stats.faulted, 1);
  });
});

Deno.test("fault proxy: a stalled transfer stays open until the reader gives up", async () => {
  await withServer(async (url, proxy) => {
    proxy.setFault({ kind: "stall", afterBytes: 50_000 });
    const signal = AbortSignal.timeout(300);
    await assert.rejects(fetchBody(url, signal), /abort|timed? ?out/i);
    assert.equal(proxy.stats.faulted, 1);
  });
});

Deno.test("fault proxy: counts the bytes relayed, and cutOpen breaks a connection in the middle of a transfer", async () => {
  await withServer(async (url, proxy) => {
    assert.deepEqual(await fetchBody(url), BODY);
    assert.ok(proxy.stats.bytes > BODY.length, `${proxy.stats.bytes} bytes counted`);
    proxy.setFault({ kind: "throttle", bytesPerSecond: 256 * 1024 });
    const slow = fetchBody(url);
    await new Promise((resolve) => setTimeout(resolve, 300));
    proxy.cutOpen();
    await assert.rejects(slow);
  });
});

Deno.test("fault proxy: stallOpen stops a transfer in the middle, its connection left open", async () => {
  await withServer(async (url, proxy) => {
    proxy.setFault({ kind: "throttle", bytesPerSecond: 256 * 1024 });
    const signal = AbortSignal.timeout(1500);
    const slow = fetchBody(url, signal);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const relayed = proxy.stats.bytes;
    proxy.stallOpen();
    await assert.rejects(slow, /abort|timed? ?out/i, "the reader gives up: nothing more came, and no end");
    assert.ok(proxy.stats.bytes - relayed <= 16 * 1024, `${proxy.stats.bytes - relayed} bytes relayed after the stall`);
    proxy.cutOpen();
  });
});
