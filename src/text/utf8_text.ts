/**
 * Decoding a file's bytes as UTF-8 text as they were read: a byte order mark is kept, which a default decoder drops.
 *
 * @module
 */

/**
 * The text of `bytes`, a leading byte order mark kept: dropped, a registry that the service (Python's `json`) and the
 * drill's own read refuse would pass for JSON here.
 */
export function utf8Text(bytes: Uint8Array): string {
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
}

/**
 * The text of `bytes` as {@linkcode utf8Text} decodes it, refused when they are not UTF-8: the service reads its
 * registry as strict UTF-8 (Python's `read_text(encoding="utf-8")`), so such a file is no JSON it can read.
 *
 * @throws {SyntaxError} saying so, as a file that is not JSON is refused.
 */
export function strictUtf8Text(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new SyntaxError("it holds bytes that are not UTF-8, which JSON does not allow");
  }
}
