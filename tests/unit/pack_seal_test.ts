import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { ageDecrypt, generateIdentity, parseIdentity } from "../../src/crypto/age.ts";
import { Boundary, getSealed } from "../../src/repo/boundary.ts";
import { CryptoPool, PackOpenError } from "../../src/repo/crypto_pool.ts";
import { openFolderBackend } from "../../src/repo/folder.ts";
import { PACK_BUFFER_BYTES } from "../../src/repo/document.ts";
import { packName } from "../../src/repo/layout.ts";
import { compress, decompressInto, openBytes, sealText } from "../../src/repo/sealing.ts";
import { type BlockTag, PackWriter, type TaggedFile } from "../../src/repo/pack_writer.ts";
import { tempDir, toolFor } from "../_helpers.ts";

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Blocks of two files into small packs, sealed on a worker or inline; what each pack holds and what was hashed. */
async function packTwoFiles(sealOnWorker: boolean) {
  using dir = tempDir();
  using pool = new CryptoPool(1);
  const { identity, recipient } = generateIdentity();
  const backend = openFolderBackend(dir.path);
  const stored: { id: string; tags: BlockTag[]; offsets: number[] }[] = [];
  const writer = new PackWriter(new Boundary(backend, [recipient]), {
    targetBytes: 20_000,
    sealer: sealOnWorker ? (job) => pool.seal(job) : undefined,
    onStored: (_slot, pack, tags, offsets) => stored.push({ id: pack.id, tags: [...tags], offsets: [...offsets] }),
  });
  const files: { file: TaggedFile; bytes: Uint8Array }[] = [0, 1].map((at) => {
    const bytes = new Uint8Array(at === 0 ? 45_000 : 23_000).map((_, index) => (index * (at + 7)) % 251);
    return { file: { path: `f${at}`, block: 4096, size: bytes.length }, bytes };
  });
  const placements: { slot: number; offset: number; bytes: Uint8Array }[] = [];
  for (const { file, bytes } of files) {
    for (let index = 0; index * 4096 < bytes.length; index++) {
      const block = bytes.subarray(index * 4096, (index + 1) * 4096);
      const tag = { file, index, hash: new Uint8Array(32) };
      placements.push({ ...writer.add(block, "zstd", tag), bytes: block });
    }
  }
  const packs = await writer.finish();
  const plain = new Map<string, Uint8Array>();
  for (const pack of packs) {
    plain.set(pack.id, await getSealed(backend, [parseIdentity(identity)], packName(pack.id), pack));
  }
  return { packs, stored, placements, plain };
}

Deno.test("pack writer: sealed on a worker or inline, each block is hashed from the pack", async () => {
  for (const onWorker of [true, false]) {
    const { packs, stored, placements, plain } = await packTwoFiles(onWorker);
    assert.ok(packs.length >= 3, `several packs (${packs.length})`);
    for (const { slot, offset, bytes } of placements) {
      const inPack = plain.get(packs[slot].id)!.subarray(offset, offset + bytes.length);
      assert.deepEqual(inPack, bytes);
    }
    for (const { tags } of stored) {
      for (const tag of tags) {
        const source = placements.find((placed) =>
          placed.bytes.byteOffset === tag.index * 4096 &&
          placed.bytes.length === Math.min(4096, tag.file.size - tag.index * 4096) &&
          placed.bytes.buffer.byteLength === tag.file.size
        );
        assert.ok(source, `block ${tag.index} of ${tag.file.path} was placed`);
        assert.equal(Buffer.from(tag.hash).toString("hex"), sha(source.bytes));
      }
    }
  }
});

Deno.test("decompressInto: a zstd plaintext lands in the caller's buffer, byte for byte; too small a buffer says so", () => {
  const plain = new Uint8Array(3 << 20).map((_, index) => (index * 31) % 253 ^ (index >> 12));
  const packed = compress(plain);
  const out = new Uint8Array(PACK_BUFFER_BYTES);
  const placed = decompressInto(packed, out);
  assert.ok(placed, "this runtime's node:zlib has the stream handle it writes through");
  assert.equal(placed.buffer, out.buffer, "a view of the caller's buffer, not a copy");
  assert.ok(Buffer.from(placed).equals(Buffer.from(plain)));
  assert.equal(decompressInto(packed, new Uint8Array(1 << 20)), null, "a plaintext larger than the buffer");
  // this runtime's compressor may end a pack with an empty frame after the data's: read on, not decompressed twice
  const trailed = new Uint8Array([...packed, ...compress(new Uint8Array(0))]);
  assert.ok(Buffer.from(decompressInto(trailed, out) ?? []).equals(Buffer.from(plain)), "a frame after the data's");
  const short = decompressInto(packed.subarray(0, packed.length >> 1), out);
  assert.ok(short === null || short.length < plain.length, "a truncated frame is never taken for the whole");
});

Deno.test("sealText: text in pieces sealed as one zstd frame that opens, and that the zstd tool reads, as the text", async () => {
  const { identity, recipient } = generateIdentity();
  const pieces = [
    '{"a":"é€😀"', // multi-byte UTF-8 at the start
    ...Array.from({ length: 4000 }, (_, at) => `,"k${at}":"${"x€".repeat(at % 300)}"`), // chunks end between pieces
    `,"big":"${"y".repeat(3 << 20)}"}`, // one piece larger than a chunk
  ];
  const text = pieces.join("");
  const sealed = await sealText(pieces, [recipient]);
  assert.equal(sealed.sha256, sha(sealed.bytes));
  assert.equal(sealed.compression, "zstd");
  const opened = openBytes("snapshots/S", sealed.bytes, [parseIdentity(identity)], { compression: "zstd" });
  assert.equal(new TextDecoder().decode(opened), text);
  const body = ageDecrypt(sealed.bytes, [parseIdentity(identity)]);
  const frames = Buffer.from(body).toString("latin1").split("\x28\xb5\x2f\xfd").length - 1; // zstd's magic number
  assert.equal(frames, 1, "one frame: a reader's zstdDecompressSync stops after the first");
  const empty = openBytes("snapshots/S", (await sealText([], [recipient])).bytes, [parseIdentity(identity)], {
    compression: "zstd",
  });
  assert.equal(empty.length, 0, "no text at all is still one frame, of nothing");
  function* failing() {
    yield "{";
    throw new Error("the document could not be written");
  }
  await assert.rejects(sealText(failing(), [recipient]), /the document could not be written/);
  if (!toolFor("zstd", "documents' zstd frames read by the zstd tool")) return;
  const child = new Deno.Command("zstd", { args: ["-d", "-c"], stdin: "piped", stdout: "piped" }).spawn();
  const reading = child.output(); // read while writing: the output is larger than a pipe holds
  const writer = child.stdin.getWriter();
  await writer.write(body);
  await writer.close();
  const output = await reading;
  assert.equal(output.code, 0);
  assert.equal(new TextDecoder().decode(output.stdout), text);
});

Deno.test("crypto pool: a pack that fails to open is named, and its buffers come back usable, on a worker or inline", async () => {
  const { identity } = generateIdentity();
  for (const workers of [1, 0]) {
    using pool = new CryptoPool(workers);
    const buffer = new Uint8Array(PACK_BUFFER_BYTES);
    const plainInto = new Uint8Array(PACK_BUFFER_BYTES);
    const sealed = buffer.subarray(0, 1000).fill(7); // not an age file
    const name = packName("ab".repeat(32));
    const job = {
      name,
      sealed,
      into: sealed,
      compression: "zstd" as const,
      maxBytes: PACK_BUFFER_BYTES,
      ranges: new Uint32Array(0),
    };
    const failure = await pool.open({ ...job, skipNameHash: true, plainInto }, [parseIdentity(identity)]).then(
      () => assert.fail("garbage opened"),
      (error) => error,
    );
    assert.ok(failure instanceof PackOpenError, String(failure));
    assert.match(failure.message, new RegExp(name));
    assert.equal(failure.buffers[0].buffer.byteLength, PACK_BUFFER_BYTES);
    assert.equal(failure.buffers[2].byteLength, PACK_BUFFER_BYTES);
    assert.equal(failure.buffers[0][999], 7);
  }
});
