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
import { restoreCommand } from "./restore.ts";
import { validateCommand } from "./validate.ts";

/** Every command of the tool. */
export const COMMANDS: readonly Command[] = [
  createCommand,
  listCommand,
  validateCommand,
  restoreCommand,
  cleanupCommand,
  drillCommand,
  configCommand,
];
