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
