/**
 * The off-host code's refusals and errors provoked with real inputs, one step per message: addresses and key files,
 * object names at the backend boundary, local snapshots that changed, repositories and snapshot objects written by hand
 * (as someone holding only the recipient could), and the repository-level refusals of fetch, resolve and cleanup.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { defaultSshKeyFiles, resolveConfig } from "../../src/config.ts";
import { ageEncrypt, generateIdentity, parseIdentity } from "../../src/crypto/age.ts";
import { fetchToScratch, resolveRemoteSnapshot } from "../../src/ops/from_remote.ts";
import { deriveAuthKey, snapshotMac } from "../../src/crypto/auth_key.ts";
import { type Backend, ObjectExistsError, ObjectTooLargeError } from "../../src/repo/backend.ts";
import { getPublic } from "../../src/repo/boundary.ts";
import { openBackend } from "../../src/repo/open_backend.ts";
import { DOCUMENT_FORMAT } from "../../src/repo/document.ts";
import { fetchSnapshot } from "../../src/repo/fetch.ts";
import { openFolderBackend } from "../../src/repo/folder.ts";
import { verifyRepository } from "../../src/repo/verify.ts";
import { packName, refsName, snapshotName } from "../../src/repo/layout.ts";
import { checkLink, readLocalSnapshot } from "../../src/repo/local_snapshot.ts";
import { cleanupRemote, type RemoteCleanupOptions } from "../../src/repo/prune.ts";
import { checkPin, initRepository, openRepository, REPOSITORY_FORMAT } from "../../src/repo/repository.ts";
import { parseEndpoint, parseS3Url } from "../../src/repo/s3/address.ts";
import { parseListPage } from "../../src/repo/s3/listing.ts";
import { openS3Backend } from "../../src/repo/s3/open.ts";
import { S3Error } from "../../src/repo/s3/failure.ts";
import { sealBytes, sha256Hex } from "../../src/repo/sealing.ts";
import { openSftpBackend } from "../../src/repo/sftp/backend.ts";
import { parseSftpUrl } from "../../src/repo/sftp/url.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { remotePinPath } from "../../src/snapshot/layout.ts";
import { skipBecause, tempDir, toolFor } from "../_helpers.ts";
import { mountTmpfs } from "../_mount.ts";

/** The message `act` fails with (sync or async), checked to be one line. */
async function messageOf(act: () => unknown): Promise<string> {
  try {
    await act();
  } catch (error) {
    const message = (error as Error).message;
    assert.ok(!message.includes("\n"), `not one line: ${message}`);
    return message;
  }
  throw new Error("it did not fail");
}

/** Table-driven steps: each case fails with a message matching its pattern. */
async function steps(t: Deno.TestContext, cases: [string, () => unknown, RegExp][]): Promise<void> {
  for (const [label, act, pattern] of cases) {
    await t.step(label, async () => assert.match(await messageOf(act), pattern));
  }
}

const mkfifo = (path: string) =>
  assert.ok(new Deno.Command("mkfifo", { args: [path] }).outputSync().success, `mkfifo ${path}`);
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const bytes = (value: unknown) => new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

/** The cases of an SFTP key file missing and a known_hosts that is a folder, with the SSH key at `key` in `dir`. */
function sftpKeyFileCases(dir: string, key: string): [string, () => unknown, RegExp][] {
  const knownHosts = join(dir, "known_hosts");
  Deno.mkdirSync(knownHosts); // a folder: not readable as a file
  const missing = join(dir, "no_such_key");
  const sftp = (keyFile: string) =>
    openSftpBackend("sftp://u@127.0.0.1:1/x", { keyFile, knownHostsFile: knownHosts }).list("");
  return [
    [
      "sftp key file missing",
      () => sftp(missing),
      new RegExp(
        `^cannot read the SSH key ${escape(missing)} \\(not found\\); give a readable private key file with`,
      ),
    ],
    [
      "known_hosts not a file",
      () => sftp(key),
      new RegExp(
        `^cannot read the known_hosts file ${escape(knownHosts)} \\(.*\\); give a readable one with --known`,
      ),
    ],
  ];
}

Deno.test("remote errors: SFTP addresses and key files", async (t) => {
  using dir = tempDir("atocore-remote-errors-");
  const key = join(dir.path, "id_ed25519");
  const hasKeygen = toolFor("ssh-keygen", "the SSH key file cases");
  if (hasKeygen) new Deno.Command("ssh-keygen", { args: ["-q", "-t", "ed25519", "-N", "", "-f", key] }).outputSync();
  const cases: [string, () => unknown, RegExp][] = [
    [
      "sftp without a key",
      () =>
        openBackend("sftp://u@127.0.0.1/x", {
          cwd: dir.path,
          env: {},
          ssh: { defaultKeyFiles: defaultSshKeyFiles({ HOME: dir.path }, dir.path) },
        }),
      /^the SFTP repository needs an SSH key: give --ssh-key FILE or set ATOCORE_SSH_KEY_FILE \(none of ~\/\.ssh/,
    ],
    [
      "sftp without a user and without a key: the address is named first",
      () =>
        openBackend("sftp://127.0.0.1/x", {
          cwd: dir.path,
          env: {},
          ssh: { defaultKeyFiles: defaultSshKeyFiles({ HOME: dir.path }, dir.path) },
        }),
      /^not an SFTP location: "sftp:\/\/127\.0\.0\.1\/x"; give sftp:\/\/USER@HOST\[:PORT\]\/PATH/,
    ],
    [
      "sftp without known_hosts (HOME unset)",
      () => openBackend("sftp://u@127.0.0.1/x", { cwd: dir.path, env: {}, ssh: { keyFile: key } }),
      /^SFTP needs a known_hosts file: give --known-hosts FILE \(HOME is not set\)$/,
    ],
    [
      "sftp URL with a bad %-escape",
      () => parseSftpUrl("sftp://u@h/a%zz"),
      /^not an SFTP location: "sftp:\/\/u@h\/a%zz" \(bad %-escape\); give sftp:\/\/USER@HOST\[:PORT\]\/PATH/,
    ],
  ];
  if (hasKeygen) cases.push(...sftpKeyFileCases(dir.path, key));
  await steps(t, cases);
});

Deno.test("remote errors: folder and S3 addresses, and object names", async (t) => {
  using dir = tempDir("atocore-remote-errors-");
  const folder = openFolderBackend(join(dir.path, "repo"));
  const cases: [string, () => unknown, RegExp][] = [
    [
      "folder backend given another scheme",
      () => openFolderBackend("ftp://host/x"),
      /^remote "ftp:\/\/…" is not supported; give file:\/\/\/path$/,
    ],
    ["folder backend given blanks", () => openFolderBackend("  "), /^the remote is empty; give file:\/\/\/path or a/],
    [
      "s3 URL with a query",
      () => parseS3Url("s3://bucket/a?x=1"),
      /^not an S3 remote: "s3:\/\/bucket\/a\?x=1"; give s3:\/\/BUCKET\/PREFIX$/,
    ],
    [
      "s3 bucket with capitals",
      () => parseS3Url("s3://Bucket/x"),
      /^not an S3 bucket name: "Bucket" in "s3:\/\/Bucket\/x"; a bucket name has 3 to 63 lowercase letters/,
    ],
    [
      "s3 endpoint that is not a URL",
      () => parseEndpoint("127.0.0.1 7480", "--s3-endpoint"),
      /^--s3-endpoint: not a URL: "127\.0\.0\.1 7480"; give e\.g\. http:\/\/127\.0\.0\.1:7480$/,
    ],
    [
      "s3 listing entry without a size",
      () => parseListPage("<ListBucketResult><Contents><Key>p/config</Key></Contents></ListBucketResult>"),
      /^a listed object has no key or size$/,
    ],
    [
      "object name that climbs out",
      () => folder.read("packs/../../etc/passwd"),
      /^not a plain repository object name: "packs\/\.\.\/\.\.\/etc\/passwd"$/,
    ],
    ["listing prefix without its slash", () => folder.list("packs"), /^a listing prefix ends with "\/": "packs"$/],
    [
      "fetch of a name that is no snapshot",
      () => fetchSnapshot(folder, [], "../x", join(dir.path, "into")),
      /^not a remote snapshot name: "\.\.\/x"; give one like 20260409T010203Z_0123456789abcdef \('remote list'\)$/,
    ],
  ];
  await steps(t, cases);
});

/** An S3 backend of `s3://bucket/p` at the local `port`, a server of the test's own, with `options`. */
function s3At(port: number, options: Parameters<typeof openS3Backend>[3] = {}) {
  return openS3Backend(
    "s3://bucket/p",
    {
      endpoint: { value: `http://127.0.0.1:${port}`, source: "flag", from: "--s3-endpoint" },
      region: { value: "us-east-1", source: "env", from: "AWS_REGION" },
      addressing: null,
    },
    { AWS_ACCESS_KEY_ID: "AKTEST", AWS_SECRET_ACCESS_KEY: "secret" },
    options,
  );
}

Deno.test("remote errors: an endpoint that answers but is not an S3 server", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("<html><body>It works!</body></html>", { headers: { "content-type": "text/html" } }),
  );
  try {
    const port = server.addr.port;
    const backend = s3At(port);
    assert.match(
      await messageOf(() => backend.list("")),
      new RegExp(
        `^S3 listing of s3://bucket/p at http://127\\.0\\.0\\.1:${port} failed: the answer is not a ListObjectsV2 ` +
          "result; is the endpoint an S3 server\\?$",
      ),
    );
    assert.match(
      await messageOf(() => backend.read("config")),
      new RegExp(
        `^S3 GET config in s3://bucket/p at http://127\\.0\\.0\\.1:${port} was answered with an HTML page ` +
          "\\(text/html\\) and no S3 request id, not with the object; is the endpoint an S3 server\\? ",
      ),
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("remote errors: a server that answers with SSH-1 only is named as not offering SFTP, at once", async () => {
  if (!toolFor("ssh-keygen", "the SSH key of the connection attempt")) return;
  using dir = tempDir("atocore-remote-errors-");
  const key = join(dir.path, "id_ed25519");
  new Deno.Command("ssh-keygen", { args: ["-q", "-t", "ed25519", "-N", "", "-f", key] }).outputSync();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const connection of listener) {
      await connection.write(new TextEncoder().encode("SSH-1.5-OldServer\r\n")); // a server of protocol 1 only
      await connection.readable.cancel().catch(() => {});
    }
  })();
  const port = listener.addr.port;
  const location = `sftp://u@127.0.0.1:${port}/x`;
  const backend = openSftpBackend(location, { keyFile: key, knownHostsFile: join(dir.path, "known_hosts") });
  try {
    const message = await messageOf(() => backend.list(""));
    assert.doesNotMatch(message, /attempts/, "not retried: no connection will make it another server");
    assert.match(
      message,
      new RegExp(`^cannot connect to the SFTP server ${escape(location)}: .*; check the address and that the server `),
    );
  } finally {
    await backend.close();
    listener.close();
    await served.catch(() => {});
  }
});

Deno.test("remote errors: a local snapshot whose metadata or links changed before the push", async (t) => {
  using dir = tempDir("atocore-remote-errors-");
  const stamp = "20260101T000000Z";
  const root = join(dir.path, stamp);
  Deno.mkdirSync(root);
  Deno.symlinkSync("elsewhere", join(root, "link"));
  await steps(t, [
    [
      "metadata not JSON",
      () => {
        Deno.writeTextFileSync(join(root, "backup-metadata.json"), "{");
        return readLocalSnapshot(root);
      },
      new RegExp(`^snapshot ${stamp}: metadata_invalid_json: .*; run 'validate ${stamp}'$`),
    ],
    [
      "manifest path that climbs out",
      () => {
        Deno.writeTextFileSync(join(root, "backup-metadata.json"), JSON.stringify({ manifest: [{ path: "../x" }] }));
        return readLocalSnapshot(root);
      },
      new RegExp(`^snapshot ${stamp}: manifest path "\\.\\./x" is not clean; run 'validate ${stamp}'$`),
    ],
    [
      "link retargeted",
      () => checkLink(root, stamp, { path: "link", target: "recorded" }),
      new RegExp(`^snapshot ${stamp}: link changed since it was made; run 'validate ${stamp}'$`),
    ],
  ]);
});

/** A folder repository with a key pair, objects written into it by hand, and a scratch parent. */
async function handRepo(work: string, name = "repo") {
  const repoDir = join(work, name);
  const backend = openFolderBackend(repoDir);
  const { identity, recipient } = generateIdentity();
  await initRepository(backend, [recipient]);
  const config = JSON.parse(Deno.readTextFileSync(join(repoDir, "config")));
  const put = (object: string, content: Uint8Array) => {
    Deno.mkdirSync(join(repoDir, object, ".."), { recursive: true });
    Deno.writeFileSync(join(repoDir, object), content);
  };
  return { repoDir, backend, identity: parseIdentity(identity), recipient, id: config.id as string, put };
}

type Key = { stamp: string; pushId: string };

/**
 * A hand-made repository (see `handRepo`) holding one pack of 4 KiB, with the means to store snapshots in it as a
 * push would (documents sealed, refs signed), and to fetch one, which must fail.
 */
async function handSnapshots(work: string) {
  const repo = await handRepo(work);
  const config = resolveConfig({}, { ATOCORE_DATA_DIR: join(work, "store") }, "/");
  const scratch = join(work, "scratch");
  Deno.mkdirSync(scratch);
  let serial = 0;
  const keyOf = (): Key => ({ stamp: "20260101T000000Z", pushId: (++serial).toString(16).padStart(16, "0") });
  const plain = new Uint8Array(4096).fill(7);
  const packSealed = sealBytes(plain, "none", [repo.recipient]);
  const [packId, packSize] = [packSealed.sha256, packSealed.bytes.length];
  repo.put(packName(packId), packSealed.bytes);
  const packSizes = new Map<string, number>();
  /** A document that parses, with `files` and `packs` as given. */
  const documentOf = (k: Key, extra: Record<string, unknown> = {}) => ({
    format: DOCUMENT_FORMAT,
    repository_id: repo.id,
    stamp: k.stamp,
    push_id: k.pushId,
    pushed_at: "2026-01-01T00:00:00Z",
    host: "h",
    metadata: {},
    packs: [{ id: packId, size: packSize, compression: "none" }],
    files: [],
    ...extra,
  });
  /** Store snapshot `k` as its document (sealed as a push seals it) and refs listing `packs`. */
  const store = (k: Key, document: Uint8Array, packs = [packId], compress = true) => {
    const sealed = sealBytes(document, compress ? "zstd" : "none", [repo.recipient], compress);
    repo.put(snapshotName(k), sealed.bytes);
    // signed as a pushing host signs, so that only the document's own checks can refuse it
    const claim = { repositoryId: repo.id, objectName: snapshotName(k), sha256: sealed.sha256 };
    const key = deriveAuthKey(repo.identity);
    const refs = {
      snapshot: keyText(k),
      snapshot_sha256: sealed.sha256,
      packs: packs.map((id) => ({ id, size: packSizes.get(id) ?? packSize })),
      auth: [{ recipient: key.recipient, mac: snapshotMac(key, claim) }],
    };
    repo.put(refsName(k), bytes(refs));
  };
  /** The fetch of `k` into `scratchParent` (which must fail: see `refused`). */
  const fetched = (k: Key, scratchParent = scratch, backend = repo.backend) => () =>
    fetchToScratch(config, { backend, identities: [repo.identity] }, keyText(k), { scratchParent, reporter: SILENT });
  return { repo, config, scratch, keyOf, plain, packId, packSize, packSizes, documentOf, store, fetched };
}

const keyText = (k: Key) => `${k.stamp}_${k.pushId}`;
const ZERO_HASH = "0".repeat(64);

/** The one line of a fetch that found snapshot objects it cannot trust: `inner`, then the next step. */
const refused = (inner: string) =>
  new RegExp(
    `^snapshot \\S+ of file://\\S+ cannot be read intact: ${inner}; nothing was changed; pick another snapshot ` +
      `\\('remote list'\\) or check the repository \\('remote verify --read-data'\\)$`,
  );

Deno.test("remote errors: refs and snapshot objects written by hand are refused naming them", async (t) => {
  using dir = tempDir("atocore-remote-errors-");
  const { repo, keyOf, plain, packId, packSize, documentOf, store, fetched, scratch } = await handSnapshots(dir.path);
  const cases: [string, () => unknown, RegExp][] = [];
  const malformed = keyOf();
  store(malformed, bytes(documentOf(malformed)));
  repo.put(refsName(malformed), bytes({ snapshot: "20250101T000000Z_0000000000000000", packs: [] }));
  const refsMalformed = `refs/${keyText(malformed)} is malformed or names another snapshot; the repository was altered`;
  cases.push(["refs that name another snapshot", fetched(malformed), refused(refsMalformed)]);
  const notJson = keyOf();
  store(notJson, bytes(documentOf(notJson)));
  repo.put(refsName(notJson), bytes("{not json"));
  const refsNotJson = `refs/${keyText(notJson)} in file://\\S+ is not JSON; the repository was altered`;
  cases.push(["refs that are not JSON", fetched(notJson), refused(refsNotJson)]);
  const corrupt = keyOf();
  store(corrupt, bytes("not zstd at all"), [packId], false);
  const notZstd = `snapshots/${keyText(corrupt)}: its zstd content is corrupt \\([^)]*\\)`;
  cases.push(["a snapshot object whose zstd is corrupt", fetched(corrupt), refused(notZstd)]);
  const untrusted = keyOf();
  store(untrusted, bytes({ ...documentOf(untrusted), format: 3 }));
  const format = `snapshots/${keyText(untrusted)}: document format 3 is not one this version reads ` +
    "\\(1 or 2; a newer one may\\); the snapshot cannot be trusted";
  cases.push(["a document of another format", fetched(untrusted), refused(format)]);
  const extents = [[0, 0, 0, 4096, ZERO_HASH]];
  const files = [{ path: "backup-metadata.json", size: 4096, sha256: sha256Hex(plain), block: 4096, extents }];
  const unlisted = keyOf();
  store(unlisted, bytes(documentOf(unlisted, { files })), []);
  const unlistedPack = `snapshots/${keyText(unlisted)}: uses pack ${packId} that refs/${
    keyText(unlisted)
  } does not list`;
  cases.push(["a document that uses a pack its refs do not list", fetched(unlisted), refused(unlistedPack)]);
  const resized = keyOf();
  const otherSize = [{ id: packId, size: packSize + 1, compression: "none" }];
  store(resized, bytes(documentOf(resized, { files, packs: otherSize })));
  const sizes = `snapshots/${keyText(resized)}: records ${packSize + 1} bytes for pack ${packId}, ` +
    `refs/${keyText(resized)} ${packSize} \\(altered\\)`;
  cases.push(["a document and its refs that record different sizes for a pack", fetched(resized), refused(sizes)]);
  const damaged = keyOf();
  // the file's own SHA-256 is what proves it; on a mismatch the extent that does not match its hash names its pack
  store(damaged, bytes(documentOf(damaged, { files: [{ ...files[0], sha256: ZERO_HASH }] })));
  const hash = `${
    packName(packId)
  }: the bytes of backup-metadata\\.json at 0 do not match their hash; snapshot damaged`;
  cases.push(["an extent whose bytes do not match its hash", fetched(damaged), refused(hash)]);
  await steps(t, cases);
  assert.deepEqual([...Deno.readDirSync(scratch)], [], "no scratch folder left behind");
});

Deno.test("remote errors: a fetch into a folder that holds something, Chroma, a denied read or a full disk", async (t) => {
  using dir = tempDir("atocore-remote-errors-");
  const { repo, config, keyOf, documentOf, store, fetched, scratch } = await handSnapshots(dir.path);
  const whole = keyOf();
  const empty = [{ path: "backup-metadata.json", size: 0, sha256: ZERO_HASH, block: 4096, extents: [] }];
  store(whole, bytes(documentOf(whole, { files: empty })));
  const occupied = join(dir.path, "occupied");
  Deno.mkdirSync(occupied);
  Deno.writeTextFileSync(join(occupied, "mine.txt"), "mine");
  const cases: [string, () => unknown, RegExp][] = [[
    "a fetch into a folder that holds something",
    () => fetchSnapshot(repo.backend, [repo.identity], keyText(whole), occupied),
    new RegExp(`^${escape(occupied)} exists and is not an empty folder; give a new folder to fetch into$`),
  ], [
    "a scratch folder inside the Chroma folder",
    fetched(whole, join(config.chromaDir.path, "tmp")),
    new RegExp(`^--scratch-dir ${escape(config.chromaDir.path)}/tmp is inside the Chroma folder .*; give a folder of`),
  ], [
    "a snapshot the server denies this host: the settings, not the snapshot (exit 2)",
    async () => {
      const denied = fetched(whole, scratch, deniesSnapshots(repo.backend))();
      await denied.catch((error) => assert.equal(error.exitCode, 2, error.message));
      return await denied;
    },
    /^S3 GET: the S3 server denied access \(AccessDenied\)$/,
  ]];
  const disk = join(dir.path, "disk");
  Deno.mkdirSync(disk);
  const mount = mountTmpfs(disk, "1m,nr_inodes=4"); // room for the scratch folders, none for a file in them
  if (typeof mount === "string") skipBecause(`${mount}: the scratch disk that cannot take a file`);
  else {
    const full = `^fetching ${keyText(whole)} from file://\\S+ into the scratch folder ${escape(disk)}/` +
      "\\.atocore-fetch-\\S+ failed \\(no space left on device[^)]*\\)\\); nothing was changed; give --scratch-dir " +
      "DIR on a disk with room for one copy";
    cases.push(["a scratch disk that cannot take the files", fetched(whole, disk), new RegExp(full)]);
  }
  try {
    await steps(t, cases);
  } finally {
    if (typeof mount !== "string") {
      assert.deepEqual([...Deno.readDirSync(disk)], [], "the scratch folder on the full disk is removed");
      mount[Symbol.dispose]();
    }
  }
  assert.deepEqual([...Deno.readDirSync(scratch)], [], "no scratch folder left behind");
  assert.deepEqual([...Deno.readDirSync(occupied)].map((entry) => entry.name), ["mine.txt"], "nothing written there");
});

/** `backend` whose server answers every read of a snapshot object as S3 does a key this host may not read. */
function deniesSnapshots(backend: Backend): Backend {
  const denied = () => new S3Error("S3 GET: the S3 server denied access (AccessDenied)", 403, "AccessDenied", false, 2);
  return Object.create(backend, {
    read: {
      value: (name: string, into?: Uint8Array, maxBytes?: number) =>
        name.startsWith("snapshots/") ? Promise.reject(denied()) : backend.read(name, into, maxBytes),
    },
  });
}

Deno.test("remote verify: a zstd pack cut short leaves the ranges past its end unproved; bytes not zstd are named", async () => {
  using dir = tempDir("atocore-remote-errors-");
  const { repo, keyOf, packSizes, documentOf, store } = await handSnapshots(dir.path);
  // verify decompresses each zstd pack into a buffer of its own
  const random = new Uint8Array(8192).map((_, at) => (at * 2654435761) >>> 24);
  const zstdPack = (body: Uint8Array) => {
    const sealed = ageEncrypt(body, [repo.recipient]);
    const id = sha256Hex(sealed);
    repo.put(packName(id), sealed);
    packSizes.set(id, sealed.length);
    return { id, size: sealed.length, compression: "zstd" };
  };
  const frame = zstdCompressSync(random);
  const packs = [zstdPack(frame.subarray(0, frame.length - 4096)), zstdPack(bytes("not zstd at all"))];
  const halves = [0, 4096].map((at) => [at, 0, at, 4096, sha256Hex(random.subarray(at, at + 4096))]);
  const firstHalf = sha256Hex(random.subarray(0, 4096));
  const files = [
    { path: "backup-metadata.json", size: 8192, sha256: sha256Hex(random), block: 4096, extents: halves },
    { path: "x", size: 4096, sha256: firstHalf, block: 4096, extents: [[0, 1, 0, 4096, ZERO_HASH]] },
  ];
  const twoPacks = keyOf();
  store(twoPacks, bytes(documentOf(twoPacks, { packs, files })), packs.map((pack) => pack.id));
  const verified = await verifyRepository(repo.backend, { identities: [repo.identity], readData: true });
  assert.ok(verified.errors.includes(`${packName(packs[0].id)}: bytes 4096:4096 do not match their hash`));
  assert.ok(verified.errors.some((line) => line.startsWith(`${packName(packs[1].id)}: its zstd content is corrupt (`)));
});

Deno.test("remote errors: an unreadable pin, an init another init overtook, a policy that keeps nothing", async (t) => {
  using dir = tempDir("atocore-remote-errors-");
  const repo = await handRepo(dir.path);
  const location = `file://${repo.repoDir}`;
  const other = openFolderBackend(join(dir.path, "other"));
  const racing: Backend = {
    location: other.location,
    list: async (prefix) => {
      const listed = await other.list(prefix);
      await initRepository(other, [repo.recipient]); // another host's init lands between the look and the write
      return listed;
    },
    read: (name, into, max) => other.read(name, into, max),
    stat: (name) => other.stat(name),
    write: (name, content, options) => other.write(name, content, options),
    remove: (name) => other.remove(name),
  };
  const backupDir = join(dir.path, "backups");
  const pin = remotePinPath(backupDir, location);
  Deno.mkdirSync(join(pin, ".."), { recursive: true });
  Deno.writeTextFileSync(pin, "{ half a pin");
  const policy = { daily: 0, weekly: 0, monthly: 0 };
  const cases: [string, () => unknown, RegExp][] = [
    [
      "a pin that is not JSON",
      async () => checkPin(backupDir, await openRepository(repo.backend)),
      new RegExp(
        `^the repository pin ${escape(pin)} is unreadable; put it back from a copy of the backup folder, or remove ` +
          "it to pin the repository anew \\(this folder's earlier pushes then count as another source's, which " +
          "'remote cleanup' keeps until '--forget'\\)$",
      ),
    ],
    [
      "an init that another init overtook",
      () => initRepository(racing, [repo.recipient]),
      new RegExp(`^${escape(other.location)} was initialised meanwhile by another 'remote init'; nothing was changed`),
    ],
    [
      "a cleanup policy that keeps nothing",
      () => cleanupRemote(repo.backend, { policy } as RemoteCleanupOptions),
      /^a retention policy that keeps nothing is refused; give --keep-daily 1 at least$/,
    ],
  ];
  await steps(t, cases);
});

Deno.test("remote errors: no snapshots, or none of a stamp or name, each with what to run next", async (t) => {
  using dir = tempDir("atocore-remote-errors-");
  const repo = await handRepo(dir.path);
  const location = `file://${repo.repoDir}`;
  const given = ` --remote '${repo.repoDir}'`; // the flags of a run that named the repository (see repositoryFlags)
  const cases: [string, () => unknown, RegExp][] = [
    [
      "latest of a repository with no snapshot",
      () => resolveRemoteSnapshot(repo.backend, "latest", { now: new Date(), reporter: SILENT }),
      new RegExp(`^no snapshots in ${escape(location)}; push one first \\('atocore-backup push --latest'\\)$`),
    ],
    [
      "a stamp no push has",
      () => resolveRemoteSnapshot(repo.backend, "20260101T000000Z", { now: new Date(), reporter: SILENT }),
      new RegExp(`^no snapshot of 20260101T000000Z in ${escape(location)}; see 'atocore-backup remote list'$`),
    ],
    [
      "a snapshot name the repository does not hold",
      () =>
        resolveRemoteSnapshot(repo.backend, "20260101T000000Z_00000000000000aa", { now: new Date(), reporter: SILENT }),
      new RegExp(`^no snapshot 20260101T000000Z_00000000000000aa in ${escape(location)}; see 'atocore-backup remote`),
    ],
    [
      "a snapshot name the repository does not hold, with the repository given as a flag",
      () =>
        resolveRemoteSnapshot(
          repo.backend,
          "20260101T000000Z_00000000000000aa",
          { now: new Date(), reporter: SILENT },
          given,
        ),
      new RegExp(`; see them with: atocore-backup remote list${escape(given)}$`),
    ],
    [
      "latest of a repository with no snapshot, with the repository given as a flag",
      () => resolveRemoteSnapshot(repo.backend, "latest", { now: new Date(), reporter: SILENT }, given),
      new RegExp(`; push one first with: atocore-backup push --latest${escape(given)}$`),
    ],
  ];
  await steps(t, cases);
});

/** This tool's config written at `config` but for `fields` (a JSON number past every double, 1e999, written as it is). */
function writeConfig(config: string, fields: Record<string, unknown>, recipient = generateIdentity().recipient): void {
  const base = { format: REPOSITORY_FORMAT, version: 1, id: "0".repeat(32), recipients: [recipient], created_at: "x" };
  const text = JSON.stringify({ ...base, ...fields }, (_, value) => value === Infinity ? "INF" : value);
  Deno.writeTextFileSync(config, text.replace('"INF"', "1e999"));
}

Deno.test("remote errors: a config that is not this tool's, or not a file, is refused in one line saying what to do", async (t) => {
  using dir = tempDir("atocore-remote-errors-");
  const { recipient } = generateIdentity();
  const cases: [string, () => unknown, RegExp][] = [];
  // a config no command can use: one line saying what was found and what to do, never to run 'remote verify' (which
  // would say the same again): another tool's repository given, or this tool's config to put back from a copy
  const unusable = (what: string) =>
    new RegExp(
      `^the config of file://\\S+ ${what}: not a repository of this tool, or its config was altered; nothing was ` +
        "done; check the repository given \\(--remote or ATOCORE_BACKUP_REMOTE\\), and if it is this tool's, put " +
        "its config back from a copy \\(its id and recipients are pinned in remotes/<key>/pin.json of the backup " +
        "folder of each host that pushed there\\)$",
    );
  const configs: [string, (config: string) => void, RegExp][] = [
    [
      "a config that is not JSON (another tool's)",
      (config) => Deno.writeTextFileSync(config, "<?xml?>"),
      unusable("is not JSON"),
    ],
    [
      "a config of another tool",
      (config) => Deno.writeTextFileSync(config, JSON.stringify({ format: "restic" })),
      unusable('has format "restic"'),
    ],
    ["a config that is a list", (config) => Deno.writeTextFileSync(config, "[]"), unusable("is not a JSON object")],
    ["a version that is text", (config) => writeConfig(config, { version: "1" }), unusable('has version "1"')],
    ["a version past every number", (config) => writeConfig(config, { version: 1e999 }), unusable("has version null")],
    [
      "a recipient in upper case",
      (config) => writeConfig(config, { recipients: [recipient.toUpperCase()] }, recipient),
      unusable("lists recipients not as this tool writes them \\(lower case, sorted, each once\\)"),
    ],
    [
      "a later version",
      (config) => writeConfig(config, { version: 2 }),
      /^file:\/\/\S+ is repository format version 2; this tool reads version 1: use a newer atocore-backup$/,
    ],
    ["a config that is a FIFO", (config) => mkfifo(config), unusable("is not a regular file")],
    ["a config that is a folder", (config) => Deno.mkdirSync(config), unusable("is not a regular file")],
    [
      "a config past its bound (sparse)",
      (config) => {
        Deno.writeFileSync(config, new Uint8Array(0));
        Deno.truncateSync(config, 1 << 30);
      },
      unusable(`has ${1 << 30} bytes, more than the \\d+ an object of its kind can have`),
    ],
  ];
  for (const [label, make, pattern] of configs) {
    const place = join(dir.path, `config-${cases.length}`);
    Deno.mkdirSync(place);
    make(join(place, "config"));
    cases.push([label, () => openRepository(openFolderBackend(place)), pattern]);
  }
  await steps(t, cases);
});

Deno.test("remote errors: an S3 listing that never ends is refused in one line; a key listed twice is one object", async () => {
  let pages = 0;
  let repeat = true;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    pages += 1;
    const token = repeat ? "again" : `t${pages}`;
    const more = repeat || pages < 3;
    const key = "<Contents><Key>p/snapshots/x</Key><Size>1</Size></Contents>";
    return new Response(
      `<ListBucketResult>${key}${key}<IsTruncated>${more}</IsTruncated>` +
        (more ? `<NextContinuationToken>${token}</NextContinuationToken>` : "") + "</ListBucketResult>",
    );
  });
  try {
    const backend = s3At(server.addr.port);
    assert.match(
      await messageOf(() => backend.list("snapshots/")),
      /^the listing of snapshots\/ in s3:\/\/bucket\/p .* does not end \(2 pages, 1 objects, a page token given twice\): /,
    );
    assert.equal(pages, 2, "stopped at the repeated token");
    repeat = false;
    pages = 0;
    assert.deepEqual(await backend.list("snapshots/"), [{ name: "snapshots/x", size: 1 }], "one object");
  } finally {
    await server.shutdown();
  }
});

Deno.test("remote errors: a repository with no config whose listing is refused says why, not that there is none", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const listing = new URL(request.url).searchParams.has("list-type");
    const code = listing ? "AccessDenied" : "NoSuchKey";
    return new Response(`<Error><Code>${code}</Code><Message>x</Message></Error>`, { status: listing ? 403 : 404 });
  });
  try {
    const backend = s3At(server.addr.port);
    const message = await messageOf(() => openRepository(backend));
    assert.match(message, /AccessDenied/);
    assert.doesNotMatch(message, /no repository at/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("remote errors: an S3 body without a length is read whole within its bound, refused as soon as it passes it", async () => {
  let sent = 0;
  let ending: Uint8Array | null = null; // a body that ends, in pieces of odd sizes; else an endless one
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const whole = ending;
    let at = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) { // chunked: no Content-Length, as a lying server may send it
        if (whole === null) {
          controller.enqueue(new Uint8Array(64 * 1024));
          sent += 64 * 1024;
        } else if (at < whole.length) {
          controller.enqueue(whole.slice(at, at += 1 + (at % 99_991)));
        } else controller.close();
      },
    });
    return new Response(body, { headers: { "x-amz-request-id": "tx1" } }); // as S3 sends with every object
  });
  try {
    const backend = s3At(server.addr.port, { retry: { attempts: 1, baseMs: 1, maxMs: 1 } });
    const bound = 16 << 20;
    ending = new Uint8Array((1 << 20) + 3).map((_, index) => index * 7 + (index >> 9));
    assert.deepEqual(await backend.read("snapshots/x", undefined, bound), ending, "read whole");
    assert.deepEqual(await backend.read("snapshots/x", new Uint8Array(100), bound), ending, "past a lent buffer");
    const into = new Uint8Array(ending.length);
    assert.equal((await backend.read("snapshots/x", into, bound)).buffer, into.buffer, "in a lent buffer that fits");
    ending = null;
    assert.match(
      await messageOf(() => backend.read("snapshots/x", undefined, bound)),
      new RegExp(
        `^snapshots/x in s3://bucket/p at http://127\\.0\\.0\\.1:\\d+ came with more than the ${bound} bytes an ` +
          "object of its kind can have \\(no length was announced; the read stopped there\\); the repository was " +
          "altered: run 'remote verify'$",
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 300)); // a body still read would go on meanwhile
    assert.ok(sent < 2 * bound, `${sent} bytes sent for a bound of ${bound}: the body was read on`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("remote errors: an S3 server refusing to create an object it does not hold says so with the next step", async () => {
  let holds = false;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    if (new URL(request.url).searchParams.has("list-type")) {
      return new Response("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
    }
    if (request.method === "PUT") { // If-None-Match: * refused, for an object the server never had
      return new Response("<Error><Code>PreconditionFailed</Code></Error>", { status: 412 });
    }
    if (holds) return new Response(request.method === "HEAD" ? null : "other bytes", { headers: { etag: '"0"' } });
    return new Response(request.method === "HEAD" ? null : "<Error><Code>NoSuchKey</Code></Error>", { status: 404 });
  });
  try {
    const backend = s3At(server.addr.port, { retry: { attempts: 1, baseMs: 1, maxMs: 1 } });
    const message = await messageOf(() => initRepository(backend, [generateIdentity().recipient]));
    assert.match(
      message,
      new RegExp(
        "^S3 PUT config in s3://bucket/p at http://127\\.0\\.0\\.1:\\d+ failed: HTTP 412 \\(the server refused to " +
          "create it as existing, yet holds no such object\\); check that nothing else writes to this repository, " +
          "then run 'remote verify'$",
      ),
    );
    holds = true; // one that is there is the caller's to judge, as before
    await assert.rejects(backend.write("packs/ab/x", bytes("y"), { exclusive: true }), ObjectExistsError);
  } finally {
    await server.shutdown();
  }
});

Deno.test("remote errors: an S3 body trickled a byte at a time is given up after the stall timeout", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    let timer: ReturnType<typeof setInterval> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        timer = setInterval(() => controller.enqueue(new Uint8Array(1)), 50); // never silent for a whole timeout
      },
      cancel() {
        clearInterval(timer);
      },
    });
    return new Response(body, { headers: { "content-length": String(1 << 20), "x-amz-request-id": "tx1" } });
  });
  try {
    const backend = s3At(server.addr.port, {
      timeouts: { answerMs: 2000, stallMs: 500, uploadBytesPerSecond: 256 * 1024 },
      retry: { attempts: 1, baseMs: 1, maxMs: 1 },
    });
    const begun = performance.now();
    const message = await messageOf(() => backend.read("packs/ab/x"));
    assert.match(message, /no answer|no progress|reading the answer/);
    assert.ok(performance.now() - begun < 5000, "given up, not read for ever");
  } finally {
    await server.shutdown();
  }
});

Deno.test("a public object nested deeper than the format's is refused before it is parsed; one over 8 MiB unread", async () => {
  using dir = tempDir();
  const folder = openFolderBackend(join(dir.path, "repo"));
  const bytes = (text: string) => new TextEncoder().encode(text);
  await folder.write("leases/deep", bytes("[".repeat(2_000_000)), { exclusive: true });
  await assert.rejects(getPublic(folder, "leases/deep"), /leases\/deep in .* is not JSON; the repository was altered/);
  const brackets = JSON.stringify({ note: "[".repeat(100), packs: [{ id: "a" }] }); // inside a string: not nesting
  await folder.write("leases/fine", bytes(brackets), { exclusive: true });
  assert.deepEqual(await getPublic(folder, "leases/fine"), JSON.parse(brackets));
  await folder.write("leases/large", bytes(" ".repeat(9 << 20) + "{}"), { exclusive: true });
  await assert.rejects(getPublic(folder, "leases/large"), ObjectTooLargeError);
});

Deno.test("a public object of 8 MB of {}, (a writer's lease) is refused before it is parsed, in under 150 MiB", async () => {
  using dir = tempDir();
  const folder = openFolderBackend(join(dir.path, "repo"));
  const text = `{"created_at":"2026-12-01T00:00:00Z","packs":[${"{},".repeat(((8 << 20) - 100) / 3)}{}]}`;
  await folder.write("leases/0123456789abcdef", new TextEncoder().encode(text), { exclusive: true });
  // a process of its own, whose peak (VmHWM) is this reading's alone
  const module = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const script = `import { getPublic } from ${module("../../src/repo/boundary.ts")};
    import { openFolderBackend } from ${module("../../src/repo/folder.ts")};
    const read = await getPublic(openFolderBackend(Deno.args[0]), "leases/0123456789abcdef").then(() => "parsed", (e) => e.message);
    console.log(JSON.stringify({ read, peak: Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\\s+(\\d+)/)[1] }));`;
  const run = new Deno.Command(Deno.execPath(), { args: ["eval", script, join(dir.path, "repo")], stderr: "inherit" })
    .outputSync();
  assert.ok(run.success);
  const { read, peak } = JSON.parse(new TextDecoder().decode(run.stdout));
  assert.match(read, /leases\/0123456789abcdef in .* is not JSON; the repository was altered/);
  assert.ok(Number(peak) < 150 * 1024, `peak ${Math.round(Number(peak) / 1024)} MiB`);
});
