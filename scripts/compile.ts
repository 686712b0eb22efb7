/**
 * `deno task compile`: build the single binary `dist/atocore-backup` from `main.ts`
 * with the narrowest permissions that work (read, write, env, ffi, and the network for
 * SFTP and S3 repositories; no subprocesses) and `--no-prompt`.
 *
 * `deno compile` embeds the program in Deno's runtime base, `denort`, which it
 * downloads once from dl.deno.land and caches in `DENO_DIR`. Where that host cannot
 * be reached and the base is not cached (nor given with `DENORT_BIN`), this script
 * says how to build on a connected machine or air-gapped, and exits 1.
 *
 * Usage: `deno task compile [--output PATH]`. Requires `--allow-read`, `--allow-env`,
 * `--allow-run` (`deno compile`, `deno info`, the built file) and `--allow-write` (leftovers).
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { exists, isFile } from "../src/fs/probe.ts";
import { TOOL_NAME, TOOL_VERSION } from "../src/version.ts";

/** The permission flags the binary gets; the end-to-end tests run the CLI with exactly these. */
export const COMPILE_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-net",
  "--no-prompt",
];

/** Modules the program starts as workers, which `deno compile` embeds only when told (relative to the root). */
export const COMPILE_INCLUDES = [
  "src/fs/_follow_hash_worker.ts",
  "src/fs/_hash_ahead_worker.ts",
  "src/repo/_crypto_worker.ts",
  "src/sqlite/_read_worker.ts",
];

/** Where the binary goes, relative to the project's root. */
export const DEFAULT_OUTPUT = "dist/atocore-backup";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The runtime base `deno compile` needs for this Deno and this machine, and where it would be cached. */
export interface RuntimeBase {
  /** `denort-<target>.zip` under `release/v<version>/`. */
  suffix: string;
  /** The download address. */
  url: string;
  /** The cached copy's path in `DENO_DIR`. */
  cachedPath: string;
  /** The `DENO_DIR` in use. */
  denoDir: string;
}

/** Locate the runtime base of the running Deno (`Deno.version.deno`, `Deno.build.target`) in `denoDir`. */
export function runtimeBase(denoDir: string): RuntimeBase {
  const suffix = `release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
  return { suffix, url: `https://dl.deno.land/${suffix}`, cachedPath: join(denoDir, "dl", suffix), denoDir };
}

/** The one line printed when the base can neither be found nor downloaded. */
export function offlineMessage(base: RuntimeBase): string {
  return `compile: nothing was built: the Deno runtime base (denort ${Deno.version.deno} for ${Deno.build.target}) ` +
    `is not cached in DENO_DIR (${base.denoDir}) and could not be downloaded from ${base.url}; run ` +
    `'deno task compile' on a connected machine and copy dist/atocore-backup here, or fetch and unzip it elsewhere and ` +
    `run 'DENORT_BIN=/path/to/denort deno task compile', or 'DENO_DIR=/path/to/deno_dir deno task compile' with a ` +
    `DENO_DIR holding dl/${base.suffix}`;
}

async function denoDir(): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" }).output();
  return (JSON.parse(new TextDecoder().decode(output.stdout)) as { denoDir: string }).denoDir;
}

/** The folders above `path` that do not exist yet, deepest first: `deno compile` makes them, a failure removes them. */
function missingFolders(path: string): string[] {
  const missing: string[] = [];
  for (let folder = dirname(path); !exists(folder) && folder !== dirname(folder); folder = dirname(folder)) {
    missing.push(folder);
  }
  return missing;
}

/** Remove what a failed build left: the file it wrote (when not this tool), and the folders made for it if empty. */
function removeLeftovers(written: string | null, made: string[]): void {
  for (const path of written === null ? made : [written, ...made]) {
    try {
      Deno.removeSync(path); // not recursive: a folder that holds anything else stays
    } catch {
      // gone already, or not empty
    }
  }
}

/**
 * Why the built `output` is not this tool, or `null` when its `--version` names it: a `DENORT_BIN` that is not denort
 * (`/bin/true`, deno itself) builds a file that exits 0 for every command, and timers would succeed without backups.
 */
async function notThisTool(output: string): Promise<string | null> {
  const expected = `${TOOL_NAME} ${TOOL_VERSION}`;
  try {
    const run = await new Deno.Command(output, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const printed = new TextDecoder().decode(run.stdout).trim();
    if (run.success && printed === expected) return null;
    return `its --version printed ${JSON.stringify(printed.split("\n")[0].slice(0, 80))}, exit ${run.code}`;
  } catch (error) {
    return `its --version did not run (${(error as Error).message})`;
  }
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { output: { type: "string", default: DEFAULT_OUTPUT } } });
  const output = resolve(ROOT, values.output);
  const denortBin = Deno.env.get("DENORT_BIN");
  if (denortBin !== undefined && !isFile(denortBin)) {
    console.error(
      `compile: DENORT_BIN is not a file: ${denortBin}; point it at an unzipped denort ${Deno.version.deno}`,
    );
    return 1;
  }
  const base = runtimeBase(await denoDir());
  const made = missingFolders(output);
  const compiled = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      ...COMPILE_PERMISSIONS,
      ...COMPILE_INCLUDES.flatMap((path) => ["--include", join(ROOT, path)]),
      "--output",
      output,
      join(ROOT, "main.ts"),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wrong = compiled.success ? await notThisTool(output) : null;
  if (compiled.success && wrong === null) {
    await Deno.stdout.write(compiled.stdout);
    console.log(`compile: built ${output} (${COMPILE_PERMISSIONS.join(" ")})`);
    return 0;
  }
  removeLeftovers(wrong === null ? null : output, made); // a failed compile leaves an earlier build in place
  if (wrong !== null) {
    const named = denortBin === undefined
      ? `dl/${base.suffix} in DENO_DIR (${base.denoDir})`
      : `DENORT_BIN=${denortBin}`;
    console.error(
      `compile: nothing was built: ${output} is not ${TOOL_NAME} ${TOOL_VERSION} (${wrong}): ${named} is not ` +
        `denort ${Deno.version.deno}; point DENORT_BIN at an unzipped denort ${Deno.version.deno}`,
    );
    return 1;
  }
  if (denortBin === undefined && !isFile(base.cachedPath)) {
    console.error(offlineMessage(base));
    return 1;
  }
  await Deno.stderr.write(compiled.stderr);
  return compiled.code || 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
