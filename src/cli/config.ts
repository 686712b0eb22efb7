/**
 * `config`: print the resolved paths and where each came from.
 *
 * @module
 */
import type { RemoteSetting, RemoteSettings } from "../config.ts";
import { ExitCode } from "../errors.ts";
import { pathProblems } from "../path_overlap.ts";
import { COMMON_HELP, defineCommand, driverFrom, resolvedConfigFrom } from "./command.ts";
import { formatTable } from "./format.ts";
import { REMOTE_HELP, REMOTE_OPTIONS, remoteSettingsFrom } from "./remote_flags.ts";
import { credentialSource } from "../repo/s3/credentials.ts";
import { DEFAULT_REGION } from "../repo/s3/open.ts";

/** The `config` command. */
export const configCommand = defineCommand({
  name: "config",
  summary: "print the resolved paths, where each came from, and the SQLite driver",
  help: `Usage: atocore-backup config [options]

Print the four paths the tool works on, each with its source (flag, env or
default), the SQLite driver and version that would be used, and the off-host
repository settings (repository, identity file, auth key file, recipients,
SSH key and known_hosts files, stall timeout) with their sources; the key
files' content is never read or shown here. Paths that
overlap (the backup folder inside the Chroma folder, the database inside the
backup folder, ...) are listed as problems, and then config exits 2, as every
other command would refuse to run on them.

${REMOTE_HELP}
${COMMON_HELP}

Examples:
  atocore-backup config
  ATOCORE_DATA_DIR=/srv/atocore atocore-backup config --json`,
  options: { ...REMOTE_OPTIONS },
  maxPositionals: 0,
  run(values, _positionals, context) {
    const config = resolvedConfigFrom(values, context);
    const driver = driverFrom(values, context);
    const remote = remoteSettingsFrom(values, context);
    const overlaps = pathProblems(config);
    const s3Credentials = /^s3:\/\//i.test(remote.remote?.value ?? "") ? credentialSource(context.env).from : null;
    const result = {
      ...config,
      sqlite: { driver: driver.name, version: driver.version },
      remote: { ...remote, s3_credentials: s3Credentials },
      overlaps,
    };
    const rows = Object.entries(config).map(([name, value]) => [name, value.path, `${value.source} (${value.from})`]);
    rows.push(["sqlite", `${driver.name} ${driver.version}`, ""]);
    rows.push(...remoteRows(remote, context.env));
    const problems = overlaps.map((overlap) => `PROBLEM: ${overlap}; every other command refuses to run`);
    return Promise.resolve({
      result,
      exitCode: overlaps.length ? ExitCode.Usage : ExitCode.Ok,
      text: [formatTable(["SETTING", "VALUE", "SOURCE"], rows), ...problems].join("\n"),
    });
  },
});

/** The repository settings as rows: each value (recipients and paths only; no secret) and where it came from. */
function remoteRows(remote: RemoteSettings, env: Record<string, string | undefined>): string[][] {
  const row = <T>(name: string, setting: RemoteSetting<T> | null, show: (value: T) => string) =>
    setting === null ? [name, "(not set)", ""] : [name, show(setting.value), `${setting.source} (${setting.from})`];
  return [
    row("remote", remote.remote, (value) => value),
    row("identity", remote.identityFile, (path) => path),
    row("auth-key", remote.authKeyFile, (path) => path),
    row(
      "recipients",
      remote.recipients,
      ({ inline, files }) => [...inline, ...files.map((f) => `file ${f}`)].join(", "),
    ),

    // SFTP: paths only; the key's content is never read here
    remote.sshKeyFile === null
      ? ["ssh-key", "(not set: ~/.ssh/id_ed25519, id_ecdsa or id_rsa)", ""]
      : row("ssh-key", remote.sshKeyFile, (path) => path),
    row("known-hosts", remote.knownHosts, (path) => path),
    remote.stallTimeout === null
      ? ["stall-timeout", "60s over SFTP, 30s over S3", "default"]
      : row("stall-timeout", remote.stallTimeout, (seconds) => `${seconds}s`),
    ...s3Rows(remote, env),
  ];
}

/** The S3 settings as rows, shown only for an `s3://` remote: each value or its default, and the credentials' source. */
function s3Rows(remote: RemoteSettings, env: Record<string, string | undefined>): string[][] {
  if (!/^s3:\/\//i.test(remote.remote?.value ?? "")) return [];
  const { endpoint, region, addressing } = remote.s3;
  const shown = <T>(name: string, setting: RemoteSetting<T> | null, fallback: string) =>
    setting === null
      ? [name, fallback, "default"]
      : [name, String(setting.value), `${setting.source} (${setting.from})`];
  const credentials = credentialSource(env);
  return [
    shown("s3 endpoint", endpoint, `AWS (https://s3.${region?.value ?? DEFAULT_REGION}.amazonaws.com)`),
    shown("s3 region", region, DEFAULT_REGION),
    shown("s3 addressing", addressing, endpoint === null ? "virtual" : "path"),
    ["s3 credentials", "(never shown)", credentials.from],
  ];
}
