/**
 * A snapshot changed in the backup folder after the restore validated it (its database, registry or a Chroma file
 * replaced while the restore is stopped past `restore_snapshot_validated`) is refused (exit 3) before that part goes live.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, printedCommand, runPrinted, sqlite3Json, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, liveDigest, restoreStoppedAt } from "../_faults.ts";
import type { SampleStore } from "../../src/sample/store.ts";

/** A store with a snapshot (Chroma included), whose live database then gains a table the snapshot lacks. */
async function storeAheadOfSnapshot(): Promise<{ store: SampleStore & Disposable; stamp: string; snapshot: string }> {
  const store = tempStore();
  const stamp = await createdStamp(storeEnv(store));
  sqlite(store.db, "CREATE TABLE after_snapshot (x)");
  return { store, stamp, snapshot: join(store.backupDir, "snapshots", stamp) };
}

function sqlite(path: string, sql: string): void {
  const run = new Deno.Command("sqlite3", { args: [path, sql], stderr: "piped" }).outputSync();
  assert.ok(run.success, new TextDecoder().decode(run.stderr));
}

/** Put another SQLite database in place of `path`, by a rename (as a writer of the backup folder would). */
function swapForOtherDatabase(path: string): void {
  const other = `${path}.other`;
  sqlite(other, "CREATE TABLE other (x)");
  Deno.renameSync(other, path);
}

const REFUSED =
  /restore stopped while .*the snapshot file \S+ was copied with SHA-256 [0-9a-f]{64}, not the manifest's/;

Deno.test("a snapshot database replaced after the validation is refused, the live store unchanged", async () => {
  const { store, stamp, snapshot } = await storeAheadOfSnapshot();
  using _store = store;
  const before = liveDigest(store);
  const run = await restoreStoppedAt(
    store,
    [stamp, "--confirm-service-stopped"],
    "restore_snapshot_validated",
    () => swapForOtherDatabase(join(snapshot, "db", "atocore.db")),
  );
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, REFUSED);
  assert.match(run.stderr, new RegExp(`db/atocore\\.db .*validate ${stamp}`));
  assert.deepEqual(liveDigest(store), before);
});

Deno.test("the validate command the refusal prints runs as printed, on the backup folder the restore was given", async () => {
  const { store, stamp } = await storeAheadOfSnapshot();
  using _store = store;
  using elsewhere = tempDir();
  const backupDir = join(elsewhere.path, "backups"); // not the one the environment leads to
  Deno.mkdirSync(join(backupDir, "snapshots"), { recursive: true });
  Deno.renameSync(join(store.backupDir, "snapshots", stamp), join(backupDir, "snapshots", stamp));
  const run = await restoreStoppedAt(
    store,
    [stamp, "--confirm-service-stopped", "--backup-dir", backupDir],
    "restore_snapshot_validated",
    () => swapForOtherDatabase(join(backupDir, "snapshots", stamp, "db", "atocore.db")),
  );
  assert.equal(run.code, 3, run.stderr);
  const printed = printedCommand(run.stderr, "validate the snapshot first");
  assert.ok(printed !== null, run.stderr);
  const validated = await runPrinted(printed, storeEnv(store)); // pasted into a shell as it is
  assert.equal(validated.code, 1, `${printed}: ${validated.stderr}`);
  assert.match(validated.stdout + validated.stderr, new RegExp(`db/atocore\\.db`));
});

Deno.test("restore --to refuses a snapshot database replaced after the validation: none is put in DIR", async () => {
  const { store, stamp, snapshot } = await storeAheadOfSnapshot();
  using _store = store;
  using out = tempDir();
  const to = join(out.path, "out");
  const run = await restoreStoppedAt(
    store,
    [stamp, "--to", to],
    "restore_snapshot_validated",
    () => swapForOtherDatabase(join(snapshot, "db", "atocore.db")),
  );
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, REFUSED);
  assert.deepEqual(entryNames(to).filter((name) => name.endsWith(".db")), []);
});

Deno.test("a Chroma file rewritten in the snapshot after the validation is refused before the swap", async () => {
  const { store, stamp, snapshot } = await storeAheadOfSnapshot();
  using _store = store;
  const before = liveDigest(store);
  const file = join(snapshot, "chroma", "00000000-5e9a-4c1d-8f00-000000000000", "data_level0.bin");
  const run = await restoreStoppedAt(store, [stamp, "--confirm-service-stopped"], "restore_snapshot_validated", () => {
    const bytes = Deno.readFileSync(file);
    bytes[0] ^= 0xff; // same size, same inode: only its bytes tell
    Deno.writeFileSync(file, bytes);
  });
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, REFUSED);
  assert.match(run.stderr, /data_level0\.bin/);
  assert.deepEqual(
    liveDigest(store),
    before,
    "the database, the registry and Chroma (no staged copy left) as they were",
  );
});

Deno.test("a snapshot registry replaced after the validation is refused with the database already restored", async () => {
  const { store, stamp, snapshot } = await storeAheadOfSnapshot();
  using _store = store;
  const registry = Deno.readTextFileSync(store.registry);
  const [config] = entryNames(join(snapshot, "config"));
  const run = await restoreStoppedAt(
    store,
    [stamp, "--confirm-service-stopped", "--no-chroma"],
    "restore_snapshot_validated",
    () => {
      Deno.writeTextFileSync(join(snapshot, "config", `${config}.other`), '{"projects": []}');
      Deno.renameSync(join(snapshot, "config", `${config}.other`), join(snapshot, "config", config));
    },
  );
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /restore stopped while replacing the registry .*config\/project-registry\.json was copied/);
  assert.match(run.stderr, /changed so far: replaced the database .*; not changed: the registry /);
  assert.equal(Deno.readTextFileSync(store.registry), registry);
  assert.deepEqual(await sqlite3Json(store.db, "SELECT name FROM sqlite_master WHERE name = 'after_snapshot'"), []);
});
