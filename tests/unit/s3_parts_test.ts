/**
 * The parts of the S3 backend that need no server: remotes and endpoints refused or accepted, keys encoded so the URL
 * parser cannot rewrite them, path-style and virtual-hosted URLs, ListObjectsV2 pages, which failures are retried, and
 * credentials from a shared credentials file (the server-side behaviour is in s3_backend_test.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeKey, objectUrl, parseEndpoint, parseS3Url } from "../../src/repo/s3/address.ts";
import { credentialSource, loadCredentials } from "../../src/repo/s3/credentials.ts";
import { isTransientStatus, retryAfterMs, s3Failure } from "../../src/repo/s3/failure.ts";
import { withRetries } from "../../src/repo/retry.ts";
import { parseListPage } from "../../src/repo/s3/listing.ts";
import { s3Address } from "../../src/repo/s3/open.ts";
import { tempDir } from "../_helpers.ts";
import { UsageError } from "../../src/errors.ts";

Deno.test("s3 remote: bucket and prefix; `.`, `..`, empty segments and odd bucket names refused", () => {
  assert.deepEqual(parseS3Url("s3://my-bucket"), { bucket: "my-bucket", prefix: "" });
  assert.deepEqual(parseS3Url("s3://my-bucket/"), { bucket: "my-bucket", prefix: "" });
  assert.deepEqual(parseS3Url("s3://b.example/atocore/host-1/"), { bucket: "b.example", prefix: "atocore/host-1/" });
  for (
    const spec of [
      "s3://b/x",
      "s3://Bucket/x",
      "s3://bucket/a/../b",
      "s3://bucket/./a",
      "s3://bucket/a//b",
      "s3://bucket/%2e%2e/a",
      "s3://bucket/a?x=1",
      "s3://bucket/.hidden",
    ]
  ) {
    assert.throws(() => parseS3Url(spec), /not an S3|not a plain S3 prefix/, spec);
  }
});

Deno.test("s3 endpoint: http(s) only, no user, password, query or fragment", () => {
  assert.equal(parseEndpoint("http://127.0.0.1:7480/", "--s3-endpoint"), "http://127.0.0.1:7480");
  assert.equal(parseEndpoint("https://s3.example/base/", "--s3-endpoint"), "https://s3.example/base");
  assert.throws(() => parseEndpoint("http://key:secret@host", "--s3-endpoint"), (error: Error) => {
    assert.doesNotMatch(error.message, /secret/);
    return /no user, password/.test(error.message);
  });
  assert.throws(() => parseEndpoint("ftp://host", "ATOCORE_S3_ENDPOINT"), /ATOCORE_S3_ENDPOINT: "ftp:" is not http/);
});

Deno.test("s3 endpoint: a `.` or `..` path segment, also encoded, is refused, not rewritten to another path", () => {
  for (
    const value of [
      "http://h:7480/a/../b",
      "http://h:7480/a/%2e%2e/b",
      "http://h:7480/a/%2E./b",
      "http://h:7480/./b",
      "http://h:7480/a/..",
      "http://h:7480/a\\..\\b",
      "http://h:7480/a/.\t./b",
    ]
  ) {
    assert.throws(
      () => parseEndpoint(value, "--s3-endpoint"),
      (error: Error) =>
        error instanceof UsageError && /^--s3-endpoint: .* has a '\.' or '\.\.' path segment/.test(error.message),
      value,
    );
  }
  assert.equal(parseEndpoint("http://h:7480/a/..b/.c", "--s3-endpoint"), "http://h:7480/a/..b/.c", "names, kept");
});

Deno.test("s3 keys are percent-encoded per segment; URLs path-style for an endpoint, virtual-hosted for AWS", () => {
  assert.equal(encodeKey("a b/c+d/e!(f)*'~"), "a%20b/c%2Bd/e%21%28f%29%2A%27~");
  const settings = (endpoint: string | null, addressing: "path" | "virtual" | null = null) => ({
    endpoint: endpoint === null ? null : { value: endpoint, source: "flag" as const, from: "--s3-endpoint" },
    region: { value: "eu-west-1", source: "env" as const, from: "AWS_REGION" },
    addressing: addressing === null ? null : { value: addressing, source: "flag" as const, from: "--s3-addressing" },
  });
  const custom = s3Address("s3://bkt/p/q", settings("http://127.0.0.1:9000"));
  assert.equal(objectUrl(custom, "p/q/packs/ab/cd"), "http://127.0.0.1:9000/bkt/p/q/packs/ab/cd");
  assert.equal(objectUrl(custom, "", "list-type=2"), "http://127.0.0.1:9000/bkt/?list-type=2");
  const aws = s3Address("s3://bkt/p", settings(null));
  assert.equal(aws.addressing, "virtual");
  assert.equal(objectUrl(aws, "p/config"), "https://bkt.s3.eu-west-1.amazonaws.com/p/config");
  const forced = s3Address("s3://bkt/p", settings("https://minio.example:9000", "virtual"));
  assert.equal(objectUrl(forced, "p/config"), "https://bkt.minio.example:9000/p/config");
  assert.equal(new URL(objectUrl(custom, "a/..x/b")).pathname, "/bkt/a/..x/b", "kept by the URL parser");
  for (const endpoint of ["http://127.0.0.1:7480", "http://[::1]:7480"]) { // no host name to put the bucket in
    assert.throws(
      () => s3Address("s3://bkt/p", settings(endpoint, "virtual")),
      (error: Error) => error instanceof UsageError && /IP address.*give --s3-addressing path$/.test(error.message),
      endpoint,
    );
  }
});

Deno.test("s3 listing: keys URL-decoded and XML-unescaped, sizes, the continuation token", () => {
  const page = parseListPage(
    `<?xml version="1.0"?><ListBucketResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>` +
      `<Contents><Key>p/a%20b</Key><Size>12</Size></Contents><Contents><Key>p/x%26y</Key><Size>0</Size></Contents>` +
      `<NextContinuationToken>tok&amp;en</NextContinuationToken></ListBucketResult>`,
  );
  assert.deepEqual(page, { objects: [{ key: "p/a b", size: 12 }, { key: "p/x&y", size: 0 }], next: "tok&en" });
  assert.throws(() => parseListPage("<html>proxy error</html>"), /not a ListObjectsV2 result/);
  assert.throws(
    () => parseListPage("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"),
    /no continuation/,
  );
});

Deno.test("s3 failures retried: 5xx, 429, throttling, timeouts, a body changed; not other 4xx, 501, 507", () => {
  const transient = [[500, ""], [503, "SlowDown"], [429, ""], [400, "RequestTimeout"], [502, ""], [
    400,
    "XAmzContentSHA256Mismatch",
  ], [400, "BadDigest"]] as const;
  for (const [status, code] of transient) assert.ok(isTransientStatus(status, code), `${status} ${code}`);
  for (
    const [status, code] of [[403, "AccessDenied"], [404, "NoSuchBucket"], [400, "InvalidDigest"], [501, ""], [
      507,
      "",
    ]] as const
  ) {
    assert.ok(!isTransientStatus(status, code), `${status} ${code}`);
  }
  const context = {
    method: "PUT",
    name: "packs/ab/x",
    location: "s3://b/p",
    credentialsFrom: "env (AWS_ACCESS_KEY_ID)",
  };
  const slow = s3Failure(
    context,
    503,
    "<Error><Code>SlowDown</Code><Message>Please &amp; reduce</Message></Error>",
    { serverDate: null, retryAfter: "3" },
  );
  assert.equal(slow.retryAfterMs, 3000);
  assert.equal(slow.afterAttempts(2).retryAfterMs, 3000);
  assert.equal(retryAfterMs(null), 0);
  assert.equal(retryAfterMs("soon"), 0);
  assert.equal(retryAfterMs(new Date(Date.now() - 60_000).toUTCString()), 0, "a date past asks for no wait");
  const inAMinute = retryAfterMs(new Date(Date.now() + 60_000).toUTCString());
  assert.ok(inAMinute > 55_000 && inAMinute <= 60_000, String(inAMinute));
  assert.equal(
    slow.message,
    "S3 PUT packs/ab/x in s3://b/p failed: HTTP 503 (SlowDown: Please & reduce); it may pass on a later run",
  );
  assert.equal(
    slow.afterAttempts(6).message,
    "S3 PUT packs/ab/x in s3://b/p failed: HTTP 503 (SlowDown: Please & reduce) (after 6 attempts); it may pass on a later run",
  );
  assert.ok(slow.afterAttempts(6).unreachable, "throttling that lasts: the server is out of reach");
  const changed = s3Failure(context, 400, "<Error><Code>XAmzContentSHA256Mismatch</Code></Error>", {
    serverDate: null,
    retryAfter: null,
  }).afterAttempts(6);
  assert.ok(changed.transient);
  assert.ok(!changed.unreachable, "a server that received changed bytes was reached");
  assert.equal(
    changed.message,
    "S3 PUT packs/ab/x in s3://b/p failed: HTTP 400 (XAmzContentSHA256Mismatch) (after 6 attempts); the server " +
      "received other bytes than were sent: check what lies between this host and it (a proxy that rewrites bodies)",
  );
  const moved = s3Failure(context, 307, "", {
    serverDate: null,
    retryAfter: null,
    redirect: "https://b.s3.eu-west-1.amazonaws.com/p/packs/ab/x?X-Amz-Signature=secret",
  });
  assert.ok(!moved.transient);
  assert.equal(
    moved.message,
    "S3 PUT packs/ab/x in s3://b/p failed: HTTP 307 (no error code); the server redirects to " +
      "b.s3.eu-west-1.amazonaws.com, so this endpoint or region is not the bucket's: check --s3-endpoint, " +
      "--s3-region and --s3-addressing ('config')",
  );
});

Deno.test("s3 credentials: the environment first, else the shared file's profile; only the source is described", () => {
  using dir = tempDir();
  const file = join(dir.path, "credentials");
  Deno.writeTextFileSync(
    file,
    "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = s1\n\n[profile backup]\n# comment\n" +
      "aws_access_key_id=AKBACKUP\naws_secret_access_key=s2\naws_session_token=t2\n",
  );
  const env = { HOME: dir.path, AWS_SHARED_CREDENTIALS_FILE: file };
  assert.deepEqual(loadCredentials(env), {
    accessKeyId: "AKDEFAULT",
    secretAccessKey: "s1",
    sessionToken: undefined,
    from: `file ${file} [default]`,
  });
  const backup = loadCredentials({ ...env, AWS_PROFILE: "backup" });
  assert.deepEqual([backup.accessKeyId, backup.sessionToken, backup.from], ["AKBACKUP", "t2", `file ${file} [backup]`]);
  assert.throws(() => loadCredentials({ ...env, AWS_PROFILE: "none" }), /has no profile \[none\]/);
  const fromEnv = { ...env, AWS_ACCESS_KEY_ID: "AKENV", AWS_SECRET_ACCESS_KEY: "s3cr3t" };
  assert.equal(loadCredentials(fromEnv).accessKeyId, "AKENV");
  assert.equal(credentialSource(fromEnv).from, "env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
  assert.throws(() => loadCredentials({ AWS_ACCESS_KEY_ID: "AKENV" }), /AWS_SECRET_ACCESS_KEY is unset or empty/);
  assert.equal(credentialSource({}).source, "none", "HOME unset and no file named: no credentials file");
  assert.throws(
    () => loadCredentials({}),
    /^UsageError: an S3 remote needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give a credentials file \(AWS_SHARED_CREDENTIALS_FILE\); HOME is not set, so there is no ~\/\.aws\/credentials$/,
  );
});

Deno.test("retries: the wait a server asks for is followed, up to the policy's largest backoff", async () => {
  const policy = { attempts: 3, baseMs: 1, maxMs: 200 };
  const waits: number[] = [];
  const asked = [150, 60_000];
  let calls = 0;
  const result = await withRetries(
    () => calls++ < 2 ? Promise.reject(new Error(`busy ${calls}`)) : Promise.resolve("done"),
    () => true,
    policy,
    (_error, _attempt, waitMs) => waits.push(waitMs),
    () => asked.shift() ?? 0,
  );
  assert.equal(result, "done");
  assert.deepEqual(waits, [150, 200], "Retry-After: 150 ms, then an hour asked is capped at maxMs");
});
