/**
 * An SFTP repository through the CLI (under the compile permissions) against a real OpenSSH sshd started for this
 * file: the full round trip; refusals (wrong key, unknown and changed host key, no common cipher, a folder the SSH user
 * cannot write, a full remote disk); the server stopped in the middle of a push, and the next push reusing what was sent.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, type CliRun, cliRunOf, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { liveDigest, NOBODY_GID, NOBODY_UID, treeDigest } from "../_faults.ts";
import type { SampleStore } from "../../scripts/sample_store.ts";
import { mountTmpfs } from "../_mount.ts";
import { updateRows } from "../_repo.ts";
import {
  ageKeyPair,
  assertVerified,
  authKeyEnv,
  createAndPush,
  type KeyPair,
  oneErrorLine,
  remoteNames,
  snapshotAsStore,
} from "../_remote_cli.ts";
import { type Sshd, startSshd } from "../_servers/sshd.ts";

const sshd = await startSshd();
let serial = 0;

/** A folder `nobody` owns on the server, and the URL of a repository in it. */
function remoteFolder(server: Sshd): { folder: string; url: string } {
  const folder = join(server.data, `e${++serial}`);
  Deno.mkdirSync(folder);
  Deno.chownSync(folder, NOBODY_UID, NOBODY_GID);
  return { folder, url: server.url(`${folder}/repo`) };
}

/** The environment of a store and an SFTP repository (no identity: pushing needs none; `key`'s auth key, if given). */
function sftpEnv(server: Sshd, store: SampleStore, url: string, key?: KeyPair): Record<string, string> {
  return {
    ...storeEnv(store),
    ...(key ? authKeyEnv(key) : {}),
    ATOCORE_BACKUP_REMOTE: url,
    ATOCORE_SSH_KEY_FILE: server.clientKey,
    ATOCORE_SSH_KNOWN_HOSTS: server.knownHosts,
  };
}

async function init(env: Record<string, string>, key: KeyPair): Promise<CliRun> {
  return await runCli(["remote", "init", "--recipient", key.recipient], { env });
}

/** The run failed with one error line matching `pattern`, exit `code`, and no private key in the output. */
/** A repository in a new folder on `server` (its key pair in `work`), with one snapshot of `store` pushed to it. */
async function pushedRepository(
  server: Sshd,
  store: SampleStore,
  work: string,
): Promise<{ key: KeyPair; folder: string; env: Record<string, string> }> {
  const key = ageKeyPair(work);
  const { folder, url } = remoteFolder(server);
  const env = sftpEnv(server, store, url, key);
  assert.equal((await init(env, key)).code, 0);
  await createAndPush(env);
  return { key, folder, env };
}

/** The first pack of the repository in `folder`: its folder of packs, shard and name. */
function firstPack(folder: string): { packs: string; shard: string; pack: string } {
  const packs = join(folder, "repo", "packs");
  const [shard] = [...Deno.readDirSync(packs)].map((entry) => entry.name);
  const [pack] = [...Deno.readDirSync(join(packs, shard))].map((entry) => entry.name);
  return { packs, shard, pack };
}

function assertRefused(run: CliRun, code: number, pattern: RegExp, what: string): void {
  assert.equal(run.code, code, `${what}: ${run.stdout}${run.stderr}`);
  const line = oneErrorLine(run, what);
  assert.match(line, pattern, `${what}: ${line}`);
  assert.doesNotMatch(run.stdout + run.stderr, /PRIVATE KEY|b3BlbnNzaC1rZXktdjE/, `${what}: key material shown`);
}

if (sshd !== null) {
  const server = sshd;

  Deno.test("sftp CLI: init, push twice, list, verify both depths, restore live and --to, drill, cleanup", async () => {
    using store = tempStore({ dbMiB: 16, chromaMiB: 2 });
    using work = tempDir("atocore-sftp-");
    const key = ageKeyPair(work.path);
    const { folder, url } = remoteFolder(server);
    const env = sftpEnv(server, store, url, key);
    const withIdentity = { ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile };
    assert.equal((await init(env, key)).code, 0);
    assert.ok(Deno.statSync(join(folder, "repo", "config")).isFile, "the repository is on the server");
    const first = await createAndPush(env);
    assert.ok(first.push.bytes_sent > first.push.bytes_total * 0.8, "the first push sends the store");
    updateRows(store.db, 0.01);
    const second = await createAndPush(env);
    assert.ok(second.push.bytes_sent < second.push.bytes_total * 0.1, "the second push sends what changed");
    assert.deepEqual(await remoteNames(env), [first.push.snapshot, second.push.snapshot]);
    await assertVerified(env);
    await assertVerified(withIdentity, ["--read-data"]);

    const snapshots = join(store.backupDir, "snapshots");
    const restored = await runCli(["restore", first.stamp, "--from-remote", "--confirm-service-stopped"], {
      env: withIdentity,
    });
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(liveDigest(store), snapshotAsStore(join(snapshots, first.stamp)), "live = snapshot");
    const to = join(work.path, "rebuilt");
    const rebuilt = await runCli(["restore", second.stamp, "--from-remote", "--to", to], { env: withIdentity });
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.deepEqual(treeDigest(to), snapshotAsStore(join(snapshots, second.stamp)));

    const junit = join(work.path, "drill.xml");
    const drill = await runCli(["drill", "--from-remote", "--latest", "--junit", junit], { env: withIdentity });
    assert.equal(drill.code, 0, drill.stdout + drill.stderr);
    assert.equal((drill.json as { stamp: string }).stamp, second.stamp);
    assert.match(Deno.readTextFileSync(junit), /<testsuite [^>]*failures="0"/);

    const policy = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
    const cleaned = await runCli(["remote", "cleanup", "--confirm", ...policy], { env });
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.deepEqual(await remoteNames(env), [second.push.snapshot]);
    await assertVerified(withIdentity, ["--read-data"]);
  });

  Deno.test("sftp CLI: wrong key, unknown and changed host key, a denied folder: one line each, nothing done", async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
    using work = tempDir("atocore-sftp-");
    const key = ageKeyPair(work.path);
    const { folder, url } = remoteFolder(server);
    const env = sftpEnv(server, store, url, key);
    const otherKey = join(work.path, "other_ed25519");
    await new Deno.Command("ssh-keygen", { args: ["-q", "-t", "ed25519", "-N", "", "-f", otherKey] }).output();
    const wrongKey = await init({ ...env, ATOCORE_SSH_KEY_FILE: otherKey }, key);
    assertRefused(wrongKey, 2, /refused the SSH key .*other_ed25519 for user nobody/, "wrong key");
    const publicKey = await init({ ...env, ATOCORE_SSH_KEY_FILE: `${otherKey}.pub` }, key);
    assertRefused(publicKey, 2, /the SSH key .*other_ed25519\.pub is a public key; give the private key/, "public key");
    const secretAsHosts = await init({ ...env, ATOCORE_SSH_KNOWN_HOSTS: key.keyFile }, key);
    assertRefused(secretAsHosts, 2, /key\.txt holds a secret key, not known hosts/, "identity as known_hosts");

    const empty = join(work.path, "known_hosts_empty");
    Deno.writeTextFileSync(empty, "");
    const unknown = await init({ ...env, ATOCORE_SSH_KNOWN_HOSTS: empty }, key);
    assertRefused(
      unknown,
      3,
      /host key of \[127\.0\.0\.1\]:\d+ is not in .*SHA256:[A-Za-z0-9+/]{43}.*ssh-keyscan/,
      "unknown",
    );
    const typo = await init({ ...env, ATOCORE_SSH_KNOWN_HOSTS: join(work.path, "known_hots") }, key);
    assertRefused(typo, 3, /is not in .*known_hots \(no such file: check the path\)/, "missing known_hosts");
    const changed = join(work.path, "known_hosts_changed");
    const other = Deno.readTextFileSync(`${otherKey}.pub`).split(" ").slice(0, 2).join(" ");
    Deno.writeTextFileSync(changed, `[127.0.0.1]:${server.port} ${other}\n`);
    const swapped = await init({ ...env, ATOCORE_SSH_KNOWN_HOSTS: changed }, key);
    assertRefused(swapped, 3, /CHANGED: the server offered ssh-ed25519 SHA256:.*ssh-keygen -R/, "changed host key");
    const created = await runCli(["create", "--push"], { env: { ...env, ATOCORE_SSH_KNOWN_HOSTS: changed } });
    assert.equal(created.code, 1, created.stderr); // the snapshot is made: "nothing was done" would be false
    const pushError = (created.json as { push_error: string }).push_error;
    assert.match(pushError, /CHANGED: .*nothing was pushed;.* the local snapshot \d{8}T\d{6}Z is fine \(validated\)/);
    assert.doesNotMatch(created.stdout + created.stderr, /nothing was done/);
    const rsaKey = join(work.path, "other_rsa"); // known_hosts holds the server under a key type it no longer offers
    await new Deno.Command("ssh-keygen", { args: ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsaKey] }).output();
    const otherType = join(work.path, "known_hosts_rsa");
    const rsa = Deno.readTextFileSync(`${rsaKey}.pub`).split(" ").slice(0, 2).join(" ");
    Deno.writeTextFileSync(otherType, `[127.0.0.1]:${server.port} ${rsa}\n`);
    const typeGone = await init({ ...env, ATOCORE_SSH_KNOWN_HOSTS: otherType }, key);
    assertRefused(
      typeGone,
      3,
      /offers no host key of the types .*known_hosts_rsa holds for it: .*ssh-keygen -R/,
      "type",
    );

    const unmounted = `${folder}/not-mounted`; // the repository's parent is missing: nothing is made above the root
    const noParent = await init({ ...env, ATOCORE_BACKUP_REMOTE: server.url(`${unmounted}/repo`) }, key);
    assertRefused(noParent, 3, /parent folder does not exist; mount the disk or create that folder/, "no parent");
    assert.deepEqual([...Deno.readDirSync(folder)], [], "no parent folder was made");

    Deno.chownSync(folder, 0, 0);
    Deno.chmodSync(folder, 0o755);
    const denied = await init(env, key);
    assertRefused(denied, 1, new RegExp(`denies making the folder ${folder}/repo \\(permission denied\\)`), "denied");
    assert.deepEqual([...Deno.readDirSync(folder)], [], "nothing was made");
  });

  Deno.test("sftp CLI: a server offering only ChaCha20-Poly1305 is one line naming the ciphers to enable", async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
    using work = tempDir("atocore-sftp-");
    const key = ageKeyPair(work.path);
    const { folder, url } = remoteFolder(server);
    try {
      await server.restartWith(["Ciphers chacha20-poly1305@openssh.com"]);
      const refused = await init(sftpEnv(server, store, url, key), key);
      assertRefused(refused, 1, /offers none of the ciphers this tool uses \(aes128-ctr, .*Ciphers/, "chacha only");
      assert.deepEqual([...Deno.readDirSync(folder)], [], "nothing was made");
    } finally {
      await server.restartWith([]);
    }
    assert.equal((await init(sftpEnv(server, store, url, key), key)).code, 0, "the default ciphers connect");
  });

  Deno.test("sftp CLI: config shows the SSH key and known_hosts files with their sources", async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
    const env = sftpEnv(server, store, server.url("/srv/x"));
    const fromEnv = await runCli(["config", "--known-hosts", "kh"], { env, cwd: server.dir });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    const remote = (fromEnv.json as { remote: Record<string, unknown> }).remote;
    assert.deepEqual(remote.sshKeyFile, { value: server.clientKey, source: "env", from: "ATOCORE_SSH_KEY_FILE" });
    assert.deepEqual(remote.knownHosts, { value: join(server.dir, "kh"), source: "flag", from: "--known-hosts" });
    const { ATOCORE_SSH_KNOWN_HOSTS: _, ...withoutKnownHosts } = env;
    const byDefault = await runCli(["config"], { env: withoutKnownHosts });
    assert.deepEqual((byDefault.json as { remote: Record<string, unknown> }).remote.knownHosts, {
      value: join(Deno.env.get("HOME") ?? "/root", ".ssh", "known_hosts"),
      source: "default",
      from: "$HOME",
    });
    const pasted = await runCli(["config"], {
      env: { ...env, ATOCORE_SSH_KEY_FILE: Deno.readTextFileSync(server.clientKey) },
    });
    assertRefused(pasted, 2, /ATOCORE_SSH_KEY_FILE was given a private key itself/, "a pasted key");
  });

  Deno.test("sftp CLI: a full remote disk fails the push naming it; nothing is listed", async () => {
    // under the 8 MiB a pack fills to: one upload meets the full disk alone (with two, one could fail after the other
    // had removed its staged file, and find room enough to blame the server instead)
    using store = tempStore({ dbMiB: 3, chromaMiB: 1 });
    using work = tempDir("atocore-sftp-");
    const key = ageKeyPair(work.path);
    const { folder } = remoteFolder(server);
    const mount = mountTmpfs(folder, "2m");
    if (typeof mount === "string") throw new Error(mount);
    using _mount = mount;
    Deno.chownSync(folder, NOBODY_UID, NOBODY_GID);
    const env = sftpEnv(server, store, server.url(folder), key);
    assert.equal((await init(env, key)).code, 0);
    assert.equal((await runCli(["create", "--chroma"], { env })).code, 0);
    const push = await runCli(["push", "--latest"], { env });
    assertRefused(push, 1, /no space left on the SFTP server for packs\/.* bytes free/, "full disk");
    assert.doesNotMatch(push.stderr, /\(remote cleanup --confirm\)/, "a cleanup frees nothing at once: not the fix");
    assert.deepEqual(await remoteNames(env), [], "nothing listed");
  });

  Deno.test("sftp CLI: the server stopped in the middle of a push; the next push succeeds and reuses what was sent", async () => {
    using store = tempStore({ dbMiB: 48, chromaMiB: 2, seed: 7 });
    using work = tempDir("atocore-sftp-");
    const key = ageKeyPair(work.path);
    const { folder, url } = remoteFolder(server);
    const env = sftpEnv(server, store, url, key);
    assert.equal((await init(env, key)).code, 0);
    assert.equal((await runCli(["create", "--chroma"], { env })).code, 0);
    const child = cliProcess(["push", "--latest"], { env }).spawn();
    const output = child.output();
    const packs = join(folder, "repo", "packs");
    while (countFiles(packs) < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await server.stop();
    let failed: CliRun;
    try {
      failed = cliRunOf(await output);
    } finally {
      await server.start();
    }
    const sent = countFiles(packs);
    assertRefused(
      failed,
      1,
      /^atocore-backup: error: .*sftp:\/\/nobody@127\.0\.0\.1:\d+\/\/.*failed after \d+ attempts/,
      "outage",
    );
    assert.deepEqual(await remoteNames(env), [], "nothing listed");
    const next = await runCli(["push", "--latest"], { env });
    assert.equal(next.code, 0, next.stderr);
    const pushed = (next.json as { pushed: { packs_reused: number }[] }).pushed[0];
    // A pack whose rename the server made just before it stopped, unanswered, is not known to have been sent.
    assert.ok(pushed.packs_reused >= 1, `reused ${pushed.packs_reused} of the ${sent} packs sent`);
    await assertVerified({ ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile }, ["--read-data"]);
  });

  Deno.test("sftp CLI: remote cleanup removes what killed writers left in .tmp/ once older than the grace", async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
    using work = tempDir("atocore-sftp-");
    const { folder, env } = await pushedRepository(server, store, work.path);
    const staging = join(folder, "repo", ".tmp");
    for (const name of ["packs_ab_cd.left-by-a-kill", "packs_ab_ef.being-written"]) {
      Deno.writeTextFileSync(join(staging, name), "partial");
    }
    Deno.mkdirSync(join(staging, "a-folder"));
    const old = new Date(Date.now() - 30 * 3600_000);
    for (const name of ["packs_ab_cd.left-by-a-kill", "a-folder"]) Deno.utimeSync(join(staging, name), old, old);
    const policy = ["--keep-daily", "7", "--keep-weekly", "0", "--keep-monthly", "0"];
    const dry = await runCli(["remote", "cleanup", ...policy], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual((dry.json as { staging_removed: string[] }).staging_removed, [".tmp/packs_ab_cd.left-by-a-kill"]);
    assert.equal([...Deno.readDirSync(staging)].length, 3, "a dry run removes nothing");
    const run = await runCli(["remote", "cleanup", "--confirm", ...policy], { env });
    assert.deepEqual((run.json as { staging_removed: string[] }).staging_removed, [".tmp/packs_ab_cd.left-by-a-kill"]);
    const left = [...Deno.readDirSync(staging)].map((entry) => entry.name).sort();
    assert.deepEqual(left, ["a-folder", "packs_ab_ef.being-written"], "within the grace, and a folder, are kept");

    const victim = join(work.path, "victim"); // .tmp/ made a link by hand: nothing is removed through it
    Deno.mkdirSync(victim);
    Deno.writeTextFileSync(join(victim, "important.txt"), "keep");
    Deno.utimeSync(join(victim, "important.txt"), old, old);
    Deno.chmodSync(work.path, 0o755);
    Deno.renameSync(staging, `${staging}.aside`);
    Deno.symlinkSync(victim, staging);
    const linked = await runCli(["remote", "cleanup", "--confirm", ...policy], { env });
    assert.notEqual(linked.code, 0, linked.stderr);
    assert.match(linked.stderr, /\.tmp on the SFTP server is not a folder \(a symbolic link\?\)/);
    assert.deepEqual([...Deno.readDirSync(victim)].map((entry) => entry.name), ["important.txt"]);
  });

  Deno.test("sftp CLI: a snapshot object swapped for a link is an error for verify, and cleanup deletes nothing", async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
    using work = tempDir("atocore-sftp-");
    const { folder, env } = await pushedRepository(server, store, work.path);
    const snapshots = join(folder, "repo", "snapshots");
    const [name] = [...Deno.readDirSync(snapshots)].map((entry) => entry.name);
    const elsewhere = join(folder, "elsewhere");
    Deno.renameSync(join(snapshots, name), elsewhere);
    Deno.symlinkSync(elsewhere, join(snapshots, name));
    const verified = await runCli(["remote", "verify"], { env });
    assert.equal(verified.code, 1, verified.stderr);
    assert.ok(
      (verified.json as { errors: string[] }).errors.includes(
        `snapshots/${name}: a symbolic link, folder or special file where objects are, made by hand; put the object back from a copy of the repository, or remove it`,
      ),
      verified.stdout,
    );
    const policy = ["--keep-daily", "7", "--keep-weekly", "0", "--keep-monthly", "0", "--confirm"];
    const cleanup = await runCli(["remote", "cleanup", ...policy], { env });
    assert.equal(cleanup.code, 1, cleanup.stderr);
    const result = cleanup.json as { errors: string[]; refs_removed: string[]; packs_condemned: number };
    assert.match(
      result.errors[0],
      new RegExp(`^snapshots/${name}: a symbolic link, folder .*nothing deleted this run`),
    );
    assert.deepEqual([result.refs_removed, result.packs_condemned], [[], 0]);
  });

  Deno.test("sftp CLI: a writer's folders nested past the path limit are one name, not an object: verify goes on", async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
    using work = tempDir("atocore-sftp-");
    const { folder, env } = await pushedRepository(server, store, work.path);
    const cwd = Deno.cwd();
    try {
      Deno.chdir(join(folder, "repo", "packs"));
      for (const segment of ["zz", ...Array.from({ length: 1100 }, () => "aaaa")]) { // past PATH_MAX, made relative
        Deno.mkdirSync(segment);
        Deno.chdir(segment);
      }
    } finally {
      Deno.chdir(cwd);
    }
    const verified = await runCli(["remote", "verify"], { env });
    assert.equal(verified.code, 0, verified.stderr);
    assert.deepEqual((verified.json as { notes: string[] }).notes, [
      "packs/zz/aaaa/: not an object of this format; ignored",
    ]);
  });

  Deno.test("sftp CLI: a pack swapped for a FIFO is refused at once by restore, named, never opened", async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
    using work = tempDir("atocore-sftp-");
    const { folder, env, key } = await pushedRepository(server, store, work.path);
    const { packs, shard, pack } = firstPack(folder);
    Deno.removeSync(join(packs, shard, pack));
    assert.ok(new Deno.Command("mkfifo", { args: [join(packs, shard, pack)] }).outputSync().success);
    Deno.chownSync(join(packs, shard, pack), NOBODY_UID, NOBODY_GID);
    const stamp = [...Deno.readDirSync(join(store.backupDir, "snapshots"))][0].name;
    const started = performance.now();
    const run = await runCli(["restore", stamp, "--from-remote", "--to", join(work.path, "to")], {
      env: { ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile },
    });
    assert.equal(run.code, 3, run.stderr);
    assert.match(
      oneErrorLine(run, "fifo"),
      new RegExp(`packs/${shard}/${pack} on the SFTP server is not a regular file`),
    );
    assert.ok(performance.now() - started < 30_000, "the restore waited on the FIFO (a stall, retried)");
  });

  Deno.test("sftp CLI: a pack the SSH user may not read: restore names the access (exit 1), not a damaged snapshot", async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
    using work = tempDir("atocore-sftp-");
    const { folder, env, key } = await pushedRepository(server, store, work.path);
    const { packs, shard, pack } = firstPack(folder);
    Deno.chmodSync(join(packs, shard, pack), 0o000);
    const stamp = [...Deno.readDirSync(join(store.backupDir, "snapshots"))][0].name;
    const to = join(work.path, "to");
    const run = await runCli(["restore", stamp, "--from-remote", "--to", to], {
      env: { ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile },
    });
    assertRefused(
      run,
      1,
      new RegExp(
        `fetching \\S+ stopped: the SFTP server denies reading \\S+/packs/${shard}/${pack} \\(permission denied\\)`,
      ),
      "denied pack",
    );
    assert.doesNotMatch(run.stderr, /cannot be read intact/);
  });

  Deno.test("sftp CLI: stop the server", async () => await server[Symbol.asyncDispose]());
}

/** Regular files below `path` (0 when it does not exist yet). */
function countFiles(path: string): number {
  let count = 0;
  try {
    for (const entry of Deno.readDirSync(path)) {
      count += entry.isDirectory ? countFiles(join(path, entry.name)) : entry.isFile ? 1 : 0;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return count;
}
