/**
 * Strings handed to C functions through FFI.
 *
 * @module
 */

/** `text` as a NUL-terminated UTF-8 buffer, for a `const char *` parameter of a C function. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text + "\0");
}
