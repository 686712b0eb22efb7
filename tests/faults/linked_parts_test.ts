/**
 * A snapshot whose database, registry or Chroma database is a symbolic link to a file outside the backup folder:
 * validate names it and exits 1, restore refuses (exit 3) with the live store unchanged, drill fails.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { moduleSnapshot, relocateSnapshot, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { liveDigest } from "../_faults.ts";
import { metadataDigest } from "../../src/snapshot/binding.ts";

const PARTS: [string, string][] = [
  ["db/atocore.db", "db_snapshot_not_regular_file"],
  ["config/project-registry.json", "registry_snapshot_not_regular_file"],
  ["chroma/chroma.sqlite3", "chroma_db_snapshot_not_regular_file"],
];

/** Copy snapshot `from` to `stamp` and put a link to a copy of `relative` outside the backup folder in its place. */
function linkedCopy(backupDir: string, from: string, stamp: string, relative: string, outside: string): string {
  const root = join(backupDir, "snapshots", stamp);
  assert.ok(new Deno.Command("cp", { args: ["-a", join(backupDir, "snapshots", from), root] }).outputSync().success);
  relocateSnapshot(root);
  const target = join(outside, `${stamp}-${relative.replaceAll("/", "_")}`);
  Deno.copyFileSync(join(root, relative), target); // a valid file: only its being a link is wrong
  Deno.removeSync(join(root, relative));
  Deno.symlinkSync(target, join(root, relative));
  return target;
}

/** Record the link in the manifest and bind the metadata again, as a deliberate editor would. */
function recordLink(root: string, relative: string, target: string): void {
  const path = join(root, "backup-metadata.json");
  const metadata = JSON.parse(Deno.readTextFileSync(path));
  metadata.manifest = metadata.manifest.map((entry: { path: string }) =>
    entry.path === relative ? { path: relative, symlink: target } : entry
  );
  metadata.metadata_sha256 = metadataDigest(metadata);
  Deno.writeTextFileSync(path, JSON.stringify(metadata, null, 2));
}

async function assertRefused(
  env: Record<string, string>,
  stamp: string,
  relative: string,
  error: string,
  target: string,
) {
  const validated = await runCli(["validate", stamp], { env });
  assert.equal(validated.code, 1, `${relative}: validate must fail: ${validated.stdout}`);
  const errors = (validated.json as { errors: string[] }).errors;
  assert.ok(errors.includes(`${error}: symbolic link to ${target}`), `${relative}: ${JSON.stringify(errors)}`);
  const restored = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
  assert.equal(restored.code, 3, `${relative}: restore must refuse: ${restored.stderr}`);
  assert.match(restored.stderr, new RegExp(error));
  const drilled = await runCli(["drill", stamp], { env });
  assert.equal(drilled.code, 1, `${relative}: drill must fail: ${drilled.stdout}`);
}

Deno.test("a module snapshot whose database, registry or Chroma database links outside is refused", async () => {
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.2, segments: 1 });
  using outside = tempDir("atocore-outside-");
  const env = storeEnv(store);
  const stamp = await moduleSnapshot(store, "linked parts of a module snapshot");
  const before = liveDigest(store);
  for (const [index, [relative, error]] of PARTS.entries()) {
    const copy = `20260101T00000${index}Z`;
    const target = linkedCopy(store.backupDir, stamp, copy, relative, outside.path);
    await assertRefused(env, copy, relative, error, target);
  }
  assert.deepEqual(liveDigest(store), before, "live store changed");
});

Deno.test("this tool's snapshot with such a link recorded in its manifest (digest rebound) is refused", async () => {
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.2, segments: 1 });
  using outside = tempDir("atocore-outside-");
  const env = storeEnv(store);
  const created = await runCli(["create", "--chroma"], { env });
  assert.equal(created.code, 0, created.stderr);
  const stamp = (created.json as { backup_root: string }).backup_root.split("/").at(-1)!;
  const before = liveDigest(store);
  for (const [index, [relative, error]] of PARTS.entries()) {
    const copy = `20260101T00000${index}Z`;
    const target = linkedCopy(store.backupDir, stamp, copy, relative, outside.path);
    recordLink(join(store.backupDir, "snapshots", copy), relative, target);
    await assertRefused(env, copy, relative, error, target);
    const errors = (await runCli(["validate", copy], { env })).json as { errors: string[] };
    assert.ok(errors.errors.includes(`manifest_entry_not_regular_file: ${relative} is a symbolic link`));
  }
  assert.deepEqual(liveDigest(store), before, "live store changed");
});
