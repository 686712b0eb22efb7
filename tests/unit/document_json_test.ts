/**
 * The document reader: the values `JSON.parse` gives, with each file's extents as a table; nothing `JSON.parse` refuses
 * is accepted, and extents hold nothing but plain integers in range and lowercase hex hashes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DocumentJsonError, readDocumentJson } from "../../src/repo/document_json.ts";
import { type Extent, extentsOf, isExtentTable } from "../../src/repo/extent_table.ts";
import { seededRandom } from "../_faults.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const HASH = "0123456789abcdef".repeat(4);

/** A random JSON value of the kinds a document's metadata holds, nested at most `depth` deep. */
function randomValue(random: () => number, depth: number): unknown {
  const kind = Math.floor(random() * (depth > 0 ? 8 : 6));
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  if (kind === 0) return pick([true, false, null]);
  if (kind === 1) return Math.floor(random() * 2 ** 53) * pick([1, -1]);
  if (kind === 2) return pick([0, -0.5, 1e-7, 123.456e30, 2 ** 64, -1e21]);
  if (kind === 3) {
    return pick(["", "plain", 'quote " and \\ slash', "tab\t\nline", "é ü 日本 🎉", "\u0001\u001f", "\ud800"]);
  }
  if (kind === 4) return String.fromCharCode(...Array.from({ length: 8 }, () => random() * 0x3000));
  if (kind === 5) {
    return String.fromCharCode(...Array.from({ length: 4 }, () => pick([0xfeff, 0xfffd, 0xd7ff, 0xe000])));
  }
  if (kind === 6) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth - 1));
  const keys = ["a", "__proto__", "files", "extents", "constructor", "a", "ü"];
  return Object.fromEntries(Array.from({ length: Math.floor(random() * 5) }, () => [
    pick(keys),
    randomValue(random, depth - 1),
  ]));
}

Deno.test("document JSON: any JSON value reads as JSON.parse reads it, indented or not", () => {
  const random = seededRandom(7);
  for (let round = 0; round < 500; round++) {
    const value = { metadata: randomValue(random, 4), list: [randomValue(random, 3)] };
    for (const text of [JSON.stringify(value), JSON.stringify(value, null, round % 2 ? 2 : "\t")]) {
      assert.deepStrictEqual(readDocumentJson(encode(text)), JSON.parse(text), text);
    }
  }
  const repeated = '{"a":1,"a":2,"__proto__":{"x":1}}';
  const read = readDocumentJson(encode(repeated)) as Record<string, unknown>;
  assert.deepStrictEqual(read, JSON.parse(repeated));
  assert.equal(Object.getPrototypeOf(read), Object.prototype, "__proto__ is an own property, never the prototype");
  assert.equal(readDocumentJson(encode(' \r\n\t"x" ')), "x");
  assert.deepStrictEqual(readDocumentJson(encode('{"\ufefffiles":["\ufeffa"]}')), { "\ufefffiles": ["\ufeffa"] });
});

Deno.test("document JSON: the extents of each file of `files` are a table, whatever the spacing", () => {
  const extents: Extent[] = [[0, 0, 0, 4096, HASH], [4096, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32 - 1, "f".repeat(64)]];
  extents.push([2 ** 53 - 1, 3, 7, 1, "0".repeat(64)]);
  const document = {
    metadata: { extents: [[1, 2]] },
    files: [{ path: "a", extents }, { path: "l", link: "x" }, { path: "e", extents: [] }, { path: "n", extents: 5 }],
  };
  for (const text of [JSON.stringify(document), JSON.stringify(document, null, 3)]) {
    const read = readDocumentJson(encode(text)) as typeof document;
    const [file, link, empty, odd] = read.files;
    assert.ok(isExtentTable(file.extents) && isExtentTable(empty.extents));
    assert.deepStrictEqual(extentsOf(file.extents, 0, Infinity), extents);
    assert.deepStrictEqual(extentsOf(empty.extents, 0, Infinity), []);
    assert.deepStrictEqual(link, { path: "l", link: "x" });
    assert.equal(odd.extents, 5, "anything but a list stays a value, for the document's checks to refuse");
    assert.deepStrictEqual(read.metadata, { extents: [[1, 2]] }, "extents elsewhere are plain JSON");
  }
  const nested = readDocumentJson(encode('{"x":{"files":[{"extents":[[1,2]]}]}}'));
  assert.deepStrictEqual(nested, { x: { files: [{ extents: [[1, 2]] }] } }, "only the top-level files' extents");
});

Deno.test("document JSON: an extent that is not five plain fields in range is refused, naming the byte", () => {
  const bad = [
    `[0,0,0,4.0,"${HASH}"]`,
    `[0,0,0,4e0,"${HASH}"]`,
    `[0,-1,0,4,"${HASH}"]`,
    `[0,01,0,4,"${HASH}"]`,
    `[0,${2 ** 31},0,4,"${HASH}"]`,
    `[0,0,${2 ** 32},4,"${HASH}"]`,
    `[0,0,0,${2 ** 32},"${HASH}"]`,
    `[${"9".repeat(17)},0,0,4,"${HASH}"]`,
    `[${2 ** 53},0,0,4,"${HASH}"]`,
    `[0,0,0,4,"${HASH.toUpperCase()}"]`,
    `[0,0,0,4,"${HASH.slice(1)}"]`,
    `[0,0,0,4,"${HASH}0"]`,
    `[0,0,0,4,"${HASH}",1]`,
    `[0,0,4,"${HASH}"]`,
    `[0,"0",0,4,"${HASH}"]`,
    `[0,0,0,4,"\\u0030${HASH.slice(1)}"]`,
    `{"at":0}`,
    "[]",
    "[],[]".repeat(1000), // counted ahead as a size: at most one extent per 75 bytes
    `[0,0,0,4,"${HASH}"],`,
    `[0,0,0,4,"${HASH}"] [0,0,0,4,"${HASH}"]`,
  ];
  for (const extent of bad) {
    const text = `{"files":[{"path":"a","extents":[${extent}]}]}`;
    assert.throws(() => readDocumentJson(encode(text)), (error: Error) => {
      assert.ok(error instanceof DocumentJsonError, text);
      assert.match(error.message, /^an extent.* at byte \d+$/, text);
      return true;
    });
  }
});

Deno.test("document JSON: what JSON.parse refuses is refused, each prefix of a document included", () => {
  const text = JSON.stringify({
    a: [1, -2.5e3, "x\\u00e9\n", { b: null }],
    files: [{ extents: [[0, 0, 0, 1, HASH]] }],
  });
  for (let end = 0; end < text.length; end++) {
    assert.throws(() => readDocumentJson(encode(text.slice(0, end))), DocumentJsonError, text.slice(0, end));
  }
  const refused = [
    "{a:1}",
    "[1,]",
    "{,}",
    '{"a" 1}',
    "01",
    "1.",
    ".5",
    "+1",
    "--1",
    "1e",
    "tru",
    "nul",
    "[1] x",
    "'a'",
  ];
  refused.push('"a\u0001"', '"\\x41"', '"\\u12"', '"a');
  for (const bad of refused) {
    assert.throws(() => JSON.parse(bad), SyntaxError, `JSON.parse accepts ${bad}`);
    assert.throws(() => readDocumentJson(encode(bad)), DocumentJsonError, bad);
  }
  assert.throws(() => readDocumentJson(new Uint8Array([0x22, 0xff, 0x22])), /not valid UTF-8 .* at byte 0/);
  // its own limits, past anything a document holds
  assert.throws(() => readDocumentJson(encode("[".repeat(65) + "]".repeat(65))), /nested too deeply at byte 64$/);
  assert.throws(() => readDocumentJson(encode("1".repeat(65))), /a number is too long at byte 0$/);
  const deepest = "[".repeat(64) + "]".repeat(64);
  assert.deepStrictEqual(readDocumentJson(encode(deepest)), JSON.parse(deepest));
});

Deno.test("document JSON: a document with random bytes changed is refused or read as JSON.parse reads it", () => {
  const random = seededRandom(11);
  const document = {
    format: 1,
    metadata: { a: "é", b: [1, 2.5] },
    files: [{ path: "a", extents: [[0, 0, 0, 9, HASH]] }],
  };
  const original = encode(JSON.stringify(document));
  const alphabet = encode('{}[],:"\\0123456789-.eE af\u00ff');
  for (let round = 0; round < 3000; round++) {
    const bytes = original.slice();
    for (let change = 0; change < 1 + round % 3; change++) {
      bytes[Math.floor(random() * bytes.length)] = alphabet[Math.floor(random() * alphabet.length)];
    }
    let read: unknown;
    try {
      read = readDocumentJson(bytes);
    } catch (error) {
      assert.ok(error instanceof DocumentJsonError, String(error));
      continue;
    }
    const parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)); // accepted: JSON.parse must too
    const tables = (read as { files?: { extents?: unknown }[] }).files;
    for (const [index, entry] of (Array.isArray(tables) ? tables : []).entries()) {
      if (isExtentTable(entry?.extents)) {
        assert.deepStrictEqual(extentsOf(entry.extents, 0, Infinity), parsed.files[index].extents);
        entry.extents = parsed.files[index].extents;
      }
    }
    assert.deepStrictEqual(read, parsed);
  }
});
