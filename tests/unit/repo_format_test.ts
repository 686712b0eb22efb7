/**
 * The pure parts of the repository format: object names and their parsing, the snapshot document's checks, block
 * sizes and compressibility, and the push cache's checksum (a damaged cache is ignored, never trusted).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { blockSizeOf, DEFAULT_BLOCK, hashBlockInto, isCompressible } from "../../src/repo/blocks.ts";
import {
  documentText,
  isCleanPath,
  parseDocument,
  type SnapshotDocument,
  type WritableDocument,
} from "../../src/repo/document.ts";
import { packName, parseName, parseSnapshotKey, refsName, snapshotName } from "../../src/repo/layout.ts";
import { type Extent, toExtentTable } from "../../src/repo/extent_table.ts";
import { tempDir } from "../_helpers.ts";

const ID = "a".repeat(64);
const KEY = { stamp: "20260409T010203Z", pushId: "0123456789abcdef" };
const REPO = "f".repeat(32);

Deno.test("layout: names round-trip through the parser; anything else is refused", () => {
  assert.equal(packName(ID), `packs/aa/${ID}`);
  assert.deepEqual(parseName(packName(ID)), { kind: "pack", id: ID });
  assert.deepEqual(parseName(snapshotName(KEY)), { kind: "snapshot", key: KEY });
  assert.deepEqual(parseName(refsName(KEY)), { kind: "refs", key: KEY });
  assert.deepEqual(parseName("config"), { kind: "config" });
  for (
    const name of [
      `packs/ab/${ID}`,
      `packs/aa/${ID}/x`,
      `packs/${ID}`,
      "snapshots/20260409T010203Z",
      "snapshots/20261340T010203Z_0123456789abcdef",
      "snapshots/20260409T010203Z_0123456789ABCDEF",
      "refs/../config",
      "leases/x",
      "condemned/0123456789abcdef0",
      "config.bak",
      "tmp/x",
    ]
  ) assert.equal(parseName(name), null, name);
  assert.equal(parseSnapshotKey("20260409T010203Z_0123456789abcdef_x"), null);
  assert.throws(() => packName("../../etc"), RangeError);
  assert.throws(() => snapshotName({ stamp: "../x", pushId: "0123456789abcdef" }), RangeError);
});

function document(
  files: unknown[],
  packs = [{ id: ID, size: 100, compression: "zstd" }],
  extra: Record<string, unknown> = {},
): Uint8Array {
  const doc = {
    ...extra,
    format: 1,
    repository_id: REPO,
    stamp: KEY.stamp,
    push_id: KEY.pushId,
    pushed_at: "2026-04-09T01:02:03.000Z",
    host: "h",
    metadata: {},
    packs,
    files: [{ path: "backup-metadata.json", size: 0, sha256: ID, block: 65536, extents: [] }, ...files],
  };
  return new TextEncoder().encode(JSON.stringify(doc));
}

function file(path: string, size: number, extents: unknown) {
  return { path, size, sha256: ID, block: 4096, extents };
}

Deno.test("document: extents must tile each file exactly and point into listed packs; paths must be clean", () => {
  const ok = parseDocument(document([file("db/a.db", 10, [[0, 0, 0, 4, ID], [4, 0, 50, 6, ID]])]), "s", REPO, KEY);
  assert.equal((ok as SnapshotDocument).files.length, 2);
  const chromaLink = parseDocument(document([{ path: "chroma/seg/l", link: "../x" }]), "s", REPO, KEY);
  assert.equal(chromaLink.files.length, 2, "a link elsewhere in chroma/ stays allowed");
  const refused: [unknown[], RegExp][] = [
    [[file("db/a.db", 10, [[0, 0, 0, 4, ID]])], /cover 4 bytes, the file has 10/],
    [[file("db/a.db", 10, [[0, 0, 0, 4, ID], [5, 0, 0, 5, ID]])], /gap or overlap at 4/],
    [[file("db/a.db", 4, [[0, 1, 0, 4, ID]])], /no listed pack/],
    [[file("db/a.db", 4, [[0, 0, 0, 0, ID], [0, 0, 0, 4, ID]])], /range is malformed/],
    [[file("db/a.db", 4, [[0, 0, 0, 4, ID]]), { path: "chroma/l", link: "x", extents: [] }], /l: a link with extents/],
    [[file("db/a.db", 5, [[0, 0, 0, 4.5, ID]])], /S: not a valid document \(an extent's field .* at byte \d+\); the/],
    [[file("db/a.db", 4, [[0, 0, 0, 4, ID.toUpperCase()]])], /S: not a valid document \(an extent's hash is not/],
    [[file("db/a.db", 4, { 0: [0, 0, 0, 4, ID] })], /extents is not a list/],
    [[file("../etc/passwd", 0, [])], /not relative and clean/],
    [[file("/etc/passwd", 0, [])], /not relative and clean/],
    [[file("a//b", 0, [])], /not relative and clean/],
    [[file("a", 0, []), file("a", 0, [])], /listed twice/],
    [[{ path: "chroma", link: "/etc" }, file("chroma/x", 0, [])], /lies below a file or link/],
    [[{ path: "l", link: "" }], /link target/],
    [[{ path: "db/atocore.db", link: "/srv/other.db" }], /db\/atocore\.db is a link where .* regular file/],
    [[{ path: "config/r.json", link: "../x" }], /config\/r\.json is a link where .* regular file/],
    [[{ path: "chroma/chroma.sqlite3", link: "/x" }], /chroma\/chroma\.sqlite3 is a link where .* regular file/],
  ];
  for (const [files, message] of refused) {
    assert.throws(() => parseDocument(document(files), "snapshots/S", REPO, KEY), message);
  }
  assert.throws(() => parseDocument(document([]), "snapshots/S", "e".repeat(32), KEY), /another repository/);
  const db = file("db/a.db", 0, []);
  const checked = (paths: unknown) =>
    parseDocument(document([db], undefined, { integrity_checked: paths }), "s", REPO, KEY);
  assert.deepEqual(checked(["db/a.db"]).integrity_checked, ["db/a.db"]);
  for (const paths of [["db/b.db"], ["db/a.db", "db/a.db"], "db/a.db", [7]]) {
    assert.throws(() => checked(paths), /integrity_checked does not name regular files of the snapshot, each once/);
  }
  assert.throws(
    () => parseDocument(document([]), "snapshots/S", REPO, { ...KEY, pushId: "1123456789abcdef" }),
    /swapped/,
  );
  assert.throws(() => parseDocument(new TextEncoder().encode("[1]"), "snapshots/S", REPO, KEY), /snapshots\/S: not/);
  assert.ok(isCleanPath("chroma/0000-1/data_level0.bin"));
  for (const hostile of ["chroma/./x", "", "../x", "chroma/../../x", "/etc/passwd", "chroma//x", "chroma/x/", "a\0b"]) {
    assert.ok(!isCleanPath(hostile), JSON.stringify(hostile));
  }
  assert.ok(isCleanPath("chroma/a\\b") && isCleanPath("chroma/..\\..\\x") && isCleanPath("chroma/new\nline"), "names");
  assert.ok(isCleanPath(`config/${"a".repeat(255)}`) && !isCleanPath(`config/${"a".repeat(256)}`), "a name's bytes");
  assert.ok(!isCleanPath(`config/${"é".repeat(128)}`), "256 bytes in UTF-8");
});

/** The document's text as a push writes it, piece by piece, joined. */
const serializeDocument = (doc: WritableDocument) => new TextEncoder().encode([...documentText(doc)].join(""));

Deno.test("document: written piece by piece, the bytes are those of JSON.stringify and parse back", () => {
  const extents = Array.from({ length: 9000 }, (_, at): Extent => [at * 4096, 0, (at * 4096) % 65536, 4096, ID]);
  const doc = JSON.parse(new TextDecoder().decode(document([
    file("db/a.db", 9000 * 4096, extents),
    { path: "chroma/l", link: "../x" },
    file("chroma/empty", 0, []),
  ]))) as WritableDocument;
  const bytes = serializeDocument(doc);
  assert.equal(new TextDecoder().decode(bytes), JSON.stringify(doc));
  const asTable: SnapshotDocument = {
    ...doc,
    files: doc.files.map((entry) =>
      "extents" in entry ? { ...entry, extents: toExtentTable(entry.extents as Extent[]) } : entry
    ),
  };
  assert.deepEqual(parseDocument(bytes, "s", REPO, KEY), asTable, "read back with its extents as tables");
  assert.deepEqual(serializeDocument(asTable), bytes, "a push's extent tables are written as the same JSON");
  const bare = { ...doc, files: [] };
  assert.equal(new TextDecoder().decode(serializeDocument(bare)), JSON.stringify(bare));
});

Deno.test("blocks: SQLite files at their page size, others at 64 KiB; random bytes are not compressible", () => {
  const header = new Uint8Array(100);
  header.set(new TextEncoder().encode("SQLite format 3\0"));
  header[16] = 0x10; // 4096
  assert.equal(blockSizeOf(header), 4096);
  header[16] = 0;
  header[17] = 1; // 1 means 65536
  assert.equal(blockSizeOf(header), 65536);
  header[16] = 0x03; // 0x0301 is not a power of two
  assert.equal(blockSizeOf(header), DEFAULT_BLOCK);
  assert.equal(blockSizeOf(new TextEncoder().encode('{"projects": []}')), DEFAULT_BLOCK);
  using dir = tempDir();
  const random = new Uint8Array(1 << 20);
  for (let at = 0; at < random.length; at += 65536) crypto.getRandomValues(random.subarray(at, at + 65536));
  Deno.writeFileSync(join(dir.path, "random"), random);
  Deno.writeTextFileSync(join(dir.path, "text"), "lorem ipsum dolor ".repeat(60000));
  using randomFile = Deno.openSync(join(dir.path, "random"));
  using textFile = Deno.openSync(join(dir.path, "text"));
  assert.equal(isCompressible(randomFile, random.length), false);
  assert.equal(isCompressible(textFile, 18 * 60000), true);
});

Deno.test("blocks: a block's SHA-256 is written in place, 32 bytes at the offset given, nothing else touched", () => {
  const into = new Uint8Array(96).fill(0xaa);
  for (const size of [0, 1, 4096, 65536]) {
    const bytes = crypto.getRandomValues(new Uint8Array(size));
    hashBlockInto(bytes, into, 32);
    assert.deepEqual(into.subarray(32, 64), new Uint8Array(createHash("sha256").update(bytes).digest()), `${size} B`);
  }
  assert.ok(into.subarray(0, 32).every((byte) => byte === 0xaa) && into.subarray(64).every((byte) => byte === 0xaa));
});
