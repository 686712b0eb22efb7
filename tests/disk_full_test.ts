/**
 * A full disk: the backup folder on a small tmpfs. `create` fails with a message
 * that says the disk is full and names the folder, exits 1, publishes nothing,
 * removes its staging folder and leaves the live store untouched.
 *
 * Needs root (to mount); skipped with a printed reason where mounting is not permitted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, storeEnv, tempStore } from "./_helpers.ts";
import { entryNames, liveDigest, mountTmpfs, skipBecause } from "./_faults.ts";

/** The tmpfs size: smaller than each sample store below. */
const TMPFS_SIZE = "8m";

/** Stores that do not fit: the database alone, and the database with Chroma. */
const STORES = [
  { name: "database larger than the disk", args: ["create"], options: { dbMiB: 30, chromaMiB: 1 } },
  { name: "Chroma overflows the disk", args: ["create", "--chroma"], options: { dbMiB: 4, chromaMiB: 12 } },
];

for (const { name, args, options } of STORES) {
  Deno.test(`disk full (${name}): create says so, exit 1, nothing published, staging removed`, async () => {
    using store = tempStore(options);
    Deno.mkdirSync(store.backupDir);
    const mounted = await mountTmpfs(store.backupDir, TMPFS_SIZE);
    if (typeof mounted === "string") return skipBecause(mounted);
    using _mount = mounted;
    const before = liveDigest(store);
    const run = await runCli(args, { env: storeEnv(store) });
    assert.equal(run.code, 1, `exit ${run.code}: ${run.stderr}`);
    const error = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
    assert.equal(error.length, 1, `not one line: ${run.stderr}`);
    assert.match(error[0], /disk full/, "the message does not say the disk is full");
    assert.ok(error[0].includes(store.backupDir), `the message does not name the backup folder: ${error[0]}`);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "something was published");
    assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "staging left behind");
    assert.deepEqual(entryNames(join(store.backupDir, "failed")), [], "something was set aside");
    assert.deepEqual(liveDigest(store), before, "live store changed");
    console.log(`${name}: ${error[0]}`);
  });
}
