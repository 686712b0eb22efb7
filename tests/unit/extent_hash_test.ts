/**
 * An extent's recorded hash: its bytes' SHA-256 in format 1 or for one block; else the SHA-256 of its blocks'
 * SHA-256s, the same whether taken from the bytes (a reader) or from the block hashes (a push).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { extentHashInto, extentUnit, hashExtent } from "../../src/repo/extent_hash.ts";

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest();

function bytesOf(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, at) => (at * 31 + (at >> 8)) & 0xff);
}

Deno.test("extent hash: format 1 and one-block extents hash their bytes; longer ones of format 2 hash by blocks", () => {
  assert.equal(extentUnit(1, 4096, 65536), 0);
  assert.equal(extentUnit(2, 4096, 4096), 0);
  assert.equal(extentUnit(2, 4096, 3000), 0);
  assert.equal(extentUnit(2, 4096, 4097), 4096);
  const bytes = bytesOf(3 * 4096 + 100);
  assert.equal(hashExtent(bytes, 0), sha(bytes).toString("hex"));
  const pieces = [0, 4096, 8192, 12288].map((at) => sha(bytes.subarray(at, at + 4096)));
  const byBlocks = sha(new Uint8Array(Buffer.concat(pieces))).toString("hex");
  assert.equal(hashExtent(bytes, 4096), byBlocks, "the last, short piece hashed as it is");
  assert.notEqual(byBlocks, sha(bytes).toString("hex"));
});

Deno.test("extent hash: a push's hash from block hashes equals a reader's from the bytes", () => {
  const bytes = bytesOf(5 * 512);
  const blocks = new Uint8Array(5 * 32);
  for (let index = 0; index < 5; index++) blocks.set(sha(bytes.subarray(index * 512, index * 512 + 512)), index * 32);
  const into = new Uint8Array(96);
  extentHashInto(blocks, into, 32);
  assert.equal(Buffer.from(into.subarray(32, 64)).toString("hex"), hashExtent(bytes, 512));
  extentHashInto(blocks.subarray(0, 32), into, 0);
  assert.equal(Buffer.from(into.subarray(0, 32)).toString("hex"), hashExtent(bytes.subarray(0, 512), 0));
});
