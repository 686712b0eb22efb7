/**
 * Where the system's temporary folder is, said once for every scratch copy: an empty `TMPDIR` counts as unset, as
 * the shell's tools take it, and never as the current folder.
 *
 * @module
 */

/** `$TMPDIR` when set and not empty, else `/tmp`: where scratch copies go without a folder of the operator's. */
export function systemTempFolder(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}
