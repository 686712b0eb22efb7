/**
 * Where the system's temporary folder is, said once for every scratch copy: an empty `TMPDIR` counts as unset, as
 * the shell's tools take it, and never as the current folder.
 *
 * @module
 */
import { variableText } from "../sys/variable.ts";

/**
 * `$TMPDIR` when set and not empty, else `/tmp`: where scratch copies go without a folder of the operator's.
 *
 * @throws {UsageError} when TMPDIR is not UTF-8 (taken for unset, the copy would go elsewhere).
 */
export function systemTempFolder(): string {
  return variableText("TMPDIR") || "/tmp";
}
