/**
 * The table of the CLI's commands, in the order `--help` lists them.
 *
 * @module
 */
import { cleanupCommand } from "./cleanup.ts";
import type { Command } from "./command.ts";
import { configCommand } from "./config.ts";
import { createCommand } from "./create.ts";
import { drillCommand } from "./drill.ts";
import { listCommand } from "./list.ts";
import { pushCommand } from "./push.ts";
import { remoteAuthKeyCommand } from "./remote_auth_key.ts";
import { remoteCleanupCommand } from "./remote_cleanup.ts";
import { remoteInitCommand } from "./remote_init.ts";
import { remoteListCommand } from "./remote_list.ts";
import { remoteVerifyCommand } from "./remote_verify.ts";
import { restoreCommand } from "./restore.ts";
import { validateCommand } from "./validate.ts";
import { closeBackends } from "../repo/open_backend.ts";

/** Every command of the tool; a two-word name (`remote init`) is matched against the first two arguments. */
export const COMMANDS: readonly Command[] = [
  createCommand,
  listCommand,
  validateCommand,
  restoreCommand,
  cleanupCommand,
  drillCommand,
  pushCommand,
  remoteInitCommand,
  remoteListCommand,
  remoteVerifyCommand,
  remoteCleanupCommand,
  remoteAuthKeyCommand,
  configCommand,
];

/**
 * The command `args` start with and the arguments after its name; `null` when none matches. A group word alone
 * (`remote`) matches nothing, so that it is reported with the group's commands.
 */
export function findCommand(args: readonly string[]): { command: Command; rest: string[] } | null {
  for (const command of COMMANDS) {
    const words = command.name.split(" ");
    if (words.every((word, index) => args[index] === word)) return { command, rest: args.slice(words.length) };
  }
  return null;
}

/** The commands whose name starts with the group word `word` (`remote`), for a message naming them. */
export function groupCommands(word: string): Command[] {
  return COMMANDS.filter((command) => command.name.startsWith(`${word} `));
}

/**
 * Close every connection a command's backends opened, when the command ends however it ends: an SFTP connection is
 * ended politely, and never keeps the process alive.
 */
export function closeConnections(): Promise<void> {
  return closeBackends();
}
