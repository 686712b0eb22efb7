/**
 * A writer of the backup folder who swaps `.trash`, `snapshots` or `integrity` for a link while cleanup or create works
 * in it: strace holds the run's look at what it is about to write or move while the test swaps, and nothing is then
 * written, moved into, out of or removed in the link's target.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { placeValidSnapshot, runCli, storeEnv, tempDir, tempStore, toolFor } from "../_helpers.ts";
import { entriesBelow, runSwapped } from "../_faults.ts";

const [OLDEST, OLDER, NEWEST] = ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"];
const LOOKS = "statx,newfstatat,stat,lstat";

for (const folder of [".trash", "snapshots"]) {
  Deno.test(`${folder} swapped for a link while cleanup moves snapshots into the trash: the link's target untouched (needs strace)`, async () => {
    if (!toolFor("strace", `${folder} swapped during cleanup`)) return;
    using dir = tempDir();
    const backupDir = join(dir.path, "backup");
    const victim = join(dir.path, "victim");
    for (const stamp of [OLDEST, OLDER, NEWEST]) placeValidSnapshot(backupDir, stamp);
    Deno.mkdirSync(join(backupDir, ".trash"));
    // what the victim holds: a folder of the second stamp's name, which a move out of `snapshots` would take
    Deno.mkdirSync(join(victim, OLDEST), { recursive: true });
    Deno.writeTextFileSync(join(victim, OLDEST, "keep.txt"), "root's own");
    const before = entriesBelow(victim);

    const keep = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
    // its third look, before the move: the listing looks at every snapshot first, then the quick validation
    const held = join(backupDir, "snapshots", OLDEST);
    const swap = { held, swapped: join(backupDir, folder), victim, calls: LOOKS, when: 3 };
    const run = await runSwapped(["cleanup", "--confirm", ...keep], { ATOCORE_BACKUP_DIR: backupDir }, swap);
    assert.ok(run.swapped, `the cleanup ended before it removed ${OLDEST}: ${run.output}`);
    assert.deepEqual(entriesBelow(victim), before, `moved or removed in the link's target: ${run.output}`);
    const refusal = `${OLDEST}: could not move .* out of snapshots/: .*${folder} is a symbolic link or not a folder`;
    assert.match(run.output, new RegExp(refusal));
  });
}

Deno.test("integrity swapped for a link while create checks it before writing its record: the link's target untouched (needs strace)", async () => {
  if (!toolFor("strace", "integrity swapped during create")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using victim = tempDir("atocore-victim-");
  const first = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(first.code, 0, first.stderr);
  const integrity = join(store.backupDir, "integrity");
  const swap = { held: integrity, swapped: integrity, victim: victim.path, calls: LOOKS, after: true }; // it looked
  const run = await runSwapped(["create", "--chroma"], storeEnv(store), swap);
  assert.ok(run.swapped, `the create ended before it wrote its record: ${run.output}`);
  assert.deepEqual(entriesBelow(victim.path), [], `written through the link: ${run.output}`);
  assert.match(run.output, /"event":"integrity_record_not_written".*is a symbolic link/);
});

Deno.test("integrity swapped for a link once cleanup looked at it to prune records: the link's target untouched (needs strace)", async () => {
  if (!toolFor("strace", "integrity swapped during cleanup")) return;
  using dir = tempDir();
  const backupDir = join(dir.path, "backup");
  const victim = join(dir.path, "victim");
  for (const stamp of [OLDEST, OLDER, NEWEST]) placeValidSnapshot(backupDir, stamp);
  for (const folder of [join(backupDir, "integrity"), victim]) {
    Deno.mkdirSync(folder);
    Deno.writeTextFileSync(join(folder, `${OLDEST}.json`), "{}\n"); // the record of a snapshot the cleanup removes
  }
  const keep = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const integrity = join(backupDir, "integrity");
  const swap = { held: integrity, swapped: integrity, victim, calls: LOOKS, after: true };
  const run = await runSwapped(["cleanup", "--confirm", ...keep], { ATOCORE_BACKUP_DIR: backupDir }, swap);
  assert.ok(run.swapped, `the cleanup ended before it pruned the records: ${run.output}`);
  assert.deepEqual(entriesBelow(victim), [`${OLDEST}.json`], `removed in the link's target: ${run.output}`);
  // the records are pruned in `integrity` as opened after that look: the link refused, the record kept for the next run
  assert.deepEqual(entriesBelow(`${integrity}-aside`), [`${OLDEST}.json`]);
});
