/**
 * The tool's own folders in the backup folder (issue 10, point 5): a `.staging`, `.trash` or `failed` that is a
 * symbolic link is refused (exit 3) before anything is removed or written through it, and no removal follows a link.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { treeDigest } from "../_faults.ts";
import { exists } from "../../src/fs/probe.ts";
import { createdStamp, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";

/** A folder outside the backup folder holding what must survive: a file and a folder with a file. */
function victimFolder(parent: string): { path: string; digest: () => Record<string, string> } {
  const path = join(parent, "victim");
  Deno.mkdirSync(join(path, "20260101T000000Z.123-abcd"), { recursive: true });
  Deno.writeTextFileSync(join(path, "precious.txt"), "keep me");
  Deno.writeTextFileSync(join(path, "20260101T000000Z.123-abcd", "inside.txt"), "keep me too");
  return { path, digest: () => treeDigest(path) };
}

Deno.test("a .staging, .trash or failed folder that is a symbolic link is refused (exit 2); what it points to is kept", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using outside = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const victim = victimFolder(outside.path);
  const expected = victim.digest();
  assert.equal(Object.keys(expected).length, 2);
  const runs: [string, string[]][] = [
    [".staging", ["create"]],
    [".staging", ["restore", stamp, "--confirm-service-stopped"]],
    [".trash", ["cleanup", "--confirm"]],
    ["failed", ["create", "--chroma"]],
  ];
  for (const [name, args] of runs) {
    const link = join(store.backupDir, name);
    if (exists(link)) Deno.removeSync(link); // an empty folder left by the create above
    Deno.symlinkSync(victim.path, link);
    const snapshots = treeDigest(join(store.backupDir, "snapshots"));
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")} with ${name} linked must refuse: ${run.stderr}`);
    const errors = run.stderr.trim().split("\n").filter((line) => line.startsWith("atocore-backup: error:"));
    assert.equal(errors.length, 1, run.stderr);
    assert.ok(errors[0].includes(`${link} is a symbolic link (to ${victim.path})`), errors[0]);
    assert.deepEqual(victim.digest(), expected, `${args.join(" ")} left the linked folder's target alone`);
    assert.deepEqual(treeDigest(join(store.backupDir, "snapshots")), snapshots);
    Deno.removeSync(link);
  }
});

Deno.test("leftovers that are links, or hold links, are removed as links: nothing they point to is touched", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  using outside = tempDir();
  const env = storeEnv(store);
  await createdStamp(env, []);
  const victim = victimFolder(outside.path);
  const expected = victim.digest();
  const staging = join(store.backupDir, ".staging");
  Deno.mkdirSync(join(staging, "20260101T000000Z.1-dead"), { recursive: true });
  Deno.symlinkSync(victim.path, join(staging, "20260101T000000Z.1-dead", "chroma"));
  Deno.symlinkSync(victim.path, join(staging, "20260101T000000Z.2-link"));
  Deno.mkdirSync(join(store.backupDir, ".trash"), { recursive: true }); // made by the create above
  Deno.symlinkSync(join(victim.path, "precious.txt"), join(store.backupDir, ".trash", "20260101T000000Z.3-file"));

  const run = await runCli(["create"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr.match(/stale_leftover_removed/g)?.length, 3, run.stderr);
  assert.deepEqual(victim.digest(), expected);
  assert.deepEqual([...Deno.readDirSync(staging)], []);
  assert.deepEqual([...Deno.readDirSync(join(store.backupDir, ".trash"))], []);
});
