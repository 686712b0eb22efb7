/**
 * Reading one environment variable as text: Deno takes a variable whose bytes are not UTF-8 for unset in its map, so
 * it is read here by name, and such a value refused rather than passed over.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/**
 * The value of variable `name`, or `undefined` when unset.
 *
 * @throws {UsageError} naming it when its value is not UTF-8.
 */
export function variableText(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (error) {
    if (!(error instanceof Deno.errors.InvalidData)) throw error;
    throw new UsageError(
      `the environment variable ${name} is not valid UTF-8, so it cannot be read as set (it would be taken as ` +
        "unset); nothing was done; set it to a value in UTF-8, or unset it",
    );
  }
}
