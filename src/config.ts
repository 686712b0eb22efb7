/**
 * Resolution of the four paths of the machine store (flag, else environment, else default), once, in one place:
 * the result is a plain value passed down to every operation, and nothing else reads the environment.
 *
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { UsageError } from "./errors.ts";

/** Where a resolved path came from, as printed by the `config` command. */
export type Source = "flag" | "env" | "default";

/** One resolved path and its origin. */
export interface ResolvedPath {
  /** Absolute path. */
  path: string;
  /** Where the value came from. */
  source: Source;
  /** The flag or variable that supplied it (or the default's base). */
  from: string;
}

/** The four paths the tool works on. */
export interface Config {
  /** The live SQLite database (WAL mode) of the service. */
  db: ResolvedPath;
  /** The backup folder holding `snapshots/`. */
  backupDir: ResolvedPath;
  /** The project-registry JSON file. */
  registry: ResolvedPath;
  /** The Chroma persistence folder. */
  chromaDir: ResolvedPath;
}

/** Paths given on the command line; any may be missing. */
export interface PathFlags {
  db?: string;
  backupDir?: string;
  registry?: string;
  chromaDir?: string;
}

const SETTINGS = [
  { key: "db", flag: "--db", env: "ATOCORE_DB_PATH", file: "atocore.db" },
  { key: "backupDir", flag: "--backup-dir", env: "ATOCORE_BACKUP_DIR", file: "backups" },
  {
    key: "registry",
    flag: "--registry",
    env: "ATOCORE_PROJECT_REGISTRY_PATH",
    file: "project-registry.json",
  },
  { key: "chromaDir", flag: "--chroma-dir", env: "ATOCORE_CHROMA_PATH", file: "chroma" },
] as const;

/**
 * Resolve the configuration from flags and an environment map.
 *
 * Relative paths are made absolute against `cwd`. An empty value is refused, never taken as unset: `--db "$UNSET"`
 * or `ATOCORE_DB_PATH=` falling back to `./data/atocore.db` would quietly work on another store.
 *
 * @param flags Paths from the command line.
 * @param env Environment variables (pass `Deno.env.toObject()`).
 * @param cwd Folder that relative paths are taken from.
 * @returns The four resolved paths with their sources.
 * @throws {UsageError} naming the flag or variable given an empty value.
 */
export function resolveConfig(
  flags: PathFlags,
  env: Record<string, string | undefined>,
  cwd: string,
): Config {
  refuseEmptyValues(flags, env);
  const dataDir = resolve(cwd, env.ATOCORE_DATA_DIR || "data");
  const entries = SETTINGS.map((setting): [string, ResolvedPath] => {
    const fromFlag = flags[setting.key];
    if (fromFlag) return [setting.key, absolute(fromFlag, cwd, "flag", setting.flag)];
    const fromEnv = env[setting.env];
    if (fromEnv) return [setting.key, absolute(fromEnv, cwd, "env", setting.env)];
    const from = env.ATOCORE_DATA_DIR ? "ATOCORE_DATA_DIR" : "./data";
    return [setting.key, { path: join(dataDir, setting.file), source: "default", from }];
  });
  return Object.fromEntries(entries) as unknown as Config;
}

function absolute(path: string, cwd: string, source: Source, from: string): ResolvedPath {
  return { path: isAbsolute(path) ? resolve(path) : resolve(cwd, path), source, from };
}

/** The path variables besides the four of {@linkcode SETTINGS}. */
const OTHER_PATH_VARIABLES = ["ATOCORE_DATA_DIR", "ATOCORE_SQLITE_LIB"] as const;

/**
 * Refuse a path flag or path variable that is present but empty.
 *
 * @throws {UsageError} naming the first one.
 */
export function refuseEmptyValues(flags: PathFlags, env: Record<string, string | undefined>): void {
  for (const setting of SETTINGS) {
    if (flags[setting.key] === "") throw new UsageError(`${setting.flag} needs a path, not an empty value`);
  }
  for (const name of [...SETTINGS.map((setting) => setting.env), ...OTHER_PATH_VARIABLES]) {
    if (env[name] === "") {
      throw new UsageError(
        `${name} is set but empty; give it a path or unset it (an empty value is not taken as the default; see 'config')`,
      );
    }
  }
}
