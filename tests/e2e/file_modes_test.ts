/**
 * What create and restore write is no more open to other users than the live store, whatever the umask: a snapshot of
 * a database only its owner reads is not readable by others, and nothing of the backups is writable by others.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCliInShell, storeEnv, tempStore } from "../_helpers.ts";
import { walkTree } from "../../src/fs/tree.ts";

/** The CLI with `args` under umask `umask`. */
function runWithUmask(umask: string, args: string[], env: Record<string, string>) {
  return runCliInShell(`umask ${umask} && exec "$@"`, args, env);
}

const modeOf = (path: string) => Deno.statSync(path).mode! & 0o777;

Deno.test("snapshots keep the live modes less write for others, whatever the umask; a restore keeps the replaced entries'", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const chromaDb = join(store.chromaDir, "chroma.sqlite3");
  Deno.chmodSync(store.db, 0o600);
  Deno.chmodSync(chromaDb, 0o600);
  Deno.chmodSync(store.registry, 0o664); // group-writable live: its copy is not
  const folders = walkTree(store.chromaDir).filter((entry) => entry.kind === "dir");
  assert.ok(folders.length > 0, "the sample store has segment folders");
  for (const folder of folders) Deno.chmodSync(join(store.chromaDir, folder.path), 0o700);
  const create = await runWithUmask("000", ["create", "--chroma"], env);
  assert.equal(create.code, 0, create.stderr);
  const stamp = (create.json as { stamp: string }).stamp;
  const snapshot = join(store.backupDir, "snapshots", stamp);
  assert.equal(modeOf(join(snapshot, "db", "atocore.db")), 0o600);
  assert.equal(modeOf(join(snapshot, "chroma", "chroma.sqlite3")), 0o600);
  assert.equal(modeOf(join(snapshot, "config", "project-registry.json")), 0o644);
  for (const folder of folders) assert.equal(modeOf(join(snapshot, "chroma", folder.path)), 0o700, folder.path);
  for (const entry of walkTree(store.backupDir)) {
    assert.equal(modeOf(join(store.backupDir, entry.path)) & 0o002, 0, `${entry.path} writable by others`);
  }
  Deno.chmodSync(join(store.chromaDir, folders[0].path), 0o777); // a live folder open to all: its copy is not
  const open = await runWithUmask("000", ["create", "--chroma"], env);
  assert.equal(open.code, 0, open.stderr);
  const copy = join(store.backupDir, "snapshots", (open.json as { stamp: string }).stamp, "chroma", folders[0].path);
  assert.equal(modeOf(copy), 0o755);
  Deno.chmodSync(join(store.chromaDir, folders[0].path), 0o700);

  for (const folder of folders) Deno.chmodSync(join(store.chromaDir, folder.path), 0o2775); // a service's group writes
  Deno.chmodSync(chromaDb, 0o664);
  const restore = await runWithUmask("000", ["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], env);
  assert.equal(restore.code, 0, restore.stderr);
  assert.equal(Deno.statSync(chromaDb).mode! & 0o7777, 0o664, "the live entry's bits, kept");
  for (const folder of folders) {
    assert.equal(Deno.statSync(join(store.chromaDir, folder.path)).mode! & 0o7777, 0o2775, folder.path);
  }
  assert.equal(modeOf(store.db), 0o600);
});
