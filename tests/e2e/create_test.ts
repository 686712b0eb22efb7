/**
 * `create` end to end through the CLI: what a snapshot holds, its metadata and
 * manifest, publication, refusals, leftovers, the lock, and the Chroma copy.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createCommand } from "../../src/cli/create.ts";
import { createSnapshot } from "../../src/ops/create.ts";
import { resolveConfig } from "../../src/config.ts";
import { acquireLock } from "../../src/ops/lock.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { metadataDigest } from "../../src/snapshot/binding.ts";
import type { ManifestEntry } from "../../src/snapshot/manifest.ts";
import { formatStamp } from "../../src/snapshot/stamp.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { openLedgerWriter } from "../../scripts/sample_store.ts";
import {
  cliProcess,
  createdStamp,
  growInWal,
  MODULE_BACKUPS,
  printedCommand,
  referenceFor,
  ROOT,
  runCli,
  runPrinted,
  runReference,
  skipBecause,
  sqlite3Json,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { entryNames, ledgerState } from "../_faults.ts";
import { exists } from "../../src/fs/probe.ts";
import { bindReadOnly } from "../_mount.ts";

type Metadata = Record<string, unknown> & { manifest: ManifestEntry[] };
type CreateResult = Metadata & { stamp: string; backup_root: string; validated: boolean };

const SMALL = { dbMiB: 1, chromaMiB: 0.5, segments: 2 };
const SEGMENT = "00000000-5e9a-4c1d-8f00-000000000000";

function readMetadata(root: string): Metadata {
  return JSON.parse(Deno.readTextFileSync(join(root, "backup-metadata.json")));
}

/** The structured log events a run printed on stderr. */
function events(stderr: string): { event: string; [key: string]: unknown }[] {
  return stderr.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
}

/** Every file and link below `root` but the metadata, found by `find` (not by the tool). */
function listedByFind(root: string): { files: string[]; links: string[] } {
  const find = (type: string) => {
    const output = new Deno.Command("find", { args: [".", "-type", type, "-printf", "%P\\n"], cwd: root }).outputSync();
    return new TextDecoder().decode(output.stdout).split("\n").filter((path) => path && path !== "backup-metadata.json")
      .sort();
  };
  return { files: find("f"), links: find("l") };
}

/** `sha256sum` of files below `root`, by relative path. */
function sha256sum(root: string, paths: string[]): Map<string, string> {
  const output = new Deno.Command("sha256sum", { args: ["--", ...paths], cwd: root }).outputSync();
  assert.ok(output.success);
  return new Map(
    new TextDecoder().decode(output.stdout).trim().split("\n").map((line) => {
      const [hash, path] = line.split(/ [ *]/);
      return [path, hash];
    }),
  );
}

/** Check a snapshot's manifest against the files `find` sees, `stat` sizes and `sha256sum` hashes. */
function assertManifestMatchesFiles(root: string, manifest: ManifestEntry[]): void {
  const { files, links } = listedByFind(root);
  const manifestFiles = manifest.filter((entry) => "sha256" in entry);
  const manifestLinks = manifest.filter((entry) => "symlink" in entry);
  assert.deepEqual(manifestFiles.map((entry) => entry.path).sort(), files, "the manifest lists every file");
  assert.deepEqual(manifestLinks.map((entry) => entry.path).sort(), links, "the manifest lists every link");
  const hashes = sha256sum(root, files);
  for (const entry of manifestFiles) {
    if (!("sha256" in entry)) continue;
    assert.equal(entry.size, Deno.statSync(join(root, entry.path)).size, `size of ${entry.path}`);
    assert.equal(entry.sha256, hashes.get(entry.path), `sha256 of ${entry.path}`);
  }
}

/**
 * What the module's `create --chroma` reports: run now when the module is there, else its metadata as the module
 * wrote it into a committed fixture.
 */
async function moduleCreateResult(): Promise<Record<string, unknown>> {
  if (referenceFor("the module's create keys are taken from a committed fixture instead of a new run")) {
    using moduleStore = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
    const reference = await runReference(["create", "--chroma"], moduleStore);
    assert.equal(reference.code, 0, reference.stderr);
    return reference.json as Record<string, unknown>;
  }
  return readMetadata(join(MODULE_BACKUPS, "snapshots", "20260410T010203Z"));
}

Deno.test("create and create --chroma write the module's metadata keys, with its types, and a full manifest", async () => {
  using store = tempStore(SMALL);
  const env = storeEnv(store);
  const moduleResult = await moduleCreateResult();
  const moduleKeys = Object.keys(moduleResult).filter((key) => !key.startsWith("validat"));

  for (const chroma of [false, true]) {
    const run = await runCli(["create", "--json", ...(chroma ? ["--chroma"] : [])], { env });
    assert.equal(run.code, 0, run.stderr);
    const result = run.json as CreateResult;
    const root = join(store.backupDir, "snapshots", result.stamp);
    const metadata = readMetadata(root);
    assert.deepEqual(Object.keys(metadata).slice(0, moduleKeys.length), moduleKeys, "the module's keys, in order");
    for (const key of moduleKeys) {
      assert.equal(typeof metadata[key], typeof moduleResult[key], `type of ${key}`);
    }
    assert.equal(metadata.format_version, 2);
    assert.equal(metadata.db_journal_mode, "wal", "the live database's journal mode");
    assert.equal(metadata.chroma_db_journal_mode, chroma ? "wal" : "");
    assert.equal(metadata.metadata_sha256, metadataDigest(metadata), "the metadata is bound by its digest");
    assert.equal(Object.keys(metadata).at(-1), "metadata_sha256");
    for (const copy of ["db/atocore.db", ...(chroma ? ["chroma/chroma.sqlite3"] : [])]) {
      assert.deepEqual([...Deno.readFileSync(join(root, copy)).subarray(18, 20)], [1, 1], `${copy}: rollback journal`);
    }
    assert.equal(metadata.tool, "atocore-backup");
    assert.equal(typeof metadata.tool_version, "string");
    assert.equal(metadata.sqlite_driver, "ffi");
    assert.match(String(metadata.sqlite_version), /^3\.\d+\.\d+$/);
    assert.equal(metadata.backup_root, root);
    assert.equal(metadata.db_snapshot_path, join(root, "db", "atocore.db"));
    assert.equal(metadata.registry_snapshot_path, join(root, "config", "project-registry.json"));
    assert.equal(metadata.db_size_bytes, Deno.statSync(join(root, "db", "atocore.db")).size);
    assert.equal(metadata.chroma_snapshot_included, chroma);
    assert.equal(metadata.chroma_snapshot_path, chroma ? join(root, "chroma") : "");
    assert.deepEqual(
      entryNames(root),
      chroma ? ["backup-metadata.json", "chroma", "config", "db"] : [
        "backup-metadata.json",
        "config",
        "db",
      ],
    );
    if (chroma) {
      const chromaFiles = listedByFind(join(root, "chroma")).files;
      assert.equal(metadata.chroma_snapshot_files, chromaFiles.length);
      assert.equal(
        metadata.chroma_snapshot_bytes,
        chromaFiles.reduce((sum, path) => sum + Deno.statSync(join(root, "chroma", path)).size, 0),
      );
    }
    assertManifestMatchesFiles(root, metadata.manifest);
    const { stamp: _stamp, validated, validation_errors, ...printed } = result;
    assert.deepEqual(printed, metadata, "stdout is the metadata plus the module's validation keys");
    assert.equal(validated, true);
    assert.deepEqual(validation_errors, []);
    assert.ok(events(run.stderr).some((event) => event.event === "runtime_backup_created"));
    assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "no staging left behind");
  }
});

Deno.test("a database copied in many steps is hashed behind the copy; its manifest SHA-256 is the file's", async () => {
  using store = tempStore({ dbMiB: 12, chromaMiB: 0.05, segments: 1 });
  growInWal(store.db);
  const run = await runCli(["create", "--json"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  assert.ok(!events(run.stderr).some((event) => event.event === "database_hashed_after_copy"), run.stderr);
  const root = (run.json as CreateResult).backup_root;
  assertManifestMatchesFiles(root, readMetadata(root).manifest);
  const copy = `file:${join(root, "db", "atocore.db")}?immutable=1`;
  const grown = await sqlite3Json(copy, "SELECT length(x) AS bytes FROM grown");
  assert.deepEqual(grown, [{ bytes: 200000 }], "the commit left in the WAL is in the copy");
});

Deno.test("create says when it cannot record the databases it checked, and publishes the snapshot all the same", async () => {
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.05, segments: 1 });
  const records = join(store.backupDir, "integrity");
  Deno.mkdirSync(store.backupDir, { recursive: true });
  Deno.writeTextFileSync(records, "an operator's note, not a folder");
  const run = await runCli(["create", "--json", "--chroma"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  const warned = events(run.stderr).filter((event) => event.event === "integrity_record_not_written");
  assert.equal(warned.length, 1, run.stderr);
  assert.equal(warned[0].error, `${records} is not a folder`);
  assert.match(String(warned[0].path), new RegExp(`^${records}/${(run.json as CreateResult).stamp}\\.json$`));
  assert.equal(Deno.readTextFileSync(records), "an operator's note, not a folder", "left as it was");
});

Deno.test("a database copied in one step is hashed once, after the copy, without a fallback event", async () => {
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.05, segments: 1 });
  const run = await runCli(["create", "--json", "--sqlite-driver", "ffi"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  assert.ok(!events(run.stderr).some((event) => event.event === "database_hashed_after_copy"), run.stderr);
  const root = (run.json as CreateResult).backup_root;
  assertManifestMatchesFiles(root, readMetadata(root).manifest);
});

Deno.test("each driver can make the snapshot, and the metadata says which", async () => {
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  const env = storeEnv(store);
  for (const driver of ["builtin", "ffi"]) {
    const config = await runCli(["config", "--json", "--sqlite-driver", driver], { env });
    const version = (config.json as { sqlite: { version: string } }).sqlite.version;
    const run = await runCli(["create", "--chroma", "--sqlite-driver", driver], { env });
    assert.equal(run.code, 0, run.stderr);
    const metadata = readMetadata((run.json as CreateResult).backup_root);
    assert.equal(metadata.sqlite_driver, driver);
    assert.equal(metadata.sqlite_version, version);
  }
  assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 2);
});

Deno.test("creates in the same second get two snapshots; a stamp taken is never overwritten", async () => {
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  const config = resolveConfig({}, { ATOCORE_DATA_DIR: store.dataDir }, ROOT);
  const options = { driver: openDriver("ffi"), includeChroma: false, reporter: SILENT };
  const taken = formatStamp(new Date());
  const occupied = join(store.backupDir, "snapshots", taken);
  Deno.mkdirSync(occupied, { recursive: true });
  Deno.writeTextFileSync(join(occupied, "marker"), "mine");
  const first = await createSnapshot(config, options);
  const second = await createSnapshot(config, options);
  assert.notEqual(first.stamp, taken);
  assert.notEqual(second.stamp, first.stamp);
  assert.deepEqual(entryNames(occupied), ["marker"]);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [taken, first.stamp, second.stamp].sort());
});

Deno.test("a missing database is a usage error naming it; nothing is made, not even the database", async () => {
  using dir = tempDir();
  const db = join(dir.path, "wrong", "atocore.db");
  const run = await runCli(["create", "--db", db], { env: { ATOCORE_DATA_DIR: dir.path } });
  assert.equal(run.code, 2);
  assert.ok(run.stderr.includes(db), run.stderr);
  assert.equal(run.stdout, "");
  assert.deepEqual(entryNames(join(dir.path, "wrong")), []);
  assert.deepEqual(entryNames(join(dir.path, "backups", "snapshots")), []);
});

Deno.test("leftover staging and trash of a crashed run are removed by the next create, and reported", async () => {
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  const staged = join(store.backupDir, ".staging", "20200101T000000Z.999-deadbeef");
  const trashed = join(store.backupDir, ".trash", "20200102T000000Z.999-deadbeef");
  for (const folder of [staged, trashed]) {
    Deno.mkdirSync(join(folder, "db"), { recursive: true });
    Deno.writeTextFileSync(join(folder, "db", "atocore.db"), "half a copy");
  }
  const run = await runCli(["create"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), []);
  assert.deepEqual(entryNames(join(store.backupDir, ".trash")), []);
  const removed = events(run.stderr).filter((event) => event.event === "stale_leftover_removed").map((event) =>
    event.path
  );
  assert.deepEqual(removed.sort(), [staged, trashed]);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [(run.json as CreateResult).stamp]);
});

Deno.test("create while another operation holds the lock exits 4 and makes nothing", async () => {
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  const env = storeEnv(store);
  {
    using _lock = acquireLock(store.backupDir, "restore");
    const run = await runCli(["create"], { env });
    assert.equal(run.code, 4);
    assert.match(run.stderr, /locked by restore/);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), []);
  }
  assert.equal((await runCli(["create"], { env })).code, 0, "the lock is free once released");
});

// Publishing only what validates is the design: a snapshot whose database is malformed would fail
// `validate` and be refused by restore, so listing it as good would mislead. Its files are kept
// under failed/ for whoever needs them (cleanup bounds failed/).
Deno.test("a snapshot whose database copy fails post-backup validation is kept under failed/, not published; exit 1", async () => {
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  overwriteSecondPage(store.db);
  const run = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(run.code, 1);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), []);
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), []);
  const [aside] = entryNames(join(store.backupDir, "failed"));
  const asidePath = join(store.backupDir, "failed", aside);
  assert.match(run.stderr, /db_(open|integrity_check)_failed/);
  assert.ok(run.stderr.includes(asidePath), "the error says where the snapshot went");
  assert.deepEqual(entryNames(asidePath), ["backup-metadata.json", "chroma", "config", "db"]);
  const warning = events(run.stderr).find((event) => event.event === "post_backup_validation_failed");
  assert.equal(warning?.backup_root, asidePath);
  const listed = await runCli(["list"], { env: storeEnv(store) });
  assert.equal(listed.code, 0, listed.stderr);
  const { failed } = listed.json as { failed: { name: string; path: string; stamp: string }[] };
  assert.deepEqual(failed.map((entry) => [entry.name, entry.path]), [[aside, asidePath]], "list shows failed/");
  assert.equal(failed[0].stamp, aside.split(".")[0]);
});

// One broken part must not stop the backup of the others: three nights of a damaged Chroma
// used to leave no snapshot of the database at all, and a full copy per night under failed/.
Deno.test("a damaged Chroma database: the database and registry are still published, the metadata says why; exit 1", async () => {
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  const env = storeEnv(store);
  overwriteSecondPage(join(store.chromaDir, "chroma.sqlite3"));
  const stamps: string[] = [];
  for (let night = 0; night < 2; night++) {
    const run = await runCli(["create", "--chroma"], { env });
    assert.equal(run.code, 1, run.stderr);
    const result = run.json as CreateResult;
    stamps.push(result.stamp);
    assert.match(String(result.chroma_error), /its copy failed validation \(chroma_db_(open|integrity_check)_failed/);
    const root = join(store.backupDir, "snapshots", result.stamp);
    const metadata = readMetadata(root);
    assert.equal(metadata.chroma_snapshot_included, false);
    assert.equal(metadata.chroma_snapshot_path, "");
    assert.equal(metadata.chroma_error, result.chroma_error);
    assert.deepEqual(entryNames(root), ["backup-metadata.json", "config", "db"], "no Chroma copy in the snapshot");
    assertManifestMatchesFiles(root, metadata.manifest);
    const warning = events(run.stderr).find((event) => event.event === "chroma_backup_failed");
    assert.equal(warning?.backup_root, root);
    assert.equal(warning?.path, store.chromaDir);
    assert.equal((await runCli(["validate", result.stamp], { env })).code, 0, "the published part validates");
  }
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), stamps);
  assert.deepEqual(entryNames(join(store.backupDir, "failed")), [], "nothing kept aside: the database is published");
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), []);
  const outcome = await createCommand.run({ chroma: true }, [], {
    env,
    cwd: ROOT,
    now: new Date(),
    reporter: SILENT,
  });
  assert.equal(outcome.exitCode, 1);
  assert.match(
    outcome.text,
    new RegExp(
      `^created snapshot \\S+ with the database .* and the registry but WITHOUT Chroma: .*; Chroma ${store.chromaDir} is in no new snapshot; fix that \\(or repair or rebuild Chroma\\), then run create --chroma again`,
    ),
  );
  const listed = await runCli(["list"], { env });
  const backups = (listed.json as { backups: { chroma_included: boolean; metadata: Metadata }[] }).backups;
  assert.ok(backups.every((entry) => !entry.chroma_included && typeof entry.metadata.chroma_error === "string"));
  const drill = await runCli(["drill", "--latest"], { env }); // the nightly drill does not vouch for it
  assert.equal(drill.code, 1, drill.stderr);
  const checks = (drill.json as { checks: { name: string; status: string; detail: string }[] }).checks;
  const chroma = checks.find((check) => check.name === "chroma_files");
  assert.equal(chroma?.status, "failed");
  assert.match(chroma?.detail ?? "", /^Chroma was asked for but could not be backed up when made: its copy failed/);
  assert.ok(checks.every((check) => check.name === "chroma_files" || check.status !== "failed"), "only that check");
});

Deno.test("a Chroma folder on a read-only mount: published without Chroma, saying a WAL database's folder must be writable, not to repair Chroma", async () => {
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  const mount = bindReadOnly(store.chromaDir); // its chroma.sqlite3 is a WAL database: SQLite cannot make its -shm
  if (typeof mount === "string") return skipBecause(`create --chroma from a read-only Chroma folder: ${mount}`);
  using _mount = mount;
  const outcome = await createCommand.run({ chroma: true }, [], {
    env: storeEnv(store),
    cwd: ROOT,
    now: new Date(),
    reporter: SILENT,
  });
  assert.equal(outcome.exitCode, 1);
  assert.match(outcome.text, /WITHOUT Chroma: the copy failed \(.*; is it readable by this user\? SQLite also needs/);
  assert.match(outcome.text, /the folder of a WAL database writable, for its -shm file: not a read-only mount\)/);
  assert.match(outcome.text, /; fix that \(or repair or rebuild Chroma\), then run create --chroma again/);
});

/** Overwrite the second page of an SQLite file (a table's root) with 0xff bytes: the backup API copies it as is. */
function overwriteSecondPage(path: string): void {
  const header = new Uint8Array(18);
  using file = Deno.openSync(path, { read: true, write: true });
  file.readSync(header);
  const pageSize = (header[16] << 8) | header[17];
  file.seekSync(pageSize, Deno.SeekMode.Start);
  file.writeSync(new Uint8Array(pageSize).fill(0xff));
}

Deno.test("Chroma: chroma.sqlite3 goes through the backup API (WAL frames in, no sidecars copied)", async () => {
  using store = tempStore(SMALL);
  const chromaDb = join(store.chromaDir, "chroma.sqlite3");
  const holder = new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("INSERT INTO collections VALUES ('c1', 'only-in-the-wal')")
print("ready", flush=True)
sys.stdin.read()`,
      chromaDb,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  try {
    const reader = holder.stdout.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value).trim(), "ready");
    reader.releaseLock();
    assert.ok(Deno.statSync(`${chromaDb}-wal`).size > 0);
    const run = await runCli(["create", "--chroma"], { env: storeEnv(store) });
    assert.equal(run.code, 0, run.stderr);
    const chroma = join((run.json as CreateResult).backup_root, "chroma");
    assert.deepEqual(entryNames(chroma).filter((name) => name.startsWith("chroma.sqlite3")), ["chroma.sqlite3"]);
    const rows = await sqlite3Json(
      `file:${join(chroma, "chroma.sqlite3")}?immutable=1`,
      "SELECT name FROM collections",
    );
    assert.ok(rows.some((row) => row.name === "only-in-the-wal"), "the copy holds the committed WAL frames");
  } finally {
    await holder.stdin.close();
    await holder.status;
    await holder.stdout.cancel().catch(() => {});
  }
});

Deno.test("Chroma: symbolic links are copied as links, never followed, inside or out of the tree", async () => {
  using store = tempStore(SMALL);
  using outside = tempDir();
  Deno.writeTextFileSync(join(outside.path, "secret.txt"), "outside-secret");
  Deno.mkdirSync(join(outside.path, "folder"));
  Deno.writeTextFileSync(join(outside.path, "folder", "inner.bin"), "outside-inner");
  const links = {
    "link-inside": `${SEGMENT}/header.bin`,
    "link-outside": join(outside.path, "secret.txt"),
    "dir-outside": join(outside.path, "folder"),
    [`${SEGMENT}/dangling`]: "../../nowhere",
  };
  for (const [path, target] of Object.entries(links)) Deno.symlinkSync(target, join(store.chromaDir, path));
  const run = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  const root = (run.json as CreateResult).backup_root;
  for (const [path, target] of Object.entries(links)) {
    const copy = join(root, "chroma", path);
    assert.ok(Deno.lstatSync(copy).isSymlink, `${path} is a link`);
    assert.equal(Deno.readLinkSync(copy), target);
  }
  const manifest = readMetadata(root).manifest;
  for (const [path, target] of Object.entries(links)) {
    assert.deepEqual(manifest.find((entry) => entry.path === `chroma/${path}`), {
      path: `chroma/${path}`,
      symlink: target,
    });
  }
  const grep = new Deno.Command("grep", { args: ["-r", "-l", "outside-", root] }).outputSync();
  assert.equal(new TextDecoder().decode(grep.stdout), "", "no content from outside the tree was copied");
  assert.equal((await runCli(["validate", (run.json as CreateResult).stamp], { env: storeEnv(store) })).code, 0);
});

/** Start a process appending one byte at a time to `path` until it is killed; resolve once it writes. */
async function startAppender(path: string): Promise<Deno.ChildProcess> {
  const size = Deno.statSync(path).size;
  // Raised priority, so the appender runs during each attempt's copy even on a loaded machine.
  const child = new Deno.Command("nice", {
    args: [
      "-n",
      "-10",
      "python3",
      "-c",
      "import sys\nf = open(sys.argv[1], 'ab', buffering=0)\nwhile True: f.write(b'x')",
      path,
    ],
    stdin: "null",
  }).spawn();
  while (Deno.statSync(path).size === size) await new Promise((resolve) => setTimeout(resolve, 5));
  return child;
}

Deno.test("Chroma: a copy torn by a writer that keeps appending is given up after bounded retries, saying why", async () => {
  // A Chroma folder large enough that each attempt's copy lasts tens of milliseconds.
  using store = tempStore({ ...SMALL, chromaMiB: 48 });
  const segmentFile = join(store.chromaDir, SEGMENT, "data_level0.bin");
  const appender = await startAppender(segmentFile);
  let run;
  try {
    run = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  } finally {
    appender.kill("SIGTERM");
    await appender.status;
  }
  assert.equal(run.code, 1, run.stderr);
  const result = run.json as CreateResult;
  assert.match(String(result.chroma_error), /^kept changing during the copy \(3 attempts/);
  assert.ok(String(result.chroma_error).includes(`${SEGMENT}/data_level0.bin`), "the error names the file");
  assert.equal(events(run.stderr).filter((event) => event.event === "chroma_copy_torn").length, 3);
  assert.ok(events(run.stderr).some((event) => event.event === "chroma_backup_failed"));
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [result.stamp], "the database is published");
  assert.deepEqual(entryNames(result.backup_root), ["backup-metadata.json", "config", "db"]);
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), []);
});

Deno.test("Chroma: a writer that stops after two appends cannot tear all attempts; the copy is one of its states", async () => {
  using store = tempStore(SMALL);
  const segmentFile = join(store.chromaDir, SEGMENT, "data_level0.bin");
  const original = Deno.readFileSync(segmentFile);
  const writer = new Deno.Command("python3", {
    args: [
      "-c",
      "import sys, time\nfor _ in range(2):\n  time.sleep(0.15)\n  open(sys.argv[1], 'ab').write(b'y' * 4096)",
      segmentFile,
    ],
  }).spawn();
  const run = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  await writer.status;
  assert.equal(run.code, 0, run.stderr);
  const copy = Deno.readFileSync(join((run.json as CreateResult).backup_root, "chroma", SEGMENT, "data_level0.bin"));
  const live = Deno.readFileSync(segmentFile);
  assert.ok([original.length, original.length + 4096, original.length + 8192].includes(copy.length));
  assert.deepEqual(copy, live.subarray(0, copy.length), "the copy is a state the file was in");
});

Deno.test("a writer committing to the live database during create: the snapshot holds one committed state", async () => {
  using store = tempStore({ dbMiB: 8, chromaMiB: 0.05, segments: 1 });
  const writer = openLedgerWriter(store.db);
  let committed = 0;
  try {
    for (; committed < 20; committed++) writer.commit(committed + 1);
    const child = cliProcess(["create"], { env: storeEnv(store) }).spawn();
    let done = false;
    const output = child.output().finally(() => done = true);
    while (!done) {
      writer.commit(committed + 1);
      committed += 1;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const result = await output;
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    const created = JSON.parse(new TextDecoder().decode(result.stdout)) as CreateResult;
    assert.equal(created.validated, true);
    const state = await ledgerState(String(created.db_snapshot_path), { immutable: true });
    assert.equal(state.sum, state.total, `one committed state: ${JSON.stringify(state)}`);
    assert.ok(Number(state.rows) >= 20 && Number(state.rows) <= committed);
    assert.equal((await runCli(["validate", created.stamp], { env: storeEnv(store) })).code, 0);
  } finally {
    writer.close();
  }
});

Deno.test("Chroma: files named chroma.sqlite3-* other than SQLite's -wal, -shm and -journal are backed up and restored", async () => {
  using store = tempStore(SMALL);
  const env = storeEnv(store);
  const before = await createdStamp(env); // made before the operator's copies below existed
  const chromaDb = join(store.chromaDir, "chroma.sqlite3");
  const kept = ["chroma.sqlite3-bak", "chroma.sqlite3-2026-11-01", "chroma.sqlite3-"];
  for (const name of kept) Deno.copyFileSync(chromaDb, join(store.chromaDir, name));
  Deno.writeTextFileSync(join(store.chromaDir, "chroma.sqlite3-journal"), "a stale journal");
  const run = await runCli(["create", "--chroma"], { env });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as CreateResult;
  const copied = entryNames(join(result.backup_root, "chroma")).filter((name) => name.startsWith("chroma.sqlite3"));
  assert.deepEqual(copied, ["chroma.sqlite3", ...kept].sort(), "the operator's copies are in, SQLite's files out");
  for (const name of kept) {
    assert.ok(result.manifest.some((entry) => entry.path === `chroma/${name}`), `${name} is in the manifest`);
  }
  const copies = Object.fromEntries(kept.map((name) => [name, Deno.readFileSync(join(store.chromaDir, name))]));

  // Restoring the older snapshot replaces Chroma's contents; the pre-restore snapshot keeps the operator's copies.
  const restored = await runCli(["restore", before, "--confirm-service-stopped"], { env });
  assert.equal(restored.code, 0, restored.stderr);
  const preStamp = (restored.json as { pre_restore_snapshot: string }).pre_restore_snapshot;
  const preChroma = join(store.backupDir, "snapshots", preStamp, "chroma");
  for (const name of kept) assert.deepEqual(Deno.readFileSync(join(preChroma, name)), copies[name], name);
  const undone = await runCli(["restore", preStamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env });
  assert.equal(undone.code, 0, undone.stderr);
  for (const name of kept) assert.deepEqual(Deno.readFileSync(join(store.chromaDir, name)), copies[name], name);
});

Deno.test("a live database of 0 bytes or without tables is refused (exit 1) unless --allow-empty-database", async () => {
  using dir = tempDir();
  const env = { ATOCORE_DATA_DIR: dir.path };
  const db = join(dir.path, "atocore.db");
  const snapshots = join(dir.path, "backups", "snapshots");
  Deno.writeFileSync(db, new Uint8Array());
  const cases = [
    { what: "0 bytes", message: /the live database is empty \(0 bytes\)/ },
    { what: "no tables", message: /the live database has no tables/ },
  ];
  for (const { what, message } of cases) {
    if (what === "no tables") {
      Deno.removeSync(db);
      const made = new Deno.Command("sqlite3", {
        args: [db, "PRAGMA journal_mode=WAL; CREATE TABLE t (x); DROP TABLE t;"],
      }).outputSync();
      assert.ok(made.success);
    }
    const published = entryNames(snapshots);
    const refused = await runCli(["create"], { env });
    assert.equal(refused.code, 1, `${what}: ${refused.stderr}`);
    const line = refused.stderr.split("\n").find((text) => text.startsWith("atocore-backup: error:"));
    assert.match(String(line), message, what);
    assert.ok(String(line).includes(db) && String(line).includes("--allow-empty-database"), String(line));
    assert.deepEqual(entryNames(snapshots), published, `${what}: something was published`);
    assert.deepEqual(entryNames(join(dir.path, "backups", ".staging")), [], `${what}: staging left behind`);
    const allowed = await runCli(["create", "--allow-empty-database"], { env });
    assert.equal(allowed.code, 0, `${what}: ${allowed.stderr}`);
    assert.ok(entryNames(snapshots).includes((allowed.json as CreateResult).stamp));
  }
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  assert.equal((await runCli(["create"], { env: storeEnv(store) })).code, 0, "a database with tables is backed up");
});

Deno.test("create refuses (exit 3) while the newest snapshot is stamped later than now beyond the skew, naming it", async () => {
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  const env = storeEnv(store);
  const snapshots = join(store.backupDir, "snapshots");
  const soon = formatStamp(new Date(Date.now() + 60_000));
  Deno.mkdirSync(join(snapshots, soon), { recursive: true });
  const within = await runCli(["create"], { env });
  assert.equal(within.code, 0, `a minute ahead is within the default 5 minutes: ${within.stderr}`);

  const future = "20990101T000000Z";
  Deno.mkdirSync(join(snapshots, future));
  const before = entryNames(snapshots);
  const refused = await runCli(["create"], { env });
  assert.equal(refused.code, 3, refused.stderr);
  const line = refused.stderr.trim().split("\n").find((text) => text.startsWith("atocore-backup: error:"));
  assert.match(String(line), new RegExp(`the newest snapshot ${future} is stamped \\d+ s after now`));
  assert.match(String(line), /check the clock .*--max-clock-skew \d+ to create anyway/);
  assert.deepEqual(entryNames(snapshots), before, "a snapshot was made");
  const skew = Number(/--max-clock-skew (\d+)/.exec(String(line))![1]);
  const tooSmall = await runCli(["create", "--max-clock-skew", "600"], { env });
  assert.equal(tooSmall.code, 3, tooSmall.stderr);
  const allowed = await runCli(["create", "--max-clock-skew", String(skew + 5)], { env });
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal((await runCli(["create", "--max-clock-skew", "soon"], { env })).code, 2);

  // given by --backup-dir, the validate it prints reaches that folder, not the default one
  using elsewhere = tempDir();
  Deno.mkdirSync(join(elsewhere.path, "snapshots", future), { recursive: true });
  const flagged = await runCli(["create", "--backup-dir", elsewhere.path], { env });
  assert.equal(flagged.code, 3, flagged.stderr);
  const validate = printedCommand(flagged.stderr, "validate it with");
  assert.ok(validate?.includes(`--backup-dir ${elsewhere.path}`), flagged.stderr);
  const ran = await runPrinted(validate!, env);
  assert.equal((ran.json as { path: string }).path, join(elsewhere.path, "snapshots", future), ran.stderr);
});

Deno.test("Chroma: a chroma.sqlite3 that is a symbolic link is not followed; the rest is published, exit 1", async () => {
  using store = tempStore(SMALL);
  using outside = tempDir("atocore-outside-");
  const secret = join(outside.path, "secret.sqlite3");
  const made = new Deno.Command("sqlite3", {
    args: [secret, "CREATE TABLE s (v); INSERT INTO s VALUES ('row-from-elsewhere')"],
  });
  assert.ok(made.outputSync().success);
  const chromaDb = join(store.chromaDir, "chroma.sqlite3");
  Deno.removeSync(chromaDb);
  Deno.symlinkSync(secret, chromaDb);
  const run = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(run.code, 1, run.stderr);
  const result = run.json as CreateResult;
  assert.equal(result.chroma_error, `chroma.sqlite3 is a symbolic link (to ${secret}), which create never follows`);
  assert.deepEqual(entryNames(result.backup_root), ["backup-metadata.json", "config", "db"]);
  const grep = new Deno.Command("grep", { args: ["-r", "-l", "row-from-elsewhere", result.backup_root] }).outputSync();
  assert.equal(new TextDecoder().decode(grep.stdout), "", "the linked database was read into the snapshot");
});

Deno.test("a leftover that cannot be removed (immutable) is named in a warning; create still makes its snapshot (root)", async () => {
  if (Deno.uid() !== 0) return skipBecause("chattr +i needs root");
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const leftover = join(store.backupDir, ".staging", "20260101T000000Z.1-dead", "db");
  Deno.mkdirSync(leftover, { recursive: true });
  Deno.writeTextFileSync(join(leftover, "atocore.db"), "partial");
  const locked = new Deno.Command("chattr", { args: ["+i", leftover] }).outputSync();
  if (!locked.success) return skipBecause(`chattr +i failed here: ${new TextDecoder().decode(locked.stderr).trim()}`);
  try {
    const run = await runCli(["create"], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /"event":"stale_leftover_kept","path":"[^"]*20260101T000000Z\.1-dead".*remove it by hand/);
    assert.match(run.stderr, /an immutable file, which lsattr -R shows, after chattr -i/);
    assert.ok(exists(leftover), "kept");
  } finally {
    new Deno.Command("chattr", { args: ["-i", leftover] }).outputSync();
  }
  const again = await runCli(["create"], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /"event":"stale_leftover_removed"/);
  assert.equal(exists(join(store.backupDir, ".staging", "20260101T000000Z.1-dead")), false);
});

Deno.test("a leftover named, or holding a name, that is not UTF-8 is named in a warning with that cause; the others go", async () => {
  using store = tempStore({ dbMiB: 1 });
  const staging = join(store.backupDir, ".staging");
  Deno.mkdirSync(join(staging, "20260101T000000Z.2-gone"), { recursive: true });
  // Deno cannot make such names: the shell does, as a killed run of another tool (or a hand) would leave them
  const made = new Deno.Command("bash", {
    args: ["-c", `cd "$1" && mkdir -p 20260101T000000Z.1-dead/x$'\\xff'y && touch $'\\xff'.tmp`, "-", staging],
  }).outputSync();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
  const run = await runCli(["create"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stderr,
    /"event":"stale_leftover_kept","path":"[^"]*\/\.staging\/\uFFFD\.tmp","error":"[^"]*has a name that is not UTF-8.*"next":"remove it by hand \(ls -b shows its bytes\)"/,
  );
  assert.match(
    run.stderr,
    /"event":"stale_leftover_kept","path":"[^"]*20260101T000000Z\.1-dead","error":"[^"]*\/x\uFFFDy has a name that is not UTF-8/,
  );
  assert.match(run.stderr, /"event":"stale_leftover_removed","path":"[^"]*20260101T000000Z\.2-gone"/);
});

Deno.test("Chroma of more entries than a snapshot's metadata records: the database is published without it, the snapshot readable", async () => {
  using store = tempStore(SMALL);
  const many = join(store.chromaDir, "many");
  Deno.mkdirSync(many);
  const long = "x".repeat(240); // about 390 bytes of metadata a file: 22,000 are over its 8 MiB
  for (let i = 0; i < 22_000; i++) Deno.writeFileSync(join(many, `${long}${i}`), new Uint8Array());
  const run = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(run.code, 1, run.stderr);
  const result = run.json as CreateResult;
  assert.match(
    String(result.chroma_error),
    /^holds 220\d\d files and links \(8\.\d MiB of manifest\), more than a snapshot's metadata records/,
  );
  assert.deepEqual(entryNames(result.backup_root), ["backup-metadata.json", "config", "db"]);
  const validated = await runCli(["validate", result.stamp], { env: storeEnv(store) });
  assert.equal(validated.code, 0, validated.stderr);
});
