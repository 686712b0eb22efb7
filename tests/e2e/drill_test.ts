import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveConfig } from "../../src/config.ts";
import { createSnapshot } from "../../src/ops/create.ts";
import { drillSnapshot } from "../../src/ops/drill.ts";
import { DRILL_CHECKS } from "../../src/ops/drill_result.ts";
import { sha256File } from "../../src/fs/hash.ts";
import { walkTree } from "../../src/fs/tree.ts";
import { acquireLock } from "../../src/ops/lock.ts";
import { previousSuccess, renderMetrics } from "../../src/report/metrics.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { snapshotDir } from "../../src/snapshot/layout.ts";
import { formatStamp, parseStamp } from "../../src/snapshot/stamp.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import type { SampleStore } from "../../scripts/sample_store.ts";
import {
  moduleSnapshot,
  placeValidSnapshot,
  printedCommand,
  relocateSnapshot,
  runCli,
  runPrinted,
  skipOutsideCi,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { entryNames } from "../_faults.ts";
import { mountTmpfs } from "../_mount.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";

const driver = openDriver("auto");
const SMALL = { dbMiB: 1, chromaMiB: 1 };

function configOf(store: SampleStore) {
  return resolveConfig({}, { ATOCORE_DATA_DIR: store.dataDir }, store.dataDir);
}

async function snapshotOf(store: SampleStore, includeChroma = true): Promise<string> {
  using _lock = acquireLock(store.backupDir, "create");
  return (await createSnapshot(configOf(store), { driver, includeChroma, reporter: SILENT })).stamp;
}

async function treeHashes(root: string): Promise<Record<string, string>> {
  const hashes: Record<string, string> = {};
  for (const entry of walkTree(root, (path) => path === "backups")) {
    if (entry.kind === "file") hashes[entry.path] = await sha256File(join(root, entry.path));
  }
  return hashes;
}

/** JUnit XML parsed by Python's ElementTree (a parser independent of the writer): cases and their outcome. */
async function parseJunit(path: string): Promise<{ tests: string; cases: Record<string, string> }> {
  const script = `import json, sys, xml.etree.ElementTree as E
root = E.parse(sys.argv[1]).getroot()
suite = root.find("testsuite")
cases = {c.get("name"): ("failure" if c.find("failure") is not None else "skipped" if c.find("skipped") is not None else "passed") for c in suite.iter("testcase")}
print(json.dumps({"tests": suite.get("tests"), "cases": cases}))`;
  const output = await new Deno.Command("python3", { args: ["-c", script, path], stdout: "piped" }).output();
  assert.ok(output.success, "the JUnit file is well-formed XML");
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("drill restores a snapshot with Chroma into scratch, passes every check, removes scratch, leaves live data alone", async () => {
  using store = tempStore(SMALL);
  using scratchParent = tempDir();
  const stamp = await snapshotOf(store);
  const before = await treeHashes(store.dataDir);
  const now = new Date(Date.now() + 3_600_000);
  const result = await drillSnapshot(configOf(store), stamp, {
    driver,
    reporter: SILENT,
    now,
    scratchParent: scratchParent.path,
  });
  assert.equal(result.ok, true, result.errors.join("; "));
  assert.deepEqual(
    result.checks.map((check) => [check.name, check.status]),
    DRILL_CHECKS.map((name) => [name, "passed"]),
  );
  assert.ok(result.recovery_point_seconds! >= 3600 && result.recovery_point_seconds! < 3700);
  assert.ok(result.recovery_time_seconds! >= result.restore_seconds!);
  assert.equal(result.tables, 5);
  assert.ok(result.rows > 0);
  assert.ok(result.snapshot_bytes > result.db_size_bytes && result.chroma_bytes > 0);
  assert.deepEqual([...Deno.readDirSync(scratchParent.path)], [], "scratch folder removed");
  assert.deepEqual(await treeHashes(store.dataDir), before, "live store unchanged");
});

Deno.test("drill --keep keeps the restored copy, which sqlite3 reads with the snapshot's rows", async () => {
  using store = tempStore(SMALL);
  using scratchParent = tempDir();
  const stamp = await snapshotOf(store, false);
  const result = await drillSnapshot(configOf(store), stamp, {
    driver,
    reporter: SILENT,
    now: new Date(),
    keep: true,
    scratchParent: scratchParent.path,
  });
  assert.equal(result.ok, true, result.errors.join("; "));
  assert.equal(result.scratch_kept, true);
  const restoredDb = join(result.scratch_dir!, "atocore.db");
  assert.deepEqual(await driver.tableRowCounts(restoredDb), await driver.tableRowCounts(store.db));
  const statuses = Object.fromEntries(result.checks.map((check) => [check.name, check.status]));
  assert.equal(statuses.chroma_files, "skipped", "no Chroma in this snapshot");
  assert.equal(statuses.chroma_db_integrity, "skipped");
});

Deno.test("drill of a snapshot with a damaged Chroma file fails at validation and restores nothing", async () => {
  using store = tempStore(SMALL);
  using scratchParent = tempDir();
  const stamp = await snapshotOf(store);
  const damaged = join(
    snapshotDir(store.backupDir, stamp),
    "chroma",
    "00000000-5e9a-4c1d-8f00-000000000000",
    "header.bin",
  );
  const bytes = Deno.readFileSync(damaged);
  bytes[0] ^= 0xff;
  Deno.writeFileSync(damaged, bytes);
  const result = await drillSnapshot(configOf(store), stamp, {
    driver,
    reporter: SILENT,
    now: new Date(),
    scratchParent: scratchParent.path,
  });
  assert.equal(result.ok, false);
  assert.equal(result.checks[0].status, "failed");
  assert.match(
    result.checks[0].detail,
    /manifest_sha256_mismatch: chroma\/00000000-5e9a-4c1d-8f00-000000000000\/header\.bin/,
  );
  assert.ok(result.checks.slice(1).every((check) => check.status === "skipped"));
  assert.equal(result.restore, null);
  assert.deepEqual([...Deno.readDirSync(scratchParent.path)], []);
});

Deno.test("drill of a snapshot made by the Python module (no manifest) checks Chroma against the snapshot itself", async () => {
  using store = tempStore(SMALL);
  const stamp = await moduleSnapshot(store, "drill of a module snapshot");
  const result = await drillSnapshot(configOf(store), stamp, { driver, reporter: SILENT, now: new Date() });
  assert.equal(result.ok, true, result.errors.join("; "));
  const chroma = result.checks.find((check) => check.name === "chroma_files")!;
  assert.equal(chroma.status, "passed");
  assert.match(chroma.detail, /match the snapshot \(no manifest\)/);
});

/**
 * The failed restore check's detail of a drill whose scratch folder is a tmpfs mounted with `options` (it exits 1 and
 * leaves no scratch behind), or `null` where no tmpfs may be mounted (a skipped step says so).
 */
async function failedScratchRestore(t: Deno.TestContext, options: string, dbMiB: number): Promise<string | null> {
  using store = tempStore({ dbMiB, chromaMiB: 1 });
  using mountPoint = tempDir();
  const mount = mountTmpfs(mountPoint.path, options);
  if (typeof mount === "string") {
    await t.step({ name: "tmpfs mount not permitted here; skipped", ignore: true, fn: () => {} });
    return null;
  }
  using _mount = mount;
  const stamp = await snapshotOf(store);
  const run = await runCli(["drill", stamp, "--scratch-dir", mountPoint.path], { env: storeEnv(store) });
  assert.equal(run.code, 1, run.stderr);
  const result = run.json as { ok: boolean; checks: { name: string; status: string; detail: string }[] };
  assert.equal(result.ok, false);
  const restore = result.checks.find((check) => check.name === "restore")!;
  assert.equal(restore.status, "failed");
  assert.deepEqual([...Deno.readDirSync(mountPoint.path)], [], "scratch removed");
  return restore.detail;
}

Deno.test("drill fails with exit 1 when the scratch disk is full, and leaves no scratch behind", async (t) => {
  const detail = await failedScratchRestore(t, "512k", 2);
  if (detail === null) return;
  assert.match(detail, /not enough free space for this restore .* has [\d.]+ KiB free; nothing was changed/);
  assert.match(detail, /on another filesystem \(--scratch-dir DIR\)$/, "a drill's own flag");
});

Deno.test("drill whose scratch disk runs out of inodes fails naming no --force (a drill has none; its scratch is removed)", async (t) => {
  const detail = await failedScratchRestore(t, "64m,nr_inodes=8", 1);
  if (detail === null) return;
  assert.match(detail, /no space left on device.*; the live store was not touched; fix the cause and run it again/);
  assert.doesNotMatch(detail, /--force|partly rebuilt/);
});

Deno.test("drill CLI: --latest picks the newest snapshot, writes JUnit and metrics, and takes no lock", async () => {
  using store = tempStore(SMALL);
  using out = tempDir();
  const older = await snapshotOf(store);
  const newer = formatStamp(new Date(parseStamp(older)!.getTime() + 1000)); // a stamp in the future is passed over
  Deno.mkdirSync(snapshotDir(store.backupDir, newer));
  for (const entry of walkTree(snapshotDir(store.backupDir, older))) {
    const from = join(snapshotDir(store.backupDir, older), entry.path);
    const to = join(snapshotDir(store.backupDir, newer), entry.path);
    if (entry.kind === "dir") Deno.mkdirSync(to);
    else Deno.copyFileSync(from, to);
  }
  relocateSnapshot(snapshotDir(store.backupDir, newer));
  const junit = join(out.path, "drill.xml");
  const metrics = join(out.path, "drill.prom");
  using _held = acquireLock(store.backupDir, "test holding the lock");
  const run = await runCli(["drill", "--latest", "--junit", junit, "--metrics-file", metrics], {
    env: storeEnv(store),
  });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as { stamp: string; ok: boolean; recovery_point_seconds: number };
  assert.equal(result.stamp, newer);
  const parsed = await parseJunit(junit);
  assert.equal(parsed.tests, String(DRILL_CHECKS.length));
  assert.deepEqual(parsed.cases, Object.fromEntries(DRILL_CHECKS.map((name) => [name, "passed"])));
  const text = Deno.readTextFileSync(metrics);
  assert.match(text, /^atocore_backup_last_run_success\{operation="drill"\} 1$/m);
  assert.match(text, /^atocore_backup_snapshot_valid\{operation="drill"\} 1$/m);
  assert.match(text, /^# TYPE atocore_backup_drill_recovery_time_seconds gauge$/m);
  assert.ok(
    text.includes(
      `\natocore_backup_drill_recovery_point_seconds{operation="drill"} ${result.recovery_point_seconds}\n`,
    ),
    "the metrics report the drill's own recovery point",
  );
  const seconds = parseStamp(newer)!.getTime() / 1000;
  assert.match(text, new RegExp(`^atocore_backup_snapshot_timestamp_seconds\\{operation="drill"\\} ${seconds}$`, "m"));
});

Deno.test("drill CLI: a registry named as the database drills, each restored and checked in a folder of its own", async () => {
  using store = tempStore(SMALL);
  using scratch = tempDir();
  const registry = join(store.dataDir, "config", "atocore.db");
  Deno.mkdirSync(join(registry, ".."));
  Deno.renameSync(store.registry, registry);
  const env = { ...storeEnv(store), ATOCORE_PROJECT_REGISTRY_PATH: registry };
  assert.equal((await runCli(["create", "--chroma"], { env })).code, 0);
  const run = await runCli(["drill", "--latest", "--keep", "--scratch-dir", scratch.path], { env });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as { scratch_dir: string; checks: { name: string; status: string }[] };
  assert.deepEqual(result.checks.map((check) => check.status), DRILL_CHECKS.map(() => "passed"));
  assert.deepEqual([...Deno.readDirSync(result.scratch_dir)].map((entry) => entry.name).sort(), [
    "chroma",
    "database",
    "registry",
  ]);
});

Deno.test("drill with an empty TMPDIR makes its scratch copies in /tmp, not in the current folder", async () => {
  using r = await remoteStore(SMALL);
  using cwd = tempDir();
  await createAndPush(r.env);
  const env = { ...r.envWithIdentity, TMPDIR: "" };
  for (const args of [["drill", "--latest"], ["drill", "--from-remote", "--latest"], ["drill", "--sample"]]) {
    const run = await runCli([...args, "--keep"], { env, cwd: cwd.path });
    assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
    const json = run.json as { scratch_dir?: string; data_dir?: string };
    const kept = [json.scratch_dir ?? json.data_dir!]; // --sample keeps its store, the drill's scratch inside it
    const fetched = run.stderr.match(/"event":"remote_fetch_finished".*"scratch":"([^"]+)"/)?.[1];
    for (const path of [...kept, ...(fetched ? [fetched] : [])]) {
      assert.ok(path.startsWith("/tmp/"), `${args.join(" ")}: a scratch copy at ${path}`);
    }
    for (const path of kept) Deno.removeSync(path, { recursive: true });
    assert.deepEqual([...Deno.readDirSync(cwd.path)], [], `${args.join(" ")} wrote in the current folder`);
  }
});

Deno.test("drill CLI: a failing drill exits 1, marks JUnit failures, and keeps the last success time in the metrics", async () => {
  using store = tempStore(SMALL);
  using out = tempDir();
  const stamp = await snapshotOf(store);
  const metrics = join(out.path, "drill.prom");
  const junit = join(out.path, "drill.xml");
  const first = await runCli(["drill", stamp, "--metrics-file", metrics], { env: storeEnv(store) });
  assert.equal(first.code, 0, first.stderr);
  const lastSuccess = previousSuccess(metrics, "drill");
  assert.ok(lastSuccess !== null && lastSuccess > 0);
  Deno.writeTextFileSync(join(snapshotDir(store.backupDir, stamp), "config", "project-registry.json"), "{not json");
  const second = await runCli(["drill", stamp, "--metrics-file", metrics, "--junit", junit], { env: storeEnv(store) });
  assert.equal(second.code, 1);
  const parsed = await parseJunit(junit);
  assert.equal(parsed.cases.snapshot_valid, "failure");
  assert.equal(parsed.cases.restore, "skipped");
  const text = Deno.readTextFileSync(metrics);
  assert.match(text, /^atocore_backup_last_run_success\{operation="drill"\} 0$/m);
  assert.match(text, /^atocore_backup_snapshot_valid\{operation="drill"\} 0$/m);
  assert.equal(previousSuccess(metrics, "drill"), lastSuccess);
});

Deno.test("drill CLI: --max-age fails a drill whose snapshot restores but is older, as a JUnit case of its own", async () => {
  using store = tempStore(SMALL);
  using out = tempDir();
  const stamp = formatStamp(new Date(Date.now() - 3 * 86400_000));
  placeValidSnapshot(store.backupDir, stamp);
  const junit = join(out.path, "drill.xml");
  const metrics = join(out.path, "drill.prom");
  const old = await runCli(["drill", stamp, "--max-age", "2d", "--junit", junit, "--metrics-file", metrics], {
    env: storeEnv(store),
  });
  assert.equal(old.code, 1, old.stderr);
  // stale, not damaged: an alert on the metric tells the two apart
  assert.match(Deno.readTextFileSync(metrics), /^atocore_backup_snapshot_valid\{operation="drill"\} 1$/m);
  const parsed = await parseJunit(junit);
  assert.equal(parsed.tests, String(DRILL_CHECKS.length + 1));
  const { recovery_point, ...others } = parsed.cases;
  assert.equal(recovery_point, "failure");
  assert.deepEqual(Object.keys(others).sort(), [...DRILL_CHECKS].sort());
  assert.ok(Object.values(others).every((outcome) => outcome !== "failure"), "every other check holds");
  assert.match(
    (old.json as { errors: string[] }).errors.join(),
    /recovery_point: the snapshot is 2592\d\d s old; at most 172800 s allowed/,
  );
  assert.match(old.stderr, /"level":"warning","event":"drill_finished","stamp":"\d{8}T\d{6}Z","ok":false/);
  assert.doesNotMatch(old.stderr, /"event":"drill_finished"[^\n]*"ok":true/, "the log says what the exit code says");
  const young = await runCli(["drill", stamp, "--max-age", "4d", "--junit", junit], { env: storeEnv(store) });
  assert.equal(young.code, 0, young.stderr);
  assert.equal((await parseJunit(junit)).cases.recovery_point, "passed");
  for (const bad of [["--max-age", "2 days"], ["--max-age", "2d", "--sample"]]) {
    const refused = await runCli(["drill", ...(bad.includes("--sample") ? [] : [stamp]), ...bad], {
      env: storeEnv(store),
    });
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(refused.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("drill CLI: the create that drill --latest prints with no snapshot runs as printed, on the --backup-dir given", async () => {
  using store = tempStore(SMALL);
  const env = storeEnv(store); // its backup folder is not there: a command run without the flag fails
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits
  Deno.mkdirSync(backupDir);
  const run = await runCli(["drill", "--latest", "--backup-dir", backupDir], { env });
  assert.equal(run.code, 1, run.stderr);
  const printed = printedCommand(run.stderr, "make one first with");
  assert.ok(printed !== null, run.stderr);
  const created = await runPrinted(printed, env); // pasted into a shell as it is
  assert.equal(created.code, 0, `${printed}: ${created.stderr}`);
  assert.equal(entryNames(join(backupDir, "snapshots")).length, 1, `${printed} made one in the folder given`);
});

Deno.test("drill CLI: no snapshot for --latest is exit 1 with one line; a run that throws still writes its metrics and a failed JUnit", async () => {
  using store = tempStore(SMALL);
  using out = tempDir();
  Deno.mkdirSync(store.backupDir); // a backup folder without snapshots (none at all is a usage error, exit 2)
  const metrics = join(out.path, "drill.prom");
  const junit = join(out.path, "drill.xml");
  Deno.writeTextFileSync(junit, '<testsuites failures="0"/>\n'); // an earlier run's pass
  const args = ["drill", "--latest", "--metrics-file", metrics, "--junit", junit];
  const run = await runCli(args, { env: storeEnv(store) });
  assert.equal(run.code, 1);
  assert.equal(run.stderr.trim().split("\n").length, 1);
  assert.match(run.stderr, /no snapshots to drill in .*backups; run 'atocore-backup create' first/);
  assert.match(Deno.readTextFileSync(metrics), /^atocore_backup_last_run_success\{operation="drill"\} 0$/m);
  const report = Deno.readTextFileSync(junit);
  assert.match(report, /<testsuites name="[^"]+" tests="1" failures="1"/, "the earlier pass is not left standing");
  assert.match(report, /<failure message="no snapshots to drill in [^"]*backups; run &apos;atocore-backup create/);
});

Deno.test("drill CLI: a usage or configuration error after --junit also replaces an earlier report with one failed case", async () => {
  using store = tempStore(SMALL);
  using out = tempDir();
  const junit = join(out.path, "drill.xml");
  const env = storeEnv(store);
  const cases: [string, string[], Record<string, string>][] = [
    ["an empty ATOCORE_DB_PATH", ["drill", "--latest"], { ...env, ATOCORE_DB_PATH: "" }],
    ["an ffi driver that cannot load", ["drill", "--latest", "--sqlite-driver", "ffi"], {
      ...env,
      ATOCORE_SQLITE_LIB: join(out.path, "no-libsqlite3.so"),
    }],
    ["a bad --max-age", ["drill", "--latest", "--max-age", "2 days"], env],
    ["two snapshots chosen", ["drill", "--latest", "--sample"], env],
    ["a scratch folder in the store", ["drill", "--latest", "--scratch-dir", store.backupDir], env],
  ];
  for (const [what, args, caseEnv] of cases) {
    Deno.writeTextFileSync(junit, '<testsuites failures="0"/>\n'); // an earlier run's pass
    const run = await runCli([...args, "--junit", junit], { env: caseEnv });
    assert.notEqual(run.code, 0, what);
    const report = Deno.readTextFileSync(junit);
    assert.match(report, /<testsuites name="[^"]+" tests="1" failures="1"/, `${what}: ${run.stderr}`);
  }
});

Deno.test("drill CLI: a passing drill whose JUnit report cannot be written fails (exit 1), saying it passed", async () => {
  using store = tempStore(SMALL);
  using out = tempDir();
  const env = storeEnv(store);
  assert.equal((await runCli(["create", "--chroma"], { env })).code, 0);
  const junit = join(out.path, "drill.xml");
  Deno.writeTextFileSync(junit, "<testsuites/>\n");
  const frozen = new Deno.Command("chattr", { args: ["+i", junit], stderr: "null" }).outputSync();
  if (!frozen.success) return skipOutsideCi(`chattr +i is not possible on ${out.path}`);
  try {
    const run = await runCli(["drill", "--latest", "--junit", junit], { env });
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /error: the drill of \d{8}T\d{6}Z passed, but its JUnit report .*drill\.xml could not be written/,
    );
  } finally {
    new Deno.Command("chattr", { args: ["-i", junit] }).outputSync();
  }
});

Deno.test("drill --sample runs the whole tool in a temporary folder and leaves nothing behind", async () => {
  using cwd = tempDir();
  using tmp = tempDir();
  const run = await runCli(["drill", "--sample"], { cwd: cwd.path, env: { TMPDIR: tmp.path } });
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as {
    ok: boolean;
    data_dir: string;
    create: { chroma_snapshot_files: number };
    validate: { valid: boolean; manifest_ok: boolean };
    drill: { ok: boolean };
    cleanup: { dry_run: boolean; kept: number };
  };
  assert.equal(result.ok, true);
  assert.ok(result.data_dir.startsWith(tmp.path));
  assert.ok(result.create.chroma_snapshot_files > 0);
  assert.deepEqual([result.validate.valid, result.validate.manifest_ok, result.drill.ok], [true, true, true]);
  assert.deepEqual([result.cleanup.dry_run, result.cleanup.kept], [true, 1]);
  assert.deepEqual([...Deno.readDirSync(tmp.path)], [], "temporary folder removed");
  assert.deepEqual([...Deno.readDirSync(cwd.path)], [], "nothing written where it ran");
});

Deno.test("drill --sample with TMPDIR missing or a file says so in one line naming it, with TMPDIR as the next step", async () => {
  using cwd = tempDir();
  const file = join(cwd.path, "a-file");
  Deno.writeTextFileSync(file, "");
  for (const [tmpdir, why] of [[join(cwd.path, "missing"), "not found"], [file, "not a folder"]]) {
    const run = await runCli(["drill", "--sample"], { cwd: cwd.path, env: { TMPDIR: tmpdir } });
    assert.equal(run.code, 1, run.stderr);
    const lines = run.stderr.trim().split("\n").filter((line) => line.includes("error:"));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0], new RegExp(`in the temporary folder ${tmpdir} \\(.*\\); set TMPDIR to a folder`), why);
  }
});

Deno.test("drill --sample with a full TMPDIR says so naming the folder, with TMPDIR as the next step, at each step", async () => {
  // the sample store (about 6.4 MiB) does not fit in the first, its snapshot not in the second, the drill's copy not in
  // the third: each says where, and to set TMPDIR (--scratch-dir and 'run create again' are not drill --sample's)
  for (const size of ["256k", "9m", "16m"]) {
    using tmp = tempDir();
    const mount = mountTmpfs(tmp.path, size);
    if (typeof mount === "string") return skipOutsideCi(`drill --sample on a full TMPDIR: ${mount}`);
    using _mount = mount;
    const run = await runCli(["drill", "--sample"], { env: { TMPDIR: tmp.path } });
    assert.equal(run.code, 1, `${size}: ${run.stderr}`);
    const sample = `${tmp.path}/atocore-sample-\\w+`;
    if (size === "16m") {
      const checks = (run.json as { drill: { checks: { name: string; detail: string }[] } }).drill.checks;
      const restore = checks.find((check) => check.name === "restore")!;
      assert.match(
        restore.detail,
        new RegExp(`^not enough free space for this restore on the filesystem of ${sample}/`),
      );
      assert.match(restore.detail, /or restore to a folder on another filesystem \(TMPDIR\)$/, size);
    } else {
      const lines = run.stderr.trim().split("\n").filter((line) => line.includes("error:"));
      assert.equal(lines.length, 1, `${size}: ${run.stderr}`);
      const what = size === "256k" ? "build the sample store in" : "make the sample's snapshot in";
      assert.match(
        lines[0],
        new RegExp(
          `cannot ${what} ${sample}.* \\(no space left on device \\(disk full\\)\\); set TMPDIR to a folder with room`,
        ),
        size,
      );
    }
    assert.deepEqual(entryNames(tmp.path), [], `${size}: the sample folder is removed`);
  }
});

Deno.test("metrics: a failed run without an earlier success, or one after its end, has no last-success sample; values are plain numbers", () => {
  const text = renderMetrics({
    operation: "create",
    startedAt: new Date("2026-04-09T01:02:03Z"),
    finishedAt: new Date("2026-04-09T01:02:05.500Z"),
    success: false,
    facts: {},
  }, null);
  assert.doesNotMatch(text, /last_success_timestamp_seconds/);
  const failed = (previous: number) =>
    renderMetrics({
      operation: "create",
      startedAt: new Date("2026-04-09T01:02:03Z"),
      finishedAt: new Date("2026-04-09T01:02:05.500Z"),
      success: false,
      facts: {},
    }, previous);
  const kept = /^atocore_backup_last_success_timestamp_seconds\{operation="create"\} 1775696000$/m;
  assert.match(failed(1775696000), kept, "an earlier success is kept");
  // one after this run's end (a file edited, a clock set back) would silence a stale-success alert for ever
  assert.doesNotMatch(failed(99999999999999), /last_success_timestamp_seconds/);
  assert.match(text, /^atocore_backup_last_run_timestamp_seconds\{operation="create"\} 1775696525\.5$/m);
  assert.match(text, /^atocore_backup_last_run_duration_seconds\{operation="create"\} 2\.5$/m);
  for (const line of text.trim().split("\n").filter((line) => !line.startsWith("#"))) {
    assert.match(line, /^atocore_backup_[a-z_]+\{operation="create"\} -?\d+(\.\d+)?$/);
  }
});

Deno.test("drill with a scratch folder that cannot be made fails the restore check and names the folder", async () => {
  using store = tempStore(SMALL);
  using parent = tempDir();
  const stamp = await snapshotOf(store, false);
  const missing = join(parent.path, "missing");
  const result = await drillSnapshot(configOf(store), stamp, {
    driver,
    reporter: SILENT,
    now: new Date(),
    scratchParent: missing,
  });
  assert.equal(result.ok, false);
  const restore = result.checks.find((check) => check.name === "restore")!;
  assert.equal(restore.status, "failed");
  assert.equal(restore.detail, `cannot make a scratch folder in ${missing} (not found); check --scratch-dir`);
  assert.equal(result.scratch_dir, null);
});

Deno.test("drill CLI: a TMPDIR with a line break in it is named whole in the restore check, with the next step", async () => {
  using store = tempStore(SMALL);
  using parent = tempDir();
  await snapshotOf(store, false);
  const tmpdir = join(parent.path, "first\nsecond");
  const run = await runCli(["drill", "--latest", "--json"], { env: { ...storeEnv(store), TMPDIR: tmpdir } });
  assert.equal(run.code, 1, run.stderr);
  const restore = (run.json as { checks: { name: string; detail: string }[] }).checks.find((c) =>
    c.name === "restore"
  )!;
  assert.equal(
    restore.detail,
    `cannot make a scratch folder in the temporary folder ${tmpdir} (not found); set TMPDIR to a folder with room ` +
      "for the store, or give --scratch-dir DIR",
  );
});

Deno.test("drill CLI: a --scratch-dir that does not exist or is a file is refused (exit 2) before the snapshot is read", async () => {
  using store = tempStore(SMALL);
  using parent = tempDir();
  const env = storeEnv(store);
  await snapshotOf(store, false);
  const file = join(parent.path, "a-file");
  Deno.writeTextFileSync(file, "x");
  for (const [scratch, what] of [[join(parent.path, "typo"), "does not exist"], [file, "is not a folder"]]) {
    const run = await runCli(["drill", "--latest", "--scratch-dir", scratch], { env });
    assert.equal(run.code, 2, run.stderr);
    assert.equal(
      run.stderr.trim(),
      `atocore-backup: error: --scratch-dir ${scratch} ${what}; nothing was done; give an existing folder with room ` +
        "for the scratch copy",
    );
  }
});

Deno.test("drill CLI: a --scratch-dir or TMPDIR in the Chroma folder or the backup folder is refused (exit 2), nothing made there", async () => {
  using store = tempStore(SMALL);
  const env = storeEnv(store);
  const made = await runCli(["create", "--chroma"], { env });
  assert.equal(made.code, 0, made.stderr);
  const places = [
    [store.chromaDir, "the Chroma folder"],
    [join(store.backupDir, "snapshots"), "snapshots"],
    [store.backupDir, "the backup folder"],
  ];
  for (const [folder, label] of places) {
    const before = [...Deno.readDirSync(folder)].map((entry) => entry.name).sort();
    const run = await runCli(["drill", "--latest", "--keep", "--scratch-dir", folder], { env });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, new RegExp(`error: --scratch-dir ${folder} lies in .*${label}.*nothing was done`));
    assert.deepEqual([...Deno.readDirSync(folder)].map((entry) => entry.name).sort(), before);
    // the same folder as TMPDIR, the default: named as TMPDIR, not as a --to the operator never gave
    const temp = await runCli(["drill", "--latest"], { env: { ...env, TMPDIR: folder } });
    assert.equal(temp.code, 2, temp.stderr);
    const named = `error: the temporary folder ${folder} \\(TMPDIR\\), where the scratch copy goes, lies in .*${label}`;
    assert.match(temp.stderr, new RegExp(`${named}.*set TMPDIR to a folder outside .*or give --scratch-dir DIR$`, "m"));
    assert.deepEqual([...Deno.readDirSync(folder)].map((entry) => entry.name).sort(), before);
  }
});

Deno.test("drill names other drills' scratch copies in its scratch folder (kept, killed or running), removing none", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using scratch = tempDir();
  const stamp = await snapshotOf(store);
  const left = join(scratch.path, `atocore-drill-${stamp}-killed`);
  Deno.mkdirSync(left);
  const run = await runCli(["drill", stamp, "--scratch-dir", scratch.path], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`"event":"drill_scratch_left".*"folders":\\["atocore-drill-${stamp}-killed"\\]`));
  assert.deepEqual([...Deno.readDirSync(scratch.path)].map((entry) => entry.name), [`atocore-drill-${stamp}-killed`]);
});
