/**
 * A root run does not follow the service's user's symbolic link at a live path to what that user does not own: create
 * would copy a root-only file into the user's backup folder, restore would write over it (exit 3, nothing changed). A
 * link of the file's owner, or of root, is followed as before.
 */
import assert from "node:assert/strict";
import { lchownSync } from "node:fs";
import { join } from "node:path";
import {
  cliEnv,
  cliRunOf,
  COMPILE_PERMISSIONS,
  createdStamp,
  ROOT,
  runCli,
  storeEnv,
  tempDir,
  tempStore,
  toolFor,
} from "../_helpers.ts";
import {
  chownToNobody,
  entriesBelow,
  entryNames,
  liveDigest,
  NOBODY_UID,
  nobodysLink,
  rootOnlyDatabase,
  runHeld,
  skipBecause,
} from "../_faults.ts";
import { sha256Hex } from "../../src/repo/sealing.ts";

Deno.test("a root create or restore refuses the service user's link at a live path to a root-only file, changing nothing", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using outside = tempDir("atocore-root-only-"); // root's, as /etc is
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "secret.json");
  Deno.writeTextFileSync(secret, '{"root":"only"}', { mode: 0o600 });
  nobodysLink(secret, store.registry);
  const snapshots = entryNames(join(store.backupDir, "snapshots"));

  const created = await runCli(["create"], { env });
  assert.equal(created.code, 3, created.stderr);
  assert.match(
    created.stderr.trim(),
    new RegExp(
      `^atocore-backup: error: create refused: ${store.registry} leads through the symbolic link ${store.registry}, ` +
        `owned by uid ${NOBODY_UID}, to ${secret}, owned by uid 0; .*nothing was changed; put the file itself there`,
    ),
  );
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots, "a snapshot was made");

  const withoutFfi = await new Deno.Command(Deno.execPath(), { // the run's user found without libc's calls
    args: ["run", ...COMPILE_PERMISSIONS.filter((flag) => flag !== "--allow-ffi"), join(ROOT, "main.ts"), "create"],
    env: cliEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output().then(cliRunOf);
  assert.equal(withoutFfi.code, 3, withoutFfi.stderr);
  assert.match(withoutFfi.stderr, /create refused: .* leads through the symbolic link /);

  const before = sha256Hex(Deno.readFileSync(secret));
  const live = liveDigest(store);
  const restored = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(restored.code, 3, restored.stderr);
  assert.match(restored.stderr, /restore refused: .* leads through the symbolic link .*nothing was changed/);
  assert.equal(sha256Hex(Deno.readFileSync(secret)), before, "the link's target was written");
  assert.deepEqual(liveDigest(store), live);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots, "a pre-restore snapshot was taken");
});

Deno.test("a root create follows a link the file's owner made, and one root made", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  const env = storeEnv(store);
  chownToNobody(store.dataDir);
  nobodysLink(`${store.registry}.moved`, store.registry); // the user's link to the user's own file
  const linkedChroma = `${store.chromaDir}-real`;
  Deno.renameSync(store.chromaDir, linkedChroma);
  Deno.symlinkSync(linkedChroma, store.chromaDir); // root's link
  const created = await runCli(["create", "--chroma"], { env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { stamp: string }).stamp;
  const copied = join(store.backupDir, "snapshots", stamp, "config", "project-registry.json");
  assert.equal(Deno.readTextFileSync(copied), Deno.readTextFileSync(`${store.registry}.moved`));
});

Deno.test("a root create or restore refuses the service user's link at the database's path to a root-only database", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using store = tempStore({ dbMiB: 1 });
  using outside = tempDir("atocore-root-only-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "secret.db");
  const before = rootOnlyDatabase(secret, "only-secret-db-77");
  nobodysLink(secret, store.db); // resolved to the real path when the settings are read: the link must still be judged
  const snapshots = entryNames(join(store.backupDir, "snapshots"));

  const created = await runCli(["create"], { env });
  assert.equal(created.code, 3, created.stderr);
  assert.match(
    created.stderr.trim(),
    new RegExp(
      `^atocore-backup: error: create refused: ${store.db} leads through the symbolic link ${store.db}, owned by uid ` +
        `${NOBODY_UID}, to ${secret}, owned by uid 0; .*nothing was changed; [^\\n]*$`,
    ),
  );
  const restored = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(restored.code, 3, restored.stderr);
  assert.match(restored.stderr, /restore refused: .* leads through the symbolic link .*nothing was changed/);
  assert.equal(sha256Hex(Deno.readFileSync(secret)), before, "the root-only database was written");
  assert.deepEqual(entryNames(outside.path), ["secret.db"]);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots, "a snapshot was made");
});

Deno.test("a root drill or create does not write its --junit or --metrics-file through the service user's link to a root file", async () => {
});

Deno.test("a root drill or create does not write its --junit, --metrics-file or scratch copy through the service user's link to root's file or folder", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using outside = tempDir("atocore-root-only-"); // root's, as /etc is
  using reports = tempDir("atocore-reports-"); // the service user's folder, where a CI job writes its reports
  const env = storeEnv(store);
  await createdStamp(env);
  chownToNobody(reports.path);
  const secret = join(outside.path, "secret");
  Deno.writeTextFileSync(secret, "root only", { mode: 0o600 });
  const linked = join(reports.path, "linked.xml");
  Deno.symlinkSync(secret, linked);
  lchownSync(linked, NOBODY_UID, NOBODY_UID);
  const dangling = join(reports.path, "dangling.prom"); // to a file not made yet, in root's folder
  Deno.symlinkSync(join(outside.path, "made"), dangling);
  lchownSync(dangling, NOBODY_UID, NOBODY_UID);
  const linkedFolder = join(reports.path, "scratch"); // to root's folder, which a kept scratch copy would fill
  Deno.symlinkSync(outside.path, linkedFolder);
  lchownSync(linkedFolder, NOBODY_UID, NOBODY_UID);
  const runs: [string[], string, string][] = [
    [["drill", "--latest", "--junit", linked], "junit", linked],
    [["drill", "--latest", "--metrics-file", dangling], "metrics-file", dangling],
    [["create", "--metrics-file", linked], "metrics-file", linked],
    [["drill", "--latest", "--keep", "--scratch-dir", linkedFolder], "scratch-dir", linkedFolder],
  ];
  for (const [args, flag, path] of runs) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 3, `${args.join(" ")}: ${run.stderr}`);
    assert.match(
      run.stderr.trim(),
      new RegExp(
        `^atocore-backup: error: --${flag} ${path} leads through the symbolic link ${path}, owned by uid ` +
          `${NOBODY_UID}, to .*, owned by uid 0; .*nothing was done`,
      ),
    );
  }
  assert.equal(Deno.readTextFileSync(secret), "root only", "the link's target was written");
  assert.deepEqual(entryNames(outside.path), ["secret"], "a file was made through the dangling link");
  const own = join(reports.path, "drill.xml"); // a plain path in the same folder is written as before
  const drill = await runCli(["drill", "--latest", "--junit", own], { env });
  assert.equal(drill.code, 0, drill.stderr);
  assert.match(Deno.readTextFileSync(own), /<testsuites /);
});

Deno.test("a root drill writes its --junit and --metrics-file into the folder judged, though the service user swaps it for a link to root's folder mid-run", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  if (!toolFor("strace", "a folder swapped while the drill runs")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using outside = tempDir("atocore-root-only-");
  using parent = tempDir("atocore-reports-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const reports = join(parent.path, "out"); // the service user's folder, where a CI job writes its reports
  Deno.mkdirSync(reports);
  chownToNobody(parent.path);
  const args = ["drill", "--latest", "--junit", join(reports, "j.xml"), "--metrics-file", join(reports, "m.prom")];
  const held = join(store.backupDir, "snapshots", stamp, "backup-metadata.json"); // read once the outputs are judged
  const run = await runHeld(args, env, { held, calls: "openat" }, () => nobodysLink(outside.path, reports));
  assert.ok(run.held, "the swap did not happen while the drill ran");
  assert.deepEqual(entryNames(outside.path), [], "a report was written through the link into root's folder");
  assert.deepEqual(entryNames(`${reports}.moved`).sort(), ["j.xml", "m.prom"], "the reports are in the folder judged");
});

Deno.test("a root drill refuses a --scratch-dir the service user may rename entries of, or one below such a folder, making nothing there", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the folders' owners cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using reports = tempDir("atocore-scratch-"); // the service user's folder, on the big disk beside its store
  const env = storeEnv(store);
  await createdStamp(env);
  const below = join(reports.path, "root-scratch"); // root's own folder, which the service user may still rename
  Deno.mkdirSync(below);
  chownToNobody(reports.path);
  Deno.chownSync(below, 0, 0);
  // the user renames the scratch folder root makes there and puts a link to root's folder in its place meanwhile
  for (
    const [scratch, why] of [[reports.path, "it belongs to user 65534"], [
      below,
      `the folder ${reports.path} above it belongs to user 65534`,
    ]]
  ) {
    const run = await runCli(["drill", "--latest", "--scratch-dir", scratch], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.equal(
      run.stderr.trim().split("\n").at(-1),
      `atocore-backup: error: --scratch-dir ${scratch} is no place for a scratch copy: ${why}, so another user could ` +
        "swap the folder made there for a link while the copy is written through its path; nothing was done; give a " +
        "folder that only this user or root may write (the default is the temporary folder)",
    );
  }
  assert.deepEqual(entriesBelow(reports.path), ["root-scratch"], "a scratch folder was made");
});

Deno.test("a root drill without --scratch-dir refuses a TMPDIR the service user may rename entries of, making nothing there", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the folder's owner cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using temp = tempDir("atocore-tmpdir-"); // TMPDIR left pointing at the service user's folder
  const env = storeEnv(store);
  await createdStamp(env);
  chownToNobody(temp.path);
  const run = await runCli(["drill", "--latest"], { env: { ...env, TMPDIR: temp.path } });
  assert.equal(run.code, 3, run.stderr);
  assert.equal(
    run.stderr.trim().split("\n").at(-1),
    `atocore-backup: error: the temporary folder ${temp.path} (TMPDIR) is no place for the scratch copy: it belongs ` +
      "to user 65534, so another user could swap the folder made there for a link while the copy is written through " +
      "its path; nothing was done; set TMPDIR to a folder that only this user or root may write, or give --scratch-dir DIR",
  );
  assert.deepEqual(entriesBelow(temp.path), [], "a scratch folder was made");
});

Deno.test("a root create or cleanup refuses a backup folder that is the service user's link to root's folder, writing nothing there", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using outside = tempDir("atocore-root-only-"); // root's own backups, say
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  Deno.renameSync(join(store.backupDir, "snapshots"), join(outside.path, "snapshots"));
  chownToNobody(store.dataDir);
  Deno.removeSync(store.backupDir, { recursive: true });
  Deno.symlinkSync(outside.path, store.backupDir);
  lchownSync(store.backupDir, NOBODY_UID, NOBODY_UID);
  for (const args of [["create"], ["cleanup", "--confirm"], ["restore", stamp, "--confirm-service-stopped"]]) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 3, `${args[0]}: ${run.stderr}`);
    assert.match(
      run.stderr.trim(),
      new RegExp(
        `^atocore-backup: error: ${args[0]} refused: ${store.backupDir} leads through the symbolic link ` +
          `${store.backupDir}, owned by uid ${NOBODY_UID}, to ${outside.path}, owned by uid 0; .*nothing was changed`,
      ),
    );
    assert.deepEqual(entryNames(outside.path), ["snapshots"], `${args[0]} wrote in root's folder`);
    assert.deepEqual(entryNames(join(outside.path, "snapshots")), [stamp], `${args[0]} changed root's snapshots`);
  }
});

Deno.test("a root restore --to a folder in the service user's folder, or below it, is refused: that user could swap it for a link once made", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the folders' owners cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using shared = tempDir("atocore-shared-"); // the service user's
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const rootOwn = join(shared.path, "root-own"); // root's own folder in it, which the service user may still rename
  Deno.mkdirSync(rootOwn);
  chownToNobody(shared.path);
  Deno.chownSync(rootOwn, 0, 0);
  const cases = [
    [join(shared.path, "restored"), shared.path, "it belongs to user 65534"],
    [join(rootOwn, "new", "restored"), rootOwn, `the folder ${shared.path} above it belongs to user 65534`],
  ];
  for (const [to, parent, why] of cases) {
    const run = await runCli(["restore", stamp, "--to", to], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.equal(
      run.stderr.trim().split("\n").at(-1),
      `atocore-backup: error: --to ${to} is no place for a restore (the folder it is in, ${parent}: ${why}), so ` +
        "another user could swap it for a link while the store is written through its path; nothing was changed; " +
        "give a folder in one that only this user or root may write",
    );
  }
  assert.deepEqual(entriesBelow(shared.path), ["root-own"], "a folder was made");
});

Deno.test("a root restore --to an empty folder another user owns or may write is refused: its owner may rename it even in a sticky /tmp", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the folders' owners cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using sticky = tempDir("atocore-sticky-"); // root's, as /tmp: anyone may make an entry, only its owner rename it
  Deno.chmodSync(sticky.path, 0o1777);
  const stamp = await createdStamp(storeEnv(store));
  const theirs = join(sticky.path, "theirs");
  const open = join(sticky.path, "open");
  Deno.mkdirSync(theirs);
  chownToNobody(theirs);
  Deno.mkdirSync(open);
  Deno.chmodSync(open, 0o777);
  for (const [to, why] of [[theirs, "it belongs to user 65534"], [open, "it may be written by others (mode 777)"]]) {
    const run = await runCli(["restore", stamp, "--to", to], { env: storeEnv(store) });
    assert.equal(run.code, 3, run.stderr);
    assert.equal(
      run.stderr.trim().split("\n").at(-1),
      `atocore-backup: error: --to ${to} is no place for a restore (${why}), so another user could swap it for a ` +
        "link while the store is written through its path; nothing was changed; give a folder in one that only this " +
        "user or root may write",
    );
    assert.deepEqual(entriesBelow(to), [], "something was restored");
  }
});

Deno.test("a root restore --to refuses a folder reached through the service user's link to root's folder, writing nothing there", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using outside = tempDir("atocore-root-only-"); // root's, empty
  using shared = tempDir("atocore-shared-"); // the service user's
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  chownToNobody(shared.path);
  const link = join(shared.path, "restored");
  Deno.symlinkSync(outside.path, link);
  lchownSync(link, NOBODY_UID, NOBODY_UID);
  for (const to of [link, join(link, "inside")]) {
    const run = await runCli(["restore", stamp, "--to", to, "--force"], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(
      run.stderr.trim(),
      new RegExp(
        `^atocore-backup: error: restore refused: ${to} leads through the symbolic link ${link}, owned by uid ` +
          `${NOBODY_UID}, to ${outside.path}, owned by uid 0; .*nothing was changed`,
      ),
    );
    assert.deepEqual(entryNames(outside.path), [], "the store was restored into root's folder");
  }
});

Deno.test("built-in create into a folder others may write, TMPDIR missing: its copy is made aside in /tmp, never blamed on the live database", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.05 });
  using shared = tempDir();
  Deno.chmodSync(shared.path, 0o777); // not sticky: another user may swap a folder on the backup folder's path
  const backups = join(shared.path, "backups");
  const env = { ...storeEnv(store), ATOCORE_BACKUP_DIR: backups, TMPDIR: join(shared.path, "missing") };
  const created = await runCli(["create", "--sqlite-driver", "builtin"], { env });
  assert.equal(created.code, 0, created.stderr);
  const validated = await runCli(["validate", "--all"], { env });
  assert.equal(validated.code, 0, validated.stdout);
});
