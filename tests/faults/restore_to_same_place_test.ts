/**
 * `restore --to DIR` refuses a DIR that is the live store under another name: a bind mount of the data folder (the
 * paths differ, the folder is the same) or a folder holding a hard link of the live database. The bind mount needs
 * root; without it that part skips with one line.
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
