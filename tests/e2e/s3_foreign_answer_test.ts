/**
 * An S3 endpoint that answers a GET with 200 and something else than an S3 server's object (a captive portal's HTML
 * page, a web server's file), through the tests' HTTP proxy in front of a real radosgw: the endpoint is questioned, the
 * repository is blamed only when the answer is plainly S3's.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli } from "../_helpers.ts";
import type { HttpFault } from "../_http_proxy.ts";
import { oneErrorLine } from "../_remote_cli.ts";
import { freshProxiedRepository, proxiedS3 } from "../_proxied_s3.ts";
import { s3Target } from "../_targets.ts";

/** `remote list` with every GET of the repository's config answered by the proxy with `fault`; its one error line. */
async function listWithConfigAnswered(
  f: Awaited<ReturnType<typeof proxiedS3>>,
  env: Record<string, string>,
  fault: HttpFault,
  what: string,
): Promise<string> {
  f.proxy.setRules([{ match: (r) => r.method === "GET" && r.path.endsWith("/config"), fault, times: 100 }]);
  const run = await runCli(["remote", "list"], { env });
  f.proxy.setRules([]);
  assert.equal(run.code, 1, `${what}: ${run.stderr}`);
  return oneErrorLine(run, what);
}

const target = await s3Target("S3 answers that are not an S3 server's, through the tests' HTTP proxy");
if (target !== null) {
  Deno.test("s3: a 200 answer that is no S3 server's asks whether the endpoint is one; a plainly S3 one blames the repository", async () => {
    await using _target = target;
    await using f = await proxiedS3(target, { dbMiB: 1 });
    const { env } = await freshProxiedRepository(f, "portal");
    const portal = { "Content-Type": "text/html; charset=utf-8", ETag: '"portal"' };
    const page = "<html><body>Sign in to the guest network</body></html>";
    const html = await listWithConfigAnswered(
      f,
      env,
      { kind: "page", status: 200, headers: portal, body: page },
      "html",
    );
    assert.match(html, /GET config in s3:\/\/\S+ at http:\/\/127\.0\.0\.1:\d+ was answered with an HTML page/);
    assert.match(html, /is the endpoint an S3 server\? check --s3-endpoint/);
    assert.doesNotMatch(html, /altered/);

    const bare = { "Content-Type": "application/octet-stream" }; // a file server: no ETag, no x-amz-*
    const file = await listWithConfigAnswered(f, env, { kind: "page", status: 200, headers: bare, body: "x" }, "bare");
    assert.match(file, /without the headers S3 sends with an object .*; is the endpoint an S3 server\?/);

    const s3 = { "Content-Type": "application/octet-stream", ETag: '"x"', "x-amz-request-id": "tx-fault-proxy" };
    const junk = await listWithConfigAnswered(f, env, { kind: "page", status: 200, headers: s3, body: "junk" }, "s3");
    assert.match(junk, /the config of s3:\/\/\S+ at \S+ is not JSON: not a repository of this tool, or its config was/);

    const listed = await runCli(["remote", "list"], { env });
    assert.equal(listed.code, 0, `radosgw's own answers pass: ${listed.stderr}`);
  });
}
