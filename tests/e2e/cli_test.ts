/**
 * The command line as a contract: help with examples for the tool and every
 * command, the version, the documented exit codes, and usage errors that are one
 * line (no stack trace unless --debug). The CLI runs as a subprocess under
 * exactly the compile task's permissions.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { COMMANDS } from "../../src/cli/commands.ts";
import { ExitCode } from "../../src/errors.ts";
import { acquireLock } from "../../src/ops/lock.ts";
import { TOOL_VERSION } from "../../src/version.ts";
import { type CliRun, createdStamp, runCli, runCliOnTerminal, storeEnv, tempStore } from "../_helpers.ts";

/** The lines of stderr that are not JSON event lines. */
function errorLines(run: CliRun): string[] {
  return run.stderr.trim().split("\n").filter((line) => line !== "" && !line.startsWith("{"));
}

function assertUsageError(run: CliRun, pattern: RegExp, what: string): void {
  assert.equal(run.code, ExitCode.Usage, `${what}: exit ${run.code}: ${run.stderr}`);
  const lines = errorLines(run);
  assert.equal(lines.length, 1, `${what}: not one line: ${run.stderr}`);
  assert.match(lines[0], /^atocore-backup: error: /, what);
  assert.match(lines[0], pattern, what);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `${what}: stack trace without --debug`);
  assert.equal(run.stdout, "", what);
}

Deno.test("--help lists every command and the exit codes; --version prints the version", async () => {
  const [help, bare, version] = await Promise.all([runCli(["--help"]), runCli([]), runCli(["--version"])]);
  assert.equal(help.code, 0);
  assert.equal(bare.stdout, help.stdout, "no arguments prints the help");
  for (const command of COMMANDS) assert.match(help.stdout, new RegExp(`^  ${command.name} +\\S`, "m"));
  for (const [code, meaning] of [[0, "success"], [1, "failed"], [2, "usage"], [3, "refused"], [4, "lock"]]) {
    assert.match(help.stdout, new RegExp(`^  ${code}  .*${meaning}`, "m"), `exit code ${code} documented`);
  }
  assert.match(help.stdout, /^Examples:\n {2}atocore-backup /m);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), `atocore-backup ${TOOL_VERSION}`);
});

Deno.test("every command has --help with its usage, options and an example", async () => {
  const runs = await Promise.all(COMMANDS.map((command) => runCli([...command.name.split(" "), "--help"])));
  runs.forEach((run, index) => {
    const name = COMMANDS[index].name;
    assert.equal(run.code, 0, `${name} --help: ${run.stderr}`);
    assert.match(run.stdout, new RegExp(`^Usage: atocore-backup ${name}`), name);
    assert.match(run.stdout, new RegExp(`^Examples:\\n(  .*\\n)*  atocore-backup ${name}`, "m"), `${name} example`);
    assert.match(run.stdout, /--json/, `${name} documents the shared flags`);
    assert.doesNotMatch(run.stdout, /^Options:\n(?! {2}-)/m, `${name}: an Options heading with no option under it`);
    const misaligned = misalignedOptions(run.stdout);
    assert.deepEqual(misaligned, [], `${name}: options whose text does not start where the others' does`);
  });
});

/**
 * The lines of a help's own options (under `Options:`, up to the next heading) whose text does not start at the column
 * most of them use, though the flag would fit before it (a longer flag may push its text further).
 */
function misalignedOptions(help: string): string[] {
  const block = help.split("\nOptions:\n")[1]?.split(/\n(?=\S)/)[0] ?? "";
  const lines = block.split("\n").flatMap((line) => {
    const found = /^( {2}--[a-z-]+(?: [^ ]+)?)( +)\S/.exec(line);
    return found ? [{ line, flagEnd: found[1].length, column: found[1].length + found[2].length }] : [];
  });
  const counts = new Map<number, number>();
  for (const { column } of lines) counts.set(column, (counts.get(column) ?? 0) + 1);
  const usual = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
  return lines.filter(({ flagEnd, column }) => column !== usual && flagEnd + 2 <= usual).map(({ line }) => line);
}

Deno.test("unknown commands, unknown flags, missing arguments and conflicting flags: one line, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command "frobnicate"; see 'atocore-backup --help'/],
    ...COMMANDS.map((command): [string[], RegExp] => [
      [...command.name.split(" "), "--no-such-flag"],
      new RegExp(`${command.name}: .*no-such-flag.*; see '${command.name} --help'`),
    ]),
    [["create", "--metrics-file"], /create: --metrics-file needs a value; see .create --help.$/],
    [["validate"], /validate: snapshot stamp required \(or --all\)/],
    [["validate", "20260101T000000Z", "--all"], /give a STAMP or --all, not both/],
    [["restore"], /restore: snapshot stamp required/],
    [["restore", "20260101T000000Z", "--chroma", "--no-chroma"], /--chroma and --no-chroma cannot be used together/],
    [["drill"], /drill: snapshot stamp required \(or --latest, or --sample\)/],
    [["drill", "20260101T000000Z", "--latest"], /drill: give one of STAMP, --latest or --sample/],
    [["drill", "--latest", "--sample"], /drill: give one of STAMP, --latest or --sample/],
    [["drill", "--sample", "--db", "x.db"], /--sample makes its own store and cannot be used with --db/],
    [["drill", "--latest", "--junit", ""], /--junit needs a path, not an empty value/],
    [["drill", "../etc"], /not a snapshot stamp: "\.\.\/etc"/],
    [["drill", "20260101T000000Z", "20260102T000000Z"], /drill: too many arguments/],
    [["drill", "--latest", "--sqlite-driver", "sqlite4"], /--sqlite-driver must be one of auto, ffi, builtin/],
    [["list", "--sqlite-driver", "sqlite4"], /--sqlite-driver must be one of auto, ffi, builtin/],
    [["cleanup", "--sqlite-driver", "sqlite4"], /--sqlite-driver must be one of auto, ffi, builtin/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runCli(args)));
  runs.forEach((run, index) => assertUsageError(run, cases[index][1], cases[index][0].join(" ")));
});

Deno.test("--debug adds the stack trace to the one-line error", async () => {
  const run = await runCli(["drill", "../etc", "--debug"]);
  assert.equal(run.code, ExitCode.Usage);
  assert.match(run.stderr, /^atocore-backup: error: not a snapshot stamp/);
  assert.match(run.stderr, /^\s+at .*checkedStamp/m);
});

Deno.test("exit codes: 0 success, 1 failed, 3 refused, 4 locked; JSON on stdout when it is not a terminal", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const listed = await runCli(["list"], { env });
  assert.equal(listed.code, ExitCode.Ok);
  assert.deepEqual((listed.json as { backups: { stamp: string }[] }).backups.map((entry) => entry.stamp), [stamp]);

  const refused = await runCli(["restore", stamp], { env });
  assert.equal(refused.code, ExitCode.Refused, refused.stderr);
  assert.match(errorLines(refused)[0], /--confirm-service-stopped/);

  {
    using _held = acquireLock(store.backupDir, "cli test");
    const locked = await runCli(["create"], { env });
    assert.equal(locked.code, ExitCode.Locked, locked.stderr);
    assert.match(errorLines(locked)[0], /locked by cli test/);
  }

  const db = join(store.backupDir, "snapshots", stamp, "db", "atocore.db");
  using file = Deno.openSync(db, { write: true });
  file.seekSync(100, Deno.SeekMode.Start);
  file.writeSync(new Uint8Array(64).fill(0xee));
  const [invalid, drilled] = await Promise.all([
    runCli(["validate", stamp], { env }),
    runCli(["drill", stamp], { env }),
  ]);
  assert.equal(invalid.code, ExitCode.Failed);
  assert.equal((invalid.json as { valid: boolean }).valid, false);
  assert.equal(drilled.code, ExitCode.Failed);
  assert.equal((drilled.json as { ok: boolean }).ok, false);
  assert.deepEqual(errorLines(drilled), [], "a failed drill is a result, not an error");
});

Deno.test("--metrics-file on create and validate writes Prometheus text with HELP and TYPE for each sample", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const createMetrics = join(store.dataDir, "create.prom");
  const validateMetrics = join(store.dataDir, "validate.prom");
  const stamp = await createdStamp(env, ["--chroma", "--metrics-file", createMetrics]);
  const validated = await runCli(["validate", "--all", "--metrics-file", validateMetrics], { env });
  assert.equal(validated.code, 0, validated.stderr);
  const text = Deno.readTextFileSync(createMetrics);
  const lines = text.trim().split("\n");
  const samples = lines.filter((line) => !line.startsWith("#"));
  for (const sample of samples) {
    const name = sample.split("{")[0];
    assert.ok(lines.includes(`# TYPE ${name} gauge`), `TYPE for ${name}`);
    assert.ok(lines.some((line) => line.startsWith(`# HELP ${name} `)), `HELP for ${name}`);
  }
  assert.match(text, /^atocore_backup_last_run_success\{operation="create"\} 1$/m);
  const bytes = Number(/^atocore_backup_snapshot_bytes\{operation="create"\} (\d+)$/m.exec(text)?.[1]);
  const listed = await runCli(["list"], { env });
  assert.equal(bytes, (listed.json as { backups: { size_bytes: number }[] }).backups[0].size_bytes);
  const stampSeconds = Date.UTC(
    Number(stamp.slice(0, 4)),
    Number(stamp.slice(4, 6)) - 1,
    Number(stamp.slice(6, 8)),
    Number(stamp.slice(9, 11)),
    Number(stamp.slice(11, 13)),
    Number(stamp.slice(13, 15)),
  ) / 1000;
  assert.match(
    text,
    new RegExp(`^atocore_backup_snapshot_timestamp_seconds\\{operation="create"\\} ${stampSeconds}$`, "m"),
  );
  const validateText = Deno.readTextFileSync(validateMetrics);
  assert.match(validateText, /^atocore_backup_snapshot_valid\{operation="validate"\} 1$/m);
  assert.deepEqual(
    [...Deno.readDirSync(store.dataDir)].map((entry) => entry.name).filter((name) => name.includes(".tmp")),
    [],
    "no temporary file left beside the metrics files",
  );
});

Deno.test("config on a terminal shows a path with a line break or an escape as escapes, one row per setting", async () => {
  const dataDir = "/nonexistent/first\nsecond\x1b[31m";
  const { code, text } = await runCliOnTerminal(["config"], { ATOCORE_DATA_DIR: dataDir });
  assert.equal(code, 0, text);
  assert.ok(!text.includes("\x1b"), `an escape reached the terminal: ${JSON.stringify(text)}`);
  const rows = text.split(/\r?\n/).filter((line) => /^(db|backupDir|registry|chromaDir) /.test(line));
  assert.equal(rows.length, 4, text);
  for (const row of rows) assert.ok(row.includes("/nonexistent/first\\nsecond\\x1b[31m/"), row);
});
