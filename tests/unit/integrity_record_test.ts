import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkedBytes,
  pruneIntegrityRecords,
  readIntegrityRecord,
  writeIntegrityRecord,
} from "../../src/snapshot/integrity_record.ts";
import { integrityRecordPath, integrityRecordsDir, snapshotDir } from "../../src/snapshot/layout.ts";
import { tempDir } from "../_helpers.ts";

const STAMP = "20261129T010203Z";
const DB_SHA = "a".repeat(64);
const CHROMA_SHA = "b".repeat(64);
const checked = new Map([["db/atocore.db", DB_SHA], ["chroma/chroma.sqlite3", CHROMA_SHA]]);

Deno.test("integrity record: what create writes is what a push reads back; nothing for an empty record", () => {
  using dir = tempDir();
  assert.deepEqual(readIntegrityRecord(dir.path, STAMP), new Map(), "no record: nothing vouched");
  assert.equal(writeIntegrityRecord(dir.path, STAMP, new Map()), null);
  assert.deepEqual(readIntegrityRecord(dir.path, STAMP), new Map(), "nothing to record: nothing written");
  assert.equal(writeIntegrityRecord(dir.path, STAMP, checked), null);
  assert.deepEqual(readIntegrityRecord(dir.path, STAMP), checked);
  assert.deepEqual(readIntegrityRecord(dir.path, "20261129T010204Z"), new Map(), "another snapshot's is not read");
});

Deno.test("integrity record: hand-edited, damaged or out-of-place records vouch for nothing (or only what is well formed)", () => {
  using dir = tempDir();
  writeIntegrityRecord(dir.path, STAMP, checked);
  const path = integrityRecordPath(dir.path, STAMP);
  const edit = (text: string) => Deno.writeTextFileSync(path, text);
  edit(JSON.stringify({ format: 1, sha256: { "db/atocore.db": "not-a-hash", "chroma/chroma.sqlite3": CHROMA_SHA } }));
  assert.deepEqual(readIntegrityRecord(dir.path, STAMP), new Map([["chroma/chroma.sqlite3", CHROMA_SHA]]));
  for (const text of ["{", "null", JSON.stringify({ format: 2, sha256: {} }), JSON.stringify({ format: 1 })]) {
    edit(text);
    assert.deepEqual(readIntegrityRecord(dir.path, STAMP), new Map(), text);
  }
  Deno.removeSync(path);
  const elsewhere = join(dir.path, "elsewhere.json");
  Deno.writeTextFileSync(elsewhere, JSON.stringify({ format: 1, sha256: { "db/atocore.db": DB_SHA } }));
  Deno.symlinkSync(elsewhere, path);
  assert.deepEqual(readIntegrityRecord(dir.path, STAMP), new Map(), "a link in place of a record is not followed");
});

Deno.test("integrity record: a link where its folder should be is neither written through nor read", () => {
  using dir = tempDir();
  using outside = tempDir();
  Deno.symlinkSync(outside.path, integrityRecordsDir(dir.path));
  assert.equal(
    writeIntegrityRecord(dir.path, STAMP, checked),
    `${integrityRecordsDir(dir.path)} is a symbolic link`,
  );
  assert.deepEqual([...Deno.readDirSync(outside.path)], [], "nothing written where the link points");
  Deno.writeTextFileSync(join(outside.path, `${STAMP}.json`), JSON.stringify({ format: 1, sha256: { x: DB_SHA } }));
  assert.deepEqual(readIntegrityRecord(dir.path, STAMP), new Map());
});

Deno.test("integrity record: cleanup's prune removes the records of snapshots gone, and nothing else", () => {
  using dir = tempDir();
  const kept = "20261129T010204Z";
  writeIntegrityRecord(dir.path, STAMP, checked);
  writeIntegrityRecord(dir.path, kept, checked);
  Deno.mkdirSync(snapshotDir(dir.path, kept), { recursive: true });
  const folder = integrityRecordsDir(dir.path);
  Deno.writeTextFileSync(join(folder, "notes.txt"), "mine");
  Deno.writeTextFileSync(join(folder, `.${STAMP}.json.tmp-123-abcdef01`), "{"); // a killed create's
  Deno.symlinkSync(join(dir.path, "nowhere"), join(folder, "20261129T010205Z.json"));
  pruneIntegrityRecords(dir.path);
  assert.deepEqual(
    [...Deno.readDirSync(folder)].map((entry) => entry.name).sort(),
    ["20261129T010204Z.json", "20261129T010205Z.json", "notes.txt"],
  );
});

Deno.test("integrity record: only a database checked with the identity it had when hashed is recorded", () => {
  const manifest = [
    { path: "db/atocore.db", size: 1, sha256: DB_SHA },
    { path: "chroma/chroma.sqlite3", size: 1, sha256: CHROMA_SHA },
    { path: "config/project-registry.json", size: 1, sha256: "c".repeat(64) },
  ];
  const before = new Map([["db/atocore.db", "1:2:3"], ["chroma/chroma.sqlite3", "1:4:5"]]);
  assert.deepEqual(
    checkedBytes(manifest, before, new Map([["db/atocore.db", "1:2:3"]])),
    new Map([["db/atocore.db", DB_SHA]]),
  );
  assert.deepEqual(checkedBytes(manifest, before, new Map([["chroma/chroma.sqlite3", "1:4:6"]])), new Map(), "changed");
  assert.deepEqual(
    checkedBytes(manifest, new Map([["db/atocore.db", null]]), new Map([["db/atocore.db", "1:2:3"]])),
    new Map(),
  );
});
