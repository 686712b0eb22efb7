/**
 * Pushing real snapshots (made by the CLI) to a folder repository and fetching them back: byte for byte, with links;
 * what leaves the host is sealed; a second push after 1 % of rows changed sends a few percent; a push killed mid-way
 * lists nothing and the next one reuses what was sent; a module-made snapshot goes through too.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { OperationError } from "../../src/errors.ts";
import { pushLocalSnapshots } from "../../src/ops/push.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { fetchSnapshot } from "../../src/repo/fetch.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { pushSnapshot } from "../../src/repo/push.ts";
import { listRemote } from "../../src/repo/remote_list.ts";
import { listSnapshots } from "../../src/repo/snapshots.ts";
import { verifyRepository } from "../../src/repo/verify.ts";
import { pushCachePath, pushJournalDir, remotePinPath } from "../../src/snapshot/layout.ts";
import { cliProcess, cliRunOf, moduleSnapshot, placeValidSnapshot, runCli } from "../_helpers.ts";
import { killAfter } from "../_faults.ts";
import { resolveConfig } from "../../src/config.ts";
import { InvalidSnapshotError } from "../../src/ops/push_validation.ts";
import { authKeyFileFor } from "../_remote_cli.ts";
import { assertSameTree, dyingAt, objectNames, repoFixture, snapshotOf, updateRows } from "../_repo.ts";

const AGE_HEADER = "age-encryption.org/v1\n";

Deno.test("remote: push then fetch rebuilds every file and link byte for byte; push needs only the recipient", async () => {
  using f = await repoFixture({ dbMiB: 6, chromaMiB: 2 });
  const segment = [...Deno.readDirSync(f.store.chromaDir)].find((entry) => entry.isDirectory)!.name;
  Deno.symlinkSync("data_level0.bin", join(f.store.chromaDir, segment, "relative-link"));
  Deno.symlinkSync("/nonexistent/target", join(f.store.chromaDir, "dangling-link"));
  const { stamp, root } = await snapshotOf(f);
  Deno.renameSync(f.keyFile, f.keyFile + ".elsewhere"); // no identity anywhere on this host while it pushes
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  assert.equal(pushed.already_pushed, false);
  assert.equal(pushed.pinned, true);
  assert.equal(pushed.bytes_read, pushed.bytes_total);
  assert.ok(pushed.bytes_sent > 0 && pushed.packs_written >= 1);
  assert.equal(pushed.objects_written, pushed.packs_written + 3); // packs, lease, refs, snapshot

  const names = await objectNames(f.backend);
  assert.deepEqual(names.filter((name) => name.startsWith("leases/")), [], "the lease is removed");
  for (const name of names.filter((name) => /^(packs|snapshots)\//.test(name))) {
    const bytes = Deno.readFileSync(join(f.repoDir, name));
    assert.equal(new TextDecoder().decode(bytes.subarray(0, AGE_HEADER.length)), AGE_HEADER, name);
  }
  const everything = names.map((name) => new TextDecoder("latin1").decode(Deno.readFileSync(join(f.repoDir, name))));
  for (const secret of ["lorem ipsum", "atlas", "project-registry", "backup-metadata"]) {
    assert.ok(!everything.some((text) => text.includes(secret)), `${secret} readable in the repository`);
  }

  const backups = join(f.work, "fetched-backups");
  Deno.mkdirSync(join(backups, "snapshots"), { recursive: true });
  const into = join(backups, "snapshots", stamp);
  const fetched = await fetchSnapshot(f.backend, [f.identity], pushed.snapshot, into);
  assertSameTree(root, into);
  assert.equal(fetched.links, 2);
  assert.equal(fetched.bytes, pushed.bytes_total);
  const validated = await runCli(["validate", stamp, "--backup-dir", backups], { env: f.env });
  assert.equal(validated.code, 0, validated.stdout + validated.stderr);

  const again = await pushSnapshot(f.config, f.backend, root, f.auth);
  assert.deepEqual([again.already_pushed, again.bytes_sent, again.snapshot], [true, 0, pushed.snapshot]);

  const blind = await listRemote(f.backend);
  assert.deepEqual(blind.snapshots.map((s) => [s.snapshot, s.refs, s.host]), [[pushed.snapshot, true, undefined]]);
  const [seen] = (await listRemote(f.backend, [f.identity])).snapshots;
  assert.deepEqual([seen.files, seen.bytes, seen.chroma, typeof seen.pushed_at], [
    pushed.files,
    pushed.bytes_total,
    true,
    "string",
  ]);
});

Deno.test("remote: a push refuses a changed snapshot file, and stops at the end of its lease by either clock", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  const registry = join(root, "config", "project-registry.json");
  const original = Deno.readTextFileSync(registry);
  Deno.writeTextFileSync(registry, original.replace("atlas", "ATLAS"));
  await assert.rejects(
    pushSnapshot(f.config, f.backend, root, f.auth),
    /config\/project-registry\.json changed since the snapshot/,
  );
  Deno.writeTextFileSync(registry, original);
  await assert.rejects(
    pushSnapshot(f.config, f.backend, root, { ...f.auth, leaseMs: 1 }),
    /ran into the end of its lease \(until .*\); nothing of it is listed .* push again/,
  );
  const frozen = new Date();
  await assert.rejects(
    pushSnapshot(f.config, f.backend, root, { ...f.auth, leaseMs: 1, now: () => frozen }), // a wall clock that stands still
    /ran into the end of its lease \(by the monotonic clock; the wall clock was set back\); nothing of it is listed/,
  );
  assert.deepEqual((await listSnapshots(f.backend)).snapshots, []);
  assert.deepEqual(await objectNames(f.backend, "leases/"), [], "a push that fails removes its lease");
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  assert.deepEqual((await listSnapshots(f.backend)).snapshots.map(({ key }) => key.stamp), [pushed.stamp]);
});

Deno.test("remote: after 1% of rows change, the second push sends a few percent of the store", async () => {
  using f = await repoFixture({ dbMiB: 24, chromaMiB: 4 });
  const first = await snapshotOf(f);
  const pushed1 = await pushSnapshot(f.config, f.backend, first.root, f.auth);
  const same = await snapshotOf(f);
  const pushed2 = await pushSnapshot(f.config, f.backend, same.root, f.auth);
  assert.ok(pushed2.bytes_sent < pushed2.bytes_total * 0.01, `unchanged store sent ${pushed2.bytes_sent}`);
  updateRows(f.store.db, 0.01);
  const changed = await snapshotOf(f);
  const pushed3 = await pushSnapshot(f.config, f.backend, changed.root, f.auth);
  const ratio = pushed3.bytes_sent / pushed3.bytes_total;
  console.log(
    `1% of rows changed: sent ${pushed3.bytes_sent} of ${pushed3.bytes_total} (${(ratio * 100).toFixed(2)}%)`,
  );
  assert.ok(ratio < 0.06, `sent ${(ratio * 100).toFixed(1)}% after 1% of rows changed`);
  assert.ok(pushed3.bytes_deduplicated > pushed3.bytes_total * 0.9);
  assert.ok(pushed1.bytes_sent > pushed1.bytes_total * 0.8, "the first push sends the store");
  for (const [snapshot, local] of [[pushed1.snapshot, first.root], [pushed3.snapshot, changed.root]]) {
    const into = join(f.work, `fetched-${snapshot}`);
    await fetchSnapshot(f.backend, [f.identity], snapshot, into);
    assertSameTree(local, into);
  }
  const verified = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.deepEqual(verified.errors, []);
  assert.equal(verified.snapshots, 3);
  assert.deepEqual([pushed1, pushed2, pushed3].map((pushed) => pushed.warnings), [[], [], []]);

  const cache = pushCachePath(f.config.backupDir.path, f.backend.location);
  const damaged = Deno.readFileSync(cache);
  damaged[damaged.length >> 1] ^= 1;
  Deno.writeFileSync(cache, damaged);
  const blind = await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  assert.ok(blind.bytes_sent > blind.bytes_total * 0.8, "a damaged cache: everything is sent again");
  assert.equal(blind.warnings.length, 1);
  assert.match(blind.warnings[0], /push cache .*push-cache could not be used .*a new one was saved in its place$/);
  const seeing = await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  assert.ok(seeing.bytes_sent < seeing.bytes_total * 0.01, `the new cache is used: sent ${seeing.bytes_sent}`);
  assert.deepEqual(seeing.warnings, []);
});

Deno.test("remote: a push killed mid-way lists nothing; the next push reuses the packs it sent", async () => {
  using f = await repoFixture({ dbMiB: 20, chromaMiB: 2 });
  const { root } = await snapshotOf(f);
  const dying = dyingAt(f.backend, (_name, writes) => writes === 3); // the lease and two packs, then nothing
  await assert.rejects(pushSnapshot(f.config, dying, root, f.auth), /killed before writing packs\//);
  assert.deepEqual((await listSnapshots(f.backend)).snapshots, []);
  assert.equal((await listRemote(f.backend)).snapshots.length, 0);
  assert.equal((await objectNames(f.backend, "packs/")).length, 2);
  assert.ok([...Deno.readDirSync(pushJournalDir(f.config.backupDir.path, f.backend.location))].length === 1);

  const resumed = await pushSnapshot(f.config, f.backend, root, f.auth);
  assert.ok(resumed.packs_reused >= 2, `reused ${resumed.packs_reused} packs`);
  assert.ok(resumed.bytes_deduplicated >= 15 << 20, `deduplicated only ${resumed.bytes_deduplicated}`);
  assert.deepEqual([...Deno.readDirSync(pushJournalDir(f.config.backupDir.path, f.backend.location))], []);
  const verified = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.deepEqual(verified.errors, []);
  const into = join(f.work, "fetched");
  await fetchSnapshot(f.backend, [f.identity], resumed.snapshot, into);
  assertSameTree(root, into);
});

Deno.test("remote: nothing is listed before the push's gate passes; a gate that closes stops the push at its next safe point", async () => {
  using f = await repoFixture({ dbMiB: 20, chromaMiB: 2 });
  const { root } = await snapshotOf(f);
  let checks = 0;
  const failing = { check: () => void checks++, passed: () => Promise.reject(new Error("the validation failed")) };
  await assert.rejects(pushSnapshot(f.config, f.backend, root, { ...f.auth, gate: failing }), /the validation failed/);
  assert.ok(checks > 20, `checked at each MiB read (${checks} times)`);
  assert.equal((await listRemote(f.backend)).snapshots.length, 0, "nothing listed");
  const stored = (await objectNames(f.backend, "packs/")).length;
  assert.ok(stored >= 2, `every pack stored before the gate was awaited (${stored})`);
  assert.deepEqual(await objectNames(f.backend, "leases/"), [], "the lease is removed");

  let blocks = 0;
  const closing = {
    check: () => {
      if (++blocks > 10) throw new Error("the validation failed mid-way");
    },
    passed: () => Promise.resolve([]),
  };
  await assert.rejects(pushSnapshot(f.config, f.backend, root, { ...f.auth, gate: closing }), /failed mid-way/);
  assert.equal(blocks, 11, "stopped at the first safe point after it closed");
  assert.equal((await listRemote(f.backend)).snapshots.length, 0, "nothing listed");

  const passing = { check: () => {}, passed: () => Promise.resolve([]) };
  const pushed = await pushSnapshot(f.config, f.backend, root, { ...f.auth, gate: passing });
  assert.ok(pushed.packs_reused >= stored, `the packs stored before are reused (${pushed.packs_reused})`);
  assert.equal((await listRemote(f.backend)).snapshots.length, 1);
});

Deno.test("remote: push --all stopped by a failing repository names the snapshots it pushed before", async () => {
  using f = await repoFixture({ dbMiB: 2, chromaMiB: 1 });
  const first = await snapshotOf(f);
  await new Promise((resolve) => setTimeout(resolve, 1100)); // the next snapshot's stamp is a later second
  await snapshotOf(f);
  let leases = 0;
  const dying = dyingAt(f.backend, (name) => name.startsWith("leases/") && ++leases === 2); // the second push's lease
  const options = { driver: openDriver("auto"), reporter: SILENT, validation: "deep" as const, ...f.auth };
  await assert.rejects(pushLocalSnapshots(f.config, dying, { all: true }, options), (error: Error) => {
    assert.ok(error instanceof OperationError, String(error));
    assert.match(error.message, /killed before writing leases\/.*; nothing of it is listed; /);
    assert.match(error.message, new RegExp(`; pushed \\(listed\\) before it in this run: ${first.stamp}$`));
    return true;
  });
  assert.deepEqual((await listRemote(f.backend)).snapshots.map((entry) => entry.stamp), [first.stamp]);
});

Deno.test("remote: killed between refs and snapshot object: nothing listed, verify notes the refs", async () => {
  using f = await repoFixture({ dbMiB: 2, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  const dying = dyingAt(f.backend, (name) => name.startsWith("snapshots/")); // lease, packs, refs; not the snapshot
  await assert.rejects(pushSnapshot(f.config, dying, root, f.auth), /killed before writing snapshots\//);
  assert.deepEqual((await listSnapshots(f.backend)).snapshots, []);
  assert.equal((await objectNames(f.backend, "refs/")).length, 1);
  assert.equal((await objectNames(f.backend, "leases/")).length, 1, "a killed push leaves its lease");
  const verified = await verifyRepository(f.backend);
  assert.deepEqual(verified.errors, []);
  assert.match(verified.notes.join("\n"), /no snapshot object \(a push in progress or interrupted\)/);
});

Deno.test("remote: a snapshot made by the reference module (no manifest) is pushed and fetched byte for byte", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const stamp = await moduleSnapshot(f.store, "remote push of a module snapshot");
  const root = join(f.store.backupDir, "snapshots", stamp);
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  const into = join(f.work, "fetched");
  await fetchSnapshot(f.backend, [f.identity], pushed.snapshot, into);
  assertSameTree(root, into);
});

Deno.test("remote: a host state folder that is a symbolic link is refused by push and cleanup; nothing where it points is touched", async () => {
  using f = await repoFixture({ dbMiB: 2, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  await pushSnapshot(f.config, f.backend, root, f.auth);
  const journal = pushJournalDir(f.config.backupDir.path, f.backend.location);
  const authKey = authKeyFileFor({ keyFile: f.keyFile, recipient: f.recipient });
  const victim = join(f.work, "victim");
  Deno.mkdirSync(victim);
  Deno.writeTextFileSync(join(victim, "precious.db"), "keep me");
  for (const linked of [journal, dirname(journal)]) {
    const aside = `${linked}.aside`;
    Deno.renameSync(linked, aside);
    Deno.symlinkSync(victim, linked);
    const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}`, ATOCORE_BACKUP_AUTH_KEY_FILE: authKey };
    for (const args of [["push", "--latest"], ["remote", "cleanup", "--confirm"]]) {
      const run = await runCli(args, { env });
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(
        run.stderr,
        new RegExp(`error: ${linked} is a symbolic link \\(to ${victim}\\): .*make it a plain folder`),
      );
      assert.deepEqual([...Deno.readDirSync(victim)].map((entry) => entry.name), ["precious.db"], args.join(" "));
    }
    Deno.removeSync(linked);
    Deno.renameSync(aside, linked);
  }
});

Deno.test("remote: a snapshot another backup folder pushed under the same stamp is still validated before this one's push", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const stamp = "20260409T010203Z";
  const options = { driver: openDriver("auto"), reporter: SILENT, validation: "deep" as const, ...f.auth };
  placeValidSnapshot(f.config.backupDir.path, stamp); // a module snapshot: no manifest, so only validation checks it
  const first = await pushLocalSnapshots(f.config, f.backend, { stamp }, options);
  assert.equal(first.pushed.length, 1);
  const other = join(f.work, "other-backups"); // a second host, same second
  const root = placeValidSnapshot(other, stamp);
  const db = [...Deno.readDirSync(join(root, "db"))][0].name;
  using file = Deno.openSync(join(root, "db", db), { write: true });
  file.seekSync(4096, Deno.SeekMode.Start); // the second page's header: integrity_check fails
  file.writeSync(new Uint8Array(8).fill(0xff));
  const config = resolveConfig({ backupDir: other }, f.env, "/");
  await assert.rejects(
    pushLocalSnapshots(config, f.backend, { stamp }, options),
    (error: Error) => error instanceof InvalidSnapshotError,
  );
  const sources = (await listRemote(f.backend)).snapshots.filter((entry) => entry.stamp === stamp);
  assert.equal(sources.length, 1, "only the first folder's snapshot is listed");
});

Deno.test("remote: a FIFO as the pin or the push cache is never waited on: the pin refused, the cache ignored", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  await pushSnapshot(f.config, f.backend, root, f.auth);
  const authKey = authKeyFileFor({ keyFile: f.keyFile, recipient: f.recipient });
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}`, ATOCORE_BACKUP_AUTH_KEY_FILE: authKey };
  const run = async (args: string[]) => {
    const child = cliProcess(args, { env }).spawn();
    const output = child.output();
    const code = await killAfter(child, 120_000);
    assert.notEqual(code, null, `${args.join(" ")} blocked on a FIFO and was killed`);
    return cliRunOf(await output); // its code is the one killAfter saw
  };
  const cache = pushCachePath(f.config.backupDir.path, f.backend.location);
  Deno.removeSync(cache);
  assert.equal(new Deno.Command("mkfifo", { args: [cache] }).outputSync().code, 0);
  const pushed = await run(["create", "--chroma", "--push"]);
  assert.equal(pushed.code, 0, pushed.stderr); // a full push, as with no cache
  assert.match(pushed.stderr, /"event":"push_warning".*"warning":"push cache [^"]*push-cache could not be used/);
  Deno.removeSync(cache);
  const pin = remotePinPath(f.config.backupDir.path, f.backend.location);
  Deno.removeSync(pin);
  assert.equal(new Deno.Command("mkfifo", { args: [pin] }).outputSync().code, 0);
  const refused = await run(["remote", "list"]);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /the repository pin .*pin\.json cannot be read \(not a regular file \(FIFO\)\)/);
});
