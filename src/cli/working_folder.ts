/**
 * The process's working folder, against which every relative path given is resolved.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/**
 * The working folder's path.
 *
 * @throws {UsageError} when that path is not UTF-8: Deno cannot name it, so no relative path could be resolved.
 */
export function workingFolder(): string {
  try {
    return Deno.cwd();
  } catch (error) {
    if (!(error instanceof Deno.errors.InvalidData)) throw error;
    throw new UsageError(
      `the working folder's path (${error.message.match(/"(.*)"/)?.[1] ?? "?"}) is not valid UTF-8, so no relative ` +
        "path can be resolved against it; nothing was done; run the command from another folder",
    );
  }
}
