/**
 * Which flag or environment variable gave a path an error names, so that its one line says what to fix.
 *
 * @module
 */
import { resolve } from "node:path";

/**
 * The flag (`--db`) or variable (`ATOCORE_DB_PATH`) whose path is `path`, holds it or runs through it, the most
 * precise first, or
 * `null`: a path under the data folder came from `ATOCORE_DATA_DIR` unless a flag named it.
 */
export function givenPathSource(
  path: string,
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
  cwd: string,
): string | null {
  const given: [string, string][] = [
    ...Object.entries(flags).map(([name, value]): [string, unknown] => [`--${name}`, value]),
    ...Object.entries(env).filter(([name]) => name.startsWith("ATOCORE_")),
  ].filter((entry): entry is [string, string] => typeof entry[1] === "string" && entry[1] !== "");
  let best: { source: string; length: number } | null = null;
  for (const [source, value] of given) {
    const folder = resolve(cwd, value.replace(/^file:\/\//, ""));
    // the path itself, one inside it, or a folder on its way (a loop met before the path's end)
    const holds = path === folder || path.startsWith(folder.endsWith("/") ? folder : `${folder}/`) ||
      folder.startsWith(`${path}/`);
    if (holds && (best === null || folder.length > best.length)) best = { source, length: folder.length };
  }
  return best?.source ?? null;
}
