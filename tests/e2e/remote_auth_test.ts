/**
 * Snapshot authentication through the CLI: `remote auth-key` derives the key file from the identity; a push needs it
 * (or --allow-unauthenticated); restore, drill and `remote verify` with the identity refuse a snapshot that a writer
 * of the repository forged, renamed or copied in, naming its refs and touching no live data; a key file without every
 * recipient's key is warned about, and a stamp pushed before it gained one is sent again, saying why.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, hkdfSync } from "node:crypto";
import { join } from "node:path";
import { bech32Decode } from "../../src/crypto/bech32.ts";
import { parseIdentity } from "../../src/crypto/age.ts";
import { deriveAuthKey, snapshotMac } from "../../src/crypto/auth_key.ts";
import { liveDigest } from "../_faults.ts";
import { snapshotsDir } from "../../src/snapshot/layout.ts";
import { type CliRun, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import {
  ageKeyPair,
  assertVerified,
  authKeyFileFor,
  createAndPush,
  oneErrorLine,
  type PushedJson,
  remoteNames,
  type RemoteStore,
  remoteStore,
} from "../_remote_cli.ts";

/** The identity of the key file at `path` (its one `AGE-SECRET-KEY-1…` line). */
function secretLine(path: string): string {
  return Deno.readTextFileSync(path).split("\n").find((line) => line.startsWith("AGE-SECRET-KEY-1"))!;
}

/** The refs of snapshot `name` in the folder repository at `repoDir`, parsed. */
function readRefs(repoDir: string, name: string): { auth?: { recipient: string; mac: string }[] } {
  return JSON.parse(Deno.readTextFileSync(join(repoDir, "refs", name)));
}

/** `restore --from-remote` over the live store, `drill --from-remote` and `remote verify --read-data` of `name`. */
async function readers(r: RemoteStore, name: string, extra: string[] = []): Promise<Record<string, CliRun>> {
  const env = r.envWithIdentity;
  return {
    restore: await runCli(["restore", name, "--from-remote", "--confirm-service-stopped", ...extra], { env }),
    drill: await runCli(["drill", name, "--from-remote", ...extra], { env }),
    verify: await runCli(["remote", "verify", "--read-data", ...extra], { env }),
  };
}

/** Each reader refused snapshot `name` naming its refs with `reason`, and the live store is as it was. */
async function assertRefusedByAll(r: RemoteStore, name: string, reason: RegExp, extra: string[] = []): Promise<void> {
  const live = liveDigest(r.store);
  const runs = await readers(r, name, extra);
  const refs = new RegExp(`refs/${name}: ${reason.source}`);
  assert.equal(runs.restore.code, 3, `restore: ${runs.restore.stderr}`);
  assert.match(oneErrorLine(runs.restore, "restore"), refs);
  assert.match(runs.restore.stderr, /nothing was changed|refused/);
  assert.equal(runs.drill.code, 1, `drill: ${runs.drill.stdout}${runs.drill.stderr}`);
  assert.match(JSON.stringify(runs.drill.json), refs, "the drill's failed check names the refs");
  assert.equal(runs.verify.code, 1, `verify: ${runs.verify.stdout}`);
  assert.match((runs.verify.json as { errors: string[] }).errors.join("\n"), refs);
  assert.deepEqual(liveDigest(r.store), live, "live data untouched");
}

Deno.test("remote auth-key: prints one line per identity, the same each time, the HKDF of the X25519 secret", async () => {
  using work = tempDir("atocore-auth-key-");
  const first = ageKeyPair(work.path, "a.txt");
  const second = ageKeyPair(work.path, "b.txt");
  const both = join(work.path, "both.txt");
  Deno.writeTextFileSync(both, `${Deno.readTextFileSync(first.keyFile)}\n${Deno.readTextFileSync(second.keyFile)}`);
  const runs = [
    await runCli(["remote", "auth-key", "--identity", both]),
    await runCli(["remote", "auth-key"], { env: { ATOCORE_BACKUP_IDENTITY_FILE: both } }),
  ];
  for (const run of runs) assert.equal(run.code, 0, run.stderr);
  assert.equal(runs[0].stdout, runs[1].stdout, "deterministic");
  const lines = runs[0].stdout.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
  const expected = [first, second].map((key) => {
    const secret = bech32Decode(secretLine(key.keyFile))!.bytes;
    const k = Buffer.from(hkdfSync("sha256", secret, "atocore-backup", "snapshot-authentication-v1", 32));
    return `${key.recipient} ${k.toString("hex")}`;
  });
  assert.deepEqual(lines, expected);
  assert.doesNotMatch(runs[0].stdout, /AGE-SECRET-KEY/, "the identity is not printed");
  const json = await runCli(["remote", "auth-key", "--identity", first.keyFile, "--json"]);
  assert.deepEqual(json.json, { keys: [{ recipient: first.recipient, key: expected[0].split(" ")[1] }] });

  const missing = await runCli(["remote", "auth-key"]);
  assert.equal(missing.code, 2);
  assert.match(oneErrorLine(missing, "no identity"), /remote auth-key needs the identity/);
});

/** A repository and a store holding one snapshot, with the environment of a host that has no auth key. */
async function storeWithoutKey(): Promise<{ r: RemoteStore; noKey: Record<string, string> }> {
  const r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { ATOCORE_BACKUP_AUTH_KEY_FILE: _, ...noKey } = r.env;
  const created = await runCli(["create", "--chroma"], { env: noKey });
  assert.equal(created.code, 0, created.stderr);
  return { r, noKey };
}

Deno.test("remote auth: a push or create --push needs the auth key; without it nothing is made or pushed", async () => {
  const { r, noKey } = await storeWithoutKey();
  using _ = r;
  const stamps = () => [...Deno.readDirSync(join(r.store.backupDir, "snapshots"))].length;
  const push = await runCli(["push", "--latest"], { env: noKey });
  assert.equal(push.code, 2, push.stderr);
  assert.match(
    oneErrorLine(push, "no key"),
    /push needs the authentication key: run 'atocore-backup remote auth-key --identity FILE' where the identity is, install its output on this host with mode 600, and give it with --auth-key FILE or ATOCORE_BACKUP_AUTH_KEY_FILE/,
  );
  const before = stamps();
  const createPush = await runCli(["create", "--chroma", "--push"], { env: noKey });
  assert.equal(createPush.code, 2, createPush.stderr);
  assert.match(oneErrorLine(createPush, "create --push"), /create --push needs the authentication key/);
  assert.equal(stamps(), before, "no snapshot made by a create --push refused for its key");
  assert.deepEqual(await remoteNames(r.env), [], "nothing was pushed");
});

Deno.test("remote auth: a foreign, unreadable or malformed auth key is refused, nothing pushed", async () => {
  const { r, noKey } = await storeWithoutKey();
  using _ = r;
  const other = ageKeyPair(r.work, "other.txt");
  const foreign = await runCli(["push", "--latest", "--auth-key", authKeyFileFor(other, "other.auth")], { env: noKey });
  assert.equal(foreign.code, 3, foreign.stderr);
  assert.match(
    oneErrorLine(foreign, "foreign key"),
    new RegExp(
      `other\\.auth:4: the authentication key of ${other.recipient} is not for a recipient of .*nothing was pushed`,
    ),
  );

  const bad = join(r.work, "bad.auth");
  const cases: [string, RegExp][] = [
    [`${r.key.recipient} ${"ab".repeat(31)}\n`, /bad\.auth:1: not an authentication key line/],
    [`${r.key.recipient.toUpperCase()} ${"ab".repeat(32)}\n`, /bad\.auth:1: not an authentication key line/],
    [`# nothing\n`, /bad\.auth: no authentication key in the file/],
    [Deno.readTextFileSync(r.key.keyFile), /bad\.auth:3: holds an age identity .* install the output of/],
    [
      Deno.readTextFileSync(r.authKeyFile) +
      Deno.readTextFileSync(r.authKeyFile).replace(/[0-9a-f]{64}/, "ab".repeat(32)),
      /bad\.auth:8: another key for the recipient of line 4; keep one of them/,
    ],
  ];
  for (const [text, pattern] of cases) {
    Deno.writeTextFileSync(bad, text, { mode: 0o600 });
    const run = await runCli(["push", "--latest", "--auth-key", bad], { env: noKey });
    assert.equal(run.code, 2, run.stderr);
    assert.match(oneErrorLine(run, String(pattern)), pattern);
    assert.doesNotMatch(run.stderr, /abab/, "no key echoed");
  }
  const absent = await runCli(["push", "--latest", "--auth-key", join(r.work, "absent.auth")], { env: noKey });
  assert.equal(absent.code, 2);
  assert.match(oneErrorLine(absent, "absent"), /cannot read the authentication key file \(--auth-key\) .*absent\.auth/);
  assert.deepEqual(await remoteNames(r.env), [], "nothing was pushed");
});

Deno.test("remote auth: an auth key or age secret key pasted where a file or another value goes is refused, not echoed", async () => {
  const { r, noKey } = await storeWithoutKey();
  using _ = r;
  const line = Deno.readTextFileSync(r.authKeyFile).split("\n").find((text) => text.startsWith("age1"))!;
  const secret = Deno.readTextFileSync(r.key.keyFile).split("\n").find((text) => text.startsWith("AGE-SECRET"))!;
  const pastes: [string[], Record<string, string>, RegExp][] = [
    [["--auth-key", "ab".repeat(32)], {}, /--auth-key was given what looks like an authentication key/],
    [[], { ATOCORE_BACKUP_RECIPIENT: line }, /ATOCORE_BACKUP_RECIPIENT was given what looks like an authentication/],
    [["--remote", "ab".repeat(32)], {}, /--remote was given what looks like an authentication key/],
    [["--ssh-key", secret], {}, /--ssh-key was given an age secret key itself/],
    [[], { ATOCORE_SSH_KEY_FILE: secret }, /ATOCORE_SSH_KEY_FILE was given an age secret key itself/],
  ];
  for (const [args, extra, pattern] of pastes) {
    for (const command of [["push", "--latest", ...args], ["config", ...args]]) {
      const pasted = await runCli(command, { env: { ...noKey, ...extra } });
      assert.equal(pasted.code, 2, `${command.join(" ")}: ${pasted.stdout}${pasted.stderr}`);
      assert.match(oneErrorLine(pasted, String(pattern)), pattern);
      const shown = pasted.stdout + pasted.stderr;
      assert.ok(!shown.includes(line.split(" ")[1]) && !shown.includes(secret) && !/abab/.test(shown), "not echoed");
    }
  }
  const hex = line.split(" ")[1];
  const elsewhere = [ // pasted into a flag or argument that takes no key: a JUnit report or a message would show it
    ["drill", "--from-remote", "--latest", "--source", hex, "--junit", join(r.work, "j.xml")],
    ["remote", "cleanup", "--keep-weekly", hex],
    ["restore", "--from-remote", hex, "--to", join(r.work, "to")],
  ];
  for (const command of elsewhere) {
    const pasted = await runCli(command, { env: r.env });
    assert.equal(pasted.code, 2, `${command.join(" ")}: ${pasted.stderr}`);
    assert.match(oneErrorLine(pasted, command[0]), /was given what looks like an authentication key .*not shown/);
    let junit = ""; // refused as the arguments are read: no report is written
    try {
      junit = Deno.readTextFileSync(join(r.work, "j.xml"));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    assert.ok(!(pasted.stdout + pasted.stderr + junit).includes(hex.slice(0, 16)), `${command.join(" ")} echoes it`);
  }
  assert.deepEqual(await remoteNames(r.env), [], "nothing was pushed");
});

Deno.test("remote auth: a key file encoded in base64 (as CI secrets are), on one line or wrapped, given as a path is refused, not echoed", async () => {
  const { r, noKey } = await storeWithoutKey();
  using _ = r;
  const made = new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-f", join(r.work, "ssh.key")],
  }).outputSync();
  assert.ok(made.success, "ssh-keygen");
  const sshKey = btoa(Deno.readTextFileSync(join(r.work, "ssh.key")));
  const identity = btoa(Deno.readTextFileSync(r.key.keyFile));
  const wrapped = sshKey.replace(/.{76}/g, "$&\n"); // as base64 writes it without -w0
  const pastes: [string, string][] = [
    ["ATOCORE_SSH_KEY_FILE", sshKey],
    ["ATOCORE_BACKUP_IDENTITY_FILE", identity],
    ["ATOCORE_SSH_KEY_FILE", wrapped],
  ];
  for (const [from, value] of pastes) {
    for (const command of [["remote", "list"], ["config"]]) {
      const pasted = await runCli(command, { env: { ...noKey, [from]: value } });
      assert.equal(pasted.code, 2, `${command.join(" ")}: ${pasted.stdout}${pasted.stderr}`);
      assert.match(oneErrorLine(pasted, from), new RegExp(`${from} was given a key file encoded in base64`));
      assert.ok(!(pasted.stdout + pasted.stderr).includes(value.slice(8, 40)), "not echoed");
    }
  }
  const ordinary = await runCli(["config"], {
    env: { ...noKey, ATOCORE_SSH_KEY_FILE: join(r.work, "keys", "Backup2024ExternalDriveForHostNumber1Primary.key") },
  });
  assert.equal(ordinary.code, 0, `a path is a path, whatever its names: ${ordinary.stderr}`);
});

Deno.test("remote auth: a key file holding the key twice is used; one readable by others is warned about", async () => {
  const { r, noKey } = await storeWithoutKey();
  using _ = r;
  const bad = join(r.work, "bad.auth");
  Deno.writeTextFileSync(bad, Deno.readTextFileSync(r.authKeyFile).repeat(2)); // 'remote auth-key >>' run twice
  const doubled = await runCli(["push", "--latest", "--auth-key", bad], { env: noKey });
  assert.equal(doubled.code, 0, doubled.stderr);

  Deno.chmodSync(r.authKeyFile, 0o644);
  const loose = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(loose.code, 0, loose.stderr);
  assert.match(loose.stderr, /auth_key_file_readable_by_others/);
  const [name] = await remoteNames(r.env);
  assert.deepEqual(readRefs(r.repoDir, name).auth?.map((entry) => entry.recipient), [r.key.recipient]);
});

Deno.test("remote auth: an SSH key file readable by others is warned about (OpenSSH refuses one), one only its owner reads is not", async () => {
  using dir = tempDir("atocore-loose-ssh-");
  const key = join(dir.path, "ssh.key");
  assert.ok(
    new Deno.Command("ssh-keygen", { args: ["-q", "-t", "ed25519", "-N", "", "-f", key] }).outputSync().success,
  );
  const knownHosts = join(dir.path, "known_hosts");
  Deno.writeTextFileSync(knownHosts, "");
  // no server listens on port 1: the run fails after its retries, the warning said before it connects
  const args = ["remote", "list", "--remote", "sftp://backup@127.0.0.1:1//srv/atocore", "--ssh-key", key];
  const env = { ATOCORE_DATA_DIR: dir.path, ATOCORE_SSH_KNOWN_HOSTS: knownHosts };
  Deno.chmodSync(key, 0o640);
  const loose = await runCli(args, { env });
  assert.notEqual(loose.code, 0);
  const warned = loose.stderr.split("\n").filter((line) => line.includes("ssh_key_file_readable_by_others"));
  assert.equal(warned.length, 1, loose.stderr);
  assert.deepEqual([JSON.parse(warned[0]).path, JSON.parse(warned[0]).mode], [key, "0640"]);
  Deno.chmodSync(key, 0o600);
  const tight = await runCli(args, { env });
  assert.doesNotMatch(tight.stderr, /readable_by_others/);
});

Deno.test("remote auth: a snapshot forged by a writer who knows only the recipient is refused by every reader", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const genuine = (await createAndPush(r.env)).push.snapshot;
  // The writer: another backup folder of their own, pushing to the repository with the public recipient alone.
  using theirs = tempStore({ dbMiB: 1, chromaMiB: 1, seed: 77 });
  const writer = { ...storeEnv(theirs), ATOCORE_BACKUP_REMOTE: r.env.ATOCORE_BACKUP_REMOTE };
  const forged = await runCli(["create", "--chroma", "--push", "--allow-unauthenticated"], { env: writer });
  assert.equal(forged.code, 0, forged.stderr);
  assert.match(forged.stderr, /push_unauthenticated/, "an unauthenticated push is warned about");
  const name = (forged.json as { push: { pushed: { snapshot: string }[] } }).push.pushed[0].snapshot;
  assert.equal(readRefs(r.repoDir, name).auth, undefined);
  await assertRefusedByAll(r, name, /no MAC for the identity's recipient/);

  // With a MAC made with a key derived from another identity, under the repository's recipient: wrong, always refused.
  const refsPath = join(r.repoDir, "refs", name);
  const refs = JSON.parse(Deno.readTextFileSync(refsPath));
  const otherKey = deriveAuthKey(parseIdentity(secretLine(ageKeyPair(r.work, "other.txt").keyFile)));
  const repositoryId = JSON.parse(Deno.readTextFileSync(join(r.repoDir, "config"))).id;
  const claim = { repositoryId, objectName: `snapshots/${name}`, sha256: refs.snapshot_sha256 };
  refs.auth = [{ recipient: r.key.recipient, mac: snapshotMac(otherKey, claim) }];
  Deno.writeTextFileSync(refsPath, JSON.stringify(refs));
  await assertRefusedByAll(r, name, /the MAC for age1\S+ does not match/, ["--allow-unauthenticated"]);

  // The genuine snapshot still restores, and remote list tells the two apart.
  Deno.removeSync(refsPath);
  Deno.removeSync(join(r.repoDir, "snapshots", name));
  const restored = await runCli(["restore", genuine, "--from-remote", "--to", join(r.work, "out")], {
    env: r.envWithIdentity,
  });
  assert.equal(restored.code, 0, restored.stderr);
  assert.doesNotMatch(restored.stderr, /unauthenticated/);
  assert.equal((restored.json as { remote: { authenticated: boolean } }).remote.authenticated, true);
});

Deno.test("remote auth: a snapshot renamed, or copied from another repository, is refused for its MAC", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const pushed = (await createAndPush(r.env)).push.snapshot;
  const renamed = pushed.replace(/^\d{8}/, "20991231").replace(/_.*/, "_00000000000000aa");
  // Moved, with the name inside the public refs rewritten to match (the document's own name is sealed).
  for (const folder of ["refs", "snapshots"]) {
    Deno.renameSync(join(r.repoDir, folder, pushed), join(r.repoDir, folder, renamed));
  }
  const refsPath = join(r.repoDir, "refs", renamed);
  Deno.writeTextFileSync(refsPath, Deno.readTextFileSync(refsPath).replace(pushed, renamed));
  await assertRefusedByAll(r, renamed, /the MAC for age1\S+ does not match snapshots\//);
  for (const folder of ["refs", "snapshots"]) Deno.removeSync(join(r.repoDir, folder, renamed));

  // Another repository with the same recipient, pushed with the same key: its objects copied in beside.
  const otherRepo = join(r.work, "other-repo");
  const otherEnv = { ...r.env, ATOCORE_BACKUP_REMOTE: `file://${otherRepo}` };
  assert.equal((await runCli(["remote", "init", "--recipient", r.key.recipient], { env: otherEnv })).code, 0);
  const copied = (await createAndPush(otherEnv)).push.snapshot;
  for (const folder of ["refs", "snapshots", "packs"]) {
    const cp = new Deno.Command("cp", { args: ["-rn", join(otherRepo, folder), r.repoDir] }).outputSync();
    assert.equal(cp.code, 0);
  }
  await assertRefusedByAll(r, copied, /the MAC for age1\S+ does not match snapshots\//);
});

Deno.test("remote auth: --allow-unauthenticated accepts a snapshot without a MAC, warning, and nothing else", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { ATOCORE_BACKUP_AUTH_KEY_FILE: _, ...noKey } = r.env;
  const pushed = await runCli(["create", "--chroma", "--push", "--allow-unauthenticated"], { env: noKey });
  assert.equal(pushed.code, 0, pushed.stderr);
  const name = (pushed.json as { push: { pushed: { snapshot: string }[] } }).push.pushed[0].snapshot;
  const listed = await runCli(["remote", "list"], { env: r.env });
  assert.deepEqual((listed.json as { snapshots: { mac: boolean }[] }).snapshots.map((entry) => entry.mac), [false]);

  const live = liveDigest(r.store);
  const out = join(r.work, "out");
  const allowed = await runCli(["restore", name, "--from-remote", "--to", out, "--allow-unauthenticated"], {
    env: r.envWithIdentity,
  });
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.match(allowed.stderr, new RegExp(`remote_snapshot_unauthenticated.*refs/${name}`));
  assert.equal((allowed.json as { remote: { authenticated: boolean } }).remote.authenticated, false);
  const validation = (allowed.json as { validation: { integrity_checked_by_push?: string[] } }).validation;
  assert.equal(validation.integrity_checked_by_push, undefined, "an unauthenticated document vouches for nothing");
  assert.ok(Deno.statSync(join(out, "chroma")).isDirectory, "restored into --to");
  const drill = await runCli(["drill", name, "--from-remote", "--allow-unauthenticated"], { env: r.envWithIdentity });
  assert.equal(drill.code, 0, drill.stderr);
  const verify = await runCli(["remote", "verify", "--read-data", "--allow-unauthenticated"], {
    env: r.envWithIdentity,
  });
  assert.equal(verify.code, 0, verify.stdout);
  assert.deepEqual((verify.json as { unauthenticated: string[] }).unauthenticated, [name]);
  assert.match(verify.stderr, new RegExp(`remote_snapshot_unauthenticated.*refs/${name}`));
  const listedWithKey = await runCli(["remote", "list"], { env: r.envWithIdentity });
  assert.equal(listedWithKey.code, 0, listedWithKey.stderr);
  assert.deepEqual(
    (listedWithKey.json as { snapshots: { authenticated: boolean }[] }).snapshots.map((entry) => entry.authenticated),
    [false],
  );
  await assertRefusedByAll(r, name, /no MAC for the identity's recipient/);
  assert.deepEqual(liveDigest(r.store), live);

  const stamp = (pushed.json as { stamp: string }).stamp;
  const local = await runCli(["restore", stamp, "--allow-unauthenticated", "--to", join(r.work, "x")], { env: r.env });
  assert.equal(local.code, 2, local.stderr);
  assert.match(oneErrorLine(local, "local restore"), /--allow-unauthenticated goes with --from-remote/);
});

Deno.test("remote auth: another backup folder's snapshot of the same second, or one forged under it, does not stop a push", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const theirs = await createAndPush(r.env);
  // A second backup folder holding a snapshot of the very same stamp (a copy: two hosts snapshot in one second).
  using other = tempStore({ dbMiB: 1, chromaMiB: 1, seed: 78 });
  const otherBackups = join(other.dataDir, "backups");
  Deno.mkdirSync(snapshotsDir(otherBackups), { recursive: true });
  const from = join(r.store.dataDir, "backups", "snapshots", theirs.stamp);
  await new Deno.Command("cp", { args: ["-a", from, snapshotsDir(otherBackups)] }).output();
  const env = { ...r.env, ...storeEnv(other), ATOCORE_BACKUP_AUTH_KEY_FILE: r.authKeyFile };
  const ours = await runCli(["push", theirs.stamp], { env });
  assert.equal(ours.code, 0, ours.stderr);
  const pushed = (ours.json as { pushed: PushedJson[] }).pushed[0];
  assert.equal(pushed.already_pushed, false, "the other folder's snapshot of this second is not ours");
  assert.notEqual(pushed.snapshot, theirs.push.snapshot);
  assert.deepEqual((await remoteNames(r.env)).sort(), [theirs.push.snapshot, pushed.snapshot].sort());
  const again = await runCli(["push", theirs.stamp], { env });
  assert.equal((again.json as { pushed: PushedJson[] }).pushed[0].already_pushed, true, "ours is found again");

  // A writer copies our refs and snapshot under a new push id of the same stamp, after removing ours: the MAC names
  // the old name, so the copy is not taken for ours, and the next push sends the snapshot again.
  const [, pushId] = pushed.snapshot.split("_");
  const forged = `${theirs.stamp}_${"f".repeat(pushId.length)}`;
  for (const folder of ["refs", "snapshots"]) {
    Deno.renameSync(join(r.repoDir, folder, pushed.snapshot), join(r.repoDir, folder, forged));
  }
  const third = await runCli(["push", theirs.stamp], { env });
  assert.equal(third.code, 0, third.stderr);
  const resent = (third.json as { pushed: PushedJson[] }).pushed[0];
  assert.equal(resent.already_pushed, false, "a snapshot whose MAC names another object is not taken as pushed");
  assert.ok(![forged, theirs.push.snapshot].includes(resent.snapshot));
});

Deno.test("remote auth: refs without a source planted under a stamp do not pass for this folder's push", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  // a writer of the repository: 64 random bytes and refs that record their hash, as format 1 wrote refs (no source)
  const planted = `${stamp}_00000000000000ff`;
  const bytes = crypto.getRandomValues(new Uint8Array(64));
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  for (const folder of ["refs", "snapshots"]) Deno.mkdirSync(join(r.repoDir, folder), { recursive: true });
  Deno.writeFileSync(join(r.repoDir, "snapshots", planted), bytes);
  Deno.writeTextFileSync(
    join(r.repoDir, "refs", planted),
    JSON.stringify({ snapshot: planted, snapshot_sha256: sha256, packs: [] }),
  );
  const { ATOCORE_BACKUP_AUTH_KEY_FILE: _, ...keyless } = r.env; // with a key, the missing MAC alone refuses them
  const push = await runCli(["push", stamp, "--allow-unauthenticated"], { env: keyless });
  assert.equal(push.code, 0, push.stderr);
  const pushed = (push.json as { pushed: PushedJson[] }).pushed[0];
  assert.equal(pushed.already_pushed, false, "the planted refs were taken for this folder's push");
  assert.notEqual(pushed.snapshot, planted);
});

Deno.test("remote auth: refs planted with this folder's source (public in its refs) do not pass for an unauthenticated push's own", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { ATOCORE_BACKUP_AUTH_KEY_FILE: _, ...keyless } = r.env;
  const first = await runCli(["create", "--push", "--allow-unauthenticated"], { env: keyless });
  assert.equal(first.code, 0, first.stderr);
  const firstName = (first.json as { push: { pushed: PushedJson[] } }).push.pushed[0].snapshot;
  const source = JSON.parse(Deno.readTextFileSync(join(r.repoDir, "refs", firstName))).source;
  assert.match(source, /^[0-9a-f]+$/, "the refs show the folder's source id");
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  // a writer of the repository, before the timer's push: any bytes, refs recording their hash and the copied source
  const planted = `${stamp}_${"a".repeat(16)}`;
  const bytes = new TextEncoder().encode("attacker bytes");
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  Deno.writeFileSync(join(r.repoDir, "snapshots", planted), bytes);
  Deno.writeTextFileSync(
    join(r.repoDir, "refs", planted),
    JSON.stringify({ snapshot: planted, snapshot_sha256: sha256, source, packs: [] }),
  );
  const push = await runCli(["push", stamp, "--allow-unauthenticated"], { env: keyless });
  assert.equal(push.code, 0, push.stderr);
  const pushed = (push.json as { pushed: PushedJson[] }).pushed[0];
  assert.equal(pushed.already_pushed, false, "the planted refs were taken for this folder's push");
  assert.notEqual(pushed.snapshot, planted);
  assert.ok(pushed.bytes_sent > 0);
  const again = await runCli(["push", stamp, "--allow-unauthenticated"], { env: keyless });
  const found = (again.json as { pushed: PushedJson[] }).pushed[0];
  assert.deepEqual([found.already_pushed, found.snapshot], [true, pushed.snapshot], "its own push is found again");
});

Deno.test("remote auth: a stamp whose refs an older version wrote (no source) is pushed again beside it, never over it, with a warning", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  const first = await runCli(["push", stamp], { env: r.env });
  assert.equal(first.code, 0, first.stderr);
  const old = (first.json as { pushed: PushedJson[] }).pushed[0].snapshot;
  // the refs as a version before sources wrote them: no source, no local_sha256, no refs_mac; the snapshot's MAC stays
  const refsPath = join(r.repoDir, "refs", old);
  const refs = JSON.parse(Deno.readTextFileSync(refsPath));
  delete refs.source;
  delete refs.local_sha256;
  for (const entry of refs.auth) delete entry.refs_mac;
  Deno.writeTextFileSync(refsPath, JSON.stringify(refs) + "\n");
  const before = [Deno.readFileSync(refsPath), Deno.readFileSync(join(r.repoDir, "snapshots", old))];
  await assertVerified(r.envWithIdentity, ["--read-data"], "format 1 refs with this host's MAC");

  const again = await runCli(["push", stamp], { env: r.env });
  assert.equal(again.code, 0, again.stderr);
  const pushed = (again.json as { pushed: PushedJson[] }).pushed[0];
  assert.equal(pushed.already_pushed, false, "refs without a source were taken for this folder's push");
  assert.notEqual(pushed.snapshot, old);
  assert.match(
    again.stderr,
    new RegExp(`snapshots/${old} has refs without a source .* lists its own snapshot of ${stamp} beside it`),
  );
  assert.deepEqual([Deno.readFileSync(refsPath), Deno.readFileSync(join(r.repoDir, "snapshots", old))], before);
  assert.deepEqual((await remoteNames(r.env)).sort(), [old, pushed.snapshot].sort());
  await assertVerified(r.envWithIdentity, ["--read-data"], "both snapshots of the stamp");
  const third = await runCli(["push", stamp], { env: r.env });
  assert.equal((third.json as { pushed: PushedJson[] }).pushed[0].already_pushed, true, "its own refs are found");
});

Deno.test("remote auth: a key file without every recipient's key is warned about, naming them; once it gains them, push sends each stamp again, saying why", async () => {
  using store = tempStore({ dbMiB: 1 });
  using work = tempDir("atocore-auth-gap-");
  const [first, second] = [ageKeyPair(work.path, "first.txt"), ageKeyPair(work.path, "second.txt")];
  const firstOnly = authKeyFileFor(first, "first.auth");
  const both = join(work.path, "both.auth");
  Deno.writeTextFileSync(both, Deno.readTextFileSync(firstOnly) + Deno.readTextFileSync(authKeyFileFor(second)), {
    mode: 0o600,
  });
  const env = { ...storeEnv(store), ATOCORE_BACKUP_REMOTE: join(work.path, "repo") };
  const init = await runCli(["remote", "init", "--recipient", first.recipient, "--recipient", second.recipient], {
    env,
  });
  assert.equal(init.code, 0, init.stderr);
  const created = await runCli(["create"], { env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;

  const partial = await runCli(["push", "--latest", "--auth-key", firstOnly], { env });
  assert.equal(partial.code, 0, partial.stderr);
  const warned = partial.stderr.split("\n").filter((line) => line.includes('"push_auth_key_incomplete"'));
  assert.equal(warned.length, 1, partial.stderr);
  assert.deepEqual(JSON.parse(warned[0]).recipients, [second.recipient]);
  const old = (partial.json as { pushed: PushedJson[] }).pushed[0].snapshot;
  const restore = (name: string) =>
    runCli(["restore", name, "--from-remote", "--to", join(work.path, name)], {
      env: { ...env, ATOCORE_BACKUP_IDENTITY_FILE: second.keyFile },
    });
  const refused = await restore(old);
  assert.equal(refused.code, 3, "the second identity cannot check what the first key alone pushed");
  assert.match(oneErrorLine(refused, "no MAC"), new RegExp(`refs/${old}: `));

  const resent = await runCli(["push", "--all", "--auth-key", both], { env });
  assert.equal(resent.code, 0, resent.stderr);
  assert.doesNotMatch(resent.stderr, /push_auth_key_incomplete/);
  const pushed = (resent.json as { pushed: (PushedJson & { warnings: string[] })[] }).pushed[0];
  assert.equal(pushed.already_pushed, false);
  assert.match(
    pushed.warnings.join("\n"),
    new RegExp(
      `^${old} is this backup folder's push of ${stamp}, but its refs hold no MAC for ${second.recipient} \\(the ` +
        `authentication key file gained its key since\\).*: sent again with every key's MAC .*STAMP_PUSHID$`,
    ),
  );
  assert.deepEqual((await remoteNames(env)).sort(), [old, pushed.snapshot].sort());
  const restored = await restore(pushed.snapshot);
  assert.equal(restored.code, 0, restored.stderr);
  const again = await runCli(["push", "--all", "--auth-key", both], { env });
  assert.equal((again.json as { pushed: PushedJson[] }).pushed[0].already_pushed, true, "sent once, not each time");
});
