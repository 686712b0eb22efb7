/**
 * Helpers of the repository tests that drive the CLI: a key pair made by the real `age-keygen`, a sample store with a
 * repository made by `remote init`, and digests that compare a restored store with the snapshot it came from.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { SampleOptions, SampleStore } from "../scripts/sample_store.ts";
import { type CliRun, runCli, storeEnv, tempDir, tempStore } from "./_helpers.ts";
import { treeDigest } from "./_faults.ts";

/** An age key pair made by `age-keygen`: the identity file and its recipient. */
export interface KeyPair {
  keyFile: string;
  recipient: string;
}

/** Make a key pair with the real `age-keygen` in `dir` (file `name`). */
export function ageKeyPair(dir: string, name = "key.txt"): KeyPair {
  const keyFile = join(dir, name);
  const made = new Deno.Command("age-keygen", { args: ["-o", keyFile], stderr: "piped" }).outputSync();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
  const shown = new Deno.Command("age-keygen", { args: ["-y", keyFile], stdout: "piped" }).outputSync();
  return { keyFile, recipient: new TextDecoder().decode(shown.stdout).trim() };
}

/** A store, a repository beside it made by the CLI, and a key pair; removed at the end of the `using` scope. */
export interface RemoteStore extends Disposable {
  store: SampleStore;
  /** A temporary folder for the test's own files (the repository and the key file are in it). */
  work: string;
  repoDir: string;
  key: KeyPair;
  /** The store's and the repository's environment (no identity: pushing must not need one). */
  env: Record<string, string>;
  /** `env` plus the identity file, for the commands that decrypt. */
  envWithIdentity: Record<string, string>;
}

/** A sample store and a repository made with `remote init --recipient` (`repoDir` may be given: a mount point). */
export async function remoteStore(options: SampleOptions = {}, repoDir?: string): Promise<RemoteStore> {
  const store = tempStore(options);
  const work = tempDir("atocore-remote-cli-");
  const key = ageKeyPair(work.path);
  const repo = repoDir ?? join(work.path, "repo");
  const env = { ...storeEnv(store), ATOCORE_BACKUP_REMOTE: `file://${repo}` };
  const init = await runCli(["remote", "init", "--recipient", key.recipient], { env });
  assert.equal(init.code, 0, init.stderr);
  return {
    store,
    work: work.path,
    repoDir: repo,
    key,
    env,
    envWithIdentity: { ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile },
    [Symbol.dispose]: () => {
      work[Symbol.dispose]();
      store[Symbol.dispose]();
    },
  };
}

/** Run `create --chroma --push` and return the stamp and what the push did; fails the test unless it exits 0. */
export async function createAndPush(env: Record<string, string>): Promise<{ stamp: string; push: PushedJson }> {
  const run = await runCli(["create", "--chroma", "--push"], { env });
  assert.equal(run.code, 0, `create --push: ${run.stderr}`);
  const result = run.json as { stamp: string; push: { pushed: PushedJson[] } };
  return { stamp: result.stamp, push: result.push.pushed[0] };
}

/** The fields of one pushed snapshot in the CLI's JSON. */
export interface PushedJson {
  stamp: string;
  snapshot: string;
  already_pushed: boolean;
  bytes_total: number;
  bytes_read: number;
  bytes_sent: number;
  objects_written: number;
  bytes_deduplicated: number;
}

/** The snapshots `remote list` shows (`<stamp>_<push id>`), oldest first. */
export async function remoteNames(env: Record<string, string>): Promise<string[]> {
  const run = await runCli(["remote", "list"], { env });
  assert.equal(run.code, 0, `remote list: ${run.stderr}`);
  return (run.json as { snapshots: { snapshot: string }[] }).snapshots.map((entry) => entry.snapshot);
}

/** `remote verify` (with `args`) as run; fails the test unless it reports the repository whole. */
export async function assertVerified(env: Record<string, string>, args: string[] = [], what = ""): Promise<CliRun> {
  const run = await runCli(["remote", "verify", ...args], { env });
  assert.equal(run.code, 0, `remote verify ${args.join(" ")} ${what}: ${run.stdout}${run.stderr}`);
  assert.deepEqual((run.json as { errors: string[] }).errors, [], what);
  return run;
}

/**
 * A store's or snapshot's files by content, databases by their rows: the `sqlite3` shell's `.sha3sum` of each SQLite
 * file (a copy made by the backup API holds the same rows in other bytes), every other file as {@linkcode treeDigest}.
 * Keys as in the live store (see {@linkcode snapshotAsStore}).
 */
export function contentDigest(digest: Record<string, string>, root: string, snapshot: boolean): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, hash] of Object.entries(digest)) {
    const path = snapshot ? join(root, name.endsWith(".db") ? "db" : "", name) : join(root, name);
    if (!/\.(db|sqlite3)$/.test(name)) {
      result[name] = hash;
      continue;
    }
    const target = snapshot ? `file:${path}?immutable=1` : path;
    const output = new Deno.Command("sqlite3", { args: ["-readonly", target, ".sha3sum"], stdout: "piped" })
      .outputSync();
    result[name] = new TextDecoder().decode(output.stdout).trim();
  }
  return result;
}

/**
 * The files of a snapshot folder under the names a restore gives them (`db/<db>` → `<db>`, `config/<registry>` →
 * `<registry>`, `chroma/…` as it is), by content as {@linkcode treeDigest} takes it; the metadata left out.
 */
export function snapshotAsStore(root: string): Record<string, string> {
  const digest: Record<string, string> = {};
  for (const [path, hash] of Object.entries(treeDigest(root))) {
    if (path === "backup-metadata.json") continue;
    digest[path.replace(/^(db|config)\//, "")] = hash;
  }
  return digest;
}

/** The first line of stderr, checked to be the only error line and free of any identity's secret. */
export function oneErrorLine(run: CliRun, what: string): string {
  const lines = run.stderr.split("\n").filter((line) => line.startsWith("atocore-backup: error:"));
  assert.equal(lines.length, 1, `${what}: one error line expected, got:\n${run.stderr}`);
  assert.doesNotMatch(run.stdout + run.stderr, /AGE-SECRET-KEY-1[0-9A-Z]{20}/i, `${what}: a secret key in the output`);
  return lines[0];
}
