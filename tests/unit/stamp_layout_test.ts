/**
 * Stamps, the layout of a backup folder, how recorded paths are mapped into it, and the metadata's digest.
 */
import assert from "node:assert/strict";
import { isAbsolute, relative } from "node:path";
import { UsageError } from "../../src/errors.ts";
import {
  checkedStamp,
  failedDir,
  lockPath,
  snapshotDir,
  snapshotPaths,
  snapshotsDir,
  stagingDir,
  stagingRoot,
  trashDir,
  trashRoot,
} from "../../src/snapshot/layout.ts";
import { bindMetadata, checkBinding, DIGEST_KEY, metadataDigest } from "../../src/snapshot/binding.ts";
import {
  locatePart,
  MAX_SEQUENCE,
  sequenceOf,
  serializeMetadata,
  type SnapshotMetadata,
} from "../../src/snapshot/metadata.ts";
import { formatCreatedAt, formatStamp, isStamp, parseStamp } from "../../src/snapshot/stamp.ts";

const BACKUP = "/srv/backups";
const STAMP = "20260409T010203Z";
const NOT_STAMPS = [
  "",
  "../x",
  "..",
  "/etc",
  "x".repeat(300),
  `${STAMP}\0`,
  `${STAMP}\n`,
  `${STAMP}/..`,
  ` ${STAMP}`,
  "20260409t010203z",
  "2026-04-09T01:02:03Z",
  "20260409T010203",
  "202604090T10203Z",
  "２０２６0409T010203Z",
];

Deno.test("a time formats as a UTC stamp to the second and parses back", () => {
  const time = new Date(Date.UTC(2026, 3, 9, 1, 2, 3, 456));
  assert.equal(formatStamp(time), STAMP);
  assert.deepEqual(parseStamp(STAMP), new Date(Date.UTC(2026, 3, 9, 1, 2, 3)));
  for (const ms of [0, 951782400000, 1767225599999, 4102444800000]) {
    const stamp = formatStamp(new Date(ms));
    assert.equal(formatStamp(parseStamp(stamp)!), stamp);
    assert.equal(parseStamp(stamp)!.getTime(), Math.floor(ms / 1000) * 1000);
  }
  assert.equal(formatStamp(new Date(Date.UTC(9999, 11, 31, 23, 59, 59))), "99991231T235959Z");
  for (const wrong of [new Date(Date.UTC(10000, 2, 1)), new Date(NaN), new Date(-62198755200000)]) {
    assert.throws(() => formatStamp(wrong), /the system clock reads .* which no snapshot stamp .* set the clock right/);
  }
});

Deno.test("created_at is written the way Python's isoformat() writes an aware UTC time", () => {
  assert.equal(formatCreatedAt(new Date(Date.UTC(2026, 3, 9, 1, 2, 3, 456))), "2026-04-09T01:02:03.456000+00:00");
});

Deno.test("only calendar-valid stamps parse", () => {
  for (const valid of ["20240229T000000Z", "20261231T235959Z", "19991231T000000Z"]) {
    assert.ok(isStamp(valid), valid);
  }
  for (
    const invalid of [
      "20250229T000000Z",
      "20260230T000000Z",
      "20261301T000000Z",
      "20260001T000000Z",
      "20260400T000000Z",
      "20260101T240000Z",
      "20260101T006000Z",
      "20260101T000060Z",
    ]
  ) {
    assert.equal(parseStamp(invalid), null, invalid);
  }
});

Deno.test("text that is not a plain stamp is refused with a one-line usage error", () => {
  for (const text of NOT_STAMPS) {
    assert.equal(isStamp(text), false, JSON.stringify(text));
    assert.throws(() => snapshotDir(BACKUP, text), UsageError, JSON.stringify(text));
    assert.throws(() => stagingDir(BACKUP, text), UsageError);
    assert.throws(() => trashDir(BACKUP, text), UsageError);
    assert.throws(() => failedDir(BACKUP, text), UsageError);
    try {
      checkedStamp(text);
    } catch (error) {
      const message = (error as Error).message;
      assert.ok(!/[\n\0]/.test(message), `one line, no NUL: ${JSON.stringify(message)}`);
      assert.ok(message.length < 200, "a 300-character argument is not echoed whole");
    }
  }
  assert.equal(checkedStamp(STAMP), STAMP);
});

Deno.test("every path of the layout stays inside the backup folder", () => {
  for (const backup of [BACKUP, "/srv/backups/", "relative/backups"]) {
    const paths = [
      snapshotsDir(backup),
      snapshotDir(backup, STAMP),
      stagingRoot(backup),
      stagingDir(backup, STAMP),
      trashRoot(backup),
      trashDir(backup, STAMP),
      failedDir(backup, STAMP),
      lockPath(backup),
      ...Object.values(snapshotPaths(snapshotDir(backup, STAMP), "atocore.db", "project-registry.json")),
    ];
    for (const path of paths) {
      const inside = relative(backup, path);
      assert.ok(inside && !inside.startsWith("..") && !isAbsolute(inside), `${path} is inside ${backup}`);
    }
  }
});

Deno.test("staging, trash and failed folders are unique and outside snapshots/", () => {
  const staged = [stagingDir(BACKUP, STAMP), stagingDir(BACKUP, STAMP)];
  assert.notEqual(staged[0], staged[1]);
  for (const path of [...staged, trashDir(BACKUP, STAMP), failedDir(BACKUP, STAMP)]) {
    assert.ok(relative(snapshotsDir(BACKUP), path).startsWith(".."), `${path} is not under snapshots/`);
    assert.ok(path.includes(STAMP), "the folder's name says which snapshot it is");
  }
});

Deno.test("a snapshot's parts are named as the module names them", () => {
  const root = snapshotDir(BACKUP, STAMP);
  assert.deepEqual(snapshotPaths(root, "atocore.db", "project-registry.json"), {
    root: `/srv/backups/snapshots/${STAMP}`,
    metadata: `/srv/backups/snapshots/${STAMP}/backup-metadata.json`,
    dbFolder: `/srv/backups/snapshots/${STAMP}/db`,
    db: `/srv/backups/snapshots/${STAMP}/db/atocore.db`,
    configFolder: `/srv/backups/snapshots/${STAMP}/config`,
    registry: `/srv/backups/snapshots/${STAMP}/config/project-registry.json`,
    chroma: `/srv/backups/snapshots/${STAMP}/chroma`,
  });
});

const RECORDED_ROOT = `/old/mount/backups/snapshots/${STAMP}`;
const HERE = `/tmp/copy/snapshots/${STAMP}`;

/** Metadata recording `paths` (the module's absolute form under `backup_root`, unless given otherwise). */
function recording(paths: Partial<SnapshotMetadata>, backupRoot: unknown = RECORDED_ROOT): SnapshotMetadata {
  return { backup_root: backupRoot, ...paths } as SnapshotMetadata;
}

Deno.test("recorded paths are mapped into the layout of the folder the snapshot is in now", () => {
  const metadata = recording({
    db_snapshot_path: `${RECORDED_ROOT}/db/atocore.db`,
    registry_snapshot_path: `${RECORDED_ROOT}/config/project-registry.json`,
    chroma_snapshot_path: `${RECORDED_ROOT}/chroma`,
  });
  assert.deepEqual(locatePart(HERE, metadata, "db"), {
    ok: true,
    path: `${HERE}/db/atocore.db`,
    relative: "db/atocore.db",
    name: "atocore.db",
  });
  assert.deepEqual(locatePart(HERE, metadata, "registry"), {
    ok: true,
    path: `${HERE}/config/project-registry.json`,
    relative: "config/project-registry.json",
    name: "project-registry.json",
  });
  assert.deepEqual(locatePart(HERE, metadata, "chroma"), {
    ok: true,
    path: `${HERE}/chroma`,
    relative: "chroma",
    name: "",
  });
  const trailingSlash = recording({ chroma_snapshot_path: `${RECORDED_ROOT}/chroma` }, `${RECORDED_ROOT}/`);
  assert.equal(locatePart(HERE, trailingSlash, "chroma")?.ok, true);
  assert.deepEqual(locatePart(HERE, recording({ registry_snapshot_path: "config/r.json" }), "registry"), {
    ok: true,
    path: `${HERE}/config/r.json`,
    relative: "config/r.json",
    name: "r.json",
  });
  assert.equal(locatePart(HERE, recording({ registry_snapshot_path: "" }), "registry"), null, "no registry recorded");
  assert.equal(locatePart(HERE, recording({}), "chroma"), null, "no Chroma recorded");
});

Deno.test("recorded paths that do not fit the layout are refused, inside the snapshot or not", () => {
  const refusedDb = [
    "/etc/passwd",
    RECORDED_ROOT,
    `${RECORDED_ROOT}/..`,
    `${RECORDED_ROOT}/chroma/chroma.sqlite3`,
    `${RECORDED_ROOT}/config/project-registry.json`,
    `${RECORDED_ROOT}/db`,
    `${RECORDED_ROOT}/db/`,
    `${RECORDED_ROOT}/db/.`,
    `${RECORDED_ROOT}/db/..`,
    `${RECORDED_ROOT}/db/sub/atocore.db`,
    `${RECORDED_ROOT}/db/../config/r.json`,
    `${RECORDED_ROOT}/db//atocore.db`,
    `${RECORDED_ROOT}/../20260410T000000Z/db/atocore.db`,
    `${RECORDED_ROOT}-other/db/atocore.db`,
    `${RECORDED_ROOT}/db/${"x".repeat(256)}`,
    "../x",
    "db/../../x",
    "chroma/chroma.sqlite3",
    ".",
    `${RECORDED_ROOT}/db/a\0b`,
  ];
  for (const recorded of refusedDb) {
    const located = locatePart(HERE, recording({ db_snapshot_path: recorded }), "db");
    assert.equal(located?.ok, false, recorded);
    assert.match(located?.ok === false ? located.error : "", /^db_snapshot_path_not_in_layout: /, recorded);
  }
  for (const recorded of [`${RECORDED_ROOT}/db/atocore.db`, `${RECORDED_ROOT}/chroma/x`, `${RECORDED_ROOT}/config`]) {
    assert.equal(locatePart(HERE, recording({ registry_snapshot_path: recorded }), "registry")?.ok, false, recorded);
  }
  const otherSnapshot = `/old/mount/backups/snapshots/20260410T000000Z/chroma`;
  for (const recorded of [otherSnapshot, `${RECORDED_ROOT}/chroma/`, `${RECORDED_ROOT}/db`, "/etc"]) {
    assert.equal(locatePart(HERE, recording({ chroma_snapshot_path: recorded }), "chroma")?.ok, false, recorded);
  }
  const db = { db_snapshot_path: `${RECORDED_ROOT}/db/atocore.db` };
  for (const backupRoot of [42, "", "relative/root", null]) {
    assert.equal(locatePart(HERE, recording(db, backupRoot), "db")?.ok, false, String(backupRoot));
  }
  const control = locatePart(HERE, recording({ db_snapshot_path: "/x\n/y" }), "db");
  assert.equal(control?.ok === false && control.error, "db_snapshot_path_not_in_layout: /x\\u000a/y");
});

Deno.test("the metadata digest covers every key but itself, whatever the file's layout or escapes", () => {
  const metadata = {
    backup_root: RECORDED_ROOT,
    db_snapshot_path: `${RECORDED_ROOT}/db/atocore.db`,
    vector_store_note: "café",
    manifest: [{ path: "db/atocore.db", size: 3, sha256: "ab" }],
  };
  const bound = bindMetadata(metadata);
  assert.equal(Object.keys(bound).at(-1), DIGEST_KEY);
  assert.equal(bound.metadata_sha256, metadataDigest(metadata));
  const reread = JSON.parse(serializeMetadata(bound as unknown as SnapshotMetadata));
  assert.equal(metadataDigest(reread), bound.metadata_sha256, "the module's escapes do not change it");
  const reordered = Object.fromEntries(Object.entries(bound).reverse());
  assert.equal(checkBinding(reordered, true, 2).bound, true, "nor does the order of the keys");
  for (
    const change of [
      (m: Record<string, unknown>) => m.vector_store_note = "cafe",
      (m: Record<string, unknown>) => (m.manifest as { size: number }[])[0].size = 4,
      (m: Record<string, unknown>) => m.extra = null,
      (m: Record<string, unknown>) => delete m.backup_root,
    ]
  ) {
    const changed = structuredClone(bound) as Record<string, unknown>;
    change(changed);
    const check = checkBinding(changed, true, 2);
    assert.equal(check.bound, false, String(change));
    assert.match(check.errors[0], /^metadata_digest_mismatch: /);
  }
  assert.deepEqual(checkBinding(metadata, true, 1), { bound: false, errors: [] }, "format 1: valid, unbound");
  assert.deepEqual(checkBinding(metadata, false, undefined), { bound: null, errors: [] }, "the module's: no binding");
  let deep: unknown = 1;
  for (let level = 0; level < 20; level++) deep = [deep];
  assert.equal(checkBinding({ ...bound, deep }, true, 2).bound, false, "deep nesting is no metadata of ours");
});

Deno.test("a sequence is a count below MAX_SEQUENCE: one forged near 2^53 or at the bound orders nothing", () => {
  const of = (sequence: unknown) => sequenceOf({ sequence } as SnapshotMetadata);
  assert.equal(of(0), 0);
  assert.equal(of(MAX_SEQUENCE - 1), MAX_SEQUENCE - 1);
  for (const forged of [MAX_SEQUENCE, MAX_SEQUENCE + 1, Number.MAX_SAFE_INTEGER, 2 ** 53, -1, 1.5, "7", null]) {
    assert.equal(of(forged), null, String(forged));
  }
});
