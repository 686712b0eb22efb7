/**
 * A stop (SIGINT, SIGTERM) while a push publishes its snapshot, on a real radosgw through the tests' HTTP proxy: the
 * server may keep the snapshot object whose upload the stop cut, so the final line says what a look after it found.
 *
 * @module
 */
import assert from "node:assert/strict";
import { cliProcess, cliRunOf, runCli } from "../_helpers.ts";
import type { HttpFault, HttpRule } from "../_http_proxy.ts";
import { freshProxiedRepository, type ProxiedS3, proxiedS3 } from "../_proxied_s3.ts";
import { assertVerified, oneErrorLine, remoteNames } from "../_remote_cli.ts";
import { s3Target } from "../_targets.ts";

const isSnapshotPut = (request: { method: string; path: string }) =>
  request.method === "PUT" && request.path.includes("/snapshots/");

/** Push with the snapshot object's PUT held by `fault` (and `more` rules), `signal` sent once it is held. */
async function stoppedPublishing(
  f: ProxiedS3,
  env: Record<string, string>,
  signal: "SIGINT" | "SIGTERM",
  fault: HttpFault,
  more: HttpRule[] = [],
) {
  const stalledBefore = f.proxy.stats.stalled;
  f.proxy.setRules([{ match: isSnapshotPut, fault, times: 1 }, ...more]);
  const child = cliProcess(["push", f.stamp], { env }).spawn();
  const output = child.output();
  for (let waited = 0; f.proxy.stats.stalled === stalledBefore && waited < 60_000; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(f.proxy.stats.stalled > stalledBefore, "the snapshot object's PUT was never held");
  child.kill(signal);
  const run = cliRunOf(await output);
  f.proxy.setRules([]);
  f.proxy.cutOpen();
  assert.equal(run.code, signal === "SIGINT" ? 130 : 143, run.stderr);
  return oneErrorLine(run, `push stopped by ${signal}`);
}

/** The next push of the stamp: `already` when it must find the snapshot listed. */
async function pushAgain(f: ProxiedS3, env: Record<string, string>, already: boolean): Promise<void> {
  const next = await runCli(["push", f.stamp], { env });
  assert.equal(next.code, 0, next.stderr);
  assert.equal((next.json as { pushed: { already_pushed: boolean }[] }).pushed[0].already_pushed, already);
  assert.equal((await remoteNames(env)).length, 1);
}

const target = await s3Target("a stop while a push publishes its snapshot, through the tests' HTTP proxy");
if (target !== null) {
  Deno.test("a push stopped while it publishes says whether its snapshot is listed, as a look finds it", async (t) => {
    await using _target = target;
    await using f = await proxiedS3(target, { dbMiB: 4, chromaMiB: 1, seed: 71 });
    await t.step("stored whole before the stop cut its answer: listed, and the next push finds it", async () => {
      const { env, withKey } = await freshProxiedRepository(f, "stored");
      const line = await stoppedPublishing(f, env, "SIGTERM", { kind: "store-then-stall" });
      assert.match(
        line,
        /interrupted by SIGTERM: \S+ is listed \(its snapshot object was stored whole before the stop\)/,
      );
      assert.match(line, /and its lease is removed; nothing to push again$/);
      assert.equal((await remoteNames(env)).length, 1, line);
      await assertVerified(withKey, ["--read-data"], line);
      await pushAgain(f, env, true);
    });
    await t.step("cut in the middle of its body: not listed, and the next push lists it", async () => {
      const { env, withKey } = await freshProxiedRepository(f, "cut");
      const line = await stoppedPublishing(f, env, "SIGINT", { kind: "stall-body", afterBytes: 64 });
      assert.match(line, /interrupted by SIGINT: \S+ is not listed and its lease is removed; .* push again/);
      assert.deepEqual(await remoteNames(env), [], line);
      await pushAgain(f, env, false);
      await assertVerified(withKey, ["--read-data"], line);
    });
    await t.step("stored, and the look after the stop unanswered: it may be listed, 'remote list' tells", async () => {
      const { env } = await freshProxiedRepository(f, "unknown");
      const heads: HttpRule = {
        match: (request) => request.method === "HEAD",
        fault: { kind: "answer", status: 500, code: "InternalError" },
        times: 1000,
      };
      const line = await stoppedPublishing(f, env, "SIGTERM", { kind: "store-then-stall" }, [heads]);
      assert.match(
        line,
        /\S+ may be listed \(.*'remote list' tells\).*: push again, it says already pushed when listed/,
      );
      await pushAgain(f, env, true);
    });
  });
}
