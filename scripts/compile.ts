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
 * Usage: `deno task compile [--output PATH]`. Requires `--allow-read`, `--allow-env`
 * and `--allow-run` (it runs `deno compile` and `deno info`).
 *
 * @module
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isFile } from "../src/fs/probe.ts";

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

/** The message printed when the base can neither be found nor downloaded. */
export function offlineMessage(base: RuntimeBase): string {
  return [
    `compile: nothing was built: the Deno runtime base (denort ${Deno.version.deno} for ${Deno.build.target}) ` +
    `is not cached in DENO_DIR (${base.denoDir}) and could not be downloaded from ${base.url}.`,
    `  Connected machine: run 'deno task compile' there (denort is downloaded once into DENO_DIR), ` +
    `then copy dist/atocore-backup to this host.`,
    `  Air-gapped: fetch ${base.url} elsewhere, unzip it, and run 'DENORT_BIN=/path/to/denort deno task compile'; ` +
    `or carry over a DENO_DIR holding dl/${base.suffix} and run 'DENO_DIR=/path/to/deno_dir deno task compile'. ` +
    `denort must be the same version as the deno that compiles (${Deno.version.deno}).`,
  ].join("\n");
}

async function denoDir(): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" }).output();
  return (JSON.parse(new TextDecoder().decode(output.stdout)) as { denoDir: string }).denoDir;
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
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (compiled.success) {
    console.log(`compile: built ${output} (${COMPILE_PERMISSIONS.join(" ")})`);
    return 0;
  }
  if (denortBin === undefined && !isFile(base.cachedPath)) {
    console.error(offlineMessage(base));
    return 1;
  }
  await Deno.stderr.write(compiled.stderr);
  return compiled.code || 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
