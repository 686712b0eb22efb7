/**
 * Special files in a backup folder (issue 10, point 22): a FIFO, a device link or a huge (sparse) file in place of a file the
 * tool reads must never block or exhaust list, validate or drill; each is reported and the others still are.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { entryNames, killAfter, skipBecause } from "../_faults.ts";
import { exists } from "../../src/fs/probe.ts";
import {
  cliCommand,
  cliEnv,
  cliProcess,
  type CliRun,
  cliRunOf,
  createdStamp,
  storeEnv,
  tempStore,
} from "../_helpers.ts";

/** Bound on a run that must not block (a FIFO opened for reading waits for a writer forever). */
const HANG_GUARD_MS = 120_000;

/** Run the CLI, killing it if it has not ended within {@linkcode HANG_GUARD_MS}; a killed run fails the test. */
async function runGuarded(args: string[], env: Record<string, string>): Promise<CliRun> {
  const child = cliProcess(args, { env }).spawn();
  const output = child.output();
  const code = await killAfter(child, HANG_GUARD_MS);
  const run = cliRunOf(await output);
  assert.notEqual(code, null, `${args.join(" ")} blocked and was killed: ${run.stderr}`);
  return run;
}

function mkfifo(path: string): void {
  assert.ok(new Deno.Command("mkfifo", { args: [path] }).outputSync().success, `mkfifo ${path}`);
}

interface Listed {
  backups: { stamp: string; metadata_error?: string }[];
}
interface Validated {
  stamp: string;
  valid: boolean;
  errors: string[];
}

Deno.test("a FIFO as backup-metadata.json: list, validate STAMP, validate --all and drill --latest end and report it", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const good = await createdStamp(env);
  const fifo = await createdStamp(env);
  const metadata = join(store.backupDir, "snapshots", fifo, "backup-metadata.json");
  Deno.removeSync(metadata);
  mkfifo(metadata);

  const list = await runGuarded(["list"], env);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual((list.json as Listed).backups.map((entry) => [entry.stamp, entry.metadata_error]), [
    [good, undefined],
    [fifo, "unreadable"],
  ]);

  const one = await runGuarded(["validate", fifo], env);
  assert.equal(one.code, 1, one.stderr);
  assert.deepEqual((one.json as Validated).errors, ["metadata_unreadable: not a regular file (FIFO)"]);

  const all = await runGuarded(["validate", "--all"], env);
  assert.equal(all.code, 1, all.stderr);
  const results = (all.json as { results: Validated[] }).results;
  assert.deepEqual(results.map((result) => [result.stamp, result.valid]), [[good, true], [fifo, false]]);

  const drill = await runGuarded(["drill", "--latest"], env);
  assert.equal(drill.code, 1, drill.stderr);
  const checks = drill.json as { stamp: string; checks: { name: string; status: string; detail: string }[] };
  assert.equal(checks.stamp, fifo);
  assert.deepEqual(checks.checks[0], {
    ...checks.checks[0],
    name: "snapshot_valid",
    status: "failed",
    detail: "metadata_unreadable: not a regular file (FIFO)",
  });
});

Deno.test("metadata that links to /dev/zero or is over 8 MiB is not read: list and validate end and report it", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const linked = await createdStamp(env);
  const huge = await createdStamp(env);
  const linkedMetadata = join(store.backupDir, "snapshots", linked, "backup-metadata.json");
  Deno.removeSync(linkedMetadata);
  Deno.symlinkSync("/dev/zero", linkedMetadata);
  const hugeMetadata = join(store.backupDir, "snapshots", huge, "backup-metadata.json");
  Deno.truncateSync(hugeMetadata, (8 << 20) + 1); // sparse: costs no disk

  const list = await runGuarded(["list"], env);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual((list.json as Listed).backups.map((entry) => entry.metadata_error), ["unreadable", "unreadable"]);
  const all = await runGuarded(["validate", "--all"], env);
  assert.equal(all.code, 1, all.stderr);
  assert.deepEqual((all.json as { results: Validated[] }).results.map((result) => result.errors), [
    ["metadata_unreadable: not a regular file (symbolic link)"],
    [`metadata_unreadable: larger than ${8 << 20} bytes, not read`],
  ]);
});

/** Write a JSON object of `bytes` bytes whose manifest is that many `{},`: millions of values for few bytes. */
function writeEmptyObjects(path: string, bytes: number): void {
  const head = '{"manifest":[';
  const count = Math.floor((bytes - head.length - 4) / 3);
  Deno.writeTextFileSync(path, `${head}${"{},".repeat(count)}{}]}`);
}

/** The CLI's run under `/usr/bin/time` and its peak memory in KiB, or `null` without that tool. */
async function runMeasured(
  args: string[],
  env: Record<string, string>,
): Promise<{ run: CliRun; peakKiB: number | null }> {
  const [program, ...rest] = cliCommand(args);
  const timed = exists("/usr/bin/time");
  const command = new Deno.Command(timed ? "/usr/bin/time" : program, {
    args: timed ? ["-f", "peak %M", program, ...rest] : rest,
    env: cliEnv(env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  });
  const run = cliRunOf(await command.output());
  const peak = /^peak (\d+)$/m.exec(run.stderr);
  return { run, peakKiB: peak ? Number(peak[1]) : null };
}

Deno.test("metadata costly to parse (8 MiB of `{},`, or 60 MiB) is refused unparsed: list and validate stay under 256 MiB", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const dense = await createdStamp(env);
  const large = await createdStamp(env);
  writeEmptyObjects(join(store.backupDir, "snapshots", dense, "backup-metadata.json"), (8 << 20) - 16);
  writeEmptyObjects(join(store.backupDir, "snapshots", large, "backup-metadata.json"), 60 << 20);
  const list = await runMeasured(["list"], env);
  assert.equal(list.run.code, 0, list.run.stderr);
  assert.deepEqual((list.run.json as Listed).backups.map((entry) => entry.metadata_error), [
    "invalid_json",
    "unreadable",
  ]);
  const all = await runMeasured(["validate", "--all"], env);
  assert.equal(all.run.code, 1, all.run.stderr);
  assert.deepEqual((all.run.json as { results: Validated[] }).results.map((result) => result.errors), [
    ["metadata_invalid_json: holds more than 200000 JSON values (objects, arrays, items), not parsed"],
    [`metadata_unreadable: larger than ${8 << 20} bytes, not read`],
  ]);
  for (const { peakKiB } of [list, all]) {
    if (peakKiB === null) return skipBecause("/usr/bin/time not found: peak memory not measured");
    assert.ok(peakKiB < 256 * 1024, `peak ${Math.round(peakKiB / 1024)} MiB`);
  }
});

Deno.test("a Chroma file of a snapshot made a sparse file of 8 TiB: validate and drill end naming its size, unread", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, ["--chroma"]);
  const chroma = join(store.backupDir, "snapshots", stamp, "chroma");
  const segment = [...Deno.readDirSync(chroma)].find((entry) => entry.isDirectory)!.name;
  const name = [...Deno.readDirSync(join(chroma, segment))].find((entry) => entry.isFile)!.name;
  const file = join(chroma, segment, name);
  const recorded = Deno.statSync(file).size;
  Deno.truncateSync(file, 2 ** 43); // sparse: costs no disk, but hours to read to its end
  const expected = `manifest_size_mismatch (recorded ${recorded}, found ${2 ** 43}): chroma/${segment}/${name}`;
  const run = await runGuarded(["validate", stamp], env);
  assert.equal(run.code, 1, run.stderr);
  assert.deepEqual((run.json as Validated).errors, [expected]);
  const drill = await runGuarded(["drill", stamp], env);
  assert.equal(drill.code, 1, drill.stderr);
});

Deno.test("a FIFO in place of the registry, database or a Chroma file of a snapshot: validate ends and names it", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const cases: [string, RegExp][] = [
    ["config/project-registry.json", /^registry_snapshot_not_regular_file: FIFO$/],
    ["db/atocore.db", /^db_snapshot_not_regular_file: FIFO$/],
    ["chroma/chroma.sqlite3", /^chroma_db_snapshot_not_regular_file: FIFO$/],
  ];
  for (const [file, expected] of cases) {
    const stamp = await createdStamp(env);
    const path = join(store.backupDir, "snapshots", stamp, file);
    Deno.removeSync(path);
    mkfifo(path);
    const run = await runGuarded(["validate", stamp], env);
    assert.equal(run.code, 1, run.stderr);
    const errors = (run.json as Validated).errors;
    assert.ok(errors.some((error) => expected.test(error)), `${file}: ${JSON.stringify(errors)}`);
    const drill = await runGuarded(["drill", stamp], env);
    assert.equal(drill.code, 1, drill.stderr);
  }
});

Deno.test("a FIFO as the live database's -shm: create names it, exit 1, nothing published", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const path = `${store.db}-shm`;
  mkfifo(path);
  const run = await runGuarded(["create"], storeEnv(store));
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, new RegExp(`error: create failed copying the database .*: ${path} is a FIFO, not a file`));
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "something was published");
});

Deno.test("a FIFO as the live database's -journal: create and restore refuse (exit 3), never blocking; without a pre-restore snapshot it is set aside", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const journal = `${store.db}-journal`;
  mkfifo(journal); // SQLite's open of it to read would wait for a writer for ever
  const refusal = `${journal} is a FIFO, not a file, and SQLite opens it to look for a hot journal`;
  const created = await runGuarded(["create"], env);
  assert.equal(created.code, 3, created.stderr);
  assert.match(created.stderr, new RegExp(`error: create refused to open the database .*: ${refusal}`));
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp], "something was published");
  const restored = await runGuarded(["restore", stamp, "--confirm-service-stopped"], env);
  assert.equal(restored.code, 3, restored.stderr);
  assert.match(restored.stderr, new RegExp(refusal));
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp], "a pre-restore snapshot was made");
  const without = await runGuarded(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], env);
  assert.equal(without.code, 0, without.stderr);
  assert.match(without.stderr, /"event":"restore_journal_set_aside".*"reason":"it is a FIFO, not a file"/);
});

Deno.test("a FIFO as the live database's -wal: restore's free-space check does not open it, and the restore ends", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  for (const more of [[], ["--no-pre-snapshot"]]) {
    mkfifo(`${store.db}-wal`); // a FIFO holds no frames; opened to read them, it would wait for a writer for ever
    const run = await runGuarded(["restore", stamp, "--confirm-service-stopped", ...more], env);
    assert.equal(run.code, 0, `${more}: ${run.stderr}`);
    assert.ok(!entryNames(store.dataDir).includes("atocore.db-wal"), `${more}: the FIFO is still beside the database`);
  }
});

Deno.test("a FIFO as ATOCORE_SQLITE_LIB: auto warns and uses the built-in driver, ffi is a usage error naming it, neither blocks", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.1 });
  const library = join(store.dataDir, "libsqlite3.so");
  mkfifo(library); // dlopen's open of it would wait for a writer for ever
  const env = { ...storeEnv(store), ATOCORE_SQLITE_LIB: library };
  const auto = await runGuarded(["config", "--json"], env);
  assert.equal(auto.code, 0, auto.stderr);
  assert.equal((auto.json as { sqlite: { driver: string } }).sqlite.driver, "builtin");
  assert.match(auto.stderr, /"event":"sqlite_library_not_loaded".*not a regular file \(FIFO\)/);
  const ffi = await runGuarded(["config", "--sqlite-driver", "ffi"], env);
  assert.equal(ffi.code, 2, ffi.stderr);
  assert.ok(ffi.stderr.includes(`${library}: not a regular file (FIFO)`), ffi.stderr);
});

Deno.test("a symbolic link as a live -wal, -shm or -journal: create refuses before opening (exit 3), nothing written", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const target = join(store.dataDir, "target");
  Deno.writeTextFileSync(target, "not SQLite's");
  const chromaDb = join(store.chromaDir, "chroma.sqlite3");
  for (const path of [`${store.db}-wal`, `${store.db}-shm`, `${store.db}-journal`, `${chromaDb}-wal`]) {
    Deno.symlinkSync(target, path);
    const run = await runGuarded(["create", "--chroma"], env);
    assert.equal(run.code, 3, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`error: create refused to open the database .*: ${path} is a symbolic link, .*remove the link`),
    );
    assert.equal(run.stderr.trim().split("\n").filter((line) => !line.startsWith("{")).length, 1, run.stderr);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "something was published");
    assert.equal(Deno.readTextFileSync(target), "not SQLite's", "written through the link");
    Deno.removeSync(path);
  }
});

Deno.test("a hard-linked -shm or a stray -journal beside the live WAL database: create refuses (exit 3), nothing written", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const registryCopy = join(store.backupDir, "snapshots", stamp, "config", "project-registry.json");
  const copied = Deno.readFileSync(registryCopy);
  const live = Deno.readFileSync(store.db);
  const journal = new Uint8Array(4096).fill(0x11); // a journal's header beside a WAL database, which keeps none
  journal.set([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
  for (
    const [suffix, make, named] of [["-shm", "link", "has 2 names"], ["-journal", "stray", "is a rollback journal"]]
  ) {
    const path = `${store.db}${suffix}`;
    if (make === "link") Deno.linkSync(registryCopy, path);
    else Deno.writeFileSync(path, journal);
    const run = await runGuarded(["create"], env);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, new RegExp(`error: create refused to open the database .*: ${path} ${named}`));
    assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1, "something was published");
    assert.deepEqual(Deno.readFileSync(registryCopy), copied, "the snapshot's file was written through the link");
    assert.deepEqual(Deno.readFileSync(store.db), live, "the live database changed");
    if (make === "stray") assert.deepEqual(Deno.readFileSync(path), journal, "the journal was used");
    Deno.removeSync(path);
  }
});

Deno.test("another database's -wal (pages of another size) beside the live database: create refuses (exit 3), nothing written", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  await createdStamp(env, []);
  const other = join(store.dataDir, "other.db");
  // a WAL left with a frame in it: the copy is taken while its connection still holds it open
  const script = "import sqlite3, shutil, sys\n" +
    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n" +
    "for s in ['PRAGMA page_size=1024', 'PRAGMA journal_mode=WAL', 'PRAGMA wal_autocheckpoint=0', " +
    "'CREATE TABLE other(a)', 'INSERT INTO other VALUES(1)']: c.execute(s)\n" +
    "shutil.copy(sys.argv[1] + '-wal', sys.argv[2])\n";
  const made = new Deno.Command("python3", { args: ["-c", script, other, `${store.db}-wal`] }).outputSync();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
  const [live, wal] = [Deno.readFileSync(store.db), Deno.readFileSync(`${store.db}-wal`)];
  const run = await runGuarded(["create"], env);
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    run.stderr,
    /error: create refused to open the database .*-wal holds pages of 1024 bytes beside a database of 4096-byte pages: another database's/,
  );
  assert.deepEqual(Deno.readFileSync(store.db), live, "the live database changed");
  assert.deepEqual(Deno.readFileSync(`${store.db}-wal`), wal, "the -wal was written in");
  assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1, "something was published");
});

Deno.test("a linked live -wal, -shm or -journal: restore refuses before any work (exit 3), with or without its snapshot", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, ["--chroma"]);
  const target = join(store.dataDir, "target");
  Deno.writeTextFileSync(target, "not SQLite's");
  const live = Deno.readFileSync(store.db);
  for (const suffix of ["-wal", "-shm", "-journal"]) {
    for (const [make, named] of [["symlink", "is a symbolic link"], ["link", "has 2 names"]]) {
      const path = `${store.db}${suffix}`;
      if (make === "symlink") Deno.symlinkSync(target, path);
      else Deno.linkSync(target, path);
      for (const more of [[], ["--no-pre-snapshot"]]) {
        const run = await runGuarded(["restore", stamp, "--confirm-service-stopped", ...more], env);
        const what = `${suffix} ${make} ${more}`;
        assert.equal(run.code, 3, `${what}: ${run.stderr}`);
        assert.match(run.stderr, new RegExp(`error: restore refused to open the database .*: ${path} ${named}`), what);
        assert.doesNotMatch(
          run.stderr,
          /restore_snapshot_validated|pre_restore_snapshot/,
          `${what}: work was done first`,
        );
        assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1, `${what}: a snapshot was made`);
        assert.equal(Deno.readTextFileSync(target), "not SQLite's", `${what}: written through the link`);
        assert.deepEqual(Deno.readFileSync(store.db), live, `${what}: the live database changed`);
      }
      Deno.removeSync(path);
    }
  }
});

Deno.test("a linked Chroma -wal or a stray -journal beside the WAL database: the pre-restore snapshot is refused (exit 3)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, ["--chroma"]);
  const target = join(store.dataDir, "target");
  Deno.writeTextFileSync(target, "not SQLite's");
  const journal = new Uint8Array(4096).fill(0x11);
  journal.set([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
  const chromaWal = join(store.chromaDir, "chroma.sqlite3-wal");
  for (const [path, named] of [[chromaWal, "is a symbolic link"], [`${store.db}-journal`, "is a rollback journal"]]) {
    if (path === chromaWal) Deno.symlinkSync(target, path);
    else Deno.writeFileSync(path, journal);
    const run = await runGuarded(["restore", stamp, "--confirm-service-stopped"], env);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, new RegExp(`error: restore refused to open the database .*: ${path} ${named}`));
    assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1, "a snapshot was made");
    Deno.removeSync(path);
  }
});

Deno.test("create --chroma with a file where the Chroma folder goes: a usage error naming it, nothing published", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  Deno.removeSync(store.chromaDir, { recursive: true });
  Deno.writeTextFileSync(store.chromaDir, "not a folder");
  const run = await runGuarded(["create", "--chroma"], storeEnv(store));
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /error: the Chroma folder .* is a file, not a folder; check --chroma-dir/);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), []);
});

Deno.test("a FIFO in the live Chroma folder: create --chroma leaves it out and says so, the snapshot validates", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const segment = [...Deno.readDirSync(store.chromaDir)].find((entry) => entry.isDirectory)!.name;
  mkfifo(join(store.chromaDir, segment, "pipe"));
  const run = await runGuarded(["create", "--chroma"], env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`"event":"chroma_special_files_left_out","paths":\\["${segment}/pipe"\\]`));
  const stamp = (run.json as { stamp: string }).stamp;
  assert.equal((await runGuarded(["validate", stamp], env)).code, 0);
});
