/**
 * Every refusal of the repository commands, through the CLI: another key, a repository re-created or re-keyed after
 * this host pinned it, recipients that are not the repository's, init on a folder that holds anything, a tampered,
 * truncated or swapped pack, a document whose file is not the one recorded, an invalid local snapshot. Each is one line naming the object, with a non-zero exit, and
 * nothing live changes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { basename, join } from "node:path";
import { existsSync } from "node:fs";
import {
  cliCommand,
  cliEnv,
  type CliRun,
  cliRunOf,
  printedCommand,
  relocateSnapshot,
  runCli,
  runPrinted,
  skipOutsideCi,
} from "../_helpers.ts";
import { InvalidSnapshotError } from "../../src/ops/push_validation.ts";
import { entryNames, liveDigest, treeDigest } from "../_faults.ts";
import {
  ageKeyPair,
  createAndPush,
  type Forged,
  forgeDocument,
  oneErrorLine,
  remoteNames,
  type RemoteStore,
  remoteStore,
} from "../_remote_cli.ts";
import { parseIdentityFile } from "../../src/crypto/age.ts";
import { openBytes, sha256Hex } from "../../src/repo/sealing.ts";
import { fetchSnapshot } from "../../src/repo/fetch.ts";
import { openFolderBackend } from "../../src/repo/folder.ts";
import { extentUnit, hashExtent } from "../../src/repo/extent_hash.ts";
import { DOCUMENT_FORMAT } from "../../src/repo/document.ts";
import { removeQuietly } from "../../src/fs/durable.ts";

Deno.test("remote refusals: another key restores nothing; nothing live changes and no scratch copy is left", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const stranger = ageKeyPair(r.work, "stranger.txt");
  const scratch = join(r.work, "scratch");
  Deno.mkdirSync(scratch);
  const live = liveDigest(r.store);
  const local = entryNames(join(r.store.backupDir, "snapshots"));
  const env = { ...r.env, ATOCORE_BACKUP_IDENTITY_FILE: stranger.keyFile };
  const args = ["restore", stamp, "--from-remote", "--confirm-service-stopped", "--scratch-dir", scratch];
  const run = await runCli(args, { env });
  assert.equal(run.code, 3, run.stderr);
  const notRecipient = new RegExp(
    `the identity ${stranger.keyFile} is none of the repository's recipients \\(its config lists ${r.key.recipient}\\);` +
      " nothing was read; give the identity of one of them",
  );
  assert.match(oneErrorLine(run, "another key"), notRecipient);
  assert.deepEqual(liveDigest(r.store), live, "live data changed");
  assert.deepEqual(entryNames(join(r.store.backupDir, "snapshots")), local, "a pre-restore snapshot was taken");
  assert.deepEqual(entryNames(scratch), [], "the scratch copy is left");
  const others = [["remote", "verify"], ["remote", "verify", "--read-data"], ["remote", "list"], [
    "drill",
    "--from-remote",
    "--latest",
  ]];
  for (const args of others) {
    const other = await runCli(args, { env }); // not "REPOSITORY DAMAGED": the repository is whole, the key is wrong
    assert.equal(other.code, 3, `${args.join(" ")}: ${other.stdout}${other.stderr}`);
    assert.match(oneErrorLine(other, args.join(" ")), notRecipient);
  }
  const both = ageKeyPair(r.work, "both.txt"); // a file holding the right identity too: it opens the repository
  Deno.writeTextFileSync(both.keyFile, Deno.readTextFileSync(stranger.keyFile) + Deno.readTextFileSync(r.key.keyFile));
  const verified = await runCli(["remote", "verify", "--read-data"], {
    env: { ...r.env, ATOCORE_BACKUP_IDENTITY_FILE: both.keyFile },
  });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});

Deno.test("remote refusals: a repository re-created or re-keyed after this host pushed is refused (exit 3)", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const attacker = ageKeyPair(r.work, "attacker.txt");
  const config = JSON.parse(Deno.readTextFileSync(join(r.repoDir, "config")));
  Deno.writeTextFileSync(join(r.repoDir, "config"), JSON.stringify({ ...config, recipients: [attacker.recipient] }));
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  for (
    const args of [
      ["push", "--latest"],
      ["remote", "list"],
      ["remote", "cleanup", "--confirm"],
      ["restore", stamp, "--from-remote", "--to", join(r.work, "to")],
      ["drill", "--from-remote", stamp],
    ]
  ) {
    const run = await runCli(args, { env: r.envWithIdentity });
    assert.equal(run.code, 3, `${args.join(" ")}: ${run.stderr}`);
    assert.match(
      oneErrorLine(run, args.join(" ")),
      /recipients of the repository at .* changed since this host pinned/,
    );
  }
  assert.equal((await remoteNames({ ...r.env, ATOCORE_DATA_DIR: join(r.work, "elsewhere") })).length, 1);

  Deno.removeSync(r.repoDir, { recursive: true }); // re-created at the same place, with a new id
  const init = await runCli(["remote", "init", "--recipient", attacker.recipient], { env: r.env });
  assert.equal(init.code, 0, init.stderr);
  const pushed = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(pushed.code, 3);
  assert.match(oneErrorLine(pushed, "re-created"), /the id of the repository at .* changed since this host pinned it/);

  const elsewhere = { ...r.env, ATOCORE_DATA_DIR: join(r.work, "other-host") }; // no pin: recipients given are checked
  const given = await runCli(["remote", "list", "--recipient", r.key.recipient], { env: elsewhere });
  assert.equal(given.code, 3);
  assert.match(oneErrorLine(given, "given recipients"), /are not the ones given .*a swapped recipient is an attack/);
});

Deno.test("remote refusals: init refuses a folder that holds anything, a repository included", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const cluttered = join(r.work, "cluttered");
  Deno.mkdirSync(cluttered);
  Deno.writeTextFileSync(join(cluttered, "holiday.jpg"), "not a repository");
  for (
    const [where, pattern] of [[cluttered, /is not empty and not a repository \(holiday\.jpg/], [
      r.repoDir,
      /is already a repository; use it as it is/,
    ]] as const
  ) {
    const before = entryNames(where);
    const run = await runCli(["remote", "init", "--remote", where, "--recipient", r.key.recipient], { env: r.env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(oneErrorLine(run, where), pattern);
    assert.deepEqual(entryNames(where), before);
  }
});

Deno.test("remote refusals: init refuses a repository under a missing folder, through a file or a dangling link", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const unmounted = join(r.work, "offsite"); // a mount point's path while the disk is not mounted: no parent made
  const notMounted = await runCli([
    "remote",
    "init",
    "--remote",
    join(unmounted, "atocore"),
    "--recipient",
    r.key.recipient,
  ], {
    env: r.env,
  });
  assert.equal(notMounted.code, 3, notMounted.stderr);
  assert.match(
    oneErrorLine(notMounted, "no parent"),
    /the folder .*offsite that would hold the repository .*atocore does not exist; mount the disk/,
  );
  assert.equal(existsSync(unmounted), false, "the missing parent was made");
  const throughFile = join(r.work, "notes.txt", "repo");
  Deno.writeTextFileSync(join(r.work, "notes.txt"), "a file");
  const file = await runCli(["remote", "init", "--remote", throughFile, "--recipient", r.key.recipient], {
    env: r.env,
  });
  assert.equal(file.code, 2, file.stderr);
  assert.match(
    oneErrorLine(file, "through a file"),
    /a part of the path of the repository .*notes\.txt\/repo is a file/,
  );
  const dangling = join(r.work, "nas-link"); // linked to the NAS folder before its disk was mounted
  Deno.symlinkSync(join(r.work, "not-mounted-yet"), dangling);
  const linked = await runCli(["remote", "init", "--remote", dangling, "--recipient", r.key.recipient], { env: r.env });
  assert.equal(linked.code, 3, linked.stderr);
  assert.match(
    oneErrorLine(linked, "dangling"),
    /nas-link is a symbolic link to a folder that does not exist \(ls -l /,
  );
  assert.equal(existsSync(join(r.work, "not-mounted-yet")), false, "the link's target was made");
});

Deno.test("remote refusals: init refuses a repository in the store or in the backup folder's own folders", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const inStore = await runCli(["remote", "init", "--remote", join(r.store.chromaDir, "repo"), "--recipient", "x"], {
    env: r.env,
  });
  assert.equal(inStore.code, 2);
  assert.match(oneErrorLine(inStore, "in the store"), /overlaps the Chroma folder/);
  for (const suffix of ["-wal", "-shm", "-journal"]) { // a folder there: SQLite can no longer open the database
    const where = r.store.db + suffix;
    removeQuietly(where);
    const run = await runCli(["remote", "init", "--remote", where, "--recipient", r.key.recipient], { env: r.env });
    assert.equal(run.code, 2, run.stderr);
    assert.match(oneErrorLine(run, suffix), new RegExp(`overlaps the database's ${suffix} `));
    assert.equal(existsSync(where), false, `a repository was made at the database's ${suffix}`);
  }
  for (const own of [".staging", ".trash", "failed", "remotes"]) { // folders create, cleanup or recovery clear
    const where = join(r.store.backupDir, own, "repo");
    const run = await runCli(["remote", "init", "--remote", where, "--recipient", r.key.recipient], { env: r.env });
    assert.equal(run.code, 2, run.stderr);
    assert.match(oneErrorLine(run, own), /overlaps the backup folder's own folder .*; nothing was done/);
    assert.equal(existsSync(where), false, `a repository was made in ${own}`);
  }
});

/**
 * Run the CLI with `args` where `/etc/fstab` lists `point` as a NAS mount point (in a mount namespace of its own: the
 * host's fstab stays); `null` where no mount namespace can be made (the caller skips).
 */
async function underFstabPoint(r: RemoteStore, point: string, args: string[]): Promise<CliRun | null> {
  const fstab = join(r.work, "fstab");
  Deno.writeTextFileSync(fstab, `# a NAS\nnas:/export ${point.replaceAll(" ", "\\040")} nfs defaults,nofail 0 0\n`);
  const [program, ...rest] = cliCommand(args);
  const script = `mount --bind "$0" /etc/fstab && exec "$@"`;
  const output = await new Deno.Command("unshare", {
    args: ["-m", "--propagation", "private", "sh", "-c", script, fstab, program, ...rest],
    env: cliEnv(r.env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const run = cliRunOf(output);
  if (run.code !== 3 && /unshare|mount:/.test(run.stderr)) {
    skipOutsideCi(`no mount namespace here: ${run.stderr.trim()}`);
    return null;
  }
  return run;
}

Deno.test("remote refusals: init under a mount point of /etc/fstab that is not mounted is refused, nothing written", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const point = join(r.work, "offsite"); // the empty folder an unmounted disk leaves
  Deno.mkdirSync(point);
  const run = await underFstabPoint(r, point, [
    "remote",
    "init",
    "--remote",
    join(point, "atocore"),
    "--recipient",
    r.key.recipient,
  ]);
  if (run === null) return;
  assert.equal(run.code, 3, run.stderr);
  assert.match(oneErrorLine(run, "fstab"), new RegExp(`${point} is a mount point in /etc/fstab that is not mounted`));
  assert.deepEqual(entryNames(point), [], "the repository was made on the disk below the mount point");
});

Deno.test("remote refusals: a push to a repository left on the disk below an unmounted fstab point is refused", async () => {
  using r0 = await remoteStore({ dbMiB: 1, chromaMiB: 1 }); // only for its work folder
  const point = join(r0.work, "offsite");
  Deno.mkdirSync(point);
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 }, join(point, "atocore")); // made there by hand, or long ago
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const before = treeDigest(point);
  const run = await underFstabPoint(r, point, ["push", "--latest"]);
  if (run === null) return;
  assert.equal(run.code, 3, run.stderr);
  assert.match(oneErrorLine(run, "fstab"), new RegExp(`${point} is a mount point in /etc/fstab that is not mounted`));
  assert.deepEqual(treeDigest(point), before, "a push wrote on the disk below the mount point");
});

Deno.test("remote refusals: a push stopped by an altered repository after sending packs says they are kept, not 'nothing'", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  Deno.writeTextFileSync(join(r.repoDir, "refs"), "not a folder"); // the refs are written after the packs
  assert.equal((await runCli(["create", "--chroma"], { env: r.env })).code, 0);
  const run = await runCli(["push", "--latest"], { env: r.env });
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    oneErrorLine(run, "altered"),
    /refs is not a folder.* is not listed, and the \d+ new packs? sent (is|are) kept/,
  );
  assert.doesNotMatch(run.stderr, /nothing was done/);
});

Deno.test("remote refusals: a FIFO where a condemned marker would be: a push through the CLI reuses no pack", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  await createAndPush(r.env);
  Deno.mkdirSync(join(r.repoDir, "condemned"), { recursive: true });
  assert.ok(
    new Deno.Command("mkfifo", { args: [join(r.repoDir, "condemned", "00000000000000d1")] }).outputSync().success,
  );
  const again = await createAndPush(r.env);
  assert.equal(again.push.packs_reused, 0, "the packs a marker no one can read may condemn were reused");
});

Deno.test("remote refusals: a tampered, truncated or swapped pack: restore refuses, nothing live changes", async () => {
  using r = await remoteStore({ dbMiB: 4, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const packs = [...Deno.readDirSync(join(r.repoDir, "packs"))].flatMap((folder) =>
    [...Deno.readDirSync(join(r.repoDir, "packs", folder.name))].map((pack) =>
      join(r.repoDir, "packs", folder.name, pack.name)
    )
  ).sort();
  assert.ok(packs.length >= 2, `${packs.length} packs`);
  const [target, other] = packs;
  const original = Deno.readFileSync(target);
  const damages: [string, () => void][] = [
    ["tampered", () => {
      const flipped = original.slice();
      flipped[flipped.length - 100] ^= 1;
      Deno.writeFileSync(target, flipped);
    }],
    ["truncated", () => Deno.writeFileSync(target, original.subarray(0, original.length - 4096))],
    ["swapped", () => Deno.copyFileSync(other, target)],
    ["missing", () => Deno.removeSync(target)],
  ];
  const live = liveDigest(r.store);
  const local = entryNames(join(r.store.backupDir, "snapshots"));
  for (const [damage, apply] of damages) {
    apply();
    const run = await runCli(["restore", stamp, "--from-remote", "--confirm-service-stopped"], {
      env: r.envWithIdentity,
    });
    assert.equal(run.code, 3, `${damage}: ${run.stderr}`);
    const line = oneErrorLine(run, damage);
    assert.match(line, /cannot be read intact: .*packs\/[0-9a-f]{2}\/[0-9a-f]{64}.*nothing was changed/, damage);
    // one next step to check the repository, the one that reaches it: not the pack's own as well
    assert.equal(line.split("'remote verify").length, 2, `${damage}: ${line}`);
    assert.deepEqual(liveDigest(r.store), live, `${damage}: live data changed`);
    assert.deepEqual(entryNames(join(r.store.backupDir, "snapshots")), local, `${damage}: a pre-restore snapshot`);
    const verify = await runCli(["remote", "verify", "--read-data"], { env: r.envWithIdentity });
    assert.equal(verify.code, 1, `${damage}: verify --read-data`);
    assert.ok((verify.json as { errors: string[] }).errors.some((error) => error.includes(target.slice(-64))), damage);
    Deno.writeFileSync(target, original);
  }
  const whole = await runCli(["restore", stamp, "--from-remote", "--to", join(r.work, "to")], {
    env: r.envWithIdentity,
  });
  assert.equal(whole.code, 0, `restored once the pack is back: ${whole.stderr}`);
});

Deno.test("remote refusals: push refuses an invalid local snapshot (exit 3, nothing listed); --all pushes the valid ones", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const good = await runCli(["create"], { env: r.env });
  const bad = await runCli(["create"], { env: r.env });
  assert.equal(good.code + bad.code, 0);
  const badStamp = (bad.json as { stamp: string }).stamp;
  const registry = join(r.store.backupDir, "snapshots", badStamp, "config", "project-registry.json");
  Deno.writeTextFileSync(registry, Deno.readTextFileSync(registry).replace("atlas", "ATLAS"));
  const one = await runCli(["push", badStamp], { env: r.env });
  assert.equal(one.code, 3);
  assert.match(oneErrorLine(one, "invalid"), new RegExp(`snapshot ${badStamp} failed validation .*nothing was pushed`));
  assert.deepEqual(await remoteNames(r.env), []);
  const all = await runCli(["push", "--all"], { env: r.env });
  assert.equal(all.code, 3, all.stderr);
  const result = all.json as { pushed: { stamp: string }[]; refused: { stamp: string }[] };
  assert.deepEqual([result.pushed.map((p) => p.stamp), result.refused.map((p) => p.stamp)], [
    [(good.json as { stamp: string }).stamp],
    [badStamp],
  ]);
  assert.equal((await remoteNames(r.env)).length, 1);
  const missing = await runCli(["push", "20200101T000000Z"], { env: r.env });
  assert.equal(missing.code, 2);
  assert.match(oneErrorLine(missing, "missing"), /no snapshot 20200101T000000Z in .*; see 'atocore-backup list'/);
});

Deno.test("remote refusals: push --all counts what a refused snapshot stored before its validation ended as sent", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  await createAndPush(r.env);
  const bad = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(bad.code, 0, bad.stderr);
  const badStamp = (bad.json as { stamp: string }).stamp;
  const registry = join(r.store.backupDir, "snapshots", badStamp, "config", "project-registry.json");
  const bytes = Deno.readFileSync(registry);
  bytes[5] ^= 1; // the size kept: found only by its hash, once read
  Deno.writeFileSync(registry, bytes);
  const all = await runCli(["push", "--all"], { env: r.env });
  assert.equal(all.code, 3, all.stderr);
  const result = all.json as { refused: { packs_stored: number }[]; bytes_sent: number; objects_written: number };
  const stored = result.refused[0].packs_stored;
  assert.ok(stored > 0, `the refused snapshot stored no pack here: ${all.stdout}`);
  assert.ok(result.objects_written >= stored && result.bytes_sent > 0, `nothing counted as sent: ${all.stdout}`);
});

Deno.test("remote refusals: the list a push of a missing snapshot prints runs as printed, on the --backup-dir given", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const created = await runCli(["create"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  const backupDir = join(r.store.dataDir, "back ups"); // a word a shell splits, and not the folder the environment names
  Deno.renameSync(r.store.backupDir, backupDir);
  const missing = await runCli(["push", "20200101T000000Z", "--backup-dir", backupDir], { env: r.env });
  assert.equal(missing.code, 2, missing.stderr);
  const printed = printedCommand(oneErrorLine(missing, "missing"), "see the snapshots with");
  assert.ok(printed !== null, missing.stderr);
  const listed = await runPrinted(printed, r.env); // pasted into a shell as it is
  assert.equal(listed.code, 0, `${printed}: ${listed.stderr}`);
  assert.match(listed.stdout, new RegExp(stamp), `${printed} lists the folder given`);
});

Deno.test("remote refusals: the create a push with no snapshot prints runs as printed, on the --backup-dir given", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const backupDir = join(r.store.dataDir, "back ups"); // a word a shell splits, and not the folder the environment names
  Deno.mkdirSync(backupDir);
  const none = await runCli(["push", "--latest", "--backup-dir", backupDir], { env: r.env });
  assert.equal(none.code, 2, none.stderr);
  const printed = printedCommand(oneErrorLine(none, "none"), "make one first with");
  assert.ok(printed !== null, none.stderr);
  const created = await runPrinted(printed, r.env); // pasted into a shell as it is
  assert.equal(created.code, 0, `${printed}: ${created.stderr}`);
  assert.equal(entryNames(join(backupDir, "snapshots")).length, 1, `${printed} made one in the folder given`);
});

Deno.test("remote refusals: push --all refuses snapshots whose metadata it cannot read or whose manifest leaves the folder, names them (exit 3) and pushes the newer ones", async () => {
  using r = await remoteStore({ dbMiB: 1 });
  const stamps: string[] = [];
  for (let made = 0; made < 3; made++) {
    const run = await runCli(["create"], { env: r.env });
    assert.equal(run.code, 0, run.stderr);
    stamps.push((run.json as { stamp: string }).stamp);
  }
  const [garbled, outside, good] = stamps;
  const snapshots = join(r.store.backupDir, "snapshots");
  Deno.writeTextFileSync(join(snapshots, garbled, "backup-metadata.json"), "{ not json");
  const manifest = JSON.parse(Deno.readTextFileSync(join(snapshots, outside, "backup-metadata.json"))).manifest;
  relocateSnapshot(join(snapshots, outside), { manifest: [...manifest, { path: "../x", size: 0, sha256: "0" }] });
  for (const stamp of [garbled, outside]) {
    const validate = await runCli(["validate", stamp], { env: r.env });
    assert.notEqual(validate.code, 0, `validate ${stamp} finds it invalid as well`);
  }
  const all = await runCli(["push", "--all"], { env: r.env });
  assert.equal(all.code, 3, all.stderr);
  const result = all.json as { pushed: { stamp: string }[]; refused: { stamp: string; errors: string[] }[] };
  assert.deepEqual([result.pushed.map((p) => p.stamp), result.refused.map((p) => p.stamp)], [[good], [
    garbled,
    outside,
  ]]);
  assert.match(result.refused[1].errors.join(), /manifest path "\.\.\/x" is not clean/);
  assert.equal((await remoteNames(r.env)).length, 1);
  const one = await runCli(["push", garbled], { env: r.env });
  assert.equal(one.code, 3, one.stderr);
  assert.match(
    oneErrorLine(one, "garbled"),
    new RegExp(`snapshot ${garbled} failed validation \\(.*nothing was pushed`),
  );
});

Deno.test("remote refusals: a snapshot whose database fails its integrity check though its hashes match is refused before it is listed, saying truly what was stored", async () => {
  using r = await remoteStore({ dbMiB: 24 });
  const made = await runCli(["create"], { env: r.env });
  assert.equal(made.code, 0, made.stderr);
  const stamp = (made.json as { stamp: string }).stamp;
  const root = join(r.store.backupDir, "snapshots", stamp);
  const dbEntry = `db/${basename(r.store.db)}`;
  const db = join(root, dbEntry);
  using file = Deno.openSync(db, { write: true });
  file.seekSync(file.statSync().size - 8 * 4096, Deno.SeekMode.Start); // a page's header near the end: read late
  file.writeSync(new Uint8Array(64).fill(0xee));
  const metadata = JSON.parse(Deno.readTextFileSync(join(root, "backup-metadata.json")));
  const manifest = metadata.manifest.map((entry: { path: string }) =>
    entry.path === dbEntry ? { ...entry, sha256: sha256Hex(Deno.readFileSync(db)) } : entry
  );
  relocateSnapshot(root, { manifest }); // hashes match: only the integrity check, beside the push, finds it
  const run = await runCli(["push", stamp], { env: r.env });
  assert.equal(run.code, 3, run.stderr);
  const line = oneErrorLine(run, "integrity");
  assert.match(line, new RegExp(`snapshot ${stamp} failed validation \\(db_integrity_check_failed: [^\\n]*Page \\d+`));
  assert.deepEqual(await remoteNames(r.env), [], "nothing listed");
  const packs = entryNames(join(r.repoDir, "packs")).flatMap((folder) => entryNames(join(r.repoDir, "packs", folder)));
  const told =
    /nothing of it is listed \(the (\d+) packs? stored before the validation ended (is|are) kept for the next push/
      .exec(line);
  if (told) assert.equal(Number(told[1]), packs.length, "the packs it says were stored");
  else assert.match(line, /; nothing was pushed; /), assert.deepEqual(packs, [], "nothing was pushed");
});

Deno.test("remote refusals: a push refuses a snapshot whose file it would not read (unchanged since the last push) but which no longer matches its manifest", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const first = await createAndPush(r.env);
  const made = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(made.code, 0, made.stderr);
  const stamp = (made.json as { stamp: string }).stamp;
  const chroma = join(r.store.backupDir, "snapshots", stamp, "chroma");
  const segment = entryNames(chroma).find((name) => !name.includes("."))!;
  const file = join(chroma, segment, "data_level0.bin");
  const bytes = Deno.readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff; // same size; the manifest and the last push still say the old bytes
  Deno.writeFileSync(file, bytes);
  const run = await runCli(["push", stamp], { env: r.env });
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    oneErrorLine(run, "unread file"),
    new RegExp(
      `snapshot ${stamp} failed validation \\(manifest_sha256_mismatch: chroma/${segment}/data_level0\\.bin\\)`,
    ),
  );
  assert.deepEqual(await remoteNames(r.env), [first.push.snapshot], "only the first snapshot is listed");
});

Deno.test("remote refusals: an invalid snapshot's refusal names the packs stored before the validation ended", () => {
  const refusal = (packs: number) => new InvalidSnapshotError("20260101T000000Z", "/b/s", ["db_x"], packs).message;
  assert.match(refusal(0), /failed validation \(db_x\): \/b\/s; nothing was pushed; push another snapshot/);
  assert.match(refusal(1), /; nothing of it is listed \(the 1 pack stored before the validation ended is kept for /);
  assert.match(refusal(3), /; nothing of it is listed \(the 3 packs stored before the validation ended are kept for /);
  assert.doesNotMatch(refusal(3), /nothing was pushed/);
});

Deno.test("remote refusals: a file rebuilt from intact blocks that is not the file recorded: restore and drill refuse", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const { stamp, push } = await createAndPush(r.env);
  // One extent of the database is pointed 4 KiB further into its pack, with the hash of those bytes: every extent is
  // intact and they tile the file, but the file is not the one whose SHA-256 the document and the manifest record.
  const identities = parseIdentityFile(Deno.readTextFileSync(r.key.keyFile), r.key.keyFile);
  forgeDocument(r.repoDir, identities, r.key.recipient, push.snapshot, (document) => {
    const db = document.files.find((file) => file.path.startsWith("db/"))!;
    const extent = db.extents![0];
    const { id, compression } = document.packs[extent[1]];
    const name = `packs/${id.slice(0, 2)}/${id}`;
    const plain = openBytes(name, Deno.readFileSync(join(r.repoDir, name)), identities, { compression });
    const offset = extent[2] + extent[3] + 4096 <= plain.length ? extent[2] + 4096 : extent[2] - 4096;
    assert.ok(offset >= 0, "room in the pack to shift an extent");
    const unit = extentUnit(DOCUMENT_FORMAT, db.block!, extent[3]);
    db.extents![0] = [
      extent[0],
      extent[1],
      offset,
      extent[3],
      hashExtent(plain.subarray(offset, offset + extent[3]), unit),
    ];
  });
  const live = liveDigest(r.store);
  const local = entryNames(join(r.store.backupDir, "snapshots"));
  const run = await runCli(["restore", stamp, "--from-remote", "--confirm-service-stopped"], {
    env: r.envWithIdentity,
  });
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    oneErrorLine(run, "restore"),
    /db\/atocore\.db rebuilt does not match its SHA-256, though each of its extents matches its own hash .*nothing was changed/,
    "the fetch reads the file back and refuses it",
  );
  assert.deepEqual(liveDigest(r.store), live, "live data changed");
  assert.deepEqual(entryNames(join(r.store.backupDir, "snapshots")), local, "a pre-restore snapshot was taken");
  const drill = await runCli(["drill", "--from-remote", "--latest"], { env: r.envWithIdentity });
  assert.equal(drill.code, 1, drill.stderr);
  assert.match((drill.json as { errors: string[] }).errors[0], /^snapshot_valid: .*db\/atocore\.db/);
  // The fetch itself checks each whole file, whoever calls it.
  await assert.rejects(
    fetchSnapshot(openFolderBackend(r.repoDir), identities, push.snapshot, join(r.work, "fetched")),
    /db\/atocore\.db rebuilt does not match its SHA-256/,
  );
});

Deno.test("remote refusals: a huge object in the repository is refused unread, one line naming it", async () => {
  using r = await remoteStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  await createAndPush(r.env);
  const lease = join(r.repoDir, "leases", "0123456789abcdef");
  Deno.mkdirSync(join(r.repoDir, "leases"), { recursive: true });
  using file = Deno.openSync(lease, { write: true, create: true });
  file.truncateSync(3 * 1024 ** 3); // sparse: 3 GiB that take no disk
  const run = await runCli(["remote", "cleanup"], { env: r.env });
  const result = run.json as { errors: string[]; packs_condemned: number };
  assert.deepEqual(result.errors, [
    "leases/0123456789abcdef: unreadable or too large lease; no pack deleted or condemned this run (a push in progress may need " +
    "the packs it names): check it, and once no push is running remove it by hand",
  ]);
  assert.equal(result.packs_condemned, 0);
  const backend = openFolderBackend(r.repoDir);
  await assert.rejects(backend.read("leases/0123456789abcdef"), /has 3221225472 bytes, more than the \d+ an object/);
});

Deno.test("remote refusals: leases naming too many packs count as unreadable; cleanup deletes nothing that run", async () => {
  using r = await remoteStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  await createAndPush(r.env);
  Deno.mkdirSync(join(r.repoDir, "leases"), { recursive: true });
  const expires = new Date(Date.now() + 3600_000).toISOString();
  let next = 0;
  const ids = (count: number) => Array.from({ length: count }, () => (next++).toString(16).padStart(64, "a"));
  const write = (name: string, count: number) =>
    Deno.writeTextFileSync(
      join(r.repoDir, "leases", name),
      JSON.stringify({ created_at: new Date().toISOString(), expires_at: expires, packs: ids(count) }),
    );
  write("0000000000000001", 100_000); // 6.7 MB each: three name more than 250,000 packs together
  write("0000000000000002", 100_000);
  write("0000000000000004", 130_000); // 8.7 MB: over a lease's bound on its own
  const cleanup = async () => {
    const run = await runCli(["remote", "cleanup"], { env: r.env });
    const result = run.json as { errors: string[]; packs_condemned: number };
    assert.equal(result.packs_condemned, 0);
    assert.equal(result.errors.length, 1, result.errors.join("\n"));
    return result.errors[0];
  };
  assert.match(
    await cleanup(),
    /^leases\/0000000000000004: unreadable or too large lease; no pack deleted or condemned/,
  );
  Deno.removeSync(join(r.repoDir, "leases", "0000000000000004"));
  write("0000000000000003", 100_000);
  assert.match(
    await cleanup(),
    /^leases\/0000000000000003: unreadable or too large lease; no pack deleted or condemned/,
  );
  Deno.removeSync(join(r.repoDir, "leases", "0000000000000003"));
  const fine = await runCli(["remote", "cleanup"], { env: r.env });
  assert.deepEqual((fine.json as { errors: string[] }).errors, [], "two leases of 100,000 packs are read");
});

Deno.test("remote refusals: markers and refs padded past their bounds are unreadable: no pack deleted, memory kept", async () => {
  using r = await remoteStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  const pushed = (await createAndPush(r.env)).push.snapshot;
  Deno.mkdirSync(join(r.repoDir, "condemned"), { recursive: true });
  let next = 0;
  const ids = (count: number) => Array.from({ length: count }, () => (next++).toString(16).padStart(64, "b"));
  const marker = (name: string, count: number) =>
    Deno.writeTextFileSync(
      join(r.repoDir, "condemned", name),
      JSON.stringify({ created_at: new Date().toISOString(), packs: ids(count) }),
    );
  marker("0000000000000001", 100_000); // together more than 250,000 packs
  marker("0000000000000002", 100_000);
  marker("0000000000000003", 100_000);
  marker("0000000000000004", 10);
  const run = await runCli(["remote", "cleanup"], { env: r.env });
  const result = run.json as { errors: string[]; packs_condemned: number };
  assert.equal(result.packs_condemned, 0);
  assert.deepEqual(
    result.errors.map((error) => error.split(":")[0]),
    ["condemned/0000000000000003", "condemned/0000000000000004"],
    "past the bound, the rest go unread",
  );
  for (const name of ["0000000000000001", "0000000000000002", "0000000000000003", "0000000000000004"]) {
    Deno.removeSync(join(r.repoDir, "condemned", name));
  }

  const refsPath = join(r.repoDir, "refs", pushed);
  const refs = JSON.parse(Deno.readTextFileSync(refsPath));
  refs.packs = [...refs.packs, ...ids(130_000).map((id) => ({ id, size: 1 }))]; // over 8 MiB
  Deno.writeTextFileSync(refsPath, JSON.stringify(refs));
  const padded = await runCli(["remote", "cleanup"], { env: r.env });
  const after = padded.json as { errors: string[]; packs_condemned: number };
  assert.equal(after.packs_condemned, 0);
  assert.match(after.errors.join("\n"), new RegExp(`refs/${pushed}`));
});

Deno.test("remote refusals: a snapshot object past 128 MiB is refused unread by restore and verify", async () => {
  using r = await remoteStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  const pushed = (await createAndPush(r.env)).push.snapshot;
  const object = join(r.repoDir, "snapshots", pushed);
  using file = Deno.openSync(object, { write: true });
  file.truncateSync((128 << 20) + 1); // a writer's (or a server's) oversized object under a genuine name
  const restore = await runCli(["restore", pushed, "--from-remote", "--to", join(r.work, "out")], {
    env: r.envWithIdentity,
  });
  assert.equal(restore.code, 3, restore.stderr);
  assert.match(
    oneErrorLine(restore, "restore"),
    new RegExp(`snapshots/${pushed} in \\S+ has 134217729 bytes, more than`),
  );
  const verify = await runCli(["remote", "verify"], { env: r.env });
  assert.equal(verify.code, 1, verify.stdout);
  assert.match((verify.json as { errors: string[] }).errors.join("\n"), /has 134217729 bytes, more than the 134217728/);
});

Deno.test("remote refusals: a fetched snapshot that fails validation is named by its object and the repository's next step, not by the scratch copy", async () => {
  using r = await remoteStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  const pushed = (await createAndPush(r.env)).push.snapshot;
  const identities = parseIdentityFile(Deno.readTextFileSync(r.key.keyFile), r.key.keyFile);
  forgeDocument(r.repoDir, identities, r.key.recipient, pushed, (document) => {
    (document.files as { path: string; link?: string }[]).push({ path: "chroma/evil", link: "/etc/passwd" });
  });
  const out = join(r.work, "out");
  const restore = await runCli(["restore", pushed, "--from-remote", "--to", out], { env: r.envWithIdentity });
  assert.equal(restore.code, 3, restore.stderr);
  const line = oneErrorLine(restore, "restore");
  assert.match(
    line,
    new RegExp(
      `snapshot ${pushed} of file://\\S+ failed validation once fetched \\(manifest_unexpected_file: chroma/evil\\); ` +
        "nothing was changed; pick another snapshot \\('remote list'\\) or check the repository",
    ),
  );
  assert.doesNotMatch(line, /atocore-fetch/, "the scratch copy, removed by then, is not named");
  assert.equal(existsSync(out), false);
});

/** Take the MACs off snapshot `name`'s refs, as a writer who knows only the recipient leaves them. */
function withoutMacs(repoDir: string, name: string): void {
  const path = join(repoDir, "refs", name);
  const { auth: _, ...refs } = JSON.parse(Deno.readTextFileSync(path));
  Deno.writeTextFileSync(path, JSON.stringify(refs));
}

Deno.test("remote refusals: a forged unauthenticated document: verify names 20 of a pack's bad ranges and counts the rest; past 16 MiB it is refused", async () => {
  using r = await remoteStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  const pushed = (await createAndPush(r.env)).push.snapshot;
  const identities = parseIdentityFile(Deno.readTextFileSync(r.key.keyFile), r.key.keyFile);
  let ranges = 0;
  forgeDocument(r.repoDir, identities, r.key.recipient, pushed, (document) => {
    const file = document.files.find((entry) => entry.path === "backup-metadata.json")!;
    const [, pack, offset, length] = file.extents![0];
    file.extents = Array.from({ length }, (_, at) => [at, pack, offset + at, 1, "0".repeat(64)]); // each byte wrong
    ranges = length;
  });
  withoutMacs(r.repoDir, pushed);
  const verify = await runCli(["remote", "verify", "--read-data", "--allow-unauthenticated"], {
    env: r.envWithIdentity,
  });
  assert.equal(verify.code, 1, verify.stderr);
  const errors = (verify.json as { errors: string[] }).errors;
  assert.equal(errors.filter((line) => /: bytes \d+:1 do not match their hash$/.test(line)).length, 20);
  assert.ok(
    errors.some((line) => line.endsWith(`: ${ranges - 20} more of its ranges do not match their hashes (not named)`)),
  );

  forgeDocument(r.repoDir, identities, r.key.recipient, pushed, (document) => {
    const random = new Uint8Array(8 << 20); // as hex, 16 MiB that zstd halves: no bomb, past the bound
    for (let at = 0; at < random.length; at += 65536) crypto.getRandomValues(random.subarray(at, at + 65536));
    (document as Forged & { padding: string }).padding = Buffer.from(random).toString("hex");
  });
  withoutMacs(r.repoDir, pushed);
  const restore = await runCli(
    ["restore", pushed, "--from-remote", "--allow-unauthenticated", "--to", join(r.work, "out")],
    { env: r.envWithIdentity },
  );
  assert.equal(restore.code, 3, restore.stderr);
  assert.match(
    oneErrorLine(restore, "restore"),
    new RegExp(`snapshots/${pushed}: decompresses to more than 16777216 bytes`),
  );
  assert.equal(existsSync(join(r.work, "out")), false);
});

Deno.test("remote refusals: a refs made a link to a file of the reading host is never read through it (the CLI's permission flags)", async () => {
  using r = await remoteStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  const pushed = (await createAndPush(r.env)).push.snapshot;
  const elsewhere = join(r.work, "host-file.txt");
  Deno.writeTextFileSync(elsewhere, "a file of the reading host, not JSON");
  const refs = join(r.repoDir, "refs", pushed);
  Deno.removeSync(refs);
  Deno.symlinkSync(elsewhere, refs);
  const run = await runCli(["remote", "verify"], { env: r.env });
  assert.equal(run.code, 1, run.stderr);
  const errors = (run.json as { errors: string[] }).errors;
  assert.ok(
    errors.includes(`${refs} is a symbolic link; the repository folder was altered by hand`),
    errors.join("\n"),
  );
  assert.ok(!errors.some((error) => /is not JSON/.test(error)), `read through the link: ${errors.join("\n")}`);
});
