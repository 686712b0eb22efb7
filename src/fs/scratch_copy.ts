/**
 * A private copy of a file in the first temporary folder that takes it: `$TMPDIR`, then the system's usual ones,
 * so that one missing, read-only or full folder does not stop the work. Never beside the file copied.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError } from "../errors.ts";
import { removeQuietly } from "./durable.ts";
import { systemTempFolder } from "./system_temp.ts";

/** Folders tried after `$TMPDIR`, in order (not `/dev/shm`: Deno grants `/dev` only with every permission). */
export const FALLBACK_TEMPORARY_FOLDERS = ["/tmp", "/var/tmp"];

/** A private copy: its file, and the folder that holds it (to remove with it). */
export interface ScratchCopy extends Disposable {
  folder: string;
  file: string;
}

/** No temporary folder could take a copy: each folder tried, with why not. */
export class NoScratchSpaceError extends Error {
  /** `folder: reason` for each folder tried. */
  readonly tried: string[];
  /** Bytes the copy needed. */
  readonly bytes: number;

  /** Make the error from the folders tried and the size that did not fit. */
  constructor(bytes: number, tried: string[]) {
    super(`no writable temporary folder with ${bytes} bytes free (${tried.join("; ")})`);
    this.name = "NoScratchSpaceError";
    this.bytes = bytes;
    this.tried = tried;
  }
}

/** The temporary folders to try: the system's, then {@linkcode FALLBACK_TEMPORARY_FOLDERS}, each once. */
export function temporaryFolders(): string[] {
  return [...new Set([systemTempFolder(), ...FALLBACK_TEMPORARY_FOLDERS])];
}

/**
 * Copy the file at `path` into a new private folder in the first temporary folder where the copy succeeds; a
 * partial copy (disk full) is removed before the next folder is tried. Dispose of the result to remove it.
 *
 * @throws {NoScratchSpaceError} when no folder took the copy.
 */
export function scratchCopy(path: string, name: string): ScratchCopy {
  const bytes = Deno.statSync(path).size;
  const tried: string[] = [];
  for (const parent of temporaryFolders()) {
    let folder: string | null = null;
    try {
      folder = Deno.makeTempDirSync({ dir: parent, prefix: "atocore-sqlite-" });
      const file = join(folder, name);
      Deno.copyFileSync(path, file);
      const made = folder;
      return { folder, file, [Symbol.dispose]: () => removeQuietly(made) };
    } catch (error) {
      if (folder !== null) removeOrLeave(folder);
      tried.push(`${parent}: ${describeOsError(error)}`);
    }
  }
  throw new NoScratchSpaceError(bytes, tried);
}

/** Remove a partial copy; one that cannot be removed is left (the next folder is tried all the same). */
function removeOrLeave(folder: string): void {
  try {
    removeQuietly(folder);
  } catch {
    // left in a temporary folder, which the system clears
  }
}
