/**
 * Choosing the SQLite driver: `ffi`, `builtin`, or `auto` (FFI where it loads, else built-in).
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { openBuiltinDriver } from "./builtin.ts";
import type { DriverChoice, SqliteDriver } from "./driver.ts";
import { openFfiDriver } from "./ffi.ts";

/** The values `--sqlite-driver` accepts. */
export const DRIVER_CHOICES: readonly DriverChoice[] = ["auto", "ffi", "builtin"];

/** Whether `name` is one of {@linkcode DRIVER_CHOICES}: the check that turns a flag's text into a choice. */
export function isDriverChoice(name: string): name is DriverChoice {
  return DRIVER_CHOICES.some((choice) => choice === name);
}

/**
 * Open the driver that `choice` names.
 *
 * @param choice `auto`, `ffi` or `builtin`.
 * @param libraryPath libsqlite3 to load for FFI (from `ATOCORE_SQLITE_LIB`), else the usual names.
 * @param notLoaded Under `auto`, told why `libraryPath` did not load before the built-in driver is used: a library
 *   the operator named is not passed over silently (the usual names' absence is, in a container without them).
 * @throws {UsageError} when `ffi` is asked for and cannot be loaded.
 */
export function openDriver(
  choice: DriverChoice,
  libraryPath?: string,
  notLoaded?: (error: string) => void,
): SqliteDriver {
  if (choice === "builtin") return openBuiltinDriver();
  try {
    return openFfiDriver(libraryPath);
  } catch (error) {
    if (choice === "auto") {
      if (libraryPath !== undefined) notLoaded?.((error as Error).message);
      return openBuiltinDriver();
    }
    throw new UsageError(
      `--sqlite-driver ffi: ${
        (error as Error).message
      }; set ATOCORE_SQLITE_LIB to libsqlite3's path, allow FFI, or use --sqlite-driver builtin`,
    );
  }
}
