/**
 * Where the system's temporary folder is, said once for every scratch copy: an empty `TMPDIR` counts as unset, as
 * the shell's tools take it, and never as the current folder.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { variableText } from "../sys/variable.ts";

/**
 * `$TMPDIR` when set and not empty, else `/tmp`: where scratch copies go without a folder of the operator's.
 *
 * @throws {UsageError} when TMPDIR is not UTF-8 (taken for unset, the copy would go elsewhere), or begins or ends with
 *   whitespace (a line break pasted in an environment file: a folder of that name would be made, or not found).
 */
export function systemTempFolder(): string {
  const value = variableText("TMPDIR");
  if (value && value.trim() !== value) {
    throw new UsageError(
      `TMPDIR begins or ends with whitespace (${
        JSON.stringify(value)
      }); give it without, or unset it (the default is /tmp)`,
    );
  }
  return value || "/tmp";
}
