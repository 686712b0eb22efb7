/**
 * The repository on real mounts: on a read-only bind mount a push fails in one clear line and lists nothing, while
 * list, verify and restore work; on a tiny tmpfs that fills up a push fails in one line naming the full disk, lists
 * nothing, and the push after space is freed succeeds and verifies. Skipped (with the reason) where mounting is not
 * permitted.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, cliRunOf, runCli, skipBecause } from "../_helpers.ts";
import { exists } from "../../src/fs/probe.ts";
import { treeDigest } from "../_faults.ts";
import { bindMount, bindReadOnly, mountTmpfs } from "../_mount.ts";
import {
  assertVerified,
  createAndPush,
  oneErrorLine,
  remoteNames,
  remoteStore,
  snapshotAsStore,
} from "../_remote_cli.ts";

Deno.test("remote on a read-only mount: push fails in one line, nothing listed; list, verify and restore work", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const first = await createAndPush(r.env);
  const second = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(second.code, 0, second.stderr);
  const objects = treeDigest(r.repoDir);
  {
    const mount = bindReadOnly(r.repoDir);
    if (typeof mount === "string") return skipBecause(mount);
    using _mount = mount;
    const pushed = await runCli(["push", "--latest"], { env: r.env });
    assert.equal(pushed.code, 1, pushed.stderr);
    const line = oneErrorLine(pushed, "read-only");
    assert.match(
      line,
      /push of \d{8}T\d{6}Z to file:\/\/.* failed writing leases\/\w+: read-only file system; nothing of/,
    );
    assert.match(line, /make the repository writable/);
    const created = await runCli(["create", "--push"], { env: r.env });
    assert.equal(created.code, 1, "create --push with a failed push exits 1");
    assert.match((created.json as { push_error: string }).push_error, /read-only file system.* is fine \(validated\)/);
    assert.deepEqual(await remoteNames(r.env), [first.push.snapshot]);
    await assertVerified(r.envWithIdentity, ["--read-data"], "on the read-only mount");
    const to = join(r.work, "to");
    const restored = await runCli(["restore", first.stamp, "--from-remote", "--to", to], { env: r.envWithIdentity });
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(treeDigest(to), snapshotAsStore(join(r.store.backupDir, "snapshots", first.stamp)));
    const drill = await runCli(["drill", "--from-remote", "--latest"], { env: r.envWithIdentity });
    assert.equal(drill.code, 0, drill.stdout);
  }
  assert.deepEqual(treeDigest(r.repoDir), objects, "nothing was written to the repository");
  const later = await runCli(["push", "--all"], { env: r.env });
  assert.equal(later.code, 0, `once writable: ${later.stderr}`);
  assert.equal((await remoteNames(r.env)).length, 3);
  const mount = bindReadOnly(r.repoDir); // a cleanup that has snapshots to remove, on the read-only mount
  if (typeof mount === "string") return skipBecause(mount);
  using _mount = mount;
  const policy = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const cleaned = await runCli(["remote", "cleanup", "--confirm", ...policy], { env: r.env });
  assert.equal(cleaned.code, 1, cleaned.stderr);
  assert.match(
    oneErrorLine(cleaned, "read-only cleanup"),
    /remote cleanup of file:\/\/.* failed.*: read-only file system; every snapshot still listed has all its objects; make the repository writable/,
  );
  assert.equal((await remoteNames(r.env)).length, 3);
});

Deno.test("remote on a full tmpfs: push fails naming the full disk, nothing listed; after space is freed it succeeds", async () => {
  using r0 = await remoteStore({ dbMiB: 1, chromaMiB: 1 }); // only for its work folder and keys
  const repoDir = join(r0.work, "tiny");
  Deno.mkdirSync(repoDir);
  const mount = mountTmpfs(repoDir, "24m");
  if (typeof mount === "string") return skipBecause(mount);
  using _mount = mount;
  using r = await remoteStore({ dbMiB: 16, chromaMiB: 2, seed: 5 }, repoDir);
  const filler = join(repoDir, ".filler"); // hidden: never an object of the repository
  Deno.writeFileSync(filler, new Uint8Array(14 << 20));
  const created = await runCli(["create", "--chroma"], { env: r.env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  const pushed = await runCli(["push", stamp], { env: r.env });
  assert.equal(pushed.code, 1, pushed.stderr);
  const line = oneErrorLine(pushed, "disk full");
  assert.match(line, new RegExp(`push of ${stamp} to file://${repoDir} failed writing packs/\\w+/\\w+: no space left`));
  assert.match(line, /no space left on device \(disk full\)/);
  assert.match(line, /nothing of it is listed; free space on that disk, then push again/);
  assert.deepEqual(await remoteNames(r.env), []);
  assert.deepEqual([...Deno.readDirSync(join(repoDir, ".tmp"))], [], "no staged write is left");
  await assertVerified(r.env, [], "after the failed push");

  Deno.removeSync(filler);
  const again = await runCli(["push", stamp], { env: r.env });
  assert.equal(again.code, 0, again.stderr);
  const json = again.json as { pushed: { snapshot: string; packs_reused: number }[] };
  assert.deepEqual(await remoteNames(r.env), [json.pushed[0].snapshot]);
  await assertVerified(r.envWithIdentity, ["--read-data"], "after the push");
  const to = join(r.work, "to");
  const restored = await runCli(["restore", stamp, "--from-remote", "--to", to], { env: r.envWithIdentity });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(treeDigest(to), snapshotAsStore(join(r.store.backupDir, "snapshots", stamp)));
});

/** Whether a pack file is in `repoDir`'s `packs/` yet. */
function hasPack(repoDir: string): boolean {
  try {
    return [...Deno.readDirSync(join(repoDir, "packs"))].some((entry) =>
      [...Deno.readDirSync(join(repoDir, "packs", entry.name))].length > 0
    );
  } catch {
    return false;
  }
}

Deno.test("a repository whose disk is unmounted mid-push: the push fails saying so, nothing made on the disk below", async () => {
  using r0 = await remoteStore({ dbMiB: 1, chromaMiB: 1 }); // only for its work folder
  const nas = join(r0.work, "nas");
  Deno.mkdirSync(nas);
  const mount = mountTmpfs(nas, "512m");
  if (typeof mount === "string") return skipBecause(mount);
  let mounted = true;
  try {
    using r = await remoteStore({ dbMiB: 160, chromaMiB: 1, seed: 7 }, join(nas, "repo"));
    const created = await runCli(["create"], { env: r.env });
    assert.equal(created.code, 0, created.stderr);
    const push = cliProcess(["push", "--latest"], { env: r.env }).spawn();
    for (let wait = 0; !hasPack(r.repoDir); wait++) {
      assert.ok(wait < 30_000, "no pack was written within 60 s");
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const lazy = new Deno.Command("umount", { args: ["-l", nas] }).outputSync(); // a NAS dropped under a running push
    assert.ok(lazy.success, new TextDecoder().decode(lazy.stderr));
    mounted = false;
    const pushed = cliRunOf(await push.output());
    assert.equal(pushed.code, 1, pushed.stderr);
    assert.match(oneErrorLine(pushed, "unmounted"), /the repository \S+ was there and is gone \(its disk unmounted/);
    assert.deepEqual([...Deno.readDirSync(nas)], [], "nothing made on the disk below the mount point");
  } finally {
    if (mounted) mount[Symbol.dispose]();
  }
});

Deno.test("restore --from-remote with a scratch folder that is a bind mount of the target's disk counts the copy", async () => {
  using r = await remoteStore({ dbMiB: 6, chromaMiB: 2, seed: 11 });
  const { stamp } = await createAndPush(r.env);
  const disk = join(r.work, "disk");
  const scratch = join(r.work, "scratch");
  Deno.mkdirSync(disk);
  Deno.mkdirSync(scratch);
  const tmpfs = mountTmpfs(disk, "13m"); // one fetched copy fits, and not a second
  if (typeof tmpfs === "string") return skipBecause(tmpfs);
  using _tmpfs = tmpfs;
  Deno.mkdirSync(join(disk, "scratch"));
  const bind = bindMount(join(disk, "scratch"), scratch); // the same device, another mount: a rename fails (EXDEV)
  if (typeof bind === "string") return skipBecause(bind);
  using _bind = bind;
  const to = join(disk, "out");
  const args = ["restore", stamp, "--from-remote", "--to", to, "--scratch-dir", scratch];
  const run = await runCli(args, { env: r.envWithIdentity });
  assert.equal(run.code, 3, run.stderr);
  const line = oneErrorLine(run, "not enough room");
  assert.match(line, new RegExp(`not enough free space for this restore on the filesystem of ${disk}: it needs`));
  assert.match(line, /database copy .*Chroma copy .*nothing was changed/);
  assert.deepEqual([...Deno.readDirSync(disk)].map((entry) => entry.name), ["scratch"], "the restore wrote to --to");
  assert.deepEqual([...Deno.readDirSync(scratch)], [], "the scratch copy is left");
});

Deno.test("drill --from-remote with a scratch tmpfs that holds one copy of the store: the restore check is refused", async () => {
  using r = await remoteStore({ dbMiB: 6, chromaMiB: 2, seed: 13 });
  await createAndPush(r.env);
  const scratch = join(r.work, "scratch");
  Deno.mkdirSync(scratch);
  const tmpfs = mountTmpfs(scratch, "13m"); // the fetched copy fits, and not the restored one beside it
  if (typeof tmpfs === "string") return skipBecause(tmpfs);
  using _tmpfs = tmpfs;
  const run = await runCli(["drill", "--from-remote", "--latest", "--scratch-dir", scratch], {
    env: r.envWithIdentity,
  });
  assert.equal(run.code, 1, run.stderr);
  const checks = (run.json as { checks: { name: string; status: string; detail: string }[] }).checks;
  assert.equal(checks.find((check) => check.name === "snapshot_valid")?.status, "passed", "the fetch did not fit");
  const restore = checks.find((check) => check.name === "restore")!;
  assert.equal(restore.status, "failed");
  assert.match(restore.detail, new RegExp(`not enough free space for this restore on the filesystem of ${scratch}`));
  assert.match(restore.detail, /nothing was changed; .*--scratch-dir DIR/);
  assert.deepEqual([...Deno.readDirSync(scratch)], [], "a scratch copy is left");
});

Deno.test("restore --from-remote --to a folder on a read-only mount is refused before the fetch, nothing left anywhere", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  const target = join(r.work, "target");
  Deno.mkdirSync(target);
  const mount = bindReadOnly(target);
  if (typeof mount === "string") return skipBecause(mount);
  using _mount = mount;
  const temp = join(r.work, "temp");
  Deno.mkdirSync(temp);
  for (const to of [join(target, "new", "store"), target]) {
    const run = await runCli(["restore", stamp, "--from-remote", "--to", to, "--force"], {
      env: { ...r.envWithIdentity, TMPDIR: temp },
    });
    assert.equal(run.code, 1, run.stderr);
    const what = to === target ? "write in" : "make";
    assert.match(
      oneErrorLine(run, to),
      new RegExp(`restore cannot ${what} ${to} \\(read-only file system\\); nothing`),
    );
    assert.doesNotMatch(run.stderr, /remote_fetch_started/, "refused before anything was fetched");
    assert.deepEqual([...Deno.readDirSync(temp)], [], "no scratch copy was made");
  }
  assert.deepEqual([...Deno.readDirSync(target)], []);
});

Deno.test("a folder mounted inside the repository (another's packs/ab) is refused: nothing condemned or deleted there", async () => {
  using a = await remoteStore({ dbMiB: 1 });
  using b = await remoteStore({ dbMiB: 1 });
  await createAndPush(a.env);
  await createAndPush(b.env);
  const shard = [...Deno.readDirSync(join(a.repoDir, "packs"))][0].name;
  const inB = join(b.repoDir, "packs", shard);
  Deno.mkdirSync(inB, { recursive: true });
  const before = treeDigest(a.repoDir);
  const mounted = bindMount(join(a.repoDir, "packs", shard), inB);
  if (typeof mounted === "string") return skipBecause(mounted);
  {
    using _mount = mounted;
    const said = `${inB} is a mount point inside the repository ${b.repoDir}: its files are another folder's, which ` +
      "this tool never lists, writes or removes; unmount it, then run the command again";
    for (const args of [["remote", "cleanup", "--confirm"], ["remote", "verify"], ["push", "--all"]]) {
      await runCli(["create"], { env: b.env }); // a snapshot to push
      const run = await runCli(args, { env: b.env });
      assert.equal(run.code, 1, run.stderr);
      assert.ok(oneErrorLine(run, args.join(" ")).endsWith(said), run.stderr);
    }
    assert.deepEqual(treeDigest(a.repoDir), before, "the other repository is as it was");
  }
  const condemned = join(b.repoDir, "condemned");
  assert.deepEqual(exists(condemned) ? [...Deno.readDirSync(condemned)] : [], [], "nothing condemned");
  await assertVerified(a.envWithIdentity, ["--read-data"], "the repository whose folder was mounted");
});

Deno.test("drill --from-remote with scratch room for the fetched copy only: restore fails on free space, not as removed", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const { push } = await createAndPush(r.env);
  const scratch = join(r.work, "scratch");
  Deno.mkdirSync(scratch);
  const mount = mountTmpfs(scratch, "5m"); // a copy is about 3.3 MiB: room for the fetch, not for the restore too
  if (typeof mount === "string") return skipBecause(mount);
  using _mount = mount;
  const ci = { ...r.envWithIdentity, ATOCORE_DATA_DIR: join(r.work, "ci-runner") }; // no backup folder here
  const run = await runCli(["drill", "--from-remote", push.snapshot, "--scratch-dir", scratch], { env: ci });
  assert.equal(run.code, 1, run.stderr);
  const checks = (run.json as { checks: { name: string; status: string; detail: string }[] }).checks;
  const restore = checks.find((check) => check.name === "restore")!;
  assert.equal(restore.status, "failed", JSON.stringify(checks));
  assert.match(restore.detail, /^not enough free space for this restore on the filesystem of /);
  assert.doesNotMatch(run.stdout + run.stderr, /removed while the drill ran/);
  assert.deepEqual([...Deno.readDirSync(scratch)], [], "the scratch copies are removed");
});

Deno.test("a mount hidden under one made over the repository later is out of reach: the repository works", async () => {
  using r = await remoteStore({ dbMiB: 1 });
  await createAndPush(r.env);
  const copy = join(r.work, "copy");
  assert.ok(new Deno.Command("cp", { args: ["-a", r.repoDir, copy] }).outputSync().success);
  const stale = join(r.repoDir, "packs", "zz");
  Deno.mkdirSync(stale);
  const hidden = mountTmpfs(stale, "1m"); // then the repository's folder is mounted over, with the repository in it
  if (typeof hidden === "string") return skipBecause(hidden);
  using _hidden = hidden;
  const over = bindMount(copy, r.repoDir);
  if (typeof over === "string") return skipBecause(over);
  {
    using _over = over;
    assert.equal(exists(stale), false, "packs/zz is not in the repository now reached");
    await assertVerified(r.envWithIdentity, ["--read-data"], "over the hidden mount");
    const cleaned = await runCli(["remote", "cleanup", "--confirm"], { env: r.env });
    assert.equal(cleaned.code, 0, cleaned.stderr);
  }
});
