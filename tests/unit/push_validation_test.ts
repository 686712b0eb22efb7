/**
 * A push's validation beside it (`src/ops/push_validation.ts`) on real snapshots: a damaged database makes it fail
 * without waiting for the push's reading, so the push stops at its next safe point; a snapshot folder gone under it
 * leaves the push's own error to speak; a file the push found unlike the manifest is one of its errors.
 *
 * @module
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { resolveConfig } from "../../src/config.ts";
import { fileIdentity } from "../../src/fs/file_identity.ts";
import { CheckedAtCreate, ValidationBeside } from "../../src/ops/push_validation.ts";
import { sha256Hex } from "../../src/repo/sealing.ts";
import { integrityRecordPath } from "../../src/snapshot/layout.ts";
import { readIntegrityRecord, writeIntegrityRecord } from "../../src/snapshot/integrity_record.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { createdStamp, relocateSnapshot, storeEnv, tempStore } from "../_helpers.ts";

/** `promise`, or a failure naming `what` after 20 s: a validation waiting for a push that will never come. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error(`${what}: still waiting`)), 20_000)
  );
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

Deno.test("push validation: a damaged database fails it at once, without the push's file hashes, and closes the gate", async () => {
  using store = tempStore({ dbMiB: 2, chromaMiB: 0.5 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const config = resolveConfig({}, env, "/");
  const root = join(config.backupDir.path, "snapshots", stamp);
  const dbEntry = `db/${basename(store.db)}`;
  const db = join(root, dbEntry);
  using file = Deno.openSync(db, { write: true });
  file.seekSync(file.statSync().size - 8 * 4096, Deno.SeekMode.Start);
  file.writeSync(new Uint8Array(64).fill(0xee));
  const metadata = JSON.parse(Deno.readTextFileSync(join(root, "backup-metadata.json")));
  const manifest = metadata.manifest.map((entry: { path: string }) =>
    entry.path === dbEntry ? { ...entry, sha256: sha256Hex(Deno.readFileSync(db)) } : entry
  );
  relocateSnapshot(root, { manifest });
  const validation = new ValidationBeside(config, stamp, openDriver("auto"), false);
  const errors = await within(validation.errors, "the validation of a damaged database");
  assert.match(errors.join("\n"), /^db_integrity_check_failed: /m);
  assert.throws(() => validation.check(), "the gate closes: the push stops at its next safe point");
  await assert.rejects(validation.passed(new Map()));
});

Deno.test("push validation: a valid snapshot waits for the push's hashes; a push that ends early gets sizes only, and its own error when the folder is gone", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.5 });
  const env = storeEnv(store);
  const config = resolveConfig({}, env, "/");
  const stamp = await createdStamp(env);
  const validation = new ValidationBeside(config, stamp, openDriver("auto"), false);
  validation.check(); // open while it runs
  const settled = await Promise.race([
    validation.errors.then(() => "done"),
    new Promise((r) => setTimeout(r, 300, "waiting")),
  ]);
  assert.equal(settled, "waiting", "a deep validation waits for the files the push reads");
  await validation.passed(new Map()); // nothing read by the push: the validation hashes every file itself
  assert.deepEqual(await validation.errors, []);

  const edited = await createdStamp(env);
  const registry = join(config.backupDir.path, "snapshots", edited, "config", "project-registry.json");
  Deno.writeTextFileSync(registry, Deno.readTextFileSync(registry).replace("atlas", "ATLAS")); // same size
  const stopped = new ValidationBeside(config, edited, openDriver("auto"), false);
  stopped.release(); // the push failed before it read the registry: sizes only, so the push's finding is added
  assert.deepEqual(await stopped.verdict(null), []);
  assert.deepEqual(await stopped.verdict("config/project-registry.json"), [
    "manifest_sha256_mismatch: config/project-registry.json",
  ]);

  const gone = await createdStamp(env);
  const vanishing = new ValidationBeside(config, gone, openDriver("auto"), false);
  Deno.removeSync(join(config.backupDir.path, "snapshots", gone), { recursive: true });
  vanishing.release();
  assert.deepEqual(await vanishing.verdict(null), [], "no raw error of its own: the push's error says what happened");
});

Deno.test("push validation: a snapshot gone before it starts is named with the list that reaches the --backup-dir given", async () => {
  using store = tempStore({ dbMiB: 1 });
  const backupDir = join(store.dataDir, "back ups"); // a word a shell splits
  const config = resolveConfig({ backupDir }, storeEnv(store), "/");
  const stamp = "20260409T010203Z"; // removed by a cleanup between the push's look and its validation
  const validation = new ValidationBeside(config, stamp, openDriver("auto"), false);
  await assert.rejects(
    validation.errors,
    (error: Error) => {
      const list = `see the snapshots with: atocore-backup list --backup-dir '${backupDir}'`;
      assert.equal(error.message, `no snapshot ${stamp} in ${join(backupDir, "snapshots")}; ${list}`);
      return true;
    },
  );
});

Deno.test("push validation: a database the push read is the bytes create checked, or the file checked, or the snapshot is refused", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.5 });
  const env = storeEnv(store);
  const config = resolveConfig({}, env, "/");
  const stamp = await createdStamp(env);
  const dbEntry = `db/${basename(store.db)}`;
  const db = join(config.backupDir.path, "snapshots", stamp, dbEntry);
  const manifest = JSON.parse(
    Deno.readTextFileSync(join(config.backupDir.path, "snapshots", stamp, "backup-metadata.json")),
  ).manifest as { path: string; sha256: string }[];
  const sha256 = manifest.find((entry) => entry.path === dbEntry)!.sha256;
  const identity = fileIdentity(Deno.lstatSync(db));

  // create's record of the bytes it checked vouches for the same bytes read, by their SHA-256, whatever the file
  const recorded = new ValidationBeside(config, stamp, openDriver("auto"), false);
  const copy = new Map([[dbEntry, { sha256, identity: `${identity}:a copy of it` }]]);
  assert.deepEqual(await recorded.passed(copy), [dbEntry], "the record spares the check, Chroma's too (not read)");
  Deno.removeSync(integrityRecordPath(config.backupDir.path, stamp));

  const same = new ValidationBeside(config, stamp, openDriver("auto"), false);
  const vouched = await same.passed(new Map([[dbEntry, { sha256, identity }]]));
  assert.deepEqual(vouched, [dbEntry], "the check vouches for the database read, not for Chroma's, not read");
  assert.deepEqual(await same.verdict(null), []);

  const other = new ValidationBeside(config, stamp, openDriver("auto"), false);
  const swapped = new Map([[dbEntry, { sha256, identity: `${identity}:another inode` }]]);
  await assert.rejects(other.passed(swapped));
  assert.deepEqual(await other.verdict(null), [`file_replaced_during_push: ${dbEntry}`]);
});

Deno.test("push validation: create --push vouches by create's record for the bytes read, and a deep push trusts it where --quick does not", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.5 });
  const env = storeEnv(store);
  const config = resolveConfig({}, env, "/");
  const stamp = await createdStamp(env);
  const root = join(config.backupDir.path, "snapshots", stamp);
  const dbEntry = `db/${basename(store.db)}`;
  const recorded = readIntegrityRecord(config.backupDir.path, stamp);
  const identity = "1:2:3";
  const read = (sha256: string) => new Map([[dbEntry, { sha256, identity }]]);
  const atCreate = new CheckedAtCreate(config, stamp);
  assert.deepEqual(await atCreate.passed(read(recorded.get(dbEntry)!)), [dbEntry]);
  assert.deepEqual(await atCreate.passed(read("0".repeat(64))), [], "other bytes than create checked");

  // a record is trusted as far as the snapshot's own manifest: one written for damaged bytes spares their check
  const db = join(root, dbEntry);
  using file = Deno.openSync(db, { write: true });
  file.seekSync(4096, Deno.SeekMode.Start);
  file.writeSync(new Uint8Array(4096));
  const damaged = sha256Hex(Deno.readFileSync(db));
  const metadata = JSON.parse(Deno.readTextFileSync(join(root, "backup-metadata.json")));
  relocateSnapshot(root, {
    manifest: metadata.manifest.map((entry: { path: string }) =>
      entry.path === dbEntry ? { ...entry, sha256: damaged } : entry
    ),
  });
  const damagedRead = new Map([[dbEntry, { sha256: damaged, identity: fileIdentity(Deno.lstatSync(db)) }]]);
  assert.deepEqual(await new CheckedAtCreate(config, stamp).passed(damagedRead), [], "the record is of other bytes");
  writeIntegrityRecord(config.backupDir.path, stamp, new Map([[dbEntry, damaged]]));
  const deep = new ValidationBeside(config, stamp, openDriver("auto"), false);
  assert.deepEqual(await deep.passed(damagedRead), [dbEntry]);
  const quick = new ValidationBeside(config, stamp, openDriver("auto"), true);
  assert.match((await quick.errors).join("\n"), /^db_(integrity_check_failed|open_failed): /m, "--quick checks");
});
