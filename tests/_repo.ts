/**
 * Helpers for the repository tests: a sample store with real snapshots made by the CLI, a folder repository with a
 * fresh age key pair, a backend wrapper that dies after N writes (as a killed push would), and row updates.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveConfig } from "../src/config.ts";
import type { Config } from "../src/config.ts";
import { type AgeIdentity, formatIdentityFile, generateIdentity, parseIdentity } from "../src/crypto/age.ts";
import { deriveAuthKey } from "../src/crypto/auth_key.ts";
import type { PushAuth } from "../src/repo/authenticity.ts";
import type { Backend } from "../src/repo/backend.ts";
import { openFolderBackend } from "../src/repo/folder.ts";
import { initRepository } from "../src/repo/repository.ts";
import type { SampleOptions, SampleStore } from "../scripts/sample_store.ts";
import { createdStamp, storeEnv, tempDir, tempStore } from "./_helpers.ts";

/** A store, its config, a repository and a key pair, removed at the end of the `using` scope. */
export interface RepoFixture extends Disposable {
  store: SampleStore;
  config: Config;
  env: Record<string, string>;
  /** A temporary folder for the test's own files (the repository and the key file are in it). */
  work: string;
  repoDir: string;
  backend: Backend;
  identity: AgeIdentity;
  recipient: string;
  keyFile: string;
  /** The push options that authenticate with the identity's key: `pushSnapshot(…, { ...f.auth })`. */
  auth: { auth: PushAuth };
}

/** A sample store and an initialised folder repository beside it (under the store's temporary folder). */
export async function repoFixture(options: SampleOptions = {}): Promise<RepoFixture> {
  const store = tempStore(options);
  const env = storeEnv(store);
  const config = resolveConfig({}, env, "/");
  const work = tempDir("atocore-remote-");
  const repoDir = join(work.path, "repo");
  const backend = openFolderBackend(repoDir);
  const { identity, recipient } = generateIdentity();
  const keyFile = join(work.path, "key.txt");
  Deno.writeTextFileSync(keyFile, formatIdentityFile(identity));
  await initRepository(backend, [recipient]);
  return {
    store,
    config,
    env,
    work: work.path,
    repoDir,
    backend,
    identity: parseIdentity(identity),
    recipient,
    keyFile,
    auth: { auth: { keys: [deriveAuthKey(parseIdentity(identity))], source: "(test)" } },
    [Symbol.dispose]: () => {
      work[Symbol.dispose]();
      store[Symbol.dispose]();
    },
  };
}

/** Make a snapshot of the fixture's store with the CLI (`create --chroma`); its folder. */
export async function snapshotOf(fixture: RepoFixture): Promise<{ stamp: string; root: string }> {
  const stamp = await createdStamp(fixture.env);
  return { stamp, root: join(fixture.store.backupDir, "snapshots", stamp) };
}

/**
 * A backend that passes everything to `inner` until `dies(name, writesStarted)` says the next write is the one the
 * process dies before; from then on every write fails and every remove is ignored, as a killed process leaves it.
 */
export function dyingAt(inner: Backend, dies: (name: string, writes: number) => boolean): Backend {
  let writes = 0;
  let dead = false;
  return {
    location: inner.location,
    list: (prefix) => inner.list(prefix),
    read: (name) => inner.read(name),
    stat: (name) => inner.stat(name),
    write: async (name, bytes, options) => {
      if (dead || dies(name, writes)) {
        dead = true;
        throw new Error(`killed before writing ${name}`);
      }
      writes += 1;
      await inner.write(name, bytes, options);
    },
    remove: async (name) => {
      if (!dead) await inner.remove(name);
    },
  };
}

/**
 * Replace the content of `fraction` of the `chunks` rows (chosen by a seeded generator) with new random blobs of the
 * same size and checkpoint, with Python's sqlite3 (a writer other than the tool).
 */
export function updateRows(db: string, fraction: number, seed = 7): void {
  const script = "import random, sqlite3, sys\n" +
    "db = sqlite3.connect(sys.argv[1]); rng = random.Random(int(sys.argv[3]))\n" +
    "ids = [r[0] for r in db.execute('SELECT id FROM chunks')]\n" +
    "for i in rng.sample(ids, max(1, int(len(ids) * float(sys.argv[2])))):\n" +
    "    db.execute('UPDATE chunks SET content = ? WHERE id = ?', (rng.randbytes(65536), i))\n" +
    "db.commit(); db.execute('PRAGMA wal_checkpoint(TRUNCATE)'); db.close()";
  const output = new Deno.Command("python3", { args: ["-c", script, db, String(fraction), String(seed)] }).outputSync();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
}

/** Every object name of a folder repository (through its backend), without the config. */
export async function objectNames(backend: Backend, prefix = ""): Promise<string[]> {
  return (await backend.list(prefix)).map((info) => info.name).filter((name) => name !== "config");
}

/** Compare two folders byte for byte, links as links (`diff -r --no-dereference`); fails the test on a difference. */
export function assertSameTree(expected: string, actual: string): void {
  const output = new Deno.Command("diff", { args: ["-r", "--no-dereference", expected, actual] }).outputSync();
  assert.equal(output.code, 0, `trees differ:\n${new TextDecoder().decode(output.stdout).slice(0, 2000)}`);
}
