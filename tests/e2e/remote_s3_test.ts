/**
 * The off-host repository on S3 through the CLI, against a real radosgw: the full round trip (init, first and
 * incremental push, list, verify at both depths, restore live and --to, drill with JUnit, cleanup); the refusals the
 * server gives (wrong secret key, unknown access key, missing bucket, a host clock 20 minutes ahead, a bucket out of
 * room), each one line naming the cause and never a key; the gateway stopped in the middle of a push (the next push
 * succeeds and reuses what was sent); `config` showing where each S3 setting came from and no key.
 *
 * The clock: a CLI run is given a `Date` 20 minutes ahead by `deno run --preload tests/_servers/clock_ahead.ts` (what
 * libfaketime does to a C program; it is not installed here), the program itself unchanged; radosgw checks the
 * signature's time against its own clock and refuses. The full bucket is radosgw's bucket quota: a cluster whose OSD
 * fills does not refuse a write, it blocks it (measured: a 1 GiB bluestore file stops taking writes at about 720 MiB),
 * which the client sees as a timeout; lowered full ratios keep radosgw from starting at all.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import { cliEnv, cliProcess, type CliRun, cliRunOf, COMPILE_PERMISSIONS, ROOT, runCli } from "../_helpers.ts";
import { entryNames, liveDigest, treeDigest } from "../_faults.ts";
import { updateRows } from "../_repo.ts";
import {
  assertVerified,
  contentDigest,
  createAndPush,
  oneErrorLine,
  remoteNames,
  type RemoteStore,
  remoteStore,
  snapshotAsStore,
} from "../_remote_cli.ts";
import type { SampleOptions } from "../../scripts/sample_store.ts";
import { type Radosgw, startRadosgw } from "../_servers/radosgw.ts";

const server = await startRadosgw("the S3 repository through the CLI");

/** A store, a key pair and an S3 repository made by `remote init` in a new bucket. */
interface S3Store extends RemoteStore {
  bucket: string;
}

let buckets = 0;

async function s3Store(gateway: Radosgw, options: SampleOptions): Promise<S3Store> {
  const bucket = `repo-${++buckets}-${crypto.randomUUID().slice(0, 8)}`;
  await gateway.createBucket(bucket);
  const r = await remoteStore(options, {
    ATOCORE_BACKUP_REMOTE: `s3://${bucket}/atocore/host-1`,
    ATOCORE_S3_ENDPOINT: gateway.endpoint,
    AWS_ACCESS_KEY_ID: gateway.accessKey,
    AWS_SECRET_ACCESS_KEY: gateway.secretKey,
  });
  return Object.assign(r, { bucket });
}

/** The output must hold neither key of the gateway's user. */
function assertNoKeys(run: CliRun, what: string): void {
  for (const secret of [server!.secretKey, server!.accessKey]) {
    assert.ok(!(run.stdout + run.stderr).includes(secret), `${what}: a key in the output`);
  }
}

/** The keys in `bucket` under `prefix` (signed as the gateway's user). */
async function keysIn(bucket: string, prefix: string): Promise<string[]> {
  const client = new AwsClient({ accessKeyId: server!.accessKey, secretAccessKey: server!.secretKey, service: "s3" });
  const text = await (await client.fetch(`${server!.endpoint}/${bucket}/?list-type=2&prefix=${prefix}`)).text();
  return [...text.matchAll(/<Key>([^<]+)<\/Key>/g)].map((match) => match[1]);
}

if (server !== null) {
  Deno.test("s3 CLI: init, push twice, list, verify both depths, restore live and --to, drill, cleanup", async () => {
    using r = await s3Store(server, { dbMiB: 24, chromaMiB: 4 });
    const first = await createAndPush(r.env);
    assert.ok(first.push.bytes_sent > first.push.bytes_total * 0.8, "the first push sends the store");
    updateRows(r.store.db, 0.01);
    const second = await createAndPush(r.env);
    const ratio = second.push.bytes_sent / second.push.bytes_total;
    assert.ok(ratio < 0.06, `sent ${(ratio * 100).toFixed(1)}% of the store after 1% of rows changed`);
    assert.deepEqual(await remoteNames(r.env), [first.push.snapshot, second.push.snapshot]);
    const keys = await keysIn(r.bucket, "atocore/host-1/");
    assert.ok(keys.includes("atocore/host-1/config"), "the repository lies under the prefix");
    assert.ok(keys.some((key) => /^atocore\/host-1\/packs\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(key)), keys.join());

    await assertVerified(r.env);
    const deep = await assertVerified(r.envWithIdentity, ["--read-data"]);
    assert.ok((deep.json as { packs_read: number }).packs_read >= 2, "every pack read");
    await assertVerified(r.envWithIdentity, ["--read-data-subset", "50%"]);

    const snapshots = join(r.store.backupDir, "snapshots");
    const before = contentDigest(liveDigest(r.store), r.store.dataDir, false);
    const scratch = join(r.work, "scratch");
    Deno.mkdirSync(scratch);
    const restored = await runCli(
      ["restore", first.stamp, "--from-remote", "--confirm-service-stopped", "--scratch-dir", scratch],
      { env: r.envWithIdentity },
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(liveDigest(r.store), snapshotAsStore(join(snapshots, first.stamp)), "live = the first snapshot");
    const pre = join(snapshots, (restored.json as { pre_restore_snapshot: string }).pre_restore_snapshot);
    assert.deepEqual(contentDigest(snapshotAsStore(pre), pre, true), before, "the pre-restore snapshot");
    assert.deepEqual(entryNames(scratch), [], "the scratch copy is removed");

    const to = join(r.work, "rebuilt");
    const rebuilt = await runCli(["restore", second.stamp, "--from-remote", "--to", to], { env: r.envWithIdentity });
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.deepEqual(treeDigest(to), snapshotAsStore(join(snapshots, second.stamp)));

    const junit = join(r.work, "drill.xml");
    const drill = await runCli(["drill", "--from-remote", "--latest", "--junit", junit], { env: r.envWithIdentity });
    assert.equal(drill.code, 0, drill.stdout + drill.stderr);
    assert.equal((drill.json as { stamp: string }).stamp, second.stamp);
    assert.match(Deno.readTextFileSync(junit), /<testsuite [^>]*tests="7" [^>]*failures="0"/);

    const policy = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
    const cleaned = await runCli(["remote", "cleanup", "--confirm", ...policy], { env: r.env });
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.deepEqual(await remoteNames(r.env), [second.push.snapshot]);
    await assertVerified(r.envWithIdentity, ["--read-data"]);
    for (const run of [restored, rebuilt, drill, cleaned, deep]) assertNoKeys(run, "round trip");
  });

  Deno.test("s3 CLI: wrong secret key, unknown access key, missing bucket, clock ahead: one line each, no key", async () => {
    using r = await s3Store(server, { dbMiB: 1, chromaMiB: 1 });
    const cases: [string, Record<string, string>, number, RegExp][] = [
      [
        "wrong secret",
        { AWS_SECRET_ACCESS_KEY: "wrong".repeat(8) },
        2,
        /refused the signature \(SignatureDoesNotMatch\): the secret key is wrong; check the credentials from env \(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY\)/,
      ],
      [
        "unknown key",
        { AWS_ACCESS_KEY_ID: "AKIDUNKNOWN000000000" },
        2,
        /does not know the access key \(InvalidAccessKeyId\)/,
      ],
      [
        "missing bucket",
        { ATOCORE_BACKUP_REMOTE: "s3://no-such-bucket/atocore" },
        2,
        /the bucket does not exist \(NoSuchBucket\)/,
      ],
    ];
    for (const [what, extra, code, pattern] of cases) {
      const run = await runCli(["remote", "list"], { env: { ...r.env, ...extra } });
      assert.equal(run.code, code, `${what}: ${run.stderr}`);
      assert.match(oneErrorLine(run, what), pattern, what);
      assertNoKeys(run, what);
    }
    const skewed = cliRunOf(await clockAhead(["remote", "list"], r.env).output());
    assert.equal(skewed.code, 1, skewed.stderr);
    assert.match(
      oneErrorLine(skewed, "clock ahead"),
      /refused the request time \(RequestTimeTooSkewed\): this host's clock is 20 minutes ahead of the server's; check the host's clock/,
    );
    assertNoKeys(skewed, "clock ahead");
  });

  Deno.test("s3 CLI: the gateway stopped in the middle of a push; the next push succeeds and reuses what was sent", async () => {
    using r = await s3Store(server, { dbMiB: 96, chromaMiB: 8 });
    const created = await runCli(["create", "--chroma"], { env: r.env });
    assert.equal(created.code, 0, created.stderr);
    const child = cliProcess(["push", "--latest"], { env: r.env }).spawn();
    while ((await keysIn(r.bucket, "atocore/host-1/packs/")).length === 0) await delay(20);
    server.freezeGateway(true); // at once, then killed: a gateway gone in the middle of the push
    await server.stopGateway();
    const failed = cliRunOf(await child.output());
    await server.startGateway();
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(
      oneErrorLine(failed, "stopped gateway"),
      /got no answer .*\(after 6 attempts\); check that the server is reachable/,
    );
    assert.deepEqual(await remoteNames(r.env), [], "nothing listed");
    const sentBefore = (await keysIn(r.bucket, "atocore/host-1/packs/")).length;
    assert.ok(sentBefore >= 1);
    const next = await runCli(["push", "--latest"], { env: r.env });
    assert.equal(next.code, 0, next.stderr);
    const pushed = (next.json as { pushed: { bytes_sent: number; bytes_total: number; bytes_deduplicated: number }[] })
      .pushed[0];
    assert.ok(pushed.bytes_deduplicated > 0, `nothing reused: ${JSON.stringify(pushed)}`);
    assert.ok(pushed.bytes_sent < pushed.bytes_total, JSON.stringify(pushed));
    await assertVerified(r.envWithIdentity, ["--read-data"]);
  });

  Deno.test("s3 CLI: a bucket out of room fails the push in one line; nothing listed; room again, the push succeeds", async () => {
    using r = await s3Store(server, { dbMiB: 24, chromaMiB: 2 });
    await server.admin(["quota", "set", "--quota-scope=bucket", `--bucket=${r.bucket}`, `--max-size=${4 << 20}`]);
    await server.admin(["quota", "enable", "--quota-scope=bucket", `--bucket=${r.bucket}`]);
    const created = await runCli(["create", "--chroma"], { env: r.env });
    assert.equal(created.code, 0, created.stderr);
    const full = await runCli(["push", "--latest"], { env: r.env });
    assert.equal(full.code, 1, full.stderr);
    assert.match(
      oneErrorLine(full, "full"),
      /has no room for the object \(QuotaExceeded, HTTP 403\); free space or raise the quota/,
    );
    assert.deepEqual(await remoteNames(r.env), []);
    await server.admin(["quota", "disable", "--quota-scope=bucket", `--bucket=${r.bucket}`]);
    const next = await runCli(["push", "--latest"], { env: r.env });
    assert.equal(next.code, 0, next.stderr);
    assert.equal((await remoteNames(r.env)).length, 1);
  });

  Deno.test("s3 CLI: config shows each S3 setting with its source, and never a key", async () => {
    using r = await s3Store(server, { dbMiB: 1, chromaMiB: 1 });
    const shown = await runCli(["config", "--s3-region", "eu-central-1"], { env: r.env });
    assert.equal(shown.code, 0, shown.stderr);
    const remote = (shown.json as { remote: Record<string, unknown> }).remote;
    assert.deepEqual(remote.s3, {
      endpoint: { value: server.endpoint, source: "env", from: "ATOCORE_S3_ENDPOINT" },
      region: { value: "eu-central-1", source: "flag", from: "--s3-region" },
      addressing: null,
    });
    assert.equal(remote.s3_credentials, "env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
    assertNoKeys(shown, "config");
  });

  Deno.test("s3 CLI: remote cleanup on a versioned bucket warns that what it deletes stays stored as versions", async () => {
    using r = await s3Store(server, { dbMiB: 1, chromaMiB: 1 });
    Deno.mkdirSync(r.store.backupDir); // remote cleanup keeps its sightings there; it makes no backup folder
    const plain = await runCli(["remote", "cleanup"], { env: r.env });
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual((plain.json as { warnings: string[] }).warnings, [], "an unversioned bucket: no word");
    const client = new AwsClient({ accessKeyId: server.accessKey, secretAccessKey: server.secretKey, service: "s3" });
    const body = '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status>' +
      "</VersioningConfiguration>";
    const versioned = await client.fetch(`${server.endpoint}/${r.bucket}/?versioning`, { method: "PUT", body });
    assert.equal(versioned.status, 200, await versioned.text());
    await createAndPush(r.env);
    const run = await runCli(["remote", "cleanup", "--confirm"], { env: r.env });
    assert.equal(run.code, 0, run.stderr);
    const warnings = (run.json as { warnings: string[] }).warnings;
    assert.ok(
      warnings.some((line) => /is in a bucket with versioning: .*NoncurrentVersionExpiration/.test(line)),
      warnings.join(),
    );
    assertNoKeys(run, "versioning");
  });

  Deno.test("s3: radosgw stopped", () => server.stop());
}

/** The CLI under the compile permissions with its clock 20 minutes ahead ({@linkcode ../_servers/clock_ahead.ts}). */
function clockAhead(args: string[], env: Record<string, string>): Deno.Command {
  const preload = join(ROOT, "tests", "_servers", "clock_ahead.ts");
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...COMPILE_PERMISSIONS, "--preload", preload, join(ROOT, "main.ts"), ...args],
    cwd: ROOT,
    env: cliEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
