/**
 * A stderr or stdout that cannot be written (a log reader gone, a full disk) never stops an operation half done and
 * never turns its exit code into another's.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCliInShell, storeEnv, tempStore } from "../_helpers.ts";

/** The CLI with `args`, its stderr (`"2"`) or stdout (`"1"`) sent to /dev/full, where every write fails. */
function runToFull(stream: "1" | "2", args: string[], env: Record<string, string>) {
  return runCliInShell(`exec "$@" ${stream}>/dev/full`, args, env);
}

Deno.test("a restore whose stderr cannot be written runs to its end: database and Chroma both replaced", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  Deno.writeTextFileSync(join(store.chromaDir, "added-after.bin"), "x");
  const run = await runToFull("2", ["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], env);
  assert.equal(run.code, 0, run.stdout);
  assert.equal((run.json as { ok?: boolean; stamp?: string }).stamp, stamp);
  const names = [...Deno.readDirSync(store.chromaDir)].map((entry) => entry.name);
  assert.ok(!names.includes("added-after.bin"), "Chroma replaced too");
  const left = [...Deno.readDirSync(store.dataDir)].map((entry) => entry.name).filter((name) =>
    name.includes("intent")
  );
  assert.deepEqual(left, [], "no restore record left");
});

Deno.test("an error whose line cannot be written keeps its exit code; a result stdout cannot take keeps the success", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const env = storeEnv(store);
  await createdStamp(env, []);
  assert.equal((await runToFull("2", ["validate", "20200101T000000Z"], env)).code, 2);
  assert.equal((await runToFull("2", ["restore", "20200101T000000Z"], env)).code, 2, "usage before refusal");
  const create = await runToFull("1", ["create"], env);
  assert.equal(create.code, 0, create.stderr);
  assert.match(create.stderr, /warning: create ended with exit code 0, but its result could not be written to stdout/);
  assert.equal([...Deno.readDirSync(join(store.backupDir, "snapshots"))].length, 2, "the snapshot was made");
  for (const args of [["--help"], ["--version"], ["push", "--help"]]) {
    const help = await runToFull("1", args, env);
    assert.equal(help.code, 0, `${args.join(" ")}: ${help.stderr}`);
    assert.match(help.stderr, /warning: help ended with exit code 0, but its result could not be written to stdout/);
  }
});
