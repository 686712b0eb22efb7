/**
 * This process's effective user, for the checks that compare owners: libc's `geteuid` where its calls load, else the
 * owner of a file the process makes (`Deno.uid()` would need `--allow-sys`, reading `/proc/self` `--allow-all`).
 *
 * @module
 */
import { folderCalls } from "./folder_calls.ts";

/** The effective user id; `null` where libc's calls do not load and no temporary file can be made. */
export function runUser(): number | null {
  const calls = folderCalls();
  if (calls !== null) return calls.user();
  try {
    const probe = Deno.makeTempFileSync({ prefix: "atocore-backup-user-" });
    try {
      return Deno.lstatSync(probe).uid;
    } finally {
      Deno.removeSync(probe);
    }
  } catch {
    return null;
  }
}
