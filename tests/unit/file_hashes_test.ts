/**
 * `FileHashes`: a file's SHA-256 taken in file order while its extents are written in any order (those written ahead
 * of a gap read back from the file), checked against the document's; a file whose bytes are not the ones recorded fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { DocumentFile } from "../../src/repo/document.ts";
import { emptyExtentTable, type Extent, toExtentTable } from "../../src/repo/extent_table.ts";
import { FileHashes } from "../../src/repo/file_hashes.ts";
import { tempDir } from "../_helpers.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** A file of `size` pseudo-random bytes cut into extents at `cuts`, written to `root/name`. */
function makeFile(root: string, name: string, size: number, cuts: number[]) {
  const bytes = new Uint8Array(size).map((_, at) => (at * 2654435761) >>> 24);
  Deno.writeFileSync(join(root, name), bytes);
  const edges = [0, ...cuts, size];
  const extents: Extent[] = edges.slice(1).map((end, at) => {
    const start = edges[at];
    return [start, 0, start, end - start, sha256(bytes.subarray(start, end))];
  });
  const file: DocumentFile = { path: name, size, sha256: sha256(bytes), block: 4096, extents: toExtentTable(extents) };
  return { file, extents, bytes };
}

Deno.test("FileHashes: extents noted out of order give the whole file's SHA-256; other bytes are refused", () => {
  using root = tempDir();
  const { file, extents, bytes } = makeFile(root.path, "a", 50_000, [4096, 20_000, 30_000, 45_000]);
  const hashes = new FileHashes(root.path, [file]);
  const note = (at: number) => {
    const [start, , , length] = extents[at];
    hashes.written(0, start, bytes.subarray(start, start + length));
  };
  for (const at of [2, 4, 0, 3, 1]) note(at); // 1 fills the gap: 2, 3 and 4 are read back from the file
  hashes.check("s");

  const empty = {
    path: "empty",
    size: 0,
    sha256: sha256(new Uint8Array(0)),
    block: 4096,
    extents: emptyExtentTable(0),
  };
  Deno.writeFileSync(join(root.path, "empty"), new Uint8Array(0));
  new FileHashes(root.path, [empty]).check("s");

  // The same extents noted, but the file on disk differs where an extent is read back: refused, naming the file.
  const wrong = new FileHashes(root.path, [file]);
  const changed = bytes.slice();
  changed[25_000] ^= 1;
  Deno.writeFileSync(join(root.path, "a"), changed);
  for (const at of [2, 0, 1, 3, 4]) {
    const [start, , , length] = extents[at];
    wrong.written(0, start, bytes.subarray(start, start + length));
  }
  assert.throws(() => wrong.check("s"), /^Error: snapshot s: a rebuilt does not match its SHA-256$|a rebuilt/);
  // Bytes noted that are not the file recorded (each written extent in memory differs): refused.
  const other = new FileHashes(root.path, [file]);
  for (const at of [0, 1, 2, 3, 4]) {
    const [start, , , length] = extents[at];
    other.written(0, start, changed.subarray(start, start + length));
  }
  assert.throws(() => other.check("s"), /snapshot s: a rebuilt does not match its SHA-256/);
});
