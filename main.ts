/**
 * atocore-backup: back up, validate, restore and drill AtoCore's machine store.
 *
 * This file only parses the command word and dispatches; see `src/cli/`.
 *
 * @module
 */
import type { CommandContext } from "./src/cli/command.ts";
import { parseCommandArgs } from "./src/cli/command.ts";
import { closeConnections, COMMANDS, findCommand, groupCommands } from "./src/cli/commands.ts";
import { stderrReporter, writeStderr } from "./src/cli/stderr_reporter.ts";
import { printable } from "./src/cli/format.ts";
import { ExitCode, ToolError, unexpectedErrorLine, unexpectedExitCode, UsageError } from "./src/errors.ts";
import { givenPathSource } from "./src/cli/given_path.ts";
import { reachesRepository, runEnvironment } from "./src/cli/environment.ts";
import { workingFolder } from "./src/cli/working_folder.ts";
import { TOOL_NAME, TOOL_VERSION } from "./src/version.ts";

const TOOL_HELP = `${TOOL_NAME} ${TOOL_VERSION}: back up, validate, restore and drill AtoCore's machine store

Usage: atocore-backup COMMAND [options]

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(15)} ${command.summary}`).join("\n")}

Run 'atocore-backup COMMAND --help' for a command's options and examples, and
'atocore-backup --version' for the version.

Exit codes:
  0  success
  1  the operation ran and failed (validation or integrity failed, I/O error)
  2  usage or configuration error
  3  refused for safety (no acknowledgment, files open, snapshot invalid before restore)
  4  another operation holds the backup folder's lock (or the live store's)
  130, 143  stopped by Ctrl-C (SIGINT) or SIGTERM at a safe point (push, create --push,
     remote cleanup, restore, drill): the message says what the next run does

Examples:
  atocore-backup create --chroma
  atocore-backup list
  atocore-backup validate --all
  atocore-backup create --chroma --push --remote file:///mnt/offsite/atocore
  atocore-backup remote verify --remote file:///mnt/offsite/atocore`;

/** Run the CLI with `args` and return the exit code. */
export async function main(args: string[]): Promise<number> {
  const debug = args.includes("--debug");
  const [name, ...rest] = args;
  const reporter = stderrReporter(Deno.stderr.isTerminal());
  let flags: Record<string, unknown> = {};
  try {
    if (name === "--version" || name === "-V") return print(`${TOOL_NAME} ${TOOL_VERSION}`);
    if (name === undefined || name === "--help" || name === "-h" || name === "help") return print(TOOL_HELP);
    const found = findCommand(args);
    if (!found && groupCommands(name).length && (rest[0] === "--help" || rest[0] === "-h")) {
      return print(groupHelp(name));
    }
    if (!found) throw unknownCommand(name, rest[0]);
    const { command } = found;
    const { values, positionals } = parseCommandArgs(command, found.rest);
    flags = values;
    if (values.help) return print(command.help);
    const terminal = Deno.stdout.isTerminal() && !values.json;
    const reports = values["metrics-file"] !== undefined || values.junit !== undefined;
    const { env, refused } = runEnvironment(reachesRepository(command.name, values), reports);
    const context: CommandContext = { env, cwd: workingFolder(), now: new Date(), reporter, refused };
    const outcome = await command.run(values, positionals, context);
    reporter.clear();
    const asText = terminal || (outcome.plain === true && !values.json);
    printResult(asText ? outcome.text : JSON.stringify(outcome.result, null, 2), command.name, outcome.exitCode);
    return outcome.exitCode;
  } catch (error) {
    const code = error instanceof ToolError ? error.exitCode : unexpectedExitCode(error);
    // this tool's messages are one line, a control character in a path they name shown escaped; another's first line
    const given = (path: string) => givenPathSource(path, flags, Deno.env.toObject(), Deno.cwd());
    const message = printable(error instanceof ToolError ? error.message : unexpectedErrorLine(error, given));
    reporter.clear();
    writeStderr(`${TOOL_NAME}: error: ${message}\n`);
    if (debug && error instanceof Error) writeStderr(`${error.stack}\n`);
    return code;
  } finally {
    await closeConnections();
  }
}

/** The help of a group word (`remote --help`): its commands. */
function groupHelp(word: string): string {
  const group = groupCommands(word);
  return [
    `Usage: atocore-backup ${word} COMMAND [options]`,
    "",
    "Commands:",
    ...group.map((command) => `  ${command.name.padEnd(15)} ${command.summary}`),
    "",
    `Run 'atocore-backup ${word} COMMAND --help' for a command's options and examples.`,
  ].join("\n");
}

/** The error for arguments that name no command: a group word alone (`remote`) names its commands. */
function unknownCommand(name: string, next: string | undefined): UsageError {
  const group = groupCommands(name);
  if (group.length === 0) return new UsageError(`unknown command ${JSON.stringify(name)}; see 'atocore-backup --help'`);
  const names = group.map((command) => command.name.split(" ")[1]);
  const given = next === undefined || next.startsWith("-")
    ? "needs a command"
    : `has no command ${JSON.stringify(next)}`;
  return new UsageError(`${name} ${given}: one of ${names.join(", ")}; see 'atocore-backup ${name} --help'`);
}

function print(text: string): number {
  printResult(text, "help", ExitCode.Ok);
  return ExitCode.Ok;
}

/**
 * Print a command's result; when stdout cannot take it (a full disk, a reader gone), say so on stderr: the exit code
 * stays the operation's, which ran as it says (its snapshot made, its metrics written).
 */
function printResult(text: string, name: string, code: number): void {
  try {
    console.log(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    writeStderr(
      `${TOOL_NAME}: warning: ${name} ended with exit code ${code}, but its result could not be written to stdout ` +
        `(${why}); send stdout where it can be written to see the result\n`,
    );
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
