/**
 * The shape of a CLI command, its flags typed from its declared options, and the flags all commands share;
 * one place so that every command parses, checks and reports its arguments the same way.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type Config,
  refuseReplacedBytes,
  refuseSecretValue,
  refuseUnexpandedHome,
  resolveConfig,
  sqliteLibraryFrom,
} from "../config.ts";
import { refuseOverlappingPaths } from "../path_overlap.ts";
import { type ExitCodeValue, UsageError } from "../errors.ts";
import type { MetricFacts } from "../report/metrics.ts";
import type { Reporter } from "../report/reporter.ts";
import type { DriverChoice, SqliteDriver } from "../sqlite/driver.ts";
import { DRIVER_CHOICES, isDriverChoice, openDriver } from "../sqlite/open_driver.ts";

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
  /**
   * An environment variable found not UTF-8 before a run that reports itself (see `runEnvironment`): the run records
   * its failure (`withMetrics`, drill's JUnit) and throws this, doing nothing else.
   */
  refused?: UsageError;
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
  /** `text` is the command's product (a file's content): printed as is even when stdout is not a terminal. */
  plain?: boolean;
}

/**
 * A command's own flags, in `parseArgs`'s form: each one a boolean or a string (a string flag may be `multiple`:
 * repeated), without a default, so that {@linkcode FlagValues} can say exactly what parsing gives.
 */
export type CommandOptions = {
  readonly [flag: string]: { readonly type: "boolean" | "string"; readonly short?: string; readonly multiple?: true };
};

/**
 * What parsing gives for `options`: `boolean` or `string` per flag as declared (`string[]` for a `multiple` one),
 * `undefined` when it is left out.
 */
export type FlagValues<O extends CommandOptions> = {
  [Flag in keyof O]?: O[Flag] extends { multiple: true } ? string[] : FlagValue<O[Flag]["type"]>;
};

// Distributes over a union: a flag that may be either type (in the table of all commands) reads as either.
type FlagValue<T> = T extends "boolean" ? boolean : T extends "string" ? string : never;

/** The values a command with `options` receives: its own flags and the shared ones. */
export type CommandFlags<O extends CommandOptions> =
  & FlagValues<typeof GLOBAL_OPTIONS>
  & FlagValues<typeof PATH_OPTIONS>
  & FlagValues<O>;

/** A command of the CLI, with its own flags `O`. */
export interface Command<O extends CommandOptions = CommandOptions> {
  /** The word that selects it. */
  name: string;
  /** One line for the tool's help. */
  summary: string;
  /** The command's help: usage, options, examples. */
  help: string;
  /** Its own flags, for `parseArgs`. */
  options: O;
  /** Highest number of positional arguments. */
  maxPositionals: number;
  /**
   * Run with parsed flags and positionals. (A method, so that the table of commands can hold each one as a
   * plain `Command`: `main.ts` passes it only the values parsed with its own options.)
   */
  run(values: CommandFlags<O>, positionals: string[], context: CommandContext): Promise<Outcome>;
}

/** A command whose `run` receives values typed by its `options`, which are inferred from the literal. */
export function defineCommand<const O extends CommandOptions>(command: Command<O>): Command<O> {
  return command;
}

/** Flags every command accepts. */
export const GLOBAL_OPTIONS = {
  json: { type: "boolean" },
  debug: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies CommandOptions;

/** Flags of commands that work on the store's paths. */
export const PATH_OPTIONS = {
  db: { type: "string" },
  "backup-dir": { type: "string" },
  registry: { type: "string" },
  "chroma-dir": { type: "string" },
  "sqlite-driver": { type: "string" },
} as const satisfies CommandOptions;

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

/** What `parseArgs` refused, in this tool's words where its own give advice that does not apply here. */
function parseProblem(error: Error & { code?: string }): string {
  const quoted = /'(-[^']*)'/.exec(error.message)?.[1] ?? "an option";
  const flag = quoted.split(/[ ,]+/).findLast((word) => word.startsWith("-")) ?? quoted; // "-h, --help": --help
  if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${flag}`;
  if (/does not take an argument/.test(error.message)) {
    return `${flag} is a switch and takes no value (give ${flag} alone)`;
  }
  if (/argument missing/.test(error.message)) return `${flag} needs a value`;
  if (error.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && /ambiguous/.test(error.message)) {
    return `${flag} needs a value, and what follows it starts with '-' (give one that does: a count or a duration ` +
      `is never negative; a value that really starts with '-' is given as ${flag}=VALUE)`;
  }
  return error.message.split("\n")[0].replace(/\.$/, "");
}

/**
 * Parse a command's arguments strictly: unknown flags, missing values and too many
 * arguments are one-line usage errors.
 *
 * @throws {UsageError}
 */
export function parseCommandArgs<O extends CommandOptions>(
  command: Command<O>,
  args: string[],
): { values: CommandFlags<O>; positionals: string[] } {
  const options: CommandOptions = { ...GLOBAL_OPTIONS, ...PATH_OPTIONS, ...command.options };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    throw new UsageError(`${command.name}: ${parseProblem(error as Error)}; see '${command.name} --help'`);
  }
  refuseRepeated(command.name, options, parsed.tokens);
  for (const token of parsed.tokens) {
    if (token.kind === "option" && token.value !== undefined) {
      refuseSecretValue(token.value, `--${token.name}`);
      refuseUnexpandedHome(token.value, `--${token.name}`); // every flag's: --to=~/x reaches here as it is
      refuseReplacedBytes(token.value, `--${token.name}`);
    }
    if (token.kind === "positional") {
      refuseSecretValue(token.value, `${command.name}'s argument`);
      refuseReplacedBytes(token.value, `${command.name}'s argument`);
    }
  }
  const values: Record<string, unknown> = parsed.values;
  if (!hasDeclaredTypes<O>(options, values)) {
    throw new Error(`${command.name}: a flag was parsed with a type it was not declared with; please report this bug`);
  }
  const driver = values["sqlite-driver"];
  if (driver !== undefined) checkedDriverChoice(driver);
  if (!values.help && parsed.positionals.length > command.maxPositionals) {
    throw new UsageError(
      `${command.name}: too many arguments (${parsed.positionals.join(" ")}); see '${command.name} --help'`,
    );
  }
  return { values, positionals: parsed.positionals };
}

/**
 * Refuse a flag that takes one value given more than once: the last would win silently (`--to A ... --to B` from a
 * script that appends flags), and which one the operator meant is not for this tool to guess.
 */
function refuseRepeated(
  name: string,
  options: CommandOptions,
  tokens: readonly { kind: string; name?: string }[],
): void {
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option" || token.name === undefined) continue;
    const option = options[token.name];
    if (option?.type !== "string" || option.multiple) continue;
    if (seen.has(token.name)) {
      throw new UsageError(`${name}: --${token.name} is given more than once; give it once (see '${name} --help')`);
    }
    seen.add(token.name);
  }
}

/**
 * Whether each parsed value has the type its flag declares, as strict `parseArgs` promises; checked here so
 * that the typed values a command receives are proven, not asserted.
 */
function hasDeclaredTypes<O extends CommandOptions>(
  options: CommandOptions,
  values: Record<string, unknown>,
): values is CommandFlags<O> {
  return Object.entries(values).every(([flag, value]) =>
    value === undefined ||
    (Array.isArray(value)
      ? options[flag]?.multiple === true && value.every((item) => typeof item === options[flag].type)
      : typeof value === options[flag]?.type && options[flag]?.multiple !== true)
  );
}

/**
 * The configuration that the path flags and the environment give, refused when its paths overlap: every command
 * that works on the store's paths gets them here, so none runs on such a configuration.
 *
 * @throws {UsageError} for a path flag or variable given an empty value (`--db "$UNSET"`, `ATOCORE_DB_PATH=`),
 *   which would otherwise fall back silently to the default store, and for overlapping paths.
 */
export function configFrom(values: FlagValues<typeof PATH_OPTIONS>, context: CommandContext): Config {
  const config = resolvedConfigFrom(values, context);
  refuseOverlappingPaths(config);
  return config;
}

/**
 * The configuration as {@linkcode configFrom} resolves it, without refusing overlapping paths (for `config`, which
 * reports them).
 *
 * @throws {UsageError} for a path flag or variable given an empty value.
 */
export function resolvedConfigFrom(values: FlagValues<typeof PATH_OPTIONS>, context: CommandContext): Config {
  return resolveConfig(
    { db: values.db, backupDir: values["backup-dir"], registry: values.registry, chromaDir: values["chroma-dir"] },
    context.env,
    context.cwd,
  );
}

/**
 * Open the SQLite driver that `--sqlite-driver` names; under `auto`, a library named by `ATOCORE_SQLITE_LIB` that does
 * not load is the warning `sqlite_library_not_loaded` before the built-in driver is used.
 *
 * @throws {UsageError} when `ffi` is asked for and cannot load, or a path variable is set but empty.
 */
export function driverFrom(values: FlagValues<typeof PATH_OPTIONS>, context: CommandContext): SqliteDriver {
  const library = sqliteLibraryFrom(context.env);
  const choice = checkedDriverChoice(values["sqlite-driver"] ?? "auto");
  return openDriver(
    choice,
    library,
    (error) => context.reporter.event("warning", "sqlite_library_not_loaded", { path: library, error }),
  );
}

/**
 * The driver that `--sqlite-driver` names.
 *
 * @throws {UsageError} for a name that is not one of {@linkcode DRIVER_CHOICES}.
 */
function checkedDriverChoice(name: string): DriverChoice {
  if (!isDriverChoice(name)) {
    throw new UsageError(`--sqlite-driver must be one of ${DRIVER_CHOICES.join(", ")}, not ${JSON.stringify(name)}`);
  }
  return name;
}

/** Refuse two flags given together. */
export function refuseBoth<V extends object>(
  values: V,
  first: keyof V & string,
  second: keyof V & string,
  command: string,
): void {
  if (values[first] && values[second]) {
    throw new UsageError(`${command}: --${first} and --${second} cannot be used together; pick one`);
  }
}
