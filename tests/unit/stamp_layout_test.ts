/**
 * Stamps, the layout of a backup folder, and how recorded paths are resolved.
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
import { locateRecordedPath, type SnapshotMetadata } from "../../src/snapshot/metadata.ts";
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
const METADATA = { backup_root: RECORDED_ROOT } as SnapshotMetadata;
const HERE = `/tmp/copy/snapshots/${STAMP}`;

Deno.test("recorded absolute paths are resolved against the folder the snapshot is in now", () => {
  assert.deepEqual(locateRecordedPath(HERE, METADATA, `${RECORDED_ROOT}/db/atocore.db`), {
    ok: true,
    path: `${HERE}/db/atocore.db`,
    relative: "db/atocore.db",
  });
  assert.deepEqual(
    locateRecordedPath(HERE, { backup_root: `${RECORDED_ROOT}/` } as SnapshotMetadata, `${RECORDED_ROOT}/chroma`),
    { ok: true, path: `${HERE}/chroma`, relative: "chroma" },
  );
  assert.equal(
    locateRecordedPath(HERE, METADATA, `${RECORDED_ROOT}/db/../config/r.json`).ok && "inside",
    "inside",
  );
  assert.deepEqual(locateRecordedPath(HERE, METADATA, "config/r.json"), {
    ok: true,
    path: `${HERE}/config/r.json`,
    relative: "config/r.json",
  });
});

Deno.test("recorded paths that would leave the snapshot are refused", () => {
  const outside = [
    "/etc/passwd",
    RECORDED_ROOT,
    `${RECORDED_ROOT}/..`,
    `${RECORDED_ROOT}/../20260410T000000Z/db/atocore.db`,
    `${RECORDED_ROOT}-other/db/atocore.db`,
    "../x",
    "db/../../x",
    ".",
    `${RECORDED_ROOT}/db/a\0b`,
  ];
  for (const recorded of outside) {
    assert.deepEqual(locateRecordedPath(HERE, METADATA, recorded), { ok: false, recorded }, recorded);
  }
  const noRoot = { backup_root: 42 } as unknown as SnapshotMetadata;
  assert.equal(locateRecordedPath(HERE, noRoot, `${RECORDED_ROOT}/db/atocore.db`).ok, false);
});
