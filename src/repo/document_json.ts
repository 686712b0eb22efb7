/**
 * Reading a snapshot document's JSON bytes as `JSON.parse` would, except that each file's `extents` go straight into a
 * typed table: a document of a million extents then costs its tables, not its text and an array and a string each.
 *
 * @module
 */
import { hexBytesInto } from "./blocks.ts";
import { type ExtentTable, ExtentTableBuilder } from "./extent_table.ts";

/** What is wrong with a document's JSON, and at which byte. */
export class DocumentJsonError extends Error {}

/** Objects and lists nested deeper are refused: a document nests four; its metadata a few more. */
const MAX_DEPTH = 64;
/** The largest value of each extent column that its table holds exactly. */
const MAX_PACK_INDEX = 2 ** 31 - 1;
const MAX_UINT32 = 2 ** 32 - 1;
/** The shortest text of an extent: `[0,0,0,1,"…"]` with its 64 hex digits. */
const MIN_EXTENT_TEXT = 75;

const [TAB, LF, CR, SPACE, QUOTE, COMMA, MINUS, ZERO, NINE, COLON] = [9, 10, 13, 32, 34, 44, 45, 48, 57, 58];
const [OPEN_ARRAY, BACKSLASH, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT] = [91, 92, 93, 123, 125];
const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
const NUMBER_BYTES = new Set([..."-+.eE0123456789"].map((digit) => digit.charCodeAt(0)));
/** Longer number texts are refused (a document's numbers are sizes and offsets). */
const MAX_NUMBER_TEXT = 64;
const LITERALS: [string, unknown][] = [["true", true], ["false", false], ["null", null]];

/** Where a value sits: the document, its `files` list, one of its entries, or anywhere else. */
type Place = "document" | "files" | "entry" | "other";

/**
 * Read UTF-8 JSON `bytes`: the value `JSON.parse` gives (own properties, the last of a repeated key), but each
 * `extents` list of an entry of the top-level `files` as an {@linkcode ExtentTable}. Such a list must hold only
 * `[fileOffset, packIndex, packOffset, length, "64 lowercase hex"]` of plain non-negative integers, as a push writes it.
 *
 * @throws {DocumentJsonError} naming the first thing wrong and its byte offset.
 */
export function readDocumentJson(bytes: Uint8Array): unknown {
  const reader = new Reader(bytes);
  const value = reader.value("document", 1);
  reader.end();
  return value;
}

class Reader {
  private at = 0;
  private readonly text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }); // a U+FEFF kept, as JSON.parse
  private readonly hash = new Uint8Array(32);

  constructor(private readonly bytes: Uint8Array) {}

  /** The value at the next non-space byte, inside `depth - 1` objects and lists. */
  value(place: Place, depth: number): unknown {
    this.space();
    const byte = this.bytes[this.at];
    if (byte === OPEN_OBJECT) return this.object(place, depth);
    if (byte === OPEN_ARRAY) return this.array(place, depth);
    if (byte === QUOTE) return this.string();
    if (byte === MINUS || (byte >= ZERO && byte <= NINE)) return this.number();
    return this.literal();
  }

  end(): void {
    this.space();
    if (this.at !== this.bytes.length) this.fail("bytes follow the document");
  }

  private object(place: Place, depth: number): Record<string, unknown> {
    const entries: [string, unknown][] = [];
    this.open(depth);
    this.space();
    if (this.take(CLOSE_OBJECT)) return {};
    do {
      this.space();
      if (this.bytes[this.at] !== QUOTE) this.fail("a key is not a string");
      const key = this.string();
      this.space();
      this.expect(COLON);
      entries.push([key, this.member(place, key, depth)]);
      this.space();
    } while (this.take(COMMA));
    this.expect(CLOSE_OBJECT);
    return Object.fromEntries(entries); // own data properties, `__proto__` included, as JSON.parse makes them
  }

  private member(place: Place, key: string, depth: number): unknown {
    if (place === "document" && key === "files") return this.value("files", depth + 1);
    this.space();
    if (place === "entry" && key === "extents" && this.bytes[this.at] === OPEN_ARRAY) return this.extents();
    return this.value("other", depth + 1);
  }

  private array(place: Place, depth: number): unknown[] {
    const items: unknown[] = [];
    this.open(depth);
    this.space();
    if (this.take(CLOSE_ARRAY)) return items;
    do {
      items.push(this.value(place === "files" ? "entry" : "other", depth + 1));
      this.space();
    } while (this.take(COMMA));
    this.expect(CLOSE_ARRAY);
    return items;
  }

  private string(): string {
    const start = this.at + 1;
    let escaped = false;
    let at = start;
    for (; at < this.bytes.length && this.bytes[at] !== QUOTE; at++) {
      if (this.bytes[at] < SPACE) this.fail("a string holds a control character");
      if (this.bytes[at] === BACKSLASH) [escaped, at] = [true, at + 1];
    }
    if (at >= this.bytes.length) this.fail("a string is not closed");
    this.at = at + 1;
    try {
      if (!escaped) return this.text.decode(this.bytes.subarray(start, at));
      return JSON.parse(this.text.decode(this.bytes.subarray(start - 1, at + 1))); // its escapes, checked
    } catch {
      return this.fail("a string is not valid UTF-8 or holds a malformed escape", start - 1);
    }
  }

  private number(): number {
    const start = this.at;
    while (this.at - start <= MAX_NUMBER_TEXT && NUMBER_BYTES.has(this.bytes[this.at])) this.at += 1;
    if (this.at - start > MAX_NUMBER_TEXT) this.fail("a number is too long", start);
    const text = String.fromCharCode(...this.bytes.subarray(start, this.at));
    if (!NUMBER.test(text)) this.fail("a number is malformed", start);
    return Number(text);
  }

  private literal(): unknown {
    for (const [word, value] of LITERALS) {
      if (String.fromCharCode(...this.bytes.subarray(this.at, this.at + word.length)) === word) {
        this.at += word.length;
        return value;
      }
    }
    return this.fail(this.at < this.bytes.length ? "not a JSON value" : "the document ends early");
  }

  /** A list of extents, straight into a table: nothing but the five plain fields of each is accepted. */
  private extents(): ExtentTable {
    const table = new ExtentTableBuilder(this.listedItems());
    this.at += 1;
    this.space();
    if (this.take(CLOSE_ARRAY)) return table.finish();
    do {
      this.space();
      this.expectInExtent(OPEN_ARRAY);
      const at = this.count(Number.MAX_SAFE_INTEGER);
      const pack = this.count(MAX_PACK_INDEX);
      const offset = this.count(MAX_UINT32);
      const length = this.count(MAX_UINT32);
      this.space();
      this.expectInExtent(QUOTE);
      if (!hexBytesInto(this.bytes, this.at, this.hash, 0)) this.fail("an extent's hash is not 64 lowercase hex");
      this.at += 64;
      this.expectInExtent(QUOTE);
      this.space();
      this.expectInExtent(CLOSE_ARRAY);
      table.push(at, pack, offset, length, this.hash);
      this.space();
    } while (this.take(COMMA));
    this.expectInExtent(CLOSE_ARRAY);
    return table.finish();
  }

  /**
   * How many lists the list opening here holds, counted ahead by its brackets: a table the right size at once, where
   * doubling held up to twice a store's extents while copying. Only a size, at most one per {@linkcode MIN_EXTENT_TEXT}
   * bytes (a list of empty lists would ask for more): a malformed list is refused as it is read.
   */
  private listedItems(): number {
    const bytes = this.bytes;
    let [depth, items, at] = [0, 0, this.at];
    for (; at < bytes.length; at++) {
      if (bytes[at] === OPEN_ARRAY && ++depth === 2) items += 1;
      else if (bytes[at] === CLOSE_ARRAY && --depth === 0) break;
    }
    return Math.min(items, Math.ceil((at - this.at) / MIN_EXTENT_TEXT));
  }

  /** A plain non-negative integer of at most `max` (no sign, fraction or exponent) and the comma after it. */
  private count(max: number): number {
    this.space();
    const start = this.at;
    let value = 0;
    while (this.at < this.bytes.length && this.bytes[this.at] >= ZERO && this.bytes[this.at] <= NINE) {
      value = value * 10 + (this.bytes[this.at] - ZERO); // the digit first: exact up to 2^53
      this.at += 1;
    }
    const digits = this.at - start;
    const plain = digits > 0 && digits <= 16 && (digits === 1 || this.bytes[start] !== ZERO);
    if (!plain || value > max || NUMBER_BYTES.has(this.bytes[this.at])) { // no sign, fraction or exponent
      this.fail("an extent's field is not a plain non-negative integer in range", start);
    }
    this.space();
    this.expectInExtent(COMMA);
    return value;
  }

  /** Step into an object or a list, the `depth`th one around the value read next. */
  private open(depth: number): void {
    if (depth > MAX_DEPTH) this.fail("nested too deeply");
    this.at += 1;
  }

  private space(): void {
    const bytes = this.bytes;
    while (bytes[this.at] === SPACE || bytes[this.at] === LF || bytes[this.at] === CR || bytes[this.at] === TAB) {
      this.at += 1;
    }
  }

  private take(byte: number): boolean {
    if (this.bytes[this.at] !== byte) return false;
    this.at += 1;
    return true;
  }

  private expect(byte: number): void {
    if (!this.take(byte)) this.fail(`expected '${String.fromCharCode(byte)}'`);
  }

  private expectInExtent(byte: number): void {
    if (!this.take(byte)) this.fail(`an extent is malformed (expected '${String.fromCharCode(byte)}')`);
  }

  private fail(problem: string, at = this.at): never {
    throw new DocumentJsonError(`${problem} at byte ${at}`);
  }
}
