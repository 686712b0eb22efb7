/**
 * A writer of the backup folder who swaps `snapshots` or `failed` for a link once create checked its folders: strace
 * holds create's look at the snapshots there while the test swaps, and the staged snapshot is then neither published
 * nor set aside in the link's target. Without the FFI permission, create still publishes (by path).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliEnv, storeEnv, tempDir, tempStore, toolFor } from "../_helpers.ts";
import { entriesBelow, entryNames, runSwapped } from "../_faults.ts";

for (const folder of ["snapshots", "failed"]) {
  Deno.test(`${folder} swapped for a link after create checked it: nothing moves into the link's target (needs strace)`, async () => {
    if (!toolFor("strace", `${folder} swapped during create`)) return;
    using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
    using victim = tempDir("atocore-victim-");
    for (const own of ["snapshots", "failed"]) Deno.mkdirSync(join(store.backupDir, own), { recursive: true });
    if (folder === "failed") overwriteSecondPage(store.db); // its copy fails validation: set aside in failed/
    const snapshots = join(store.backupDir, "snapshots");
    // create's first listing of snapshots/ (the clock check), after every check of the backup folder's own folders
    const swap = { held: snapshots, swapped: join(store.backupDir, folder), victim: victim.path, calls: "openat" };
    const run = await runSwapped(["create"], storeEnv(store), { ...swap, after: true });
    assert.ok(run.swapped, `the create ended before it listed ${snapshots}: ${run.output}`);
    assert.deepEqual(entriesBelow(victim.path), [], `moved into the link's target: ${run.output}`);
    assert.equal(run.code, 2, run.output);
    const errors = run.output.split("\n").filter((line) => line.startsWith("atocore-backup: error:"));
    assert.equal(errors.length, 1, run.output);
    assert.match(errors[0], new RegExp(`${join(store.backupDir, folder)} is a symbolic link .*nothing was published`));
    assert.deepEqual(entriesBelow(join(store.backupDir, ".staging")), [], "the staged snapshot is left");
  });
}

Deno.test("without the FFI permission, create publishes, and sets aside a snapshot that fails validation, by path", async () => {
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  const create = async () => {
    const [program, ...args] = cliCommand(["create"]).filter((flag) => flag !== "--allow-ffi");
    const env = cliEnv(storeEnv(store));
    return await new Deno.Command(program, { args, env, clearEnv: true, stdout: "null", stderr: "piped" }).output();
  };
  assert.equal((await create()).code, 0);
  assert.equal(entryNames(join(store.backupDir, "snapshots")).length, 1);
  overwriteSecondPage(store.db);
  assert.equal((await create()).code, 1);
  assert.equal(entryNames(join(store.backupDir, "failed")).length, 1);
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), []);
});

/** Overwrite the second page of an SQLite file (a table's root) with 0xff bytes: the backup API copies it as is. */
function overwriteSecondPage(path: string): void {
  const header = new Uint8Array(18);
  using file = Deno.openSync(path, { read: true, write: true });
  file.readSync(header);
  const pageSize = (header[16] << 8) | header[17];
  file.seekSync(pageSize, Deno.SeekMode.Start);
  file.writeSync(new Uint8Array(pageSize).fill(0xff));
}
