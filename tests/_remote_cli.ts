/**
 * Helpers of the repository tests that drive the CLI: a key pair made by the real `age-keygen`, a sample store with a
 * repository made by `remote init`, and digests that compare a restored store with the snapshot it came from.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import type { SampleOptions, SampleStore } from "../scripts/sample_store.ts";
import {
  cliProcess,
  type CliRun,
  relocateSnapshot,
  runCli,
  storeEnv,
  tempDir,
  tempStore,
  toolFor,
} from "./_helpers.ts";
import { type AgeIdentity, formatIdentityFile, generateIdentity, parseIdentityFile } from "../src/crypto/age.ts";
import { deriveAuthKey, formatAuthKeyFile, snapshotMac } from "../src/crypto/auth_key.ts";
import { type Compression, openBytes, sealBytes } from "../src/repo/sealing.ts";
import { treeDigest } from "./_faults.ts";
import { updateRows } from "./_repo.ts";

/** An age key pair made by `age-keygen`: the identity file and its recipient. */
export interface KeyPair {
  keyFile: string;
  recipient: string;
}

/** Make a key pair with the real `age-keygen` in `dir` (file `name`). */
export function ageKeyPair(dir: string, name = "key.txt"): KeyPair {
  const keyFile = join(dir, name);
  if (!toolFor("age-keygen", "the key pair is made by this tool's own age code instead")) {
    const { identity, recipient } = generateIdentity();
    Deno.writeTextFileSync(keyFile, formatIdentityFile(identity), { mode: 0o600 });
    return { keyFile, recipient };
  }
  const made = new Deno.Command("age-keygen", { args: ["-o", keyFile], stderr: "piped" }).outputSync();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
  const shown = new Deno.Command("age-keygen", { args: ["-y", keyFile], stdout: "piped" }).outputSync();
  return { keyFile, recipient: new TextDecoder().decode(shown.stdout).trim() };
}

/**
 * Write, beside `key`, the authentication key file `remote auth-key` derives from its identity (mode 600), as an
 * operator installs it on a pushing host; its path.
 */
export function authKeyFileFor(key: KeyPair, name = "auth.key"): string {
  const path = join(dirname(key.keyFile), name);
  const identities = parseIdentityFile(Deno.readTextFileSync(key.keyFile), key.keyFile);
  Deno.writeTextFileSync(path, formatAuthKeyFile(identities), { mode: 0o600 });
  return path;
}

/** The environment that gives a push the authentication key of `key` (written by {@linkcode authKeyFileFor}). */
export function authKeyEnv(key: KeyPair): { ATOCORE_BACKUP_AUTH_KEY_FILE: string } {
  return { ATOCORE_BACKUP_AUTH_KEY_FILE: authKeyFileFor(key) };
}

/** A store, a repository beside it made by the CLI, and a key pair; removed at the end of the `using` scope. */
export interface RemoteStore extends Disposable {
  store: SampleStore;
  /** A temporary folder for the test's own files (the repository and the key file are in it). */
  work: string;
  /** The repository's folder, or `""` for a network repository. */
  repoDir: string;
  key: KeyPair;
  /** The authentication key file derived from `key` (see {@linkcode authKeyFileFor}). */
  authKeyFile: string;
  /** The store's and the repository's environment, with the auth key (no identity: pushing must not need one). */
  env: Record<string, string>;
  /** `env` plus the identity file, for the commands that decrypt. */
  envWithIdentity: Record<string, string>;
}

/**
 * A sample store and a repository made with `remote init --recipient`: in a folder beside it, or at `place` (a folder
 * path, such as a mount point, or a network target's environment from `RemoteTarget.fresh`; `repoDir` is then `""`).
 */
export async function remoteStore(
  options: SampleOptions = {},
  place?: string | Record<string, string>,
): Promise<RemoteStore> {
  const store = tempStore(options);
  const work = tempDir("atocore-remote-cli-");
  const key = ageKeyPair(work.path);
  const repo = typeof place === "object" ? "" : place ?? join(work.path, "repo");
  const remote = typeof place === "object" ? place : { ATOCORE_BACKUP_REMOTE: `file://${repo}` };
  const authKeyFile = authKeyFileFor(key);
  const env = { ...storeEnv(store), ...remote, ATOCORE_BACKUP_AUTH_KEY_FILE: authKeyFile };
  const init = await runCli(["remote", "init", "--recipient", key.recipient], { env });
  assert.equal(init.code, 0, init.stderr);
  return {
    store,
    work: work.path,
    repoDir: repo,
    key,
    authKeyFile,
    env,
    envWithIdentity: { ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile },
    [Symbol.dispose]: () => {
      work[Symbol.dispose]();
      store[Symbol.dispose]();
    },
  };
}

/** Run `create --chroma --push` and return the stamp and what the push did; fails the test unless it exits 0. */
export async function createAndPush(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ stamp: string; push: PushedJson }> {
  const run = await runCli(["create", "--chroma", "--push", ...args], { env });
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
  packs_reused: number;
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

/**
 * Make `count` snapshots of the store with the CLI, 10 % of rows changed before each after the first (so each holds
 * blocks no other has), renamed to one stamp a day from 2026-01-01 at 01:00 (so retention tells them apart); the
 * stamps, oldest first.
 */
export async function snapshotSeries(r: RemoteStore, count: number): Promise<string[]> {
  const stamps: string[] = [];
  for (let day = 1; day <= count; day++) {
    if (day > 1) updateRows(r.store.db, 0.1, day);
    const run = await runCli(["create", "--chroma"], { env: r.env });
    assert.equal(run.code, 0, run.stderr);
    const stamp = `202601${String(day).padStart(2, "0")}T010000Z`;
    const snapshots = join(r.store.backupDir, "snapshots");
    Deno.renameSync(join(snapshots, (run.json as { stamp: string }).stamp), join(snapshots, stamp));
    relocateSnapshot(join(snapshots, stamp)); // it records the stamp it now has
    stamps.push(stamp);
  }
  return stamps;
}

/**
 * Move the creation time of every condemned marker of the repository `hours` back, as if made that long ago, and with
 * `backupDir` the sightings `remote cleanup` recorded there too.
 */
export function ageMarkers(repoDir: string, hours: number, backupDir?: string): number {
  const folder = join(repoDir, "condemned");
  let aged = 0;
  for (const entry of Deno.readDirSync(folder)) {
    const path = join(folder, entry.name);
    const marker = JSON.parse(Deno.readTextFileSync(path));
    marker.created_at = new Date(Date.parse(marker.created_at) - hours * 3600_000).toISOString();
    Deno.writeTextFileSync(path, JSON.stringify(marker) + "\n");
    aged += 1;
  }
  if (backupDir !== undefined) ageSightings(backupDir, hours);
  return aged;
}

/** Move every sighting of a condemned marker recorded in `backupDir` (by `remote cleanup`) `hours` back. */
export function ageSightings(backupDir: string, hours: number): void {
  const remotes = join(backupDir, "remotes");
  for (const key of [...Deno.readDirSync(remotes)].map((entry) => entry.name)) {
    const path = join(remotes, key, "condemned-seen.json");
    let sightings;
    try {
      sightings = JSON.parse(Deno.readTextFileSync(path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    for (const [name, seen] of Object.entries(sightings.markers as Record<string, string>)) {
      sightings.markers[name] = new Date(Date.parse(seen) - hours * 3600_000).toISOString();
    }
    Deno.writeTextFileSync(path, JSON.stringify(sightings) + "\n");
  }
}

/** Replace folder `target` with a copy of `master` whose files are hard links (objects are never modified in place). */
export function linkCopy(master: string, target: string): void {
  try {
    Deno.removeSync(target, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const copy = new Deno.Command("cp", { args: ["-al", master, target] }).outputSync();
  assert.equal(copy.code, 0, new TextDecoder().decode(copy.stderr));
}

/**
 * Milliseconds an uninterrupted run of the CLI takes in all, and from the moment it logs `event` (on stderr, as JSON)
 * to its end: the span that kills aimed after that event are spread over. Fails the test unless it exits 0.
 */
export async function timeEvent(
  args: string[],
  env: Record<string, string>,
  event: string,
): Promise<{ total: number; afterEvent: number }> {
  const started = performance.now();
  const child = cliProcess(args, { env, stdout: "null" }).spawn();
  let seenAt = NaN;
  let text = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (Number.isNaN(seenAt) && text.includes(`"event":"${event}"`)) seenAt = performance.now();
  }
  const status = await child.status;
  assert.equal(status.code, 0, `${args.join(" ")}: ${text}`);
  const ended = performance.now();
  assert.ok(!Number.isNaN(seenAt), `${args.join(" ")} never logged ${event}`);
  return { total: ended - started, afterEvent: ended - seenAt };
}

/** The parts of a document the forgery below changes. */
export interface Forged {
  format: number;
  packs: { id: string; compression: Compression }[];
  files: { path: string; block?: number; extents?: [number, number, number, number, string][] }[];
}

/** Rewrite snapshot `name`'s document with `change`, sealed again to `recipient` and its refs updated to match. */
export function forgeDocument(
  repoDir: string,
  identities: AgeIdentity[],
  recipient: string,
  name: string,
  change: (document: Forged) => void,
): void {
  const path = join(repoDir, "snapshots", name);
  const document = JSON.parse(new TextDecoder().decode(
    openBytes(`snapshots/${name}`, Deno.readFileSync(path), identities, { compression: "zstd" }),
  ));
  change(document);
  const sealed = sealBytes(new TextEncoder().encode(JSON.stringify(document)), "zstd", [recipient], true);
  Deno.writeFileSync(path, sealed.bytes);
  const refsPath = join(repoDir, "refs", name);
  const refs = JSON.parse(Deno.readTextFileSync(refsPath));
  // made as a pushing host would make it (with the auth key), so that only the document's own checks can catch it
  const repositoryId = JSON.parse(Deno.readTextFileSync(join(repoDir, "config"))).id;
  const claim = { repositoryId, objectName: `snapshots/${name}`, sha256: sealed.sha256 };
  const auth = identities.map(deriveAuthKey).map((key) => ({ recipient: key.recipient, mac: snapshotMac(key, claim) }));
  Deno.writeTextFileSync(refsPath, JSON.stringify({ ...refs, snapshot_sha256: sealed.sha256, auth }));
}
