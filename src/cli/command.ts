/**
 * The shape every command of the CLI has, and the options they share.
 *
 * A command parses its flags, checks its arguments in plain sentences, calls the
 * engine once, and returns plain data; `main.ts` prints it as JSON or text.
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { type Config, resolveConfig } from "../config.ts";
import { type ExitCodeValue, UsageError } from "../errors.ts";
import type { MetricFacts } from "../report/metrics.ts";
import type { Reporter } from "../report/reporter.ts";
import type { DriverChoice, SqliteDriver } from "../sqlite/driver.ts";
import { DRIVER_CHOICES, openDriver } from "../sqlite/open_driver.ts";

/** What a command learns of the world it runs in, passed in rather than read. */
export interface CommandContext {
  /** Environment variables. */
  env: Record<string, string | undefined>;
  /** Working folder, for relative paths. */
  cwd: string;
  /** The time the command started. */
  now: Date;
  /** Where events and progress go. */
  reporter: Reporter;
}

/** What a command hands back to be printed. */
export interface Outcome {
  /** Plain data, printed as JSON (in the reference module's shapes). */
  result: unknown;
  /** The readable rendering for a terminal. */
  text: string;
  /** How the process ends. */
  exitCode: ExitCodeValue;
  /** What `--metrics-file` records of the run (commands that accept it). */
  metrics?: MetricFacts;
}

/** A command of the CLI. */
export interface Command {
  /** The word that selects it. */
  name: string;
  /** One line for the tool's help. */
  summary: string;
  /** The command's help: usage, options, examples. */
  help: string;
  /** Its flags, for `parseArgs`. */
  options: ParseArgsOptionsConfig;
  /** Highest number of positional arguments. */
  maxPositionals: number;
  /** Run with parsed flags and positionals. */
  run(values: Values, positionals: string[], context: CommandContext): Promise<Outcome>;
}

/** Parsed flag values. */
export type Values = Record<string, string | boolean | undefined>;

/** Flags every command accepts. */
export const GLOBAL_OPTIONS = {
  json: { type: "boolean" },
  debug: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

/** Flags of commands that work on the store's paths. */
export const PATH_OPTIONS = {
  db: { type: "string" },
  "backup-dir": { type: "string" },
  registry: { type: "string" },
  "chroma-dir": { type: "string" },
  "sqlite-driver": { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

/** The lines of help that describe {@linkcode PATH_OPTIONS} and {@linkcode GLOBAL_OPTIONS}. */
export const COMMON_HELP = `Paths (flag, else environment, else default under ATOCORE_DATA_DIR, default ./data):
  --db PATH            live SQLite database      ATOCORE_DB_PATH               atocore.db
  --backup-dir PATH    backup folder             ATOCORE_BACKUP_DIR            backups/
  --registry PATH      project-registry JSON     ATOCORE_PROJECT_REGISTRY_PATH project-registry.json
  --chroma-dir PATH    Chroma folder             ATOCORE_CHROMA_PATH           chroma/
  --sqlite-driver D    auto | ffi | builtin (default auto; ATOCORE_SQLITE_LIB names libsqlite3)
Output:
  --json               JSON on stdout even on a terminal (always when stdout is not one)
  --debug              stack traces on errors
  -h, --help           this help`;

/**
 * Parse a command's arguments strictly: unknown flags, missing values and too many
 * arguments are one-line usage errors.
 *
 * @throws {UsageError}
 */
export function parseCommandArgs(command: Command, args: string[]): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...GLOBAL_OPTIONS, ...PATH_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(`${command.name}: ${(error as Error).message.split("\n")[0]}; see '${command.name} --help'`);
  }
  const values = parsed.values as Values;
  const driver = values["sqlite-driver"];
  if (driver !== undefined && !DRIVER_CHOICES.includes(driver as DriverChoice)) {
    throw new UsageError(`--sqlite-driver must be one of ${DRIVER_CHOICES.join(", ")}, not ${JSON.stringify(driver)}`);
  }
  if (!values.help && parsed.positionals.length > command.maxPositionals) {
    throw new UsageError(
      `${command.name}: too many arguments (${parsed.positionals.join(" ")}); see '${command.name} --help'`,
    );
  }
  return { values, positionals: parsed.positionals };
}

/**
 * The configuration that the path flags and the environment give.
 *
 * @throws {UsageError} for a path flag given an empty value (`--db "$UNSET"`), which
 *   would otherwise fall back silently to the environment or the default store.
 */
export function configFrom(values: Values, context: CommandContext): Config {
  for (const flag of ["db", "backup-dir", "registry", "chroma-dir"]) {
    if (values[flag] === "") throw new UsageError(`--${flag} needs a path, not an empty value`);
  }
  return resolveConfig(
    {
      db: values.db as string | undefined,
      backupDir: values["backup-dir"] as string | undefined,
      registry: values.registry as string | undefined,
      chromaDir: values["chroma-dir"] as string | undefined,
    },
    context.env,
    context.cwd,
  );
}

/**
 * Open the SQLite driver that `--sqlite-driver` names.
 *
 * ({@linkcode parseCommandArgs} has refused an unknown name).
 *
 * @throws {UsageError} when `ffi` is asked for and cannot load.
 */
export function driverFrom(values: Values, context: CommandContext): SqliteDriver {
  const choice = (values["sqlite-driver"] as DriverChoice | undefined) ?? "auto";
  return openDriver(choice, context.env.ATOCORE_SQLITE_LIB || undefined);
}

/** Refuse two flags given together. */
export function refuseBoth(values: Values, first: string, second: string, command: string): void {
  if (values[first] && values[second]) {
    throw new UsageError(`${command}: --${first} and --${second} cannot be used together; pick one`);
  }
}
