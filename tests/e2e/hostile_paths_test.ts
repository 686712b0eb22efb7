/**
 * Safety findings of the storage review: `restore --to` (and so the drill) never
 * writes outside its folder through a symbolic link placed in it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { exists } from "../../src/fs/probe.ts";
import { createdStamp, runCli, runCliInShell, storeEnv, tempDir, tempStore, toolFor } from "../_helpers.ts";
import { entryNames, skipBecause } from "../_faults.ts";
import { mountTmpfs } from "../_mount.ts";

Deno.test("restore --to refuses a database (or -wal), registry or Chroma target that is a symbolic link out of the folder", async () => {
  using store = tempStore({ dbMiB: 1 });
  using scratch = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const outside = join(scratch.path, "outside");
  Deno.mkdirSync(join(outside, "chroma-elsewhere"), { recursive: true });
  const precious = join(outside, "chroma-elsewhere", "precious.txt");
  Deno.writeTextFileSync(precious, "keep me");
  const decoy = join(outside, "decoy.txt");
  Deno.writeTextFileSync(decoy, "not a database");

  const links: [string, string][] = [
    ["atocore.db", decoy],
    ["atocore.db-wal", decoy],
    ["project-registry.json", decoy],
    ["chroma", join(outside, "chroma-elsewhere")],
  ];
  for (const [name, pointsTo] of links) {
    const to = join(scratch.path, `to-${name}`);
    Deno.mkdirSync(to);
    Deno.symlinkSync(pointsTo, join(to, name));
    const notEmpty = await runCli(["restore", stamp, "--to", to], { env });
    assert.equal(notEmpty.code, 3, `a --to folder that holds ${name} must be refused: ${notEmpty.stderr}`);
    const run = await runCli(["restore", stamp, "--to", to, "--force"], { env });
    assert.equal(run.code, 3, `a symbolic link ${name} in --to must be refused: ${run.stderr}`);
    assert.match(run.stderr, /symbolic link/);
    assert.match(run.stderr, new RegExp(join(to, name).replaceAll(".", "\\.")));
    const errors = run.stderr.split("\n").filter((line) => line.startsWith("atocore-backup: error:"));
    assert.equal(errors.length, 1, run.stderr);
    assert.equal(Deno.readTextFileSync(decoy), "not a database");
    assert.deepEqual([...Deno.readDirSync(join(outside, "chroma-elsewhere"))].map((entry) => entry.name), [
      "precious.txt",
    ]);
    assert.equal(Deno.readTextFileSync(precious), "keep me");
  }
});

Deno.test("a lock file that is a symbolic link is refused, and the file it points to is not truncated", async () => {
  using store = tempStore({ dbMiB: 1 });
  using scratch = tempDir();
  const env = storeEnv(store);
  const elsewhere = join(scratch.path, "important.conf");
  Deno.writeTextFileSync(elsewhere, "do not truncate\n");
  Deno.mkdirSync(store.backupDir, { recursive: true });
  Deno.symlinkSync(elsewhere, join(store.backupDir, ".lock"));

  for (const args of [["create"], ["cleanup", "--confirm"]]) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 3, `${args.join(" ")} must refuse a linked lock file: ${run.stderr}`);
    assert.match(run.stderr, /symbolic link/);
    assert.ok(run.stderr.includes(join(store.backupDir, ".lock")), run.stderr);
    assert.equal(Deno.readTextFileSync(elsewhere), "do not truncate\n");
  }
  assert.equal(Deno.readTextFileSync(elsewhere), "do not truncate\n");
  assert.deepEqual([...Deno.readDirSync(store.backupDir)].map((entry) => entry.name), [".lock"]);
});

Deno.test("a lock file that is a hard link to the live database is refused, and the database is not truncated", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const before = Deno.readFileSync(store.db);
  Deno.mkdirSync(store.backupDir, { recursive: true });
  Deno.linkSync(store.db, join(store.backupDir, ".lock"));
  for (const args of [["create"], ["cleanup", "--confirm"]]) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 3, `${args.join(" ")} must refuse a hard-linked lock file: ${run.stderr}`);
    assert.match(
      run.stderr,
      /lock file .*\.lock is a file with 2 names \(a hard link\), .* remove .*\.lock, then run again$/m,
    );
    assert.deepEqual(Deno.readFileSync(store.db), before, "the live database changed");
  }
});

Deno.test("a full backup disk: the lock is taken without its note, and cleanup runs to free space", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  Deno.mkdirSync(store.backupDir, { recursive: true });
  const mounted = mountTmpfs(store.backupDir, "6m");
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const first = await createdStamp(env);
  const second = await createdStamp(env);
  assert.throws(() => Deno.writeFileSync(join(store.backupDir, "filler"), new Uint8Array(8 << 20)), /No space left/);
  const policy = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const cleaned = await runCli(["cleanup", "--confirm", ...policy], { env });
  assert.equal(cleaned.code, 0, cleaned.stderr);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [second], `${first} was not removed`);
});

Deno.test("a backup folder in a snapshot or in another backup folder is refused by every command, nothing written", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const snapshot = join(store.backupDir, "snapshots", stamp);
  const linked = join(store.backupDir, "snapshots", "20200101T000000Z"); // a stamp folder whose metadata is a link
  Deno.mkdirSync(linked);
  Deno.symlinkSync(join(snapshot, "backup-metadata.json"), join(linked, "backup-metadata.json"));
  const before = [entryNames(snapshot), entryNames(store.backupDir)];
  const cases: [string[], string, RegExp][] = [
    [["create"], snapshot, /is in the snapshot .*, which would then no longer validate/],
    [["cleanup", "--confirm"], join(snapshot, "db"), /is in the snapshot .*, which would then no longer validate/],
    [["create"], join(linked, "inner"), /is in the snapshot .*20200101T000000Z, which would then no longer validate/],
    [
      ["create"],
      join(store.backupDir, ".staging", "inner"),
      /is inside the backup folder .*, whose create and cleanup/,
    ],
    [["list"], join(store.backupDir, ".trash", "inner"), /is inside the backup folder .*, whose create and cleanup/],
    [["remote", "cleanup", "--remote", join(store.dataDir, "..", "no-repo")], snapshot, /is in the snapshot/],
  ];
  for (const [args, inside, pattern] of cases) {
    const run = await runCli([...args, "--backup-dir", inside], { env });
    assert.equal(run.code, 2, `${args.join(" ")} --backup-dir ${inside}: ${run.stderr}`);
    assert.ok(run.stderr.includes(`error: the backup folder ${inside} `), run.stderr);
    assert.match(run.stderr, pattern);
    assert.match(run.stderr, /nothing was done; point --backup-dir \(ATOCORE_BACKUP_DIR\) at a folder of its own$/m);
  }
  assert.deepEqual([entryNames(snapshot), entryNames(store.backupDir)], before, "something was written");
  assert.equal((await runCli(["validate", stamp], { env })).code, 0);
});

Deno.test("ensureDir fsyncs the folder holding each folder it creates, not only the last one's (needs strace)", async () => {
  if (!toolFor("strace", "ensureDir's fsyncs traced")) return;
  using scratch = tempDir();
  const trace = join(scratch.path, "trace.txt");
  const deep = join(scratch.path, "a", "b", "c");
  const script = `import { ensureDir } from ${JSON.stringify(new URL("../../src/fs/durable.ts", import.meta.url).href)};
ensureDir(${JSON.stringify(deep)});`;
  const run = await new Deno.Command("strace", {
    args: ["-f", "-y", "-e", "trace=fsync", "-o", trace, Deno.execPath(), "eval", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(run.success, new TextDecoder().decode(run.stderr));
  const synced = new Set([...Deno.readTextFileSync(trace).matchAll(/fsync\(\d+<([^>]*)>\)\s+=\s+0/g)].map((m) => m[1]));
  const real = Deno.realPathSync(scratch.path);
  for (const folder of [real, join(real, "a"), join(real, "a", "b")]) {
    assert.ok(
      synced.has(folder),
      `${folder} (holding a new folder) was not fsynced; fsynced: ${[...synced].join(", ")}`,
    );
  }
});

Deno.test("a snapshot whose metadata cannot be read is reported by list and validate --all; the others still are", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const good = await createdStamp(env);
  const bad = await createdStamp(env);
  const metadata = join(store.backupDir, "snapshots", bad, "backup-metadata.json");
  Deno.removeSync(metadata);
  Deno.mkdirSync(metadata);

  const list = await runCli(["list"], { env });
  assert.equal(list.code, 0, list.stderr);
  const backups = (list.json as { backups: { stamp: string; metadata_error?: string }[] }).backups;
  assert.deepEqual(backups.map((entry) => [entry.stamp, entry.metadata_error]), [[good, undefined], [
    bad,
    "unreadable",
  ]]);

  const validate = await runCli(["validate", "--all"], { env });
  assert.equal(validate.code, 1, validate.stderr);
  const results = (validate.json as { results: { stamp: string; valid: boolean; errors: string[] }[] }).results;
  assert.deepEqual(results.map((result) => [result.stamp, result.valid]), [[good, true], [bad, false]]);
  assert.match(results[1].errors[0], /^metadata_unreadable: is a directory$/);
});

Deno.test("a snapshot whose db/, config/ or chroma/ is a symbolic link out of it is invalid, and restore reads nothing through it", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using scratch = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const root = join(store.backupDir, "snapshots", stamp);
  for (const folder of ["db", "config", "chroma"]) {
    const outside = join(scratch.path, `outside-${folder}`);
    Deno.renameSync(join(root, folder), outside); // the same bytes, elsewhere: only the link is wrong
    Deno.symlinkSync(outside, join(root, folder));
    const validated = await runCli(["validate", stamp], { env });
    assert.notEqual(validated.code, 0, validated.stdout);
    assert.match(validated.stdout + validated.stderr, new RegExp(`snapshot_folder_is_a_link: ${folder} -> ${outside}`));
    const to = join(scratch.path, `to-${folder}`);
    const restored = await runCli(["restore", stamp, "--to", to], { env });
    assert.equal(restored.code, 3, restored.stderr);
    assert.ok(!exists(to) || [...Deno.readDirSync(to)].length === 0, `restore wrote into ${to}`);
    Deno.removeSync(join(root, folder));
    Deno.renameSync(outside, join(root, folder));
  }
  assert.equal((await runCli(["validate", stamp], { env })).code, 0);
});

Deno.test("a lock file that is a FIFO, or a backup folder that is a file, is one line naming it (exit 3, exit 2)", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  Deno.mkdirSync(store.backupDir, { recursive: true });
  const lock = join(store.backupDir, ".lock");
  assert.equal(new Deno.Command("mkfifo", { args: [lock] }).outputSync().code, 0);
  const fifo = await runCli(["create"], { env });
  assert.equal(fifo.code, 3, fifo.stderr);
  assert.match(
    fifo.stderr,
    new RegExp(`error: the lock file ${lock} is a FIFO, not a file; remove it, then run again`),
  );
  Deno.removeSync(store.backupDir, { recursive: true });
  Deno.writeTextFileSync(store.backupDir, "not a folder");
  for (const args of [["create"], ["cleanup"], ["cleanup", "--confirm"]]) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, /error: the backup folder .* is a file, not a folder; point --backup-dir/);
  }
  assert.equal(Deno.readTextFileSync(store.backupDir), "not a folder");
});

Deno.test("the note of a lock held by a writer of the backup folder is read bounded: a 600 MiB one is one line (exit 4)", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  Deno.mkdirSync(store.backupDir, { recursive: true });
  const lock = join(store.backupDir, ".lock");
  using held = Deno.openSync(lock, { read: true, write: true, create: true });
  held.lockSync(true);
  held.writeSync(new TextEncoder().encode("a holder\nrestore finished: ok\n"));
  held.truncateSync(600 << 20); // sparse: past what one string or buffer of the reader may hold
  const run = await runCli(["create"], { env });
  assert.equal(run.code, 4, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`^atocore-backup: error: backup folder is locked by a holder: ${lock}; wait`, "m"),
  );
  assert.doesNotMatch(run.stderr, /restore finished/);
});

Deno.test("a snapshot whose config/ or db/ is a file is invalid, named as such; restore refuses it (exit 3)", async () => {
  using store = tempStore({ dbMiB: 1 });
  using scratch = tempDir();
  const env = storeEnv(store);
  for (const folder of ["config", "db"]) {
    const stamp = await createdStamp(env);
    const root = join(store.backupDir, "snapshots", stamp);
    Deno.removeSync(join(root, folder), { recursive: true });
    Deno.writeTextFileSync(join(root, folder), "a file");
    const validated = await runCli(["validate", stamp], { env });
    assert.equal(validated.code, 1, validated.stderr);
    assert.match(validated.stdout, new RegExp(`manifest_file_missing: ${folder}/`));
    const restored = await runCli(["restore", stamp, "--to", join(scratch.path, folder)], { env });
    assert.equal(restored.code, 3, restored.stderr);
    assert.match(restored.stderr, new RegExp(`error: snapshot ${stamp} failed validation \\(.*nothing was changed`));
    assert.doesNotMatch(restored.stderr, /os error/);
  }
});

Deno.test("list calls a snapshot validated at create only while its metadata matches its digest", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const validation = async () =>
    ((await runCli(["list"], { env })).json as { backups: { stamp: string; validation: string }[] }).backups
      .find((entry) => entry.stamp === stamp)?.validation;
  assert.equal(await validation(), "validated_at_create");
  const path = join(store.backupDir, "snapshots", stamp, "backup-metadata.json");
  const metadata = JSON.parse(Deno.readTextFileSync(path));
  Deno.writeTextFileSync(path, JSON.stringify({ ...metadata, db_size_bytes: 1 }));
  assert.equal(await validation(), "unknown");
});

Deno.test("a Chroma entry whose name is not UTF-8: create publishes without Chroma, restore refuses before any change, each naming it", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const made = new Deno.Command("bash", { args: ["-c", `printf x > "$1"/$'b\\xff'`, "bash", store.chromaDir] })
    .outputSync();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
  const unnamable = /chroma\/b\uFFFD: its name is not UTF-8, so this tool cannot read or copy it; rename it \(ls -b/;
  const created = await runCli(["create", "--chroma"], { env });
  assert.equal(created.code, 1, created.stderr);
  const result = created.json as { stamp: string; chroma_error: string };
  assert.match(result.chroma_error, unnamable);
  assert.doesNotMatch(created.stderr, /kept changing|vanished/);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")).sort(), [stamp, result.stamp].sort(), "published");
  // every live file by its bytes (Deno cannot name the one that is not UTF-8)
  const live = () => {
    const script = 'cd "$1" && find . -path ./backups -prune -o -type f ! -name "*-[ws][ah][lm]" -print0 | sort -z | ' +
      "xargs -0 sha256sum";
    return new TextDecoder().decode(
      new Deno.Command("bash", { args: ["-c", script, "bash", store.dataDir] }).outputSync().stdout,
    );
  };
  const before = live();
  assert.match(before, /chroma\/b\uFFFD\n/);
  // refused before any change: the pre-restore snapshot could not copy it, nor the swap move it aside
  for (const flags of [[], ["--no-pre-snapshot"]]) {
    const restored = await runCli(["restore", stamp, "--confirm-service-stopped", ...flags], { env });
    assert.equal(restored.code, 3, restored.stderr);
    const lines = restored.stderr.trim().split("\n").filter((line) => line.includes("error:"));
    assert.equal(lines.length, 1, restored.stderr);
    assert.match(
      lines[0],
      /restore refused: the Chroma folder \S+ holds \S+\/chroma\/b\uFFFD, whose name is not UTF-8/,
    );
    assert.match(lines[0], /; nothing was changed; rename it \(ls -b shows its bytes\), then run the restore again$/);
    assert.equal(live(), before, "the live store is as it was");
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")).sort(), [stamp, result.stamp].sort());
  }
});

/** The bytes of every file under `folder` (names as `find` prints them), for a store whose names Deno cannot read. */
function filesByBytes(folder: string): string {
  const script = 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum';
  return new TextDecoder().decode(
    new Deno.Command("bash", { args: ["-c", script, "bash", folder] }).outputSync().stdout,
  );
}

Deno.test("an argument that is not UTF-8 is refused (exit 2): Deno reads it changed, and --to would name another folder", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.05, segments: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  using place = tempDir();
  // the folder the changed name names holds another store's database, which a restore --to --force would replace
  Deno.mkdirSync(join(place.path, "w\uFFFD"));
  Deno.writeTextFileSync(join(place.path, "w\uFFFD", "atocore.db"), "another store");
  const before = filesByBytes(place.path);
  const to = `exec "$@" --to "${place.path}/w"$'\\xff' --force`;
  const restored = await runCliInShell(to, ["restore", stamp], env);
  assert.equal(restored.code, 2, restored.stderr);
  assert.match(restored.stderr, /error: --to \S+\/w\uFFFD holds bytes that are not UTF-8 .*; nothing was done; /);
  const named = await runCliInShell(`exec "$@" $'2026\\xff'`, ["validate"], env);
  assert.equal(named.code, 2, named.stderr);
  assert.match(named.stderr, /error: validate's argument 2026\uFFFD holds bytes that are not UTF-8/);
  assert.equal(filesByBytes(place.path), before, "nothing written in either folder");
});

Deno.test("a variable of the tool's that is not UTF-8 is refused (exit 2), never taken as unset for the default store", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.05, segments: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const before = filesByBytes(store.dataDir);
  // the registry pointed elsewhere by a name Deno cannot read: unset, the store's own registry would be restored over
  const registry = `export ATOCORE_PROJECT_REGISTRY_PATH="${store.dataDir}/other"$'\\xff.json'; exec "$@"`;
  const restored = await runCliInShell(registry, ["restore", stamp, "--confirm-service-stopped"], env);
  assert.equal(restored.code, 2, restored.stderr);
  assert.match(restored.stderr, /error: the environment variable ATOCORE_PROJECT_REGISTRY_PATH is not valid UTF-8/);
  using work = tempDir();
  const backups = `cd "${work.path}" && export ATOCORE_BACKUP_DIR=$'x\\xff'; exec "$@"`;
  const created = await runCliInShell(backups, ["create"], env);
  assert.equal(created.code, 2, created.stderr);
  assert.match(created.stderr, /error: the environment variable ATOCORE_BACKUP_DIR is not valid UTF-8/);
  assert.equal(filesByBytes(store.dataDir), before, "nothing changed in the store or its backup folder");
  assert.deepEqual(entryNames(work.path), [], "no default ./data made");
});

Deno.test("a variable that is not UTF-8 fails a run that reports itself in its report: the last success does not stand", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.05, segments: 1 });
  const env = storeEnv(store);
  await createdStamp(env);
  using out = tempDir();
  const [junit, metrics] = [join(out.path, "drill.xml"), join(out.path, "drill.prom")];
  const args = ["drill", "--latest", "--junit", junit, "--metrics-file", metrics];
  const passed = await runCli(args, { env });
  assert.equal(passed.code, 0, passed.stderr);
  assert.match(Deno.readTextFileSync(metrics), /^atocore_backup_last_run_success\{operation="drill"\} 1$/m);
  const odd = `export ATOCORE_CHROMA_PATH=$'/x\\xff'; exec "$@"`;
  const refused = await runCliInShell(odd, args, env);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /error: the environment variable ATOCORE_CHROMA_PATH is not valid UTF-8/);
  assert.match(Deno.readTextFileSync(metrics), /^atocore_backup_last_run_success\{operation="drill"\} 0$/m);
  const report = Deno.readTextFileSync(junit);
  assert.match(report, /failures="1"/);
  assert.match(report, /ATOCORE_CHROMA_PATH is not valid UTF-8/);
  const created = await runCliInShell(odd, ["create", "--metrics-file", join(out.path, "create.prom")], env);
  assert.equal(created.code, 2, created.stderr);
  const text = Deno.readTextFileSync(join(out.path, "create.prom"));
  assert.match(text, /^atocore_backup_last_run_success\{operation="create"\} 0$/m);
  assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1, "no snapshot made");
});

Deno.test("a working folder whose path is not UTF-8 is refused (exit 2), naming it, before anything is done", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.05, segments: 1 });
  using work = tempDir();
  const odd = `cd "${work.path}" && mkdir $'w\\xff' && cd $'w\\xff' && exec "$@"`;
  const run = await runCliInShell(odd, ["create"], storeEnv(store));
  assert.equal(run.code, 2, run.stderr);
  assert.match(
    run.stderr,
    /^atocore-backup: error: the working folder's path \(\S+\/w\\xFF\) is not valid UTF-8, .*; nothing was done; run the command from another folder\n$/,
  );
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "no snapshot made");
});

Deno.test("HOME and TMPDIR that are not UTF-8 are refused (exit 2) only by a command that reads them", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.05, segments: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  // the runtime's own cache stays where it was (it is found under HOME)
  const home = `export DENO_DIR="\${DENO_DIR:-$HOME/.cache/deno}" HOME=$'/nowhere\\xff'; exec "$@"`;
  for (const local of [["list"], ["create"]]) { // create has --push, not given: a nightly local one never reads HOME
    const run = await runCliInShell(home, local, env);
    assert.equal(run.code, 0, `${local}: ${run.stderr}`);
  }
  const sftp = ["--remote", "sftp://backup@127.0.0.1/x"];
  for (const remote of [["remote", "list", ...sftp], ["create", "--push", ...sftp]]) {
    const run = await runCliInShell(home, remote, env);
    assert.equal(run.code, 2, `${remote}: ${run.stderr}`);
    assert.match(run.stderr, /error: the environment variable HOME is not valid UTF-8/);
  }
  const temp = await runCliInShell(`export TMPDIR=$'/tmp/x\\xff'; exec "$@"`, ["drill", stamp], env);
  assert.equal(temp.code, 2, temp.stderr);
  assert.match(temp.stderr, /error: the environment variable TMPDIR is not valid UTF-8/);
  // given a scratch folder, the drill restores there and then reads the restored (WAL-mode) database through a copy
  using scratch = tempDir();
  const drillArgs = ["drill", stamp, "--scratch-dir", scratch.path, "--sqlite-driver", "builtin"];
  const drilled = await runCliInShell(`export TMPDIR=$'/tmp/x\\xff'; exec "$@"`, drillArgs, env);
  assert.equal(drilled.code, 2, drilled.stdout);
  assert.match(drilled.stderr, /error: could not check the integrity of \S+: the environment variable TMPDIR is not/);
  assert.deepEqual(entryNames(scratch.path), [], "the scratch copy removed");
  // a snapshot database whose header says WAL (as the module's keep it) is read by the built-in driver through a copy
  // in TMPDIR: not made, the database was not checked, never "db_open_failed"
  const db = join(store.backupDir, "snapshots", stamp, "db", "atocore.db");
  using file = Deno.openSync(db, { write: true });
  file.seekSync(18, Deno.SeekMode.Start); // the file format versions: 2, 2 is WAL
  file.writeSync(new Uint8Array([2, 2]));
  const args = ["validate", stamp, "--sqlite-driver", "builtin"];
  const validated = await runCliInShell(`export TMPDIR=$'/tmp/x\\xff'; exec "$@"`, args, env);
  assert.equal(validated.code, 2, validated.stdout);
  assert.match(validated.stderr, /error: could not check the integrity of \S+: the environment variable TMPDIR is not/);
});
