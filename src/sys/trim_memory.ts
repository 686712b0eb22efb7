/**
 * Freed memory given back to the system: glibc's `malloc_trim` through `Deno.dlopen`. Buffers freed by every thread stay
 * in glibc's arenas, counted in the process's resident memory, until something trims them.
 *
 * @module
 */

let trim: (() => void) | null | undefined;

/**
 * Give the memory freed in every malloc arena back to the system (`malloc_trim(0)`). Without glibc, or without the FFI
 * permission (never asked for: no prompt), nothing happens. Returns whether it trimmed.
 */
export function trimMemory(): boolean {
  if (trim === undefined) trim = openTrim();
  trim?.();
  return trim !== null;
}

function openTrim(): (() => void) | null {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    const library = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
    return () => library.symbols.malloc_trim(0n);
  } catch {
    return null; // not glibc (no libc.so.6 or no malloc_trim)
  }
}
