/**
 * `config`: print the resolved paths and where each came from.
 *
 * @module
 */
import { ExitCode } from "../errors.ts";
import { COMMON_HELP, configFrom, defineCommand, driverFrom } from "./command.ts";
import { formatTable } from "./format.ts";

/** The `config` command. */
export const configCommand = defineCommand({
  name: "config",
  summary: "print the resolved paths, where each came from, and the SQLite driver",
  help: `Usage: atocore-backup config [options]

Print the four paths the tool works on, each with its source (flag, env or
default), and the SQLite driver and version that would be used.

${COMMON_HELP}

Examples:
  atocore-backup config
  ATOCORE_DATA_DIR=/srv/atocore atocore-backup config --json`,
  options: {},
  maxPositionals: 0,
  run(values, _positionals, context) {
    const config = configFrom(values, context);
    const driver = driverFrom(values, context);
    const result = { ...config, sqlite: { driver: driver.name, version: driver.version } };
    const rows = Object.entries(config).map(([name, value]) => [name, value.path, `${value.source} (${value.from})`]);
    rows.push(["sqlite", `${driver.name} ${driver.version}`, ""]);
    return Promise.resolve({ result, exitCode: ExitCode.Ok, text: formatTable(["SETTING", "VALUE", "SOURCE"], rows) });
  },
});
