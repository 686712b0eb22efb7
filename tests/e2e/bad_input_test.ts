/**
 * Bad input: stamps that are not plain, unknown, missing, empty and conflicting
 * flags, paths that do not exist, and a live registry that is not JSON. Each is one
 * line on stderr with the documented exit code, and touches nothing.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type CliRun,
  createdStamp,
  placeValidSnapshot,
  printedCommand,
  runCli,
  runPrinted,
  storeEnv,
  tempStore,
} from "../_helpers.ts";
import { entryNames, liveDigest } from "../_faults.ts";
import { checkedStamp } from "../../src/snapshot/layout.ts";
import { UsageError } from "../../src/errors.ts";
import { SMALL_FILE_MAX_BYTES } from "../../src/fs/regular_file.ts";

/**
 * Assert a run failed with `code` and exactly one line of error on stderr matching
 * `pattern` (JSON log lines of events aside).
 */
function assertOneLineError(run: CliRun, code: number, pattern: RegExp, what: string): void {
  assert.equal(run.code, code, `${what}: exit ${run.code}, stderr: ${run.stderr}`);
  const lines = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(lines.length, 1, `${what}: more than one line on stderr: ${run.stderr}`);
  assert.match(lines[0], /^atocore-backup: error: /, what);
  assert.match(lines[0], pattern, what);
  assert.equal(run.stdout, "", `${what}: printed a result`);
}

const BAD_STAMPS = [
  "../x",
  "..",
  ".",
  "a/b",
  "/etc",
  "20260101T000000Z/..",
  "20260101T000000Z/../../x",
  "..\\20260101T000000Z",
  "20261340T000000Z",
  " 20260101T000000Z",
  "-20260101T000000Z",
  "2".repeat(300),
];

Deno.test("validate refuses every stamp that is not plain, reads nothing and creates nothing", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  for (const stamp of BAD_STAMPS) {
    const run = await runCli(["validate", "--", stamp], { env: storeEnv(store) });
    assertOneLineError(run, 2, /not a snapshot stamp/, `validate ${JSON.stringify(stamp.slice(0, 40))}`);
    assert.ok(run.stderr.length < 200, `the error repeats a long stamp in full: ${run.stderr.length} characters`);
  }
  assert.deepEqual(entryNames(store.backupDir), [], "validate created something in the backup folder");
});

Deno.test("restore refuses every stamp that is not plain before touching anything", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const before = liveDigest(store);
  for (const stamp of BAD_STAMPS) {
    const run = await runCli(["restore", "--confirm-service-stopped", "--", stamp], { env: storeEnv(store) });
    assertOneLineError(run, 2, /not a snapshot stamp/, `restore ${JSON.stringify(stamp.slice(0, 40))}`);
  }
  assert.deepEqual(liveDigest(store), before, "live store changed");
  assert.deepEqual(entryNames(store.backupDir), [], "restore created something in the backup folder");
});

Deno.test("a stamp that has no snapshot is a usage error (exit 2) at once, for restore, validate and drill", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  Deno.mkdirSync(join(store.backupDir, "snapshots"), { recursive: true });
  const before = liveDigest(store);
  const expected = new RegExp(
    `^atocore-backup: error: no snapshot 20200101T000000Z in ${join(store.backupDir, "snapshots")}; see 'list'$`,
  );
  // Without the acknowledgment, and while the live database is held open: both would be refused (exit 3)
  // if restore went that far; the missing snapshot is said first.
  using _holder = Deno.openSync(store.db, { read: true });
  for (
    const args of [
      ["restore", "20200101T000000Z", "--confirm-service-stopped"],
      ["restore", "20200101T000000Z"],
      ["restore", "20200101T000000Z", "--to", join(store.dataDir, "elsewhere")],
      ["validate", "20200101T000000Z"],
      ["validate", "20200101T000000Z", "--quick"],
      ["drill", "20200101T000000Z"],
    ]
  ) {
    const run = await runCli(args, { env });
    assertOneLineError(run, 2, expected, args.join(" "));
  }
  assert.deepEqual(liveDigest(store), before, "live store changed");
  assert.deepEqual(entryNames(store.backupDir), ["snapshots"], "no lock, no staging, no pre-restore snapshot");
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), []);
  assert.deepEqual(entryNames(store.dataDir).includes("elsewhere"), false, "restore --to wrote nothing");
});

Deno.test("the 'list' a missing or malformed snapshot's error prints runs as printed, on the --backup-dir given", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits, and not the folder the environment names
  Deno.renameSync(store.backupDir, backupDir);
  const missing = /no snapshot 20200101T000000Z in .*back ups\/snapshots; see the snapshots with: /;
  const malformed = /not a snapshot stamp: "\.\.\/x"; give one like 20260409T010203Z; see the snapshots with: /;
  for (
    const [args, error] of [
      [["restore", "20200101T000000Z", "--confirm-service-stopped"], missing],
      [["validate", "20200101T000000Z"], missing],
      [["drill", "20200101T000000Z"], missing],
      [["restore", "../x", "--confirm-service-stopped"], malformed],
      [["validate", "../x"], malformed],
      [["drill", "../x"], malformed],
      [["push", "../x", "--remote", join(store.dataDir, "repo"), "--allow-unauthenticated"], malformed],
    ] as const
  ) {
    const run = await runCli([...args, "--backup-dir", backupDir], { env });
    assertOneLineError(run, 2, error, args.join(" "));
    const printed = printedCommand(run.stderr, "see the snapshots with");
    assert.ok(printed !== null, run.stderr);
    const listed = await runPrinted(printed, env); // pasted into a shell as it is
    assert.equal(listed.code, 0, `${printed}: ${listed.stderr}`);
    assert.match(listed.stdout, new RegExp(stamp), `${printed} lists the folder given`);
  }
});

Deno.test("a NUL byte cannot be passed in an argument, and the stamp check refuses one given in-process", () => {
  assert.throws(
    () => new Deno.Command("true", { args: ["20260101T000000Z\0"] }).outputSync(),
    TypeError,
    "the platform passed a NUL byte through argv",
  );
  assert.throws(() => checkedStamp("20260101T000000Z\0"), UsageError);
  assert.throws(() => checkedStamp("2026\u00000101T000000Z"), UsageError);
});

Deno.test("unknown, missing and conflicting flags and arguments are usage errors (exit 2)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const before = liveDigest(store);
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command "frobnicate"/],
    [["create", "--bogus"], /create: unknown option --bogus; see 'create --help'$/],
    [
      ["cleanup", "--keep-daily", "-1"],
      /--keep-daily needs a value, and what follows it starts with '-' \(give one that does: a count/,
    ],
    [["create", "--db"], /create: --db needs a value; see 'create --help'$/],
    [["create", "extra"], /too many arguments/],
    [["create", "--sqlite-driver", "nope"], /--sqlite-driver/],
    [["validate"], /stamp required/],
    [["validate", "--all", "20260101T000000Z"], /not both/],
    [["validate", "--quick=yes", "--all"], /validate: --quick is a switch and takes no value \(give --quick alone\)/],
    [["validate", "20260101T000000Z", "20260101T000001Z"], /too many arguments/],
    [["list", "--chroma"], /--chroma/],
    [["create", "--db="], /--db needs a path/],
    [["create", "--backup-dir", ""], /--backup-dir needs a path/],
    [["restore", "--confirm-service-stopped"], /stamp required/],
    [["restore", "20260101T000000Z", "--chroma", "--no-chroma"], /cannot be used together/],
    [["restore", "20260101T000000Z", "--to="], /--to needs a path, not an empty value/],
    [["restore", "20260101T000000Z", "--to", " out"], /--to begins or ends with whitespace/],
    [["restore", "x", "--from-remote", "--scratch-dir", "/tmp "], /--scratch-dir begins or ends with whitespace/],
    [["validate", "--all", "--metrics-file", " "], /--metrics-file needs a path, not an empty value/],
    [["create", "--metrics-file", "m.prom "], /--metrics-file begins or ends with whitespace/],
    [["drill", "--latest", "--junit", " x.xml"], /--junit begins or ends with whitespace/],
    [["restore", "20260101T000000Z", "--confirm-service-stopped", "--db="], /--db needs a path/],
    [["restore", "20260101T000000Z", "20260101T000001Z"], /too many arguments/],
    [["cleanup", "--keep-daily", "abc"], /--keep-daily/],
    [["cleanup", "--keep-daily", "1.5"], /--keep-daily/],
    [["cleanup", "--keep-daily"], /--keep-daily/],
    [["cleanup", "--keep-daily", "-1"], /--keep-daily/],
    [["cleanup", "--keep-daily", "99999999999999999999"], /--keep-daily 99999999999999999999 is too large \(at most /],
    [["cleanup", "extra"], /too many arguments/],
    [["cleanup", "--confirm", "--chroma-dir="], /--chroma-dir needs a path/],
    [
      ["cleanup", "--confirm", "--keep-daily", "7", "--keep-daily=0"],
      /^atocore-backup: error: cleanup: --keep-daily is given more than once; give it once \(see 'cleanup --help'\)$/,
    ],
    [["restore", "20260101T000000Z", "--to", "/tmp/a", "--to", "/tmp/b"], /--to is given more than once/],
    [
      ["validate", "--all", "--metrics-file", "/no\nsuch/x.prom"],
      /--metrics-file \/no\\nsuch\/x\.prom cannot be written/,
    ],
  ];
  for (const [args, pattern] of cases) {
    assertOneLineError(await runCli(args, { env }), 2, pattern, args.join(" "));
  }
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "a usage error made a snapshot");
  assert.deepEqual(liveDigest(store), before, "a usage error changed the live store");
});

Deno.test("create names a database path that does not exist or is not a database, and publishes nothing", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const missing = join(store.dataDir, "nowhere", "atocore.db");
  assertOneLineError(await runCli(["create", "--db", missing], { env }), 2, /database not found: .*nowhere/, "missing");
  // a data folder that is a file: the database it defaults to is named, and the variable that made it
  const dataFile = join(store.dataDir, "a-file");
  Deno.writeTextFileSync(dataFile, "not a folder");
  const bare = { ATOCORE_DATA_DIR: dataFile, ATOCORE_BACKUP_DIR: store.backupDir };
  assertOneLineError(
    await runCli(["create"], { env: bare }),
    2,
    /database not found: \S+a-file\/atocore\.db; check ATOCORE_DATA_DIR \(the database defaults to atocore\.db in it\)/,
    "data folder",
  );
  const folder = join(store.dataDir, "a-folder"); // not the Chroma folder: that would be refused as an overlap
  Deno.mkdirSync(folder);
  assertOneLineError(
    await runCli(["create", "--db", folder], { env }),
    2,
    /database is a folder, not a file/,
    "folder",
  );
  const fifo = join(store.dataDir, "pipe.db");
  new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
  assertOneLineError(
    await runCli(["create", "--db", fifo], { env }),
    2,
    /database is a FIFO, not a file: .*pipe/,
    "FIFO",
  );
  const json = join(store.dataDir, "notes.json"); // not the registry itself: that would be refused as an overlap
  Deno.copyFileSync(store.registry, json);
  const notDatabase = await runCli(["create", "--db", json], { env });
  assertOneLineError(
    notDatabase,
    1,
    /database .*notes\.json .*not a database/,
    "a JSON file given as the database",
  );
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "a snapshot was published");
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "staging left behind");
});

Deno.test("create names a registry or Chroma path through a file or of the wrong kind, exit 2, and its flag", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const file = join(store.dataDir, "f");
  Deno.writeTextFileSync(file, "");
  const folder = join(store.dataDir, "a-folder");
  Deno.mkdirSync(folder);
  const cases: [string[], RegExp][] = [
    [["--registry", join(file, "reg.json")], /registry .*\/f\/reg\.json lies under a file.*; check --registry/],
    [["--registry", folder], /registry .*\/a-folder is a folder, not a file; check --registry/],
    [["--chroma", "--chroma-dir", join(file, "c")], /Chroma folder .*\/f\/c lies under a file.*; check --chroma-dir/],
  ];
  for (const [args, pattern] of cases) {
    assertOneLineError(await runCli(["create", ...args], { env }), 2, pattern, args.join(" "));
  }
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "a snapshot was published");
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "staging left behind");
});

Deno.test("create with a registry or Chroma folder that does not exist backs up the rest and says so", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const run = await runCli(
    ["create", "--chroma", "--registry", join(store.dataDir, "none.json"), "--chroma-dir", join(store.dataDir, "none")],
    { env },
  );
  assert.equal(run.code, 0, run.stderr);
  const result = run.json as { registry_snapshot_path: string; chroma_snapshot_path: string };
  assert.equal(result.registry_snapshot_path, "");
  assert.equal(result.chroma_snapshot_path, "");
  assert.match(run.stderr, /"level":"warning","event":"chroma_snapshot_skipped_missing"/);
});

Deno.test("a live registry that is not JSON: refused before any copy, exit 1, nothing under snapshots/ or failed/", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  Deno.writeTextFileSync(store.registry, "{ not json");
  const before = liveDigest(store);
  const run = await runCli(["create", "--chroma"], { env });
  assertOneLineError(
    run,
    1,
    new RegExp(`registry is not JSON \\(.+\\): ${store.registry}; fix the file or restore it from a snapshot`),
    "create",
  );
  assert.doesNotMatch(run.stderr, /post_backup_validation_failed/, "a snapshot was made and validated");
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "something was published");
  assert.deepEqual(entryNames(join(store.backupDir, "failed")), [], "a snapshot was kept aside");
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "staging left behind");
  assert.deepEqual(liveDigest(store), before, "live store changed");
  Deno.writeTextFileSync(store.registry, "{}\n");
  const next = await runCli(["create"], { env });
  assert.equal(next.code, 0, `create after the registry was fixed: ${next.stderr}`);
});

/**
 * Write `bytes` as the live registry and as a snapshot's copy of it: create refuses the live one and validate the copy,
 * each saying `why` (the words after "it ").
 */
async function registryNotJson(bytes: Uint8Array, why: string): Promise<void> {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.05 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env); // a snapshot whose registry gets them by hand
  const copied = join(store.backupDir, "snapshots", stamp, "config", "project-registry.json");
  for (const path of [store.registry, copied]) Deno.writeFileSync(path, bytes);
  const run = await runCli(["create"], { env });
  const words = `it ${why}, which JSON does not allow`;
  assertOneLineError(
    run,
    1,
    new RegExp(`registry is not JSON \\(${RegExp.escape(words)}\\): .*; fix the file`),
    "create",
  );
  const validated = await runCli(["validate", stamp], { env });
  assert.equal(validated.code, 1, validated.stdout);
  const errors = (validated.json as { errors: string[] }).errors;
  assert.ok(errors.includes(`registry_invalid_json: ${words}`), validated.stdout);
}

const encoded = (text: string) => new TextEncoder().encode(text);

Deno.test("a live registry that begins with a byte order mark is not JSON to create or validate (nor to Python's json)", async () => {
  await registryNotJson(
    new Uint8Array([0xef, 0xbb, 0xbf, ...encoded('{"projects":[]}')]),
    "begins with a byte order mark (BOM)",
  );
});

Deno.test("a registry holding bytes that are not UTF-8 is not JSON to create or validate (Python reads it strictly)", async () => {
  const latin1 = new Uint8Array([...encoded('{"projects":["caf'), 0xe9, ...encoded('"]}')]);
  await registryNotJson(latin1, "holds bytes that are not UTF-8");
});

/** Wait until another process holds the database at `path` locked (a write cannot begin), 30 s at most. */
async function lockedBy(path: string): Promise<void> {
  for (let tries = 0; tries < 600; tries++) {
    const probe = new Deno.Command("sqlite3", { args: [path, "BEGIN IMMEDIATE", "ROLLBACK"], stderr: "piped" });
    if (/locked/.test(new TextDecoder().decode((await probe.output()).stderr))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${path} was not locked by the holder within 30 s`);
}

Deno.test("a live database another process holds locked past the busy timeout: create says so and to run again, exit 1", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.05 });
  const env = storeEnv(store);
  const rollback = new Deno.Command("sqlite3", { args: [store.db, "PRAGMA journal_mode=DELETE"] }).outputSync();
  assert.ok(rollback.success, new TextDecoder().decode(rollback.stderr));
  for (const driver of ["ffi", "builtin"]) {
    // an exclusive lock held for longer than the busy timeout (10 s) and the run, however slow a loaded machine is
    const holder = new Deno.Command("sqlite3", {
      args: [store.db, ".timeout 10000", "BEGIN EXCLUSIVE", ".shell sleep 120", "COMMIT"], // waits out the probe
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await lockedBy(store.db);
      const run = await runCli(["create", "--sqlite-driver", driver], { env });
      const locked =
        `create failed copying the database ${store.db}: another process held it locked for more than 10 s`;
      assertOneLineError(run, 1, new RegExp(locked), `create (${driver})`);
      assert.match(run.stderr, /nothing was published; run create again \(a long write/);
      assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "something was published");
    } finally {
      try {
        holder.kill("SIGKILL");
      } catch {
        // it ended by itself (a holder starved on a loaded machine): what it left is judged below, or by the test
      }
      await holder.status;
    }
  }
});

Deno.test("a live registry over the size limit: create says so naming the limit and the file, publishes nothing", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  Deno.truncateSync(store.registry, SMALL_FILE_MAX_BYTES + 1); // sparse: the size is what is judged
  const run = await runCli(["create"], { env });
  assertOneLineError(
    run,
    1,
    new RegExp(
      `registry ${store.registry}: it is over the ${SMALL_FILE_MAX_BYTES >> 20} MiB size limit for a registry`,
    ),
    "create",
  );
  assert.doesNotMatch(run.stderr, /readable by this user/);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "something was published");
});

Deno.test("a backup folder path that runs through a file: create, cleanup (confirmed or not) and push say so in one line, exit 2", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const backupDir = join(store.registry, "backups");
  const unreachable =
    /the backup folder .*project-registry\.json\/backups cannot be reached \(a part of its path is a file\); point --backup-dir/;
  for (const args of [["create"], ["cleanup", "--confirm"], ["cleanup"]]) {
    const run = await runCli([...args, "--backup-dir", backupDir], { env: storeEnv(store) });
    assertOneLineError(run, 2, unreachable, args.join(" "));
  }
  const remote = join(store.dataDir, "repository"); // never reached: the backup folder is looked at first
  const push = await runCli([
    "push",
    "--latest",
    "--remote",
    remote,
    "--allow-unauthenticated",
    "--backup-dir",
    backupDir,
  ], {
    env: storeEnv(store),
  });
  assertOneLineError(push, 2, /no backup folder at .*project-registry\.json\/backups, so no snapshots to push/, "push");
});

Deno.test("a mistyped path makes no folder: create with no database; cleanup and drill --latest with no backup folder are refused (exit 2)", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const elsewhere = join(store.dataDir, "typo", "backups");
  const create = await runCli(["create", "--db", join(store.dataDir, "none.db"), "--backup-dir", elsewhere], { env });
  assertOneLineError(create, 2, /database not found: .*none\.db/, "create");
  const named = /no backup folder at [^ ]*typo\/backups; check --backup-dir or ATOCORE_BACKUP_DIR \(see 'config'\)/;
  for (const args of [["cleanup", "--confirm"], ["cleanup"], ["drill", "--latest"]]) {
    const run = await runCli([...args, "--backup-dir", elsewhere], { env });
    assertOneLineError(run, 2, named, args.join(" "));
  }
  assert.equal(existsSync(join(store.dataDir, "typo")), false, "no folder was made");
});

Deno.test("the create that list, cleanup, drill --latest and push print for a backup folder not there runs as printed, on the --backup-dir given", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store); // another backup folder: a create run without --backup-dir makes its snapshot there
  const backupDir = join(store.dataDir, "new back ups"); // words a shell splits
  const repository = ["--remote", join(store.dataDir, "repo"), "--allow-unauthenticated"];
  const printed = new Set<string>();
  for (const args of [["list"], ["cleanup"], ["drill", "--latest"], ["push", "--latest", ...repository]]) {
    const run = await runCli([...args, "--backup-dir", backupDir], { env });
    assertOneLineError(run, 2, /no backup folder at /, args.join(" "));
    const create = printedCommand(run.stderr, "make one first with");
    assert.ok(create !== null, `${args.join(" ")}: ${run.stderr}`);
    printed.add(create);
  }
  assert.equal(printed.size, 1, [...printed].join("\n"));
  const [create] = printed;
  const made = await runPrinted(create, env); // pasted into a shell as it is
  assert.equal(made.code, 0, `${create}: ${made.stderr}`);
  assert.deepEqual(entryNames(join(backupDir, "snapshots")), [(made.json as { stamp: string }).stamp], create);
});

Deno.test("the list that validate, restore and drill print when no stamp is given runs as printed, on the --backup-dir given", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store); // another backup folder: a list run without --backup-dir lists that one
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits
  const stamp = "20260409T010203Z";
  placeValidSnapshot(backupDir, stamp);
  const printed = new Set<string>();
  for (const command of ["validate", "restore", "drill"]) {
    const run = await runCli([command, "--backup-dir", backupDir], { env });
    assertOneLineError(run, 2, /snapshot stamp required/, command);
    const list = printedCommand(run.stderr, "see the snapshots with");
    assert.ok(list !== null, `${command}: ${run.stderr}`);
    printed.add(list);
  }
  assert.equal(printed.size, 1, [...printed].join("\n"));
  const [list] = printed;
  const listed = await runPrinted(list, env); // pasted into a shell as it is
  assert.equal(listed.code, 0, `${list}: ${listed.stderr}`);
  assert.deepEqual((listed.json as { backups: { stamp: string }[] }).backups.map((one) => one.stamp), [stamp], list);
});

Deno.test("a path through a symbolic link loop or with a name over 255 bytes is a usage error naming it and its flag", async () => {
  using store = tempStore({ dbMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const loop = join(store.dataDir, "loop");
  Deno.symlinkSync(join(store.dataDir, "loop2"), loop);
  Deno.symlinkSync(loop, join(store.dataDir, "loop2"));
  const long = join(store.dataDir, "n".repeat(256), "x");
  const runs: [string[], Record<string, string>, string, string][] = [
    [["list", "--backup-dir", join(loop, "b")], {}, join(loop, "b"), "--backup-dir"],
    [["list"], { ATOCORE_BACKUP_DIR: long }, long, "ATOCORE_BACKUP_DIR"],
    [["create", "--db", long], {}, long, "--db"],
    [["create", "--backup-dir", join(loop, "x")], {}, loop, "--backup-dir"],
    [["push", "--latest", "--remote", join(loop, "r"), "--allow-unauthenticated"], {}, loop, "--remote"],
    [["remote", "list", "--remote", `file://${loop}`], {}, loop, "--remote"],
    [["restore", stamp, "--to", join(loop, "to"), "--force"], {}, join(loop, "to"), "--to"],
    [["drill", stamp, "--scratch-dir", long], {}, long, "--scratch-dir"],
  ];
  for (const [args, more, path, source] of runs) {
    const run = await runCli(args, { env: { ...env, ...more } });
    const what = `${args.join(" ")} ${JSON.stringify(more)}`;
    const problem = path === long ? "a name in it is longer than 255 bytes" : "too many levels of symbolic links";
    assertOneLineError(run, 2, new RegExp(`: ${problem}.*; check the path given by ${source} and its links$`), what);
    assert.ok(run.stderr.includes(`error: ${path}`), `${what}: ${run.stderr}`);
  }
});
