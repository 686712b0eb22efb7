/**
 * The backup folder's own folders on another filesystem (a tmpfs: a real EXDEV for any rename into them), through a
 * symbolic link or as a mount point: create and cleanup refuse before writing anything (exit 2), naming the folder
 * and the fix, where create used to fail with a bare "Invalid cross-device link"; list still lists, and warns.
 *
 * Needs root (to mount); skipped with a printed reason where mounting is not permitted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliRun, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, liveDigest, skipBecause } from "../_faults.ts";
import { mountTmpfs } from "../_mount.ts";

const SMALL = { dbMiB: 0.5, chromaMiB: 0.1, segments: 1 };

/** The one error line of a run (JSON event lines aside). */
function errorLine(run: CliRun): string {
  const lines = run.stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(lines.length, 1, `not one line of error: ${run.stderr}`);
  return lines[0];
}

/** Create, a dry-run and a confirmed cleanup refuse (exit 2) naming `folder`; list lists and warns. */
async function assertRefusedEverywhere(env: Record<string, string>, folder: string, what: RegExp): Promise<void> {
  for (const args of [["create", "--chroma"], ["cleanup"], ["cleanup", "--confirm"]]) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")}: exit ${run.code}: ${run.stderr}`);
    const line = errorLine(run);
    assert.ok(line.startsWith(`atocore-backup: error: ${folder} is `), line);
    assert.match(line, what);
    assert.match(line, /point --backup-dir \(ATOCORE_BACKUP_DIR\) at a folder on that disk/);
    assert.doesNotMatch(line, /cross-device|os error 18/);
  }
  const listed = await runCli(["list"], { env });
  assert.equal(listed.code, 0, listed.stderr);
  const { backups, warnings } = listed.json as { backups: unknown[]; warnings: string[] };
  assert.equal(backups.length, 1, "list still lists the snapshot already there");
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0].startsWith(`${folder} is `), warnings[0]);
  assert.match(listed.stderr, /backup_folder_misplaced/);
}

Deno.test("snapshots/ as a symbolic link to another filesystem: create and cleanup refuse, naming it; nothing is written", async () => {
  using store = tempStore(SMALL);
  using other = tempDir("atocore-other-fs-");
  const mounted = mountTmpfs(other.path, "16m");
  if (typeof mounted === "string") return skipBecause(mounted);
  using _mount = mounted;
  const env = storeEnv(store);
  const first = await runCli(["create"], { env });
  assert.equal(first.code, 0, first.stderr);
  const snapshots = join(store.backupDir, "snapshots");
  const copied = new Deno.Command("cp", { args: ["-a", snapshots, join(other.path, "snapshots-elsewhere")] });
  assert.ok(copied.outputSync().success);
  Deno.removeSync(snapshots, { recursive: true });
  Deno.symlinkSync(join(other.path, "snapshots-elsewhere"), snapshots);
  const before = liveDigest(store);
  await assertRefusedEverywhere(env, snapshots, /a symbolic link \(to .*snapshots-elsewhere\)/);
  assert.deepEqual(entryNames(join(other.path, "snapshots-elsewhere")), [(first.json as { stamp: string }).stamp]);
  assert.deepEqual(entryNames(join(store.backupDir, ".staging")), [], "something was staged");
  assert.deepEqual(liveDigest(store), before);

  // A link on the same filesystem is refused too: removals would still go through it, out of the backup folder.
  Deno.removeSync(snapshots);
  Deno.mkdirSync(join(store.dataDir, "same-fs"));
  Deno.symlinkSync(join(store.dataDir, "same-fs"), snapshots);
  const sameFs = await runCli(["create"], { env });
  assert.equal(sameFs.code, 2, sameFs.stderr);
  assert.match(errorLine(sameFs), /is a symbolic link/);

  // The fix the message gives: the backup folder itself on that disk.
  const moved = await runCli(["create", "--chroma", "--backup-dir", join(other.path, "backups")], { env });
  assert.equal(moved.code, 0, moved.stderr);
  assert.equal(entryNames(join(other.path, "backups", "snapshots")).length, 1);
});

for (const folder of ["snapshots", ".staging", "failed", ".trash"]) {
  Deno.test(`${folder}/ as a mount point of another filesystem: create and cleanup refuse, naming it`, async () => {
    using store = tempStore(SMALL);
    const env = storeEnv(store);
    const first = await runCli(["create"], { env });
    assert.equal(first.code, 0, first.stderr);
    const path = join(store.backupDir, folder);
    if (folder === "snapshots") Deno.renameSync(path, join(store.dataDir, "published"));
    Deno.mkdirSync(path, { recursive: true });
    const mounted = mountTmpfs(path, "16m");
    if (typeof mounted === "string") return skipBecause(mounted);
    using _mount = mounted;
    if (folder === "snapshots") {
      const stamp = (first.json as { stamp: string }).stamp;
      const copied = new Deno.Command("cp", { args: ["-a", join(store.dataDir, "published", stamp), path] });
      assert.ok(copied.outputSync().success);
    }
    const before = entryNames(path);
    await assertRefusedEverywhere(env, path, /on another filesystem than the backup folder \(a mount point\)/);
    assert.deepEqual(entryNames(path), before, "something was written on the other filesystem");
  });
}
