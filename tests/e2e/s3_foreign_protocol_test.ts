/**
 * An S3 endpoint whose port answers in another protocol (an SSH banner; plain HTTP where https:// was given): asked
 * once, said at once as no S3 server, never retried as a server that did not answer.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli, tempStore } from "../_helpers.ts";
import { oneErrorLine } from "../_remote_cli.ts";

Deno.test("s3: an endpoint that answers in another protocol is said to be no S3 server, at once", async () => {
  using store = tempStore({ dbMiB: 1 });
  using banner = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const serving = (async () => {
    for await (const connection of banner) {
      connections++;
      // as sshd does: its banner first, then it waits for the client's (never closing first, which would reset)
      await connection.write(new TextEncoder().encode("SSH-2.0-OpenSSH_9.2\r\n"));
      (async () => {
        for await (const _ of connection.readable) { /* the client's request, not SSH */ }
      })().catch(() => {});
    }
  })().catch(() => {});
  await using web = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("a page"));
  const env = {
    ATOCORE_DATA_DIR: store.dataDir,
    ATOCORE_BACKUP_REMOTE: "s3://atocore/repo",
    AWS_ACCESS_KEY_ID: "atocore-test",
    AWS_SECRET_ACCESS_KEY: "not-a-secret-of-anyone",
  };
  const endpoints = [
    [`http://127.0.0.1:${(banner.addr as Deno.NetAddr).port}`, /invalid HTTP version/],
    [`https://127.0.0.1:${web.addr.port}`, /InvalidContentType|corrupt message/],
  ] as const;
  for (const [endpoint, said] of endpoints) {
    const run = await runCli(["remote", "list", "--s3-endpoint", endpoint], { env });
    assert.equal(run.code, 1, run.stderr);
    const line = oneErrorLine(run, endpoint);
    assert.ok(
      line.includes(`S3 GET config in s3://atocore/repo at ${endpoint} was answered, but not in HTTP or HTTPS (`),
    );
    assert.match(line, said);
    assert.match(line, /; is the endpoint an S3 server\? check --s3-endpoint: its port, and http:\/\/ for a server/);
    assert.doesNotMatch(run.stderr, /got no answer|attempts/);
  }
  assert.equal(connections, 1, "asked once, not retried");
  banner.close();
  await serving;
});
