/**
 * Where the reference Python module (`atocore/ops/backup.py`, not part of this project) is found:
 * `ATOCORE_REFERENCE_DIR`, else `../shared/reference` beside the checkout. Tests, benchmarks and scripts ask here.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The folder the tests and benchmarks look in: `ATOCORE_REFERENCE_DIR`, else `../shared/reference`. */
export function referenceDir(): string {
  const fromEnv = Deno.env.get("ATOCORE_REFERENCE_DIR");
  return fromEnv ? resolve(fromEnv) : join(ROOT, "..", "shared", "reference");
}

/** Whether the reference module is there to run (its `atocore/ops/backup.py` exists). */
export function hasReference(): boolean {
  return existsSync(join(referenceDir(), "atocore", "ops", "backup.py"));
}

/** The one line that says why something that needs the module did not run. */
export function referenceMissing(what: string): string {
  return `reference module not found (set ATOCORE_REFERENCE_DIR): ${what}`;
}
