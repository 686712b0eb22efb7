/**
 * Damaged snapshots: one byte flipped in each kind of file, files truncated or
 * deleted, metadata that is not JSON or whose paths point outside the snapshot.
 * `validate` names each problem and exits 1; `restore` refuses (exit 3); nothing
 * live changes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { moduleSnapshot, relocateSnapshot, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entryNames, faultSeed, liveDigest, seededRandom } from "../_faults.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { validateSnapshotAt } from "../../src/ops/validate.ts";
import { readIntegrityRecord } from "../../src/snapshot/integrity_record.ts";
import { metadataDigest } from "../../src/snapshot/binding.ts";

/** A way to damage the snapshot at `root`, and the problems validate must name. */
interface Damage {
  name: string;
  damage(root: string, random: () => number): void;
  expect: RegExp[];
}

const SEGMENT = "chroma/00000000-5e9a-4c1d-8f00-000000000000";
const DB = "db/atocore.db";
const REGISTRY = "config/project-registry.json";
const METADATA = "backup-metadata.json";
const CHROMA_DB = "chroma/chroma.sqlite3";

function flipByte(path: string, offset: number): void {
  const bytes = Deno.readFileSync(path);
  bytes[offset] ^= 0xff;
  Deno.writeFileSync(path, bytes);
}

function flipRandomByte(path: string, random: () => number): void {
  flipByte(path, Math.floor(random() * Deno.statSync(path).size));
}

function truncateToHalf(path: string): void {
  Deno.truncateSync(path, Math.floor(Deno.statSync(path).size / 2));
}

/** Zero the database's second page (the first below the schema), keeping its size: `integrity_check` fails. */
function zeroSecondPage(path: string): void {
  using file = Deno.openSync(path, { read: true, write: true });
  const header = new Uint8Array(18);
  file.readSync(header);
  const pageSize = (header[16] << 8 | header[17]) === 1 ? 65536 : header[16] << 8 | header[17];
  file.seekSync(pageSize, Deno.SeekMode.Start);
  file.writeSync(new Uint8Array(pageSize));
}

/**
 * Change the metadata; with `rebind`, recompute its digest as an editor who knows the format would, so that only the
 * other checks stand between the edit and a restore.
 */
function editMetadata(
  root: string,
  change: (metadata: Record<string, unknown>) => void,
  options: { rebind?: boolean } = {},
): void {
  const path = join(root, METADATA);
  const metadata = JSON.parse(Deno.readTextFileSync(path));
  change(metadata);
  if (options.rebind) metadata.metadata_sha256 = metadataDigest(metadata);
  Deno.writeTextFileSync(path, JSON.stringify(metadata, null, 2));
}

/** The absolute path of `relative` in the snapshot as its metadata records it (under its `backup_root`). */
function ownPath(metadata: Record<string, unknown>, relative: string): string {
  return join(String(metadata.backup_root), relative);
}

/** Every damage, each applied to a fresh copy of a good snapshot. */
const DAMAGES: Damage[] = [
  {
    name: "database: one byte flipped",
    damage: (root, random) => flipRandomByte(join(root, DB), random),
    expect: [/manifest_sha256_mismatch: db\/atocore\.db/],
  },
  {
    name: "database: header byte flipped",
    damage: (root) => flipByte(join(root, DB), 0),
    expect: [/db_(open_failed|integrity_check_failed)/, /manifest_sha256_mismatch: db\/atocore\.db/],
  },
  {
    name: "registry: one byte flipped",
    damage: (root, random) => flipRandomByte(join(root, REGISTRY), random),
    expect: [/manifest_sha256_mismatch: config\/project-registry\.json/],
  },
  {
    name: "Chroma segment: one byte flipped",
    damage: (root, random) => flipRandomByte(join(root, SEGMENT, "data_level0.bin"), random),
    expect: [/manifest_sha256_mismatch: chroma\/.*\/data_level0\.bin/],
  },
  {
    name: "Chroma database: one byte flipped",
    damage: (root, random) => flipRandomByte(join(root, "chroma/chroma.sqlite3"), random),
    expect: [/manifest_sha256_mismatch: chroma\/chroma\.sqlite3/],
  },
  {
    name: "metadata: a manifest hash altered",
    damage: (root) =>
      editMetadata(root, (metadata) => {
        const [first] = metadata.manifest as { sha256: string }[];
        first.sha256 = first.sha256.replace(/^./, (digit) => digit === "0" ? "1" : "0");
      }),
    expect: [/manifest_sha256_mismatch: /],
  },
  {
    name: "metadata: first byte flipped (not JSON)",
    damage: (root) => flipByte(join(root, METADATA), 0),
    expect: [/metadata_invalid_json/],
  },
  {
    name: "database: truncated to half",
    damage: (root) => truncateToHalf(join(root, DB)),
    expect: [/db_(open_failed|integrity_check_failed)/, /manifest_size_mismatch .*: db\/atocore\.db/],
  },
  {
    name: "Chroma segment: truncated to half",
    damage: (root) => truncateToHalf(join(root, SEGMENT, "data_level0.bin")),
    expect: [/manifest_size_mismatch .*: chroma\/.*\/data_level0\.bin/],
  },
  {
    name: "registry: emptied",
    damage: (root) => Deno.truncateSync(join(root, REGISTRY), 0),
    expect: [/registry_invalid_json/, /manifest_size_mismatch .*: config\/project-registry\.json/],
  },
  {
    name: "metadata: truncated to half",
    damage: (root) => truncateToHalf(join(root, METADATA)),
    expect: [/metadata_invalid_json/],
  },
  {
    name: "database: deleted",
    damage: (root) => Deno.removeSync(join(root, DB)),
    expect: [/db_snapshot_missing/, /manifest_file_missing: db\/atocore\.db/],
  },
  {
    name: "registry: deleted",
    damage: (root) => Deno.removeSync(join(root, REGISTRY)),
    expect: [/registry_snapshot_missing/, /manifest_file_missing: config\/project-registry\.json/],
  },
  {
    name: "Chroma segment file: deleted",
    damage: (root) => Deno.removeSync(join(root, SEGMENT, "header.bin")),
    expect: [/manifest_file_missing: chroma\/.*\/header\.bin/],
  },
  {
    name: "Chroma folder: deleted",
    damage: (root) => Deno.removeSync(join(root, "chroma"), { recursive: true }),
    expect: [/chroma_snapshot_missing/, /manifest_file_missing: chroma\//],
  },
  {
    name: "metadata: deleted",
    damage: (root) => Deno.removeSync(join(root, METADATA)),
    expect: [/metadata_missing/],
  },
  {
    name: "metadata: not JSON",
    damage: (root) => Deno.writeTextFileSync(join(root, METADATA), "this is not json\n"),
    expect: [/metadata_invalid_json/],
  },
  {
    name: "metadata: a JSON list, not an object",
    damage: (root) => Deno.writeTextFileSync(join(root, METADATA), "[1, 2]\n"),
    expect: [/metadata_invalid_json/],
  },
  {
    name: "metadata: database path is /etc/passwd",
    damage: (root) => editMetadata(root, (metadata) => metadata.db_snapshot_path = "/etc/passwd"),
    expect: [/db_snapshot_path_not_in_layout: \/etc\/passwd/, /metadata_digest_mismatch/],
  },
  {
    name: "metadata: backup root / and database path /etc/passwd",
    damage: (root) =>
      editMetadata(root, (metadata) => {
        metadata.backup_root = "/";
        metadata.db_snapshot_path = "/etc/passwd";
      }),
    expect: [/db_snapshot_path_not_in_layout: \/etc\/passwd/, /metadata_digest_mismatch/],
  },
  {
    name: "metadata: registry path is ../../x",
    damage: (root) => editMetadata(root, (metadata) => metadata.registry_snapshot_path = "../../x"),
    expect: [/registry_snapshot_path_not_in_layout: \.\.\/\.\.\/x/],
  },
  {
    name: "metadata: Chroma path is /etc",
    damage: (root) => editMetadata(root, (metadata) => metadata.chroma_snapshot_path = "/etc"),
    expect: [/chroma_snapshot_path_not_in_layout: \/etc/],
  },
  {
    name: "metadata: database path is the snapshot's own chroma/chroma.sqlite3 (issue 10, point 6)",
    damage: (root) => editMetadata(root, (metadata) => metadata.db_snapshot_path = ownPath(metadata, CHROMA_DB)),
    expect: [/db_snapshot_path_not_in_layout: \/.*\/chroma\/chroma\.sqlite3/, /metadata_digest_mismatch/],
  },
  {
    name: "metadata: database path is chroma/chroma.sqlite3, digest recomputed",
    damage: (root) =>
      editMetadata(root, (metadata) => metadata.db_snapshot_path = ownPath(metadata, CHROMA_DB), { rebind: true }),
    expect: [/db_snapshot_path_not_in_layout: \/.*\/chroma\/chroma\.sqlite3/],
  },
  {
    name: "metadata: database path is chroma/chroma.sqlite3, turned back into unbound format 1",
    damage: (root) =>
      editMetadata(root, (metadata) => {
        metadata.db_snapshot_path = ownPath(metadata, CHROMA_DB);
        metadata.format_version = 1;
        for (const key of ["db_journal_mode", "chroma_db_journal_mode", "metadata_sha256"]) delete metadata[key];
      }),
    expect: [/db_snapshot_path_not_in_layout: \/.*\/chroma\/chroma\.sqlite3/],
  },
  {
    name: "metadata: database path is a relative chroma/chroma.sqlite3",
    damage: (root) => editMetadata(root, (metadata) => metadata.db_snapshot_path = CHROMA_DB),
    expect: [/db_snapshot_path_not_in_layout: chroma\/chroma\.sqlite3/, /metadata_digest_mismatch/],
  },
  {
    name: "metadata: registry path is the database",
    damage: (root) => editMetadata(root, (metadata) => metadata.registry_snapshot_path = ownPath(metadata, DB)),
    expect: [/registry_snapshot_path_not_in_layout: \/.*\/db\/atocore\.db/, /metadata_digest_mismatch/],
  },
  {
    name: "metadata: Chroma path is another snapshot's Chroma",
    damage: (root) =>
      editMetadata(root, (metadata) => {
        metadata.chroma_snapshot_path = join(String(metadata.backup_root), "..", stampOf(0), "chroma");
      }),
    expect: [/chroma_snapshot_path_not_in_layout: /, /metadata_digest_mismatch/],
  },
  {
    name: "metadata: backup root and every path moved elsewhere together",
    damage: (root) =>
      editMetadata(root, (metadata) => {
        const from = String(metadata.backup_root);
        const to = join("/srv/elsewhere/snapshots", from.split("/").at(-1)!);
        for (const key of ["backup_root", "db_snapshot_path", "registry_snapshot_path", "chroma_snapshot_path"]) {
          metadata[key] = String(metadata[key]).replace(from, to);
        }
      }),
    expect: [/metadata_digest_mismatch/],
  },
  {
    name: "metadata: backup root relative",
    damage: (root) => editMetadata(root, (metadata) => metadata.backup_root = "snapshots/x", { rebind: true }),
    expect: [/backup_root_not_absolute/, /db_snapshot_path_not_in_layout/],
  },
  {
    name: "metadata: the live database's journal mode changed",
    damage: (root) => editMetadata(root, (metadata) => metadata.db_journal_mode = "rollback"),
    expect: [/metadata_digest_mismatch/],
  },
  {
    name: "metadata: digest removed",
    damage: (root) => editMetadata(root, (metadata) => delete metadata.metadata_sha256),
    expect: [/metadata_key_missing: metadata_sha256/],
  },
  {
    name: "metadata: a format from the future",
    damage: (root) => editMetadata(root, (metadata) => metadata.format_version = 99, { rebind: true }),
    expect: [/format_version_unsupported: 99/],
  },
  {
    name: "metadata: a manifest path leaves the snapshot",
    damage: (root) =>
      editMetadata(root, (metadata) => {
        const [first] = metadata.manifest as { path: string }[];
        first.path = "../../../../etc/passwd";
      }),
    expect: [/manifest_path_outside_snapshot: "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd"/, /manifest_unexpected_file: /],
  },
  {
    name: "metadata: a manifest path and the database path with a NUL byte",
    damage: (root) =>
      editMetadata(root, (metadata) => {
        const [first] = metadata.manifest as { path: string }[];
        first.path = `${first.path}\u0000/../../x`;
        metadata.db_snapshot_path = `${metadata.db_snapshot_path}\u0000`;
      }),
    expect: [/manifest_path_outside_snapshot: /, /db_snapshot_path_not_in_layout: .*\\u0000/],
  },
  {
    name: "database replaced by a link to a file outside",
    damage: (root) => {
      Deno.removeSync(join(root, DB));
      Deno.symlinkSync("/etc/passwd", join(root, DB));
    },
    expect: [/db_(open_failed|integrity_check_failed)|manifest_kind_mismatch: db\/atocore\.db/],
  },
  {
    name: "a file added",
    damage: (root) => Deno.writeTextFileSync(join(root, "config", "extra.json"), "{}"),
    expect: [/manifest_unexpected_file: config\/extra\.json/],
  },
];

/** Stamps for the damaged copies: one per damage, all in the past. */
function stampOf(index: number): string {
  return `20260101T00${String(Math.floor(index / 60)).padStart(2, "0")}${String(index % 60).padStart(2, "0")}Z`;
}

/** A store with one good snapshot and a damaged copy of it per damage, under its own stamp. */
async function damagedStore(seed: number) {
  const store = tempStore({ dbMiB: 2, chromaMiB: 1, seed: 3 });
  const created = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(created.code, 0, created.stderr);
  const good = (created.json as { backup_root: string }).backup_root;
  const random = seededRandom(seed);
  DAMAGES.forEach((damage, index) => {
    const root = join(store.backupDir, "snapshots", stampOf(index));
    new Deno.Command("cp", { args: ["-a", good, root] }).outputSync();
    relocateSnapshot(root); // a valid copy under its own stamp, then damaged
    damage.damage(root, random);
  });
  return store;
}

Deno.test("validate names every kind of damage and exits 1; nothing live changes", async () => {
  const seed = faultSeed();
  using store = await damagedStore(seed);
  const before = liveDigest(store);
  for (const [index, damage] of DAMAGES.entries()) {
    const run = await runCli(["validate", stampOf(index)], { env: storeEnv(store) });
    const label = `${damage.name} (replay with FAULT_SEED=${seed})`;
    assert.equal(run.code, 1, `validate did not fail: ${label}: ${run.stdout} ${run.stderr}`);
    const errors = (run.json as { errors: string[] }).errors;
    for (const expected of damage.expect) {
      assert.ok(errors.some((error) => expected.test(error)), `${label}: no error matches ${expected}: ${errors}`);
    }
  }
  assert.deepEqual(liveDigest(store), before, "live store changed");
});

Deno.test("restore refuses every damaged snapshot (exit 3), over the live store or --to; nothing changes", async () => {
  const seed = faultSeed();
  using store = await damagedStore(seed);
  using scratch = tempDir("atocore-restore-to-");
  const env = storeEnv(store);
  const before = liveDigest(store);
  const published = entryNames(join(store.backupDir, "snapshots"));
  for (const [index, damage] of DAMAGES.entries()) {
    const label = `${damage.name} (replay with FAULT_SEED=${seed})`;
    const live = await runCli(["restore", stampOf(index), "--confirm-service-stopped"], { env });
    assert.equal(live.code, 3, `restore did not refuse: ${label}: ${live.stderr}`);
    assert.match(live.stderr, /failed validation|not a snapshot/, label);
    const to = join(scratch.path, String(index));
    const elsewhere = await runCli(["restore", stampOf(index), "--to", to], { env });
    assert.equal(elsewhere.code, 3, `restore --to did not refuse: ${label}: ${elsewhere.stderr}`);
    assert.deepEqual(entryNames(to), [], `restore --to wrote something: ${label}`);
  }
  assert.deepEqual(liveDigest(store), before, "live store changed");
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), published, "a pre-restore snapshot was taken");
});

const METADATA_FLIPS = 200;

Deno.test("one byte flipped anywhere in the metadata is caught, informational text included (the digest)", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed);
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, seed: 5 });
  const created = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(created.code, 0, created.stderr);
  const { backup_root: root, stamp } = created.json as { backup_root: string; stamp: string };
  const path = join(root, METADATA);
  const original = Deno.readFileSync(path);
  const text = new TextDecoder().decode(original);
  const driver = openDriver("auto");
  for (let flip = 0; flip < METADATA_FLIPS; flip++) {
    const offset = Math.floor(random() * original.length);
    const damaged = original.slice();
    damaged[offset] ^= 0xff;
    Deno.writeFileSync(path, damaged);
    const result = await validateSnapshotAt(root, stamp, { driver });
    const context = JSON.stringify(text.slice(Math.max(0, offset - 30), offset + 5));
    assert.equal(result.valid, false, `flip at ${offset} passed validation (seed ${seed}): ${context}`);
  }
  Deno.writeFileSync(path, original);
  assert.equal((await validateSnapshotAt(root, stamp, { driver })).valid, true, "the original is valid again");
  console.log(`metadata: ${METADATA_FLIPS} flips (seed ${seed}), every one caught`);
});

Deno.test("a module snapshot (no manifest, no digest) whose paths leave the layout is refused; moved whole, it validates", async () => {
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.2, segments: 1 });
  const env = storeEnv(store);
  const stamp = await moduleSnapshot(store, "module snapshot metadata edits");
  const root = join(store.backupDir, "snapshots", stamp);
  const original = Deno.readTextFileSync(join(root, METADATA));
  const before = liveDigest(store);
  const edits: [string, (metadata: Record<string, unknown>) => void, RegExp][] = [
    ["database path is chroma/chroma.sqlite3", (m) => m.db_snapshot_path = ownPath(m, CHROMA_DB), /db_snapshot_path/],
    ["registry path is the database", (m) => m.registry_snapshot_path = ownPath(m, DB), /registry_snapshot_path/],
    ["Chroma path is the db folder", (m) => m.chroma_snapshot_path = ownPath(m, "db"), /chroma_snapshot_path/],
    ["backup root moved alone", (m) => m.backup_root = "/srv/elsewhere/snapshots/x", /db_snapshot_path/],
  ];
  for (const [name, edit, expected] of edits) {
    Deno.writeTextFileSync(join(root, METADATA), original);
    editMetadata(root, edit);
    const validated = await runCli(["validate", stamp], { env });
    assert.equal(validated.code, 1, `${name}: ${validated.stdout}`);
    const errors = (validated.json as { errors: string[] }).errors;
    assert.ok(errors.some((error) => new RegExp(`${expected.source}_not_in_layout`).test(error)), `${name}: ${errors}`);
    const restored = await runCli(["restore", stamp, "--confirm-service-stopped"], { env });
    assert.equal(restored.code, 3, `${name}: restore must refuse: ${restored.stderr}`);
  }
  assert.deepEqual(liveDigest(store), before, "live store changed");
  Deno.writeTextFileSync(join(root, METADATA), original);
  editMetadata(root, (metadata) => {
    const from = String(metadata.backup_root);
    for (const key of ["backup_root", "db_snapshot_path", "registry_snapshot_path", "chroma_snapshot_path"]) {
      metadata[key] = String(metadata[key]).replace(from, `/srv/elsewhere/snapshots/${stamp}`);
    }
  });
  const moved = await runCli(["validate", stamp], { env });
  assert.equal(moved.code, 0, `recorded paths moved together still map into the layout: ${moved.stdout}`);
  assert.equal((moved.json as { metadata_bound: unknown }).metadata_bound, null, "a module snapshot has no digest");
});

Deno.test("a database a push's check vouches for is checked again unless the caller proves its bytes", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0, seed: 6 });
  const created = await runCli(["create"], { env: storeEnv(store) });
  assert.equal(created.code, 0, created.stderr);
  const { backup_root: root, stamp } = created.json as { backup_root: string; stamp: string };
  const db = "db/atocore.db";
  truncateToHalf(join(root, db));
  const driver = openDriver("auto");
  const integrityChecked = new Set([db]);
  const unproven = await validateSnapshotAt(root, stamp, { driver, integrityChecked });
  assert.ok(
    unproven.errors.some((error) => /^db_(open_failed|integrity_check_failed)/.test(error)),
    unproven.errors.join(),
  );
  assert.equal(unproven.integrity_checked_by_push, undefined);
  // proven (here falsely: the manifest's hash stands in for a fetch's proof), the check is the push's, not run again
  const manifest = JSON.parse(Deno.readTextFileSync(join(root, METADATA))).manifest as {
    path: string;
    sha256: string;
  }[];
  const verified = new Map([[db, manifest.find((entry) => entry.path === db)!.sha256]]);
  const proven = await validateSnapshotAt(root, stamp, { driver, integrityChecked, verified });
  assert.deepEqual(proven.integrity_checked_by_push, [db]);
  assert.ok(!proven.errors.some((error) => error.startsWith("db_")), proven.errors.join());
});

Deno.test("create's record spares a push's check only for the bytes the manifest lists; their damage is still found", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, seed: 7 });
  const created = await runCli(["create", "--chroma"], { env: storeEnv(store) });
  assert.equal(created.code, 0, created.stderr);
  const { backup_root: root, stamp } = created.json as { backup_root: string; stamp: string };
  const manifest = JSON.parse(Deno.readTextFileSync(join(root, METADATA))).manifest as {
    path: string;
    sha256: string;
  }[];
  const listed = (path: string) => manifest.find((entry) => entry.path === path)!.sha256;
  const db = "db/atocore.db";
  const record = readIntegrityRecord(store.backupDir, stamp);
  assert.deepEqual(record, new Map([["chroma/chroma.sqlite3", listed("chroma/chroma.sqlite3")], [db, listed(db)]]));
  zeroSecondPage(join(root, db));
  const driver = openDriver("auto");
  const spared = await validateSnapshotAt(root, stamp, { driver, checkedAtCreate: record });
  assert.deepEqual(spared.integrity_checked_at_create?.toSorted(), ["chroma/chroma.sqlite3", db]);
  assert.deepEqual(spared.errors, [`manifest_sha256_mismatch: ${db}`], "the damage is the manifest's finding");
  const otherBytes = new Map([[db, "0".repeat(64)]]);
  const checked = await validateSnapshotAt(root, stamp, { driver, quick: true, checkedAtCreate: otherBytes });
  assert.equal(checked.integrity_checked_at_create, undefined, "a record of other bytes spares nothing");
  assert.ok(
    checked.errors.some((error) => /^db_(open_failed|integrity_check_failed)/.test(error)),
    checked.errors.join(),
  );
});
