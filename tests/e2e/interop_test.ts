/**
 * Interoperability with the reference module, both ways: this tool lists and
 * validates snapshots the module made (committed fixtures, made elsewhere, so
 * found only by relocation), and the module validates and lists a snapshot this
 * tool made. Regenerate the fixtures with `python3 scripts/make_module_fixtures.py`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createdStamp,
  MODULE_BACKUPS,
  referenceFor,
  runCli,
  runReference,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";

const FIXTURES = MODULE_BACKUPS;
const MADE_AT = "/tmp/atocore-module-fixtures";
const STAMPS = ["20260409T010203Z", "20260410T010203Z", "20260412T235959Z"];
const MODULE_KEYS = [
  "created_at",
  "backup_root",
  "db_snapshot_path",
  "db_size_bytes",
  "registry_snapshot_path",
  "chroma_snapshot_path",
  "chroma_snapshot_bytes",
  "chroma_snapshot_files",
  "chroma_snapshot_included",
  "vector_store_note",
];

/** A copy of the committed module snapshots in a temporary folder. */
function fixtureCopy(): { backupDir: string } & Disposable {
  const dir = tempDir();
  const backupDir = join(dir.path, "backups");
  assert.ok(new Deno.Command("cp", { args: ["-a", FIXTURES, backupDir] }).outputSync().success);
  return { backupDir, [Symbol.dispose]: () => dir[Symbol.dispose]() };
}

function sidecars(root: string): string[] {
  const output = new Deno.Command("find", { args: [root, "-name", "*-wal", "-o", "-name", "*-shm"] }).outputSync();
  return new TextDecoder().decode(output.stdout).split("\n").filter(Boolean);
}

Deno.test("the fixtures are the module's: WAL-mode databases, absolute paths to where they were made", () => {
  assert.throws(() => Deno.statSync(MADE_AT), Deno.errors.NotFound, "recorded paths must not exist here");
  for (const stamp of STAMPS) {
    const root = join(FIXTURES, "snapshots", stamp);
    const metadata = JSON.parse(Deno.readTextFileSync(join(root, "backup-metadata.json")));
    assert.deepEqual(Object.keys(metadata), MODULE_KEYS);
    assert.equal(metadata.backup_root, `${MADE_AT}/backups/snapshots/${stamp}`);
    const header = Deno.readFileSync(join(root, "db", "atocore.db")).subarray(18, 20);
    assert.deepEqual([...header], [2, 2], "the database copy says WAL mode");
  }
});

Deno.test("this tool lists the module's snapshots, without manifests, validity unknown", async () => {
  using copy = fixtureCopy();
  const run = await runCli(["list", "--json", "--backup-dir", copy.backupDir]);
  assert.equal(run.code, 0, run.stderr);
  const { backups } = run.json as { backups: Record<string, unknown>[] };
  assert.deepEqual(backups.map((entry) => entry.stamp), STAMPS);
  assert.deepEqual(backups.map((entry) => entry.chroma_included), [false, true, true]);
  for (const entry of backups) {
    assert.equal(entry.path, join(copy.backupDir, "snapshots", String(entry.stamp)));
    assert.equal(entry.has_metadata, true);
    assert.equal(entry.has_manifest, false);
    assert.equal(entry.validation, "unknown");
    const metadata = entry.metadata as Record<string, number>;
    assert.deepEqual(Object.keys(metadata), MODULE_KEYS);
    assert.equal(entry.size_bytes, metadata.db_size_bytes + metadata.chroma_snapshot_bytes);
  }
});

for (const driver of ["ffi", "builtin"]) {
  Deno.test(`this tool (${driver} driver) validates the module's snapshots from a copy, at the module's depth`, async () => {
    using copy = fixtureCopy();
    const run = await runCli([
      "validate",
      "--all",
      "--json",
      "--backup-dir",
      copy.backupDir,
      "--sqlite-driver",
      driver,
    ]);
    assert.equal(run.code, 0, run.stdout);
    const { results } = run.json as { results: Record<string, unknown>[] };
    assert.deepEqual(results.map((result) => result.stamp), STAMPS);
    for (const [index, result] of results.entries()) {
      assert.equal(result.valid, true);
      assert.equal(result.manifest_ok, null);
      assert.equal(result.db_ok, true);
      assert.equal(result.registry_ok, true);
      assert.equal(result.chroma_ok, index === 0 ? null : true);
      assert.equal(result.path, join(copy.backupDir, "snapshots", STAMPS[index]));
    }
    assert.deepEqual(sidecars(copy.backupDir), [], "the WAL-mode copies grew no -wal/-shm");
  });
}

Deno.test("damage to a module snapshot is still found: a broken database, a missing Chroma copy", async () => {
  using copy = fixtureCopy();
  const root = join(copy.backupDir, "snapshots", STAMPS[1]);
  Deno.writeFileSync(join(root, "db", "atocore.db"), new TextEncoder().encode("not a database file!"), {
    append: false,
  });
  Deno.removeSync(join(root, "chroma"), { recursive: true });
  const run = await runCli(["validate", STAMPS[1], "--json", "--backup-dir", copy.backupDir]);
  assert.equal(run.code, 1);
  const result = run.json as { errors: string[]; db_ok: boolean; chroma_ok: boolean };
  assert.equal(result.db_ok, false);
  assert.equal(result.chroma_ok, false);
  assert.ok(result.errors.some((error) => error.startsWith("db_open_failed: ")), String(result.errors));
  assert.ok(result.errors.includes("chroma_snapshot_missing"));
});

Deno.test("the module validates and lists a snapshot this tool made", async () => {
  if (!referenceFor("the module validates and lists a snapshot this tool made")) return;
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.1, segments: 1 });
  const stamp = await createdStamp(storeEnv(store));
  const validated = await runReference(["validate", stamp], store);
  assert.equal(validated.code, 0, validated.stderr);
  const result = validated.json as Record<string, unknown>;
  assert.deepEqual(
    { valid: result.valid, errors: result.errors, db_ok: result.db_ok, registry_ok: result.registry_ok },
    { valid: true, errors: [], db_ok: true, registry_ok: true },
  );
  assert.equal(result.chroma_ok, true);
  const listed = await runReference(["list"], store);
  const { backups } = listed.json as { backups: { stamp: string; has_metadata: boolean; metadata: unknown }[] };
  assert.deepEqual(backups.map((entry) => entry.stamp), [stamp]);
  assert.equal(backups[0].has_metadata, true);
  assert.equal((backups[0].metadata as { tool: string }).tool, "atocore-backup");
  assert.deepEqual(sidecars(store.backupDir), [], "the module's check left no sidecars either");
});
