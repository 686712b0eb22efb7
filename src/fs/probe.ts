/**
 * Questions about a path that treat "not there" as an answer, not an error.
 *
 * Requires `--allow-read`.
 *
 * @module
 */
import { listEntries } from "./listing.ts";

/** Tell whether a path exists, without following a final symbolic link. */
export function exists(path: string): boolean {
  return lstatOrNull(path) !== null;
}

/** Tell whether a path is a regular file (following symbolic links). */
export function isFile(path: string): boolean {
  return statOrNull(path)?.isFile ?? false;
}

/** Tell whether a path is a folder (following symbolic links); a path through a file names none. */
export function isDirectory(path: string): boolean {
  return statThroughFilesOrNull(path)?.isDirectory ?? false;
}

/** `Deno.statSync`, or `null` when nothing is at the path. */
export function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** As {@linkcode statOrNull}, and `null` too where a file stands for a folder of the path (nothing can be there). */
export function statThroughFilesOrNull(path: string): Deno.FileInfo | null {
  try {
    return statOrNull(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotADirectory) return null;
    throw error;
  }
}

/** `Deno.lstatSync`, or `null` when nothing is at the path. */
export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** The entries of the folder at `path`, in no set order; none when nothing is there or it is not a folder. */
export function entriesOrNone(path: string): Deno.DirEntry[] {
  try {
    return listEntries(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) return [];
    throw error;
  }
}

/** The names of the folders in `path`, sorted; none when nothing is there or it is not a folder. */
export function folderNames(path: string): string[] {
  return entriesOrNone(path).filter((entry) => entry.isDirectory).map((entry) => entry.name).sort();
}
