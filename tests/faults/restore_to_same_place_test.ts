/**
 * `restore --to DIR` refuses a DIR that is the live store under another name: a bind mount of the data folder (the
 * paths differ, the folder is the same), a bind mount of a folder inside the live Chroma folder or inside a snapshot
 * (no folder above the target is a protected one: their filesystem places are compared), or a folder holding a hard
 * link of the live database. The bind mounts need root; without it those parts skip with one line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, liveDigest, skipBecause } from "../_faults.ts";

function mount(args: string[]): string {
  try {
    const output = new Deno.Command("mount", { args, stdout: "null", stderr: "piped" }).outputSync();
    return output.success ? "" : new TextDecoder().decode(output.stderr).trim() || `exit ${output.code}`;
  } catch (error) {
    return (error as Error).message;
  }
}

Deno.test("restore --to a bind mount of the live data folder is refused, nothing changed", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  Deno.writeTextFileSync(store.registry, '{"projects": []}\n');
  using mountPoint = tempDir("atocore-to-bind-");
  const failure = mount(["--bind", store.dataDir, mountPoint.path]);
  if (failure) return skipBecause(`mount --bind not permitted here (${failure})`);
  try {
    const before = liveDigest(store);
    const run = await runCli(["restore", stamp, "--to", mountPoint.path], { env: storeEnv(store) });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, new RegExp(`--to ${mountPoint.path} overlaps .*nothing was changed`));
    assert.deepEqual(liveDigest(store), before);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp]);
  } finally {
    assert.equal(new Deno.Command("umount", { args: [mountPoint.path] }).outputSync().code, 0);
  }
});

Deno.test("restore --to a folder holding a hard link of the live database is refused, nothing changed", async () => {
  using store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  Deno.writeTextFileSync(store.registry, '{"projects": []}\n');
  using target = tempDir("atocore-to-link-");
  Deno.linkSync(store.db, join(target.path, "atocore.db"));
  const before = liveDigest(store);
  const run = await runCli(["restore", stamp, "--to", target.path, "--force"], { env: storeEnv(store) });
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, new RegExp(`would write over ${store.db} .*nothing was changed`));
  assert.deepEqual(liveDigest(store), before);
  assert.deepEqual(entryNames(target.path), ["atocore.db"]);
});

Deno.test("restore --to a bind mount of a folder inside the live Chroma folder or inside a snapshot is refused, nothing changed", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.2, segments: 1 });
  const env = storeEnv(store);
  const made = await runCli(["create", "--chroma"], { env });
  assert.equal(made.code, 0, made.stderr);
  const stamp = (made.json as { stamp: string }).stamp;
  const segment = join(store.chromaDir, entryNames(store.chromaDir).find((name) => !name.includes("."))!);
  using target = tempDir("atocore-to-sub-");
  const chroma = join(target.path, "chroma");
  Deno.mkdirSync(chroma);
  const failure = mount(["--bind", segment, chroma]);
  if (failure) return skipBecause(`mount --bind not permitted here (${failure})`);
  const before = liveDigest(store);
  try {
    const run = await runCli(["restore", stamp, "--to", target.path, "--force"], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, new RegExp(`would write over ${store.chromaDir} .*at ${chroma}; nothing was changed`));
  } finally {
    assert.equal(new Deno.Command("umount", { args: [chroma] }).outputSync().code, 0);
  }
  assert.deepEqual(liveDigest(store), before, "the live segment was written through the mount");
  const snapshot = join(store.backupDir, "snapshots", stamp);
  using shown = tempDir("atocore-to-snapshot-");
  assert.equal(mount(["--bind", snapshot, shown.path]), "");
  try {
    const run = await runCli(["restore", stamp, "--to", shown.path, "--force"], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, new RegExp(`--to ${shown.path} overlaps ${store.backupDir} .*nothing was changed`));
  } finally {
    assert.equal(new Deno.Command("umount", { args: [shown.path] }).outputSync().code, 0);
  }
  const validated = await runCli(["validate", stamp], { env });
  assert.equal(validated.code, 0, validated.stderr);
});
