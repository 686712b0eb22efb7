/**
 * JSON parsed within a bound on what the parse builds: V8 takes about 100 bytes for each object, array or item, so a
 * file of 60 MiB of `{},` (21 million empty objects) took a run that read it past 2 GiB.
 *
 * @module
 */

/**
 * The most values (objects, arrays, and items or members in them) a text may hold: a list of them, parsed and gone over, stays near 100 MiB, where the
 * metadata of a snapshot of 40,000 files holds about 160,000.
 */
export const MAX_JSON_VALUES = 200_000;

/**
 * The deepest nesting a text may have: this tool's records nest a few levels, and a value nested thousands deep, parsed,
 * overflows the stack of whatever goes over it next (`JSON.stringify` printing `list --json`).
 */
export const MAX_JSON_DEPTH = 64;

/** The bounds {@linkcode parseBoundedJson} reads a text within. */
export interface JsonBounds {
  /** The most values: objects, arrays and `,`-separated items, counted by their `{`, `[` and `,`. */
  maxValues?: number;
  /** The deepest nesting of objects and arrays: `[[[[…` a million deep would take V8 gigabytes. */
  maxDepth?: number;
}

/**
 * `JSON.parse(text)`, refused before it runs when `text` holds more values or nests deeper than `bounds` allow (the
 * brackets and commas outside strings counted), so that a file made to be costly cannot take the reader's memory.
 *
 * @throws {SyntaxError} when `text` is not JSON, or is past a bound (its message says which).
 */
export function parseBoundedJson(text: string, bounds: JsonBounds = {}): unknown {
  // text decoded keeping it (see `utf8Text`): Python's json, the service's, refuses it too
  if (text.charCodeAt(0) === 0xfeff) {
    throw new SyntaxError("it begins with a byte order mark (BOM), which JSON does not allow");
  }
  const { maxValues = MAX_JSON_VALUES, maxDepth = MAX_JSON_DEPTH } = bounds;
  let values = 0;
  let depth = 0;
  let inString = false;
  for (let at = 0; at < text.length; at++) {
    const char = text.charCodeAt(at);
    if (inString) {
      if (char === 0x5c) at++; // a backslash escapes the next character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else {
      const opens = char === 0x7b || char === 0x5b;
      if (opens && ++depth > maxDepth) throw new SyntaxError(`nested deeper than ${maxDepth}, not parsed`);
      if (char === 0x7d || char === 0x5d) depth--;
      if ((opens || char === 0x2c) && ++values > maxValues) {
        throw new SyntaxError(`holds more than ${maxValues} JSON values (objects, arrays, items), not parsed`);
      }
    }
  }
  return JSON.parse(text);
}
