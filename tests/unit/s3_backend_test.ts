/**
 * The S3 backend against a real radosgw: the backend conformance suite (each test on a fresh prefix), then what only S3
 * has: multipart uploads, listings over several pages, keys the URL parser would rewrite, a missing bucket, refused
 * keys, a stopped and a frozen gateway (retries, timeouts) and the one-line errors they give.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ObjectExistsError, ObjectTooLargeError } from "../../src/repo/backend.ts";
import { S3Error } from "../../src/repo/s3/failure.ts";
import { s3Address } from "../../src/repo/s3/open.ts";
import { S3Backend, type S3BackendOptions } from "../../src/repo/s3/s3_backend.ts";
import { startRadosgw } from "../_servers/radosgw.ts";
import { backendConformance } from "./backend_conformance_test.ts";
import { toolFor } from "../_helpers.ts";

const server = await startRadosgw("the S3 backend's conformance and failure tests");

if (server !== null) {
  const bucket = "conformance";
  await server.createBucket(bucket);
  const settings = {
    endpoint: { value: server.endpoint, source: "flag" as const, from: "--s3-endpoint" },
    region: null,
    addressing: null,
  };
  const credentials = { accessKeyId: server.accessKey, secretAccessKey: server.secretKey, from: "test" };
  const backendAt = (spec: string, options: S3BackendOptions = {}, keys = credentials) =>
    new S3Backend(s3Address(spec, settings), keys, options);
  const fresh = () => `s3://${bucket}/t-${crypto.randomUUID().slice(0, 8)}/repo`;
  const fast: S3BackendOptions = { retry: { attempts: 3, baseMs: 50, maxMs: 200 } };

  backendConformance(
    "s3 radosgw",
    () => Promise.resolve({ backend: backendAt(fresh()), [Symbol.asyncDispose]: () => Promise.resolve() }),
  );

  Deno.test("s3: multipart above the threshold, exclusive included; parts must match", async () => {
    const backend = backendAt(fresh(), { multipartThreshold: 6 << 20, partBytes: 5 << 20 });
    const big = new Uint8Array(13 << 20).map((_, index) => (index * 31) >> 3);
    await backend.write("packs/ab/big", big, { exclusive: true });
    assert.deepEqual(await backend.stat("packs/ab/big"), { name: "packs/ab/big", size: big.length });
    assert.deepEqual(await backend.read("packs/ab/big"), big);
    await assert.rejects(backend.write("packs/ab/big", big, { exclusive: true }), ObjectExistsError);
    await backend.write("packs/ab/big", big.subarray(1), { exclusive: false });
    assert.equal((await backend.stat("packs/ab/big"))?.size, big.length - 1);
    const uploads = await fetchUploads(server.endpoint, bucket);
    assert.equal(uploads, 0, "no multipart upload left open");
  });

  Deno.test("s3: a listing of several pages is whole and sorted", async () => {
    const backend = backendAt(fresh());
    const names = Array.from({ length: 1105 }, (_, index) => `refs/${String(index).padStart(5, "0")}`);
    for (let start = 0; start < names.length; start += 50) {
      await Promise.all(
        names.slice(start, start + 50).map((name) => backend.write(name, new Uint8Array(1), { exclusive: true })),
      );
    }
    const listed = await backend.list("refs/");
    assert.equal(listed.length, 1105);
    assert.deepEqual(listed.map((info) => info.name), names);
  });

  Deno.test("s3: a read over its bound is refused unread; into a buffer that fits", async () => {
    const backend = backendAt(fresh());
    await backend.write("packs/cd/x", new Uint8Array(100_000).fill(7), { exclusive: true });
    await assert.rejects(backend.read("packs/cd/x", undefined, 99_999), ObjectTooLargeError);
    const into = new Uint8Array(200_000);
    const view = await backend.read("packs/cd/x", into, 100_000);
    assert.equal(view.buffer, into.buffer);
    assert.equal(view.length, 100_000);
  });

  Deno.test("s3: a wrong secret key, an unknown access key, a missing bucket: one clear line at once, no secret", async () => {
    const cases = [
      { keys: { ...credentials, secretAccessKey: "x".repeat(40) }, spec: fresh(), code: "SignatureDoesNotMatch" },
      { keys: { ...credentials, accessKeyId: "AKUNKNOWN0000000000" }, spec: fresh(), code: "InvalidAccessKeyId" },
      { keys: credentials, spec: "s3://no-such-bucket/repo", code: "NoSuchBucket" },
    ];
    for (const { keys, spec, code } of cases) {
      const backend = backendAt(spec, fast, keys);
      const attempts = [
        () => backend.list(""),
        () => backend.stat("config"),
        () => backend.read("config"),
        () => backend.write("config", new Uint8Array(3), { exclusive: true }),
        () => backend.remove("config"),
      ];
      for (const attempt of attempts) {
        await assert.rejects(attempt(), (error: Error) => {
          assert.ok(error instanceof S3Error, `${code}: ${error}`);
          assert.equal(error.code, code);
          assert.equal(error.exitCode, 2);
          assert.doesNotMatch(error.message, /\n/);
          assert.ok(!error.message.includes(keys.secretAccessKey) && !error.message.includes(server.secretKey));
          assert.match(
            error.message,
            code === "NoSuchBucket" ? /bucket does not exist/ : /check the credentials from test/,
          );
          return true;
        });
      }
    }
  });

  Deno.test("s3: a stopped gateway is tried again a bounded number of times, then named in one line", async () => {
    const backend = backendAt(fresh(), fast);
    await backend.write("config", new Uint8Array(1), { exclusive: true });
    await server.stopGateway();
    try {
      await assert.rejects(backend.read("config"), (error: Error) => {
        assert.ok(error instanceof S3Error && error.transient);
        assert.match(
          error.message,
          /^S3 GET config in s3:\/\/conformance\/t-\w+\/repo at http:\/\/127\.0\.0\.1:\d+ got no answer/,
        );
        assert.match(error.message, /\(after 3 attempts\); check that the server is reachable$/);
        return true;
      });
    } finally {
      await server.startGateway();
    }
    assert.equal((await backend.read("config")).length, 1, "the same backend works once the gateway is back");
  });

  Deno.test("s3: a frozen gateway times out instead of hanging", async () => {
    const timeouts = { answerMs: 400, stallMs: 400, uploadBytesPerSecond: 1 << 30 };
    const backend = backendAt(fresh(), { ...fast, timeouts, retry: { attempts: 2, baseMs: 10, maxMs: 10 } });
    await backend.write("config", new Uint8Array(1), { exclusive: true });
    server.freezeGateway(true);
    try {
      await assert.rejects(
        backend.stat("config"),
        /HEAD config .* got no answer \(waiting for the answer: no progress in 0\.4 s\) \(after 2 attempts\)/,
      );
      await assert.rejects(
        backend.write("refs/x", new Uint8Array(10), { exclusive: true }),
        /PUT refs\/x .* got no answer/,
      );
    } finally {
      server.freezeGateway(false);
    }
    assert.equal((await backend.stat("config"))?.size, 1);
  });
}

/** How many multipart uploads are open in `bucket` (ListMultipartUploads, signed as the server's user). */
async function fetchUploads(endpoint: string, bucket: string): Promise<number> {
  const { AwsClient } = await import("aws4fetch");
  const client = new AwsClient({ accessKeyId: server!.accessKey, secretAccessKey: server!.secretKey, service: "s3" });
  const text = await (await client.fetch(`${endpoint}/${bucket}/?uploads`)).text();
  return [...text.matchAll(/<Upload>/g)].length;
}

if (server !== null) Deno.test("s3: radosgw stopped", () => server.stop());

Deno.test("s3: an endpoint whose TLS certificate this host does not trust is named as such, with the next step", async (t) => {
  if (!toolFor("openssl", "an untrusted TLS certificate for the S3 client")) return;
  const dir = await Deno.makeTempDir({ prefix: "atocore-tls-" });
  const [key, cert] = [`${dir}/key.pem`, `${dir}/cert.pem`];
  const args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=x"];
  const made = await new Deno.Command("openssl", { args, stdout: "null", stderr: "null" }).output();
  assert.ok(made.success, "openssl made no certificate");
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    key: Deno.readTextFileSync(key),
    cert: Deno.readTextFileSync(cert),
  });
  let connections = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      connections += 1;
      conn.handshake().catch(() => {}).finally(() => conn.close());
    }
  })();
  try {
    const endpoint = `https://127.0.0.1:${listener.addr.port}`;
    const settings = {
      endpoint: { value: endpoint, source: "flag" as const, from: "--s3-endpoint" },
      region: null,
      addressing: null,
    };
    const backend = new S3Backend(s3Address("s3://bucket/repo", settings), {
      accessKeyId: "a",
      secretAccessKey: "s",
      from: "test",
    }, {
      retry: { attempts: 3, baseMs: 10, maxMs: 10 },
    });
    await t.step("refused at once, in one line naming the certificate", async () => {
      await assert.rejects(backend.read("config"), (error: Error) => {
        assert.match(error.message, /^S3 GET config in s3:\/\/bucket\/repo .* got no answer \(.*certificate.*\); /);
        assert.match(error.message, /does not accept the server's TLS certificate .*set DENO_CERT to that CA's PEM/);
        assert.doesNotMatch(error.message, /attempts/);
        assert.ok(error instanceof S3Error && error.unreachable, "a failure of the link, not of the object");
        return true;
      });
      assert.equal(connections, 1, "not tried again: another attempt meets the same certificate");
    });
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
