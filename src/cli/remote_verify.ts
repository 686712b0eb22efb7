/**
 * `remote verify`: check the off-host repository, by sizes without the identity and by content with it.
 *
 * @module
 */
import { ExitCode, UsageError } from "../errors.ts";
import { identitiesFrom, openForReading, recipientsFrom, remoteBackend } from "../ops/remote.ts";
import { parseSnapshotKey, refsName } from "../repo/layout.ts";
import { verifyRepository, type VerifyResult } from "../repo/verify.ts";
import { type CommandFlags, COMMON_HELP, configFrom, defineCommand } from "./command.ts";
import { formatBytes } from "../text/bytes.ts";
import { printable } from "./format.ts";
import {
  AUTH_OPTIONS,
  READ_AUTH_HELP,
  REMOTE_HELP,
  REMOTE_OPTIONS,
  remoteSettingsFrom,
  TRANSFER_HELP,
  TRANSFER_OPTIONS,
  transfersFrom,
} from "./remote_flags.ts";

/** The `remote verify` command. */
export const remoteVerifyCommand = defineCommand({
  name: "remote verify",
  summary: "check the off-host repository: every object there with its size; with --read-data, every byte",
  help: `Usage: atocore-backup remote verify [--read-data | --read-data-subset N%] [options]

Without the identity: every listed snapshot has its refs, its object hashes to
what they record, and every pack it needs exists with the recorded size. With
--identity: every snapshot's document is decrypted and checked too, and its
refs must hold a valid MAC by the identity's auth key (see 'remote auth-key';
--allow-unauthenticated accepts snapshots with none, naming them). With
--read-data (needs the identity): every pack is read, its name checked against
its bytes' SHA-256, decrypted, decompressed, and every block any snapshot takes
from it checked by hash; --read-data-subset N% does that for N% of the packs,
chosen at random (spread a full read over several runs). Exit 1 when anything is
wrong, each problem one line naming the object.

Options:
  --read-data              read, decrypt and check every pack (needs --identity)
  --read-data-subset N%    the same for N percent of the packs, chosen at random
${REMOTE_HELP}
${READ_AUTH_HELP}
${TRANSFER_HELP}
${COMMON_HELP}

Examples:
  atocore-backup remote verify --remote file:///mnt/offsite/atocore
  atocore-backup remote verify --read-data --identity atocore-offsite.key
  atocore-backup remote verify --read-data-subset 10% --identity atocore-offsite.key --json`,
  options: {
    "read-data": { type: "boolean" },
    "read-data-subset": { type: "string" },
    ...REMOTE_OPTIONS,
    ...AUTH_OPTIONS,
    ...TRANSFER_OPTIONS,
  },
  maxPositionals: 0,
  async run(values, _positionals, context) {
    const subset = subsetFrom(values);
    const transfers = transfersFrom(values, context);
    const readData = Boolean(values["read-data"]) || subset !== undefined;
    const config = configFrom(values, context);
    const settings = remoteSettingsFrom(values, context);
    const backend = remoteBackend(settings, context.cwd, "remote verify", context.env, context.reporter);
    const identities = readData || settings.identityFile
      ? identitiesFrom(
        settings,
        `remote verify ${subset === undefined ? "--read-data" : "--read-data-subset"}`,
        context.reporter,
      )
      : [];
    const given = { recipients: recipientsFrom(settings), identities, identityFile: settings.identityFile?.value };
    await openForReading(config, backend, given);
    const allowUnauthenticated = Boolean(values["allow-unauthenticated"]);
    const result = await verifyRepository(backend, { identities, readData, subset, transfers, allowUnauthenticated });
    for (const error of result.errors) context.reporter.event("warning", "remote_verify_problem", { error });
    for (const snapshot of result.unauthenticated) {
      const refs = refsName(parseSnapshotKey(snapshot)!);
      context.reporter.event("warning", "remote_snapshot_unauthenticated", { snapshot, refs });
    }
    return {
      result: { location: backend.location, read_data: readData, ...result },
      exitCode: result.ok ? ExitCode.Ok : ExitCode.Failed,
      text: describe(result, backend.location, readData, identities.length > 0),
    };
  },
});

type Values = CommandFlags<typeof remoteVerifyCommand.options>;

/**
 * The percentage `--read-data-subset` gives (`10%` or `10`, 1 to 100), or `undefined`.
 *
 * @throws {UsageError} for another value, or with `--read-data`.
 */
function subsetFrom(values: Values): number | undefined {
  const text = values["read-data-subset"];
  if (text === undefined) return undefined;
  if (values["read-data"]) {
    throw new UsageError("remote verify: --read-data and --read-data-subset cannot be used together; pick one");
  }
  const match = /^(\d{1,3})%?$/.exec(text);
  const percent = match ? Number(match[1]) : NaN;
  if (!(percent >= 1 && percent <= 100)) {
    throw new UsageError(
      `remote verify: --read-data-subset must be a percentage from 1% to 100%, not ${JSON.stringify(text)}`,
    );
  }
  return percent;
}

function describe(result: VerifyResult, location: string, readData: boolean, decrypted: boolean): string {
  const depth = readData
    ? `content read: ${result.packs_read} packs (${
      formatBytes(result.bytes_read)
    }), ${result.extents_checked} blocks checked`
    : decrypted
    ? "documents decrypted; pack contents not read (--read-data)"
    : "objects and sizes only (--identity and --read-data read the content)";
  const lines = [
    `${result.ok ? "repository OK" : "REPOSITORY DAMAGED"}: ${printable(location)}: ${result.snapshots} snapshots, ` +
    `${result.packs_referenced} packs referenced and present; ${depth}`,
    ...result.errors.map((error) => `  ERROR ${printable(error)}`),
    ...result.unauthenticated.map((name) => `  UNAUTHENTICATED ${printable(name)} (accepted: --allow-unauthenticated)`),
    ...result.notes.map((note) => `  note: ${printable(note)}`),
  ];
  return lines.join("\n");
}
