/**
 * Helpers shared by the tests: temporary folders, sample stores, and the CLI run
 * as a subprocess under exactly the compile task's permission flags.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { COMPILE_PERMISSIONS } from "../scripts/compile.ts";
import { bindMetadata, DIGEST_KEY } from "../src/snapshot/binding.ts";
import { hasReference, referenceDir, referenceMissing } from "../scripts/reference.ts";
import { makeSampleStore, type SampleOptions, type SampleStore } from "../scripts/sample_store.ts";

/** The project's root folder. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A backup folder of snapshots the reference module made (`scripts/make_module_fixtures.py`), committed. */
export const MODULE_BACKUPS = join(ROOT, "tests", "fixtures", "module-snapshots", "backups");

/** The permission flags of `deno task compile`; every end-to-end run uses exactly these. */
export { COMPILE_PERMISSIONS };

/** What a finished CLI run printed, and how it ended. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or `undefined` when it is not JSON. */
  json: unknown;
}

/** Options of {@linkcode runCli}. */
export interface CliOptions {
  /** Extra environment variables (the test's own environment is not passed, but PATH and HOME are). */
  env?: Record<string, string>;
  /** Working folder. */
  cwd?: string;
}

/** A temporary folder removed at the end of the `using` scope. */
export function tempDir(prefix = "atocore-test-"): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** A sample store in a temporary folder, removed at the end of the `using` scope. */
export function tempStore(options: SampleOptions = {}): SampleStore & Disposable {
  const dir = tempDir("atocore-store-");
  return { ...makeSampleStore(dir.path, options), [Symbol.dispose]: () => dir[Symbol.dispose]() };
}

/** The environment that points the CLI at a sample store. */
export function storeEnv(store: SampleStore): Record<string, string> {
  return { ATOCORE_DATA_DIR: store.dataDir };
}

/** The command line that runs the CLI (`deno run` with the compile task's permissions) with `args`. */
export function cliCommand(args: string[]): string[] {
  return [Deno.execPath(), "run", ...COMPILE_PERMISSIONS, join(ROOT, "main.ts"), ...args];
}

/** A finished run of the CLI (or of the reference module) as a {@linkcode CliRun}: its output decoded, stdout parsed. */
export function cliRunOf(output: Deno.CommandOutput): CliRun {
  const stdout = new TextDecoder().decode(output.stdout);
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code: output.code, stdout, stderr: new TextDecoder().decode(output.stderr), json };
}

/** The environment every CLI subprocess gets: PATH and HOME from this process, plus `env` (nothing else). */
export function cliEnv(env: Record<string, string> = {}): Record<string, string> {
  return { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/root", ...env };
}

/** Options of {@linkcode cliProcess}. */
export interface CliProcessOptions extends CliOptions {
  /** `"piped"` (the default) to read the CLI's stdout, `"null"` to discard it. */
  stdout?: "piped" | "null";
}

/**
 * The CLI as a subprocess not yet started: {@linkcode cliCommand} in the clean environment of
 * {@linkcode cliEnv}, in the root folder unless `cwd` is given, no stdin, stderr piped.
 * `.output()` waits for it; `.spawn()` starts it to watch or kill.
 */
export function cliProcess(args: string[], options: CliProcessOptions = {}): Deno.Command {
  const [program, ...rest] = cliCommand(args);
  return new Deno.Command(program, {
    args: rest,
    cwd: options.cwd ?? ROOT,
    env: cliEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: options.stdout ?? "piped",
    stderr: "piped",
  });
}

/**
 * Run the CLI with `args` through `bash -c SCRIPT`, where the script runs it as `"$@"` (`umask 000 && exec "$@"`,
 * `exec "$@" 2>/dev/full`), in the clean environment of {@linkcode cliEnv}.
 */
export async function runCliInShell(script: string, args: string[], env: Record<string, string>): Promise<CliRun> {
  const command = new Deno.Command("bash", {
    args: ["-c", script, "bash", ...cliCommand(args)],
    env: cliEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  return cliRunOf(await command.output());
}

/**
 * The command a message prints for the operator after `words` and a colon, as a shell reads it: up to the first `;`
 * outside quotes, or the line's end. `null` when the message has no such words.
 */
export function printedCommand(message: string, words: string): string | null {
  const at = message.indexOf(`${words}: `);
  if (at < 0) return null;
  return /^(?:'[^']*'|\\.|[^';\\\n])*/.exec(message.slice(at + words.length + 2))![0].trimEnd();
}

/** Run `printed` (a command line the CLI printed) in bash as it is, `atocore-backup` standing for the CLI. */
export function runPrinted(printed: string, env: Record<string, string>): Promise<CliRun> {
  return runCliInShell(`cli=("$@"); atocore-backup() { "\${cli[@]}" "$@"; }; ${printed}`, [], env);
}

/**
 * Run the CLI with `args` on a terminal (`script`), in the clean environment of {@linkcode cliEnv}: its exit code and
 * what the terminal showed (stdout and stderr together).
 */
export async function runCliOnTerminal(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; text: string }> {
  const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
  const command = ["env", "-i", ...Object.entries(cliEnv(env)).map(([key, value]) => `${key}=${value}`)]
    .concat(cliCommand(args)).map(quote).join(" ");
  const output = await new Deno.Command("script", { args: ["-qec", command, "/dev/null"], stdout: "piped" }).output();
  return { code: output.code, text: new TextDecoder().decode(output.stdout) };
}

/** Run the CLI as a subprocess with `args` and wait for it. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  return cliRunOf(await cliProcess(args, options).output());
}

/**
 * Make a snapshot through the CLI (`create ARGS`, with Chroma unless `args` says otherwise) and return its
 * stamp; a create that does not exit 0 fails the test with its stderr.
 */
export async function createdStamp(env: Record<string, string>, args: string[] = ["--chroma"]): Promise<string> {
  const run = await runCli(["create", ...args], { env });
  assert.equal(run.code, 0, run.stderr);
  return (run.json as { stamp: string }).stamp;
}

/** Print why a test or a part of one is skipped, so the skip shows in CI's log. */
export function skipBecause(reason: string): void {
  console.log(`SKIPPED: ${reason}`);
}

/** As {@linkcode skipBecause} outside CI; with `CI=true`, where every case must run, a failure naming `reason`. */
export function skipOutsideCi(reason: string): void {
  if (Deno.env.get("CI") === "true") throw new Error(`${reason}; CI=true: this case must run in CI`);
  skipBecause(reason);
}

/**
 * Whether the program `name` (a Debian package's tool such as `age` or `zstd`) is on PATH for `what`. Without it,
 * print the skip line; with `CI=true` throw instead: `.ci/run` installs it, so CI always runs what needs it.
 */
export function toolFor(name: string, what: string): boolean {
  const found = (Deno.env.get("PATH") ?? "").split(":").some((folder) => {
    try {
      return Deno.statSync(join(folder, name)).isFile;
    } catch {
      return false;
    }
  });
  if (found) return true;
  const reason = `${name} not found (apt-get install ${name === "age-keygen" ? "age" : name}): ${what}`;
  if (Deno.env.get("CI") === "true") throw new Error(`${reason}; CI=true requires it`);
  skipBecause(reason);
  return false;
}

/**
 * Whether the reference module is there for `what` (a test or a part of one). Without it, print the skip line;
 * with `CI=true` throw instead: CI always runs interop.
 */
export function referenceFor(what: string): boolean {
  if (hasReference()) return true;
  const reason = referenceMissing(what);
  if (Deno.env.get("CI") === "true") throw new Error(`${reason}; CI=true requires it`);
  skipBecause(reason);
  return false;
}

/** Run the reference Python module (`python3 -m atocore.ops.backup ARGS`) against a store. */
export async function runReference(args: string[], store: SampleStore): Promise<CliRun> {
  const output = await new Deno.Command("python3", {
    args: ["-m", "atocore.ops.backup", ...args],
    env: {
      PYTHONPATH: referenceDir(),
      ATOCORE_DB_PATH: store.db,
      ATOCORE_BACKUP_DIR: store.backupDir,
      ATOCORE_PROJECT_REGISTRY_PATH: store.registry,
      ATOCORE_CHROMA_PATH: store.chromaDir,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return cliRunOf(output);
}

/**
 * A snapshot made by the reference module in `store`'s backup folder, and its stamp: `create --chroma` by the module
 * when it is there, else a copy of a committed snapshot it made (`what` names the test in the skip line).
 */
export async function moduleSnapshot(store: SampleStore, what: string): Promise<string> {
  if (referenceFor(`${what}: a committed snapshot of the module is used instead of a new one`)) {
    const made = await runReference(["create", "--chroma"], store);
    assert.equal(made.code, 0, made.stderr);
    return (made.json as { backup_root: string }).backup_root.split("/").at(-1)!;
  }
  const stamp = "20260410T010203Z";
  const snapshots = join(store.backupDir, "snapshots");
  Deno.mkdirSync(snapshots, { recursive: true });
  const copy = new Deno.Command("cp", { args: ["-a", join(MODULE_BACKUPS, "snapshots", stamp), snapshots] });
  assert.ok(copy.outputSync().success, `copy of the module's fixture ${stamp}`);
  return stamp;
}

/** A module snapshot without Chroma, committed under tests/fixtures, that validates. */
const MODULE_SNAPSHOT = join(MODULE_BACKUPS, "snapshots", "20260409T010203Z");

/**
 * Put a real, valid snapshot (a copy of a committed module snapshot without Chroma) at `<backup>/snapshots/<stamp>`,
 * with `metadata` merged into its metadata; returns its folder.
 */
export function placeValidSnapshot(backupDir: string, stamp: string, metadata: Record<string, unknown> = {}): string {
  const target = join(backupDir, "snapshots", stamp);
  Deno.mkdirSync(join(backupDir, "snapshots"), { recursive: true });
  const copy = new Deno.Command("cp", { args: ["-a", MODULE_SNAPSHOT, target] }).outputSync();
  assert.ok(copy.success, `copy of ${MODULE_SNAPSHOT}`);
  relocateSnapshot(target, metadata);
  return target;
}

/**
 * Rewrite the metadata of a snapshot copied to `root` as it would have been written there: `backup_root` and the
 * parts' recorded paths moved from the old folder to `root`, then `extra` merged in; metadata that was bound
 * (`metadata_sha256`) is bound again, so the copy validates as a snapshot made in place, not as an edited one.
 */
export function relocateSnapshot(root: string, extra: Record<string, unknown> = {}): void {
  const path = join(root, "backup-metadata.json");
  const metadata = JSON.parse(Deno.readTextFileSync(path));
  const oldRoot = String(metadata.backup_root).replace(/\/+$/, "");
  for (const key of ["backup_root", "db_snapshot_path", "registry_snapshot_path", "chroma_snapshot_path"]) {
    const value = metadata[key];
    if (typeof value === "string" && (value === oldRoot || value.startsWith(`${oldRoot}/`))) {
      metadata[key] = root + value.slice(oldRoot.length);
    }
  }
  const merged = { ...metadata, ...extra };
  const written = DIGEST_KEY in merged ? bindMetadata(merged) : merged;
  Deno.removeSync(path); // a copy made of hard links (cp -al) gets a file of its own, the original's left alone
  Deno.writeTextFileSync(path, JSON.stringify(written, null, 2) + "\n");
}

/** Rows of an SQL query run by the `sqlite3` shell (a tool independent of the one under test), as JSON. */
export async function sqlite3Json(path: string, sql: string): Promise<Record<string, unknown>[]> {
  const output = await new Deno.Command("sqlite3", { args: ["-json", "-readonly", path, sql], stdout: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout).trim();
  return text ? JSON.parse(text) : [];
}

/** The name of project 1 in a sample store's database: `"atlas"` as made, `"changed"` after {@linkcode changeMarkerInWal}. */
export async function projectMarker(db: string): Promise<unknown> {
  return (await sqlite3Json(db, "SELECT name FROM projects WHERE id = 1"))[0]?.name;
}

/**
 * Rename project 1 of a sample store's database to `"changed"` with Python's sqlite3 (a writer other than the
 * tool) and leave the change in the `-wal`, as a service that stopped without checkpointing leaves it.
 */
export function changeMarkerInWal(db: string): void {
  commitInWal(db, "UPDATE projects SET name = 'changed' WHERE id = 1");
}

/**
 * Grow a database by a new table holding a 200 kB row, left in the `-wal` as by
 * {@linkcode changeMarkerInWal}: the database's newest first page is then only in the WAL.
 */
export function growInWal(db: string): void {
  commitInWal(db, "CREATE TABLE grown (x BLOB); INSERT INTO grown VALUES (zeroblob(200000))");
}

/** Commit `sql` with Python's sqlite3 and exit without closing, so that the commit stays in the `-wal`. */
function commitInWal(db: string, sql: string): void {
  const python = new Deno.Command("python3", {
    args: [
      "-c",
      "import os, sqlite3, sys\n" +
      "db = sqlite3.connect(sys.argv[1]); db.execute('PRAGMA wal_autocheckpoint=0')\n" +
      "db.executescript(sys.argv[2]); db.commit(); os._exit(0)",
      db,
      sql,
    ],
  }).outputSync();
  assert.equal(python.code, 0, new TextDecoder().decode(python.stderr));
}
