/**
 * Helpers of the fault tests: a seeded random source, killing the CLI at a chosen
 * moment, a digest of the live store, SQLite checks through the `sqlite3` shell,
 * and the CLI run as `nobody` (temporary mounts are in `_mount.ts`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { lchownSync } from "node:fs";
import { join } from "node:path";
import { withJournalMode } from "../src/sqlite/journal_header.ts";
import type { SampleStore } from "../src/sample/store.ts";
import { cliCommand, cliEnv, cliProcess, type CliRun, cliRunOf, ROOT, storeEnv, tempDir } from "./_helpers.ts";
export { skipBecause } from "./_helpers.ts";

/** The seed used when `FAULT_SEED` is not set, so CI runs the same trials every time. */
export const DEFAULT_FAULT_SEED = 20261125;

/**
 * The seed of this run: `FAULT_SEED` from the environment (to replay a failure), else
 * {@linkcode DEFAULT_FAULT_SEED}.
 */
export function faultSeed(): number {
  const text = Deno.env.get("FAULT_SEED");
  return text ? Number(text) >>> 0 : DEFAULT_FAULT_SEED;
}

/** A small deterministic random source (mulberry32): numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/** The text that names a trial in assertion messages, so a failure can be replayed. */
export function trialLabel(seed: number, trial: number, extra = ""): string {
  return `(replay with FAULT_SEED=${seed}; trial ${trial}${extra ? `; ${extra}` : ""})`;
}

/** How a run that was to be killed ended. */
export interface KilledRun {
  /** Exit code, or `null` when the kill landed. */
  code: number | null;
}

/**
 * Start the CLI with `args` and send it SIGKILL `delayMs` milliseconds after it
 * starts or, with `afterEvent`, after it logs that event on stderr (to aim at a step).
 */
export async function runAndKill(
  args: string[],
  env: Record<string, string>,
  delayMs: number,
  afterEvent?: string,
): Promise<KilledRun> {
  const child = cliProcess(args, { env, stdout: "null" }).spawn();
  const stderr = watchFor(child.stderr, afterEvent);
  if (afterEvent) await Promise.race([child.status, stderr.seen]);
  const code = await killAfter(child, delayMs);
  await stderr.drained;
  return { code };
}

/**
 * Send SIGKILL to `child` `delayMs` milliseconds from now, unless it exits first, and wait for it.
 * The caller keeps reading the child's piped output, so it never blocks on a full pipe.
 *
 * @returns The exit code when the child ended before the kill, `null` when the kill landed.
 */
export async function killAfter(child: Deno.ChildProcess, delayMs: number): Promise<number | null> {
  let exited = false;
  const status = child.status.then((value) => {
    exited = true;
    return value;
  });
  await Promise.race([status, new Promise((resolve) => setTimeout(resolve, delayMs))]);
  if (!exited) {
    try {
      child.kill("SIGKILL");
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // already exited between the check and the kill
    }
  }
  const end = await status;
  return end.signal === "SIGKILL" ? null : end.code;
}

/** How a run that was sent a stop signal ended: its exit code (it handles the signal) and its stderr. */
export interface SignalledRun {
  code: number;
  stderr: string;
  /** Whether the signal was sent (the run had not ended before the moment came). */
  sent: boolean;
  /** Ended by the signal's default action: it came after the command had done its work and stopped listening. */
  killed: boolean;
}

/**
 * Start the CLI with `args` and send it `signal` (SIGINT or SIGTERM) `delayMs` milliseconds after it logs `afterEvent`
 * on stderr (or after it starts), and again `againMs` later when given; wait for it to end.
 */
export async function runAndSignal(
  args: string[],
  env: Record<string, string>,
  signal: "SIGINT" | "SIGTERM",
  delayMs: number,
  options: { afterEvent?: string; againMs?: number } = {},
): Promise<SignalledRun> {
  const child = cliProcess(args, { env, stdout: "null" }).spawn();
  let text = "";
  let markSeen = () => {};
  const seen = new Promise<void>((resolve) => markSeen = resolve);
  const drained = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (!options.afterEvent || text.includes(`"event":"${options.afterEvent}"`)) markSeen();
    }
  })();
  let ended = false;
  const status = child.status.then((value) => (ended = true, value));
  await Promise.race([status, seen]);
  await Promise.race([status, new Promise((resolve) => setTimeout(resolve, delayMs))]);
  const sent = !ended && signalled(child, signal);
  if (sent && options.againMs !== undefined) {
    await Promise.race([status, new Promise((resolve) => setTimeout(resolve, options.againMs))]);
    if (!ended) signalled(child, signal);
  }
  const end = await status;
  await drained;
  return { code: end.code, stderr: text, sent, killed: end.signal !== null };
}

function signalled(child: Deno.ChildProcess, signal: Deno.Signal): boolean {
  try {
    child.kill(signal);
    return true;
  } catch (error) {
    if (error instanceof TypeError) return false; // it ended between the check and the signal
    throw error;
  }
}

/** Read a child's stderr to its end; `seen` settles when a line names `event` (never without one). */
function watchFor(stream: ReadableStream<Uint8Array>, event?: string): { seen: Promise<void>; drained: Promise<void> } {
  let markSeen = () => {};
  const seen = new Promise<void>((resolve) => markSeen = resolve);
  const drained = (async () => {
    let text = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (event && text.includes(`"event":"${event}"`)) markSeen();
    }
  })();
  return { seen, drained };
}

/** Milliseconds an uninterrupted run of the CLI takes, to spread kill moments over. */
export async function timeRun(args: string[], env: Record<string, string>): Promise<number> {
  const started = performance.now();
  const output = await cliProcess(args, { env, stdout: "null" }).output();
  if (output.code !== 0) {
    throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return performance.now() - started;
}

/** How the `sqlite3` shell opens a database. */
export interface OpenOptions {
  /**
   * Open a snapshot's file as immutable, so the shell leaves no `-wal`/`-shm` beside it
   * (a snapshot copies the live header, which says WAL, and stray sidecars fail its manifest).
   */
  immutable?: boolean;
  /**
   * Open read-write, as the next writer would: a hot journal a killed rollback-journal writer left is then rolled
   * back (a read-only open refuses to, "attempt to write a readonly database").
   */
  writable?: boolean;
}

function shellTarget(path: string, options: OpenOptions): string {
  return options.immutable ? `file:${encodeURI(path)}?immutable=1` : path;
}

/** Run `sql` with the `sqlite3` shell (read-only unless `writable`) and return its exit code and output. */
async function sqlite3Shell(
  path: string,
  sql: string,
  options: OpenOptions,
  mode: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command("sqlite3", {
    args: [
      ...options.writable ? [] : ["-readonly"],
      "-cmd",
      ".timeout 10000",
      ...mode,
      shellTarget(path, options),
      sql,
    ], // a writer may hold a lock
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** `PRAGMA integrity_check` of a database by the `sqlite3` shell: `"ok"` or the problems. */
export async function sqliteIntegrity(path: string, options: OpenOptions = {}): Promise<string> {
  const run = await sqlite3Shell(path, "PRAGMA integrity_check;", options);
  return run.code === 0 ? run.stdout.trim() : `sqlite3 failed: ${run.stderr.trim()}`;
}

/** The ledger's row count, its sum, and the running total that must equal the sum. */
export async function ledgerState(
  path: string,
  options: OpenOptions = {},
): Promise<{ rows: number; sum: number; total: number }> {
  const run = await sqlite3Shell(
    path,
    "SELECT (SELECT count(*) FROM ledger) AS rows, (SELECT coalesce(sum(amount), 0) FROM ledger) AS sum, " +
      "(SELECT total FROM ledger_total WHERE id = 1) AS total;",
    options,
    ["-json"],
  );
  if (run.code !== 0) throw new Error(`sqlite3 ${path}: ${run.stderr.trim()}`);
  const [row] = JSON.parse(run.stdout);
  return { rows: Number(row.rows), sum: Number(row.sum), total: Number(row.total) };
}

/**
 * Every file and link below `root` with its SHA-256 or link target, `-wal`/`-shm`
 * sidecars left out (they come and go as SQLite opens a database). A database file is
 * hashed with its journal mode aside: a snapshot holds a rollback-journal image of a
 * WAL-mode database, which restore sets back to WAL mode (journal modes are tested apart).
 *
 * @param skip Top-level names left out (such as the backup folder inside a data folder).
 */
export function treeDigest(root: string, skip: string[] = []): Record<string, string> {
  const digest: Record<string, string> = {};
  const visit = (relative: string) => {
    for (const entry of [...Deno.readDirSync(join(root, relative))].sort((a, b) => a.name < b.name ? -1 : 1)) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (/-(wal|shm|journal)$/.test(entry.name) || (!relative && skip.includes(entry.name))) continue;
      if (entry.isSymlink) digest[path] = `-> ${Deno.readLinkSync(join(root, path))}`;
      else if (entry.isDirectory) visit(path);
      else {digest[path] = createHash("sha256").update(withJournalMode(Deno.readFileSync(join(root, path)), "rollback"))
          .digest("hex");}
    }
  };
  visit("");
  return digest;
}

/** The live store's files (database, registry, Chroma) by content: everything in the data folder but the backups. */
export function liveDigest(store: { dataDir: string }): Record<string, string> {
  return treeDigest(store.dataDir, ["backups"]);
}

/** Names of the entries of a folder, or `[]` when it does not exist. */
export function entryNames(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((entry) => entry.name).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** User id of `nobody`. */
export const NOBODY_UID = 65534;
/** Group id of `nogroup`. */
export const NOBODY_GID = 65534;

/** The CLI run as the unprivileged user `nobody`, for permission tests (root ignores file modes). */
export interface UnprivilegedCli extends Disposable {
  /** Run the CLI with `args` as `nobody`, with `env` added to a clean environment. */
  run(args: string[], env: Record<string, string>): Promise<CliRun>;
}

/**
 * Prepare to run the CLI as `nobody` through `setpriv`: the Deno binary linked (or
 * copied) where `nobody` can run it, and a `DENO_DIR` it can write holding a copy of the npm cache.
 *
 * @returns The runner, or the reason it cannot be done here (the caller skips).
 */
export function unprivilegedCli(): UnprivilegedCli | string {
  if (Deno.uid() !== 0) return "not running as root, so cannot switch to nobody";
  try {
    const probe = new Deno.Command("setpriv", {
      args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "true"],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (probe.code !== 0) return `setpriv cannot switch to nobody (${new TextDecoder().decode(probe.stderr).trim()})`;
  } catch (error) {
    return `setpriv is not available (${(error as Error).message})`;
  }
  const main = join(ROOT, "main.ts");
  const readable = new Deno.Command("setpriv", {
    args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "test", "-r", main],
  }).outputSync();
  if (readable.code !== 0) return `nobody cannot read ${main} (a folder above the checkout is closed to others)`;
  const home = Deno.makeTempDirSync({ prefix: "atocore-nobody-" });
  Deno.chmodSync(home, 0o755);
  const deno = join(home, "deno");
  try {
    Deno.linkSync(Deno.execPath(), deno);
  } catch {
    Deno.copyFileSync(Deno.execPath(), deno);
  }
  Deno.chmodSync(deno, 0o755);
  const denoDir = join(home, "deno_dir");
  Deno.mkdirSync(denoDir);
  seedNpmCache(denoDir);
  chownToNobody(denoDir);
  return {
    async run(args, env) {
      const [, ...denoArgs] = cliCommand(args);
      const output = await new Deno.Command("setpriv", {
        args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", deno, ...denoArgs],
        cwd: home,
        env: cliEnv({ HOME: home, DENO_DIR: denoDir, ...env }),
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      return cliRunOf(output);
    },
    [Symbol.dispose]: () => Deno.removeSync(home, { recursive: true }),
  };
}

/**
 * Copy this Deno's npm cache (the packages `deno.json` pins and their dependencies, a few MiB) into `denoDir`: the CLI
 * run as `nobody` then resolves them without a download, as the binary does with them embedded.
 */
function seedNpmCache(denoDir: string): void {
  const info = new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" }).outputSync();
  const npmCache = (JSON.parse(new TextDecoder().decode(info.stdout)) as { npmCache?: string }).npmCache;
  if (npmCache === undefined) return;
  try {
    Deno.statSync(npmCache);
  } catch {
    return; // nothing cached: the run downloads, as an uncached one does
  }
  new Deno.Command("cp", { args: ["-R", npmCache, join(denoDir, "npm")] }).outputSync();
}

/** Replace `path` with a link to `target`, the link owned by the service's user (nobody). */
export function nobodysLink(target: string, path: string): void {
  Deno.renameSync(path, `${path}.moved`);
  Deno.symlinkSync(target, path);
  lchownSync(path, NOBODY_UID, NOBODY_UID);
}

/** A root-only (mode 600) SQLite database at `path` holding `text`; its SHA-256. */
export function rootOnlyDatabase(path: string, text: string): string {
  const made = new Deno.Command("sqlite3", {
    args: [path, `CREATE TABLE secret(x); INSERT INTO secret VALUES ('${text}');`],
  }).outputSync();
  if (!made.success) throw new Error(`sqlite3 ${path}: ${new TextDecoder().decode(made.stderr)}`);
  Deno.chmodSync(path, 0o600);
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

/** Give `nobody` every file below `root` (and `root` itself), as a service account would own its store. */
export function chownToNobody(root: string): void {
  new Deno.Command("chown", { args: ["-R", `${NOBODY_UID}:${NOBODY_GID}`, root] }).outputSync();
}

/**
 * Run `restore ARGS` on `store`, stopped (SIGSTOP) at the first stderr line holding the event `event` while `change`
 * alters what it works on, then let it finish: its exit code and all of its stderr.
 */
export async function restoreStoppedAt(
  store: SampleStore,
  args: string[],
  event: string,
  change: () => void,
): Promise<CliRun> {
  const restore = cliProcess(["restore", ...args], { env: storeEnv(store), stdout: "null" }).spawn();
  const lines = restore.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  while (!stderr.includes(`"${event}"`)) {
    const { value, done } = await lines.read();
    if (done) break;
    stderr += value;
  }
  if (!stderr.includes(`"${event}"`)) throw new Error(`the restore ended before ${event}: ${stderr}`);
  Deno.kill(restore.pid, "SIGSTOP");
  try {
    change();
  } finally {
    Deno.kill(restore.pid, "SIGCONT");
  }
  for (let read = await lines.read(); !read.done; read = await lines.read()) stderr += read.value;
  return { code: (await restore.status).code, stdout: "", stderr, json: undefined };
}

/**
 * Run the CLI with `args` and `env`, strace holding its first call of `calls` on the path `held` (its `when`-th, when
 * given) for 3 s, before it runs or, with `after`, once it has run (a check that has looked); `swap` runs while it is
 * held. The run's output, and whether the swap happened while held.
 */
export async function runHeld(
  args: string[],
  env: Record<string, string>,
  { held, calls, after, when = 1 }: { held: string; calls: string; after?: boolean; when?: number },
  swap: () => void,
): Promise<{ output: Deno.CommandOutput; held: boolean }> {
  using dir = tempDir("atocore-trace-");
  const trace = join(dir.path, "trace.txt");
  const [program, ...rest] = cliCommand(args);
  const strace = ["-f", "-qq", "-o", trace, "-P", held, "-e", `trace=${calls}`];
  const child = new Deno.Command("strace", {
    args: [...strace, "-e", `inject=${calls}:delay_${after ? "exit" : "enter"}=3000000:when=${when}`, program, ...rest],
    env: cliEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const ended = child.output();
  let done = false;
  while (!done) {
    done = await Promise.race([ended.then(() => true), new Promise<boolean>((wait) => setTimeout(wait, 10, false))]);
    if (!done && readOrEmpty(trace).split(`"${held}"`).length > when) {
      await swapOnceThere(swap, after === true);
      break;
    }
  }
  return { output: await ended, held: !done };
}

/**
 * Run `swap`. strace writes a call's line as the call starts, so a call held once it has run (`after`) may not have run
 * yet when the line is read: a swap of what it makes is retried until the path is there (a second at most).
 */
async function swapOnceThere(swap: () => void, after: boolean): Promise<void> {
  for (let tries = 1;; tries++) {
    try {
      return swap();
    } catch (error) {
      if (!after || !(error instanceof Deno.errors.NotFound) || tries === 100) throw error;
      await new Promise((wait) => setTimeout(wait, 10));
    }
  }
}

/** What {@linkcode runSwapped} saw: whether the swap happened while the call was held, and the run's output. */
export interface SwappedRun {
  swapped: boolean;
  code: number;
  /** Its stdout, then its stderr. */
  output: string;
}

/**
 * {@linkcode runHeld}, the swap renaming `swapped` to `<swapped>-aside` and putting a link to `victim` in its place (a
 * writer of the folder racing the run's check).
 */
export async function runSwapped(
  args: string[],
  env: Record<string, string>,
  { held, swapped, victim, calls, after, when }: {
    held: string;
    swapped: string;
    victim: string;
    calls: string;
    after?: boolean;
    /** The call to hold, when not the first (see {@linkcode runHeld}). */
    when?: number;
  },
): Promise<SwappedRun> {
  const run = await runHeld(args, env, { held, calls, after, when }, () => {
    Deno.renameSync(swapped, `${swapped}-aside`);
    Deno.symlinkSync(victim, swapped);
  });
  const decoder = new TextDecoder();
  const output = decoder.decode(run.output.stdout) + decoder.decode(run.output.stderr);
  return { swapped: run.held, code: run.output.code, output };
}

function readOrEmpty(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return ""; // not written yet
  }
}

/** Every path below `root`, folders included, sorted. */
export function entriesBelow(root: string, relative = ""): string[] {
  return [...Deno.readDirSync(join(root, relative))].flatMap((entry) => {
    const path = join(relative, entry.name);
    return entry.isDirectory ? [path, ...entriesBelow(root, path)] : [path];
  }).sort();
}
