/**
 * The flags that name the off-host repository and its keys, shared by push, the remote commands, `create --push`,
 * `restore --from-remote`, `drill --from-remote` and `config`; and their resolution, once, from flags and environment.
 *
 * @module
 */
import {
  type Config,
  MAX_TRANSFERS,
  REMOTE_VARIABLES,
  type RemoteSettings,
  resolveRemoteSettings,
  resolveTransfers,
  SSH_VARIABLES,
} from "../config.ts";
import { resolve } from "node:path";
import { openFolderBackend } from "../repo/folder.ts";
import { isFolderSpec } from "../repo/open_backend.ts";
import { UsageError } from "../errors.ts";
import { quoted } from "../ops/restore_intent.ts";
import type { Backend } from "../repo/backend.ts";
import { checkedRemoteName, type RemoteSource } from "../ops/from_remote.ts";
import { identitiesFrom, recipientsFrom, refuseRemoteInStore, remoteBackend } from "../ops/remote.ts";
import { DEFAULT_TRANSFERS, FOLDER_FETCH_TRANSFERS, S3_FETCH_TRANSFERS } from "../repo/lanes.ts";
import type { CommandContext, CommandOptions, FlagValues } from "./command.ts";

/** The flags, for a command's `options`. */
export const REMOTE_OPTIONS = {
  remote: { type: "string" },
  identity: { type: "string" },
  "auth-key": { type: "string" },
  recipient: { type: "string", multiple: true },
  "recipients-file": { type: "string" },

  // SFTP
  "ssh-key": { type: "string" },
  "known-hosts": { type: "string" },
  // SFTP and S3
  "stall-timeout": { type: "string" },
  // --- S3 ---
  "s3-endpoint": { type: "string" },
  "s3-region": { type: "string" },
  "s3-addressing": { type: "string" },
  // --- end S3 ---
} as const satisfies CommandOptions;

/** The flags' lines of help. */
export const REMOTE_HELP = `Repository (flag, else environment; no default):
  --remote URL           file:///path or a folder path (NAS, NFS, USB disk),  ATOCORE_BACKUP_REMOTE
                         sftp://USER@HOST[:PORT]/PATH (from the login folder; //PATH: absolute),
                         s3://BUCKET/PREFIX
  --identity FILE        age identity file (secret key), to decrypt           ATOCORE_BACKUP_IDENTITY_FILE
  --auth-key FILE        key file from 'remote auth-key' that a push          ATOCORE_BACKUP_AUTH_KEY_FILE
                         authenticates its snapshots with, and remote
                         cleanup checks refs with (push and cleanup only)
  --recipient age1...    public key to encrypt to (repeatable)                ATOCORE_BACKUP_RECIPIENT
  --recipients-file F    file of age1... recipients, one a line (with --recipient: both)
SFTP (sftp://):
  --ssh-key FILE         private key to log in with (no passphrase)           ATOCORE_SSH_KEY_FILE
                         (default: ~/.ssh/id_ed25519, id_ecdsa or id_rsa, the first that exists)
  --known-hosts FILE     the server's host key must be in it; an unknown or   ATOCORE_SSH_KNOWN_HOSTS
                         changed key is refused (default: ~/.ssh/known_hosts)
S3 (s3://; keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN],
else AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE):
  --s3-endpoint URL      a server other than AWS (http://127.0.0.1:7480)     ATOCORE_S3_ENDPOINT
  --s3-region R          region signed for (default us-east-1)                AWS_REGION
  --s3-addressing path|virtual   default: path with --s3-endpoint, else virtual   ATOCORE_S3_ADDRESSING
SFTP and S3:
  --stall-timeout DUR    drop a connection that makes no progress for DUR    ATOCORE_BACKUP_STALL_TIMEOUT
                         and try again on a new one (90s, 5m; default: 60s
                         for SFTP, 30s for S3); raise it on a slow link`;

/** The repository settings that the flags and the environment give. */
export function remoteSettingsFrom(values: FlagValues<typeof REMOTE_OPTIONS>, context: CommandContext): RemoteSettings {
  return resolveRemoteSettings(
    {
      remote: values.remote,
      identity: values.identity,
      authKey: values["auth-key"],
      recipient: values.recipient,
      recipientsFile: values["recipients-file"],

      sshKey: values["ssh-key"],
      knownHosts: values["known-hosts"],
      stallTimeout: values["stall-timeout"],
      s3Endpoint: values["s3-endpoint"],
      s3Region: values["s3-region"],
      s3Addressing: values["s3-addressing"],
    },
    context.env,
    context.cwd,
  );
}

/**
 * `--allow-unauthenticated`, for push, `create --push`, `remote verify`, `remote cleanup` and restore and drill
 * `--from-remote`.
 */
export const AUTH_OPTIONS = {
  "allow-unauthenticated": { type: "boolean" },
} as const satisfies CommandOptions;

/** The line of help of `--allow-unauthenticated` for a command that pushes. */
export const PUSH_AUTH_HELP =
  `  --allow-unauthenticated  push without --auth-key (warned): snapshots that restore, drill and
                         remote verify then refuse unless given --allow-unauthenticated too`;

/** The line of help of `--allow-unauthenticated` for `remote cleanup`. */
export const CLEANUP_AUTH_HELP =
  `  --allow-unauthenticated  with --auth-key: count snapshots whose refs hold no MAC for it, and
                         keep packs by refs whose list of packs no MAC covers (warned otherwise)`;

/** The line of help of `--allow-unauthenticated` for a command that reads snapshots with the identity. */
export const READ_AUTH_HELP =
  `  --allow-unauthenticated  accept a snapshot whose refs hold no MAC for the identity (pushed
                         without --auth-key; warned, naming it); a wrong MAC is refused all the same`;

/**
 * Refuse repository flags on a command run without `--from-remote`, which would read the local backup folder while
 * the operator meant the repository.
 *
 * @throws {UsageError} naming the flag.
 */
export function refuseRemoteFlagsWithout(
  values: FlagValues<typeof REMOTE_OPTIONS> & Partial<FlagValues<typeof TRANSFER_OPTIONS>>,
  command: string,
  switchFlag: string,
): void {
  const flags = [
    "remote",
    "identity",
    "auth-key",
    "recipient",
    "recipients-file",
    "s3-endpoint",
    "s3-region",
    "s3-addressing",
    "ssh-key",
    "known-hosts",
    "transfers",
    "stall-timeout",
    "allow-unauthenticated",
  ] as const;
  for (const flag of flags) {
    if ((values as Record<string, unknown>)[flag] !== undefined) {
      const purpose = switchFlag === "--push" ? "push to" : "read from";
      throw new UsageError(`${command}: --${flag} goes with ${switchFlag}; add it to ${purpose} the repository`);
    }
  }
}

/**
 * The repository to read a snapshot from and the identities that decrypt it, for `purpose` (`restore --from-remote`);
 * checked before any work, with the snapshot's name when one is given (`snapshot`).
 *
 * @throws {UsageError} when the repository or the identity is missing, the repository lies in the store, or the name is
 *   none of a snapshot (see `checkedRemoteName`; its error prints the repository's `remote list`).
 */
export function remoteSourceFrom(
  values: FlagValues<typeof REMOTE_OPTIONS> & FlagValues<typeof AUTH_OPTIONS>,
  context: CommandContext,
  config: Config,
  purpose: string,
  snapshot?: string,
): RemoteSource {
  const settings = remoteSettingsFrom(values, context);
  const backend = remoteBackend(settings, context.cwd, purpose, context.env, context.reporter);
  refuseRemoteInStore(config, backend);
  const flags = repositoryFlags(settings, backend);
  if (snapshot !== undefined) checkedRemoteName(snapshot, flags);
  const identities = identitiesFrom(settings, purpose, context.reporter);
  const allowUnauthenticated = Boolean(values["allow-unauthenticated"]);
  const identityFile = settings.identityFile?.value;
  const recipients = recipientsFrom(settings);
  // a printed 'remote verify' decrypts with the identity given
  const identityFlag = settings.identityFile?.source === "flag" ? ` --identity ${quoted(identityFile!)}` : "";
  return { backend, identities, recipients, allowUnauthenticated, identityFile, repositoryFlags: flags, identityFlag };
}

/** `--transfers N`, for the commands that move packs (push, fetch, verify); separate from the repository's flags. */
export const TRANSFER_OPTIONS = {
  transfers: { type: "string" },
} as const satisfies CommandOptions;

/** The line of help of `--transfers`. */
export const TRANSFER_HELP =
  `  --transfers N          packs moved at once, 1 to ${MAX_TRANSFERS} (default ${DEFAULT_TRANSFERS}; ` +
  `fetching: ${FOLDER_FETCH_TRANSFERS} from a folder, ${S3_FETCH_TRANSFERS} from S3, ${DEFAULT_TRANSFERS} over SFTP)  ` +
  "ATOCORE_BACKUP_TRANSFERS";

/**
 * The packs to move at once, as config.ts resolves them; `undefined` leaves the engine's default,
 * {@linkcode DEFAULT_TRANSFERS}, or `fetchTransfers` for a fetch. Memory grows by about one 8 MiB pack per transfer.
 *
 * @throws {UsageError} for anything but a whole number from 1 to {@linkcode MAX_TRANSFERS}, an empty one included.
 */
export function transfersFrom(
  values: FlagValues<typeof TRANSFER_OPTIONS>,
  context: CommandContext,
): number | undefined {
  return resolveTransfers(values.transfers, context.env);
}

/**
 * The repository flags among `settings` that were given as flags, absolute where they name a file or a folder, each
 * quoted for a shell and with a leading space; the ones from the environment are left out, as {@linkcode pathFlags}
 * leaves out its paths: a run with it has them. For a command printed as a next step that must run as printed.
 */
export function repositoryFlags(settings: RemoteSettings, backend: Backend): string {
  const given = <T>(setting: { value: T; source: string } | null): T | undefined =>
    setting?.source === "flag" ? setting.value : undefined;
  const remote = given(settings.remote);
  const folder = backend.location.startsWith("file://") ? backend.location.slice("file://".length) : null;
  const recipients = given(settings.recipients);
  const words: [string, string | undefined][] = [
    ["--remote", remote === undefined ? undefined : folder ?? remote],
    ["--auth-key", given(settings.authKeyFile)],
    ...(recipients?.inline ?? []).map((recipient): [string, string] => ["--recipient", recipient]),
    ...(recipients?.files ?? []).map((file): [string, string] => ["--recipients-file", file]),
    ["--ssh-key", given(settings.sshKeyFile)],
    ["--known-hosts", given(settings.knownHosts)],
    ["--stall-timeout", settings.stallTimeout?.source === "flag" ? `${settings.stallTimeout.value}s` : undefined],
    ["--s3-endpoint", given(settings.s3.endpoint)],
    ["--s3-region", given(settings.s3.region)],
    ["--s3-addressing", given(settings.s3.addressing)],
  ];
  return words.map(([flag, value]) => value === undefined ? "" : ` ${flag} ${quoted(value)}`).join("");
}

/** What an output must not overwrite besides the store: the folder repository's objects, and the key files given. */
export interface RepositoryPlaces {
  /** The root of the folder repository (`null`: none, a network one, or one that cannot be resolved). */
  root: string | null;
  /** The identity, auth key, recipients, SSH key and known_hosts files given, each with what it is. */
  keyFiles: [string, string][];
}

/**
 * The places of the repository settings `--remote`, the key flags or their variables give (whichever command runs: a
 * folder is a repository all the same, and a key file overwritten by a report would lose the key), for the output
 * check. The key files are taken as given, whatever else is wrong in the settings (the run fails on that, and its
 * failure is reported: never over a key); the repository where `--remote` resolves.
 */
export function repositoryPlacesOf(values: object, context: CommandContext): RepositoryPlaces {
  const flags = values as Record<string, unknown>;
  const given = (label: string, flag: string, variable: string | null): [string, string][] => {
    const value = typeof flags[flag] === "string" ? flags[flag] : variable === null ? undefined : context.env[variable];
    return typeof value === "string" && value.trim() !== "" ? [[label, resolve(context.cwd, value)]] : [];
  };
  const keyFiles = [
    ...given("identity file", "identity", REMOTE_VARIABLES.identity),
    ...given("authentication key file", "auth-key", REMOTE_VARIABLES.authKey),
    ...given("recipients file", "recipients-file", null),
    ...given("SSH key file", "ssh-key", SSH_VARIABLES.sshKey),
    ...given("known_hosts file", "known-hosts", SSH_VARIABLES.knownHosts),
  ];
  try {
    const spec = typeof flags.remote === "string" ? flags.remote : context.env[REMOTE_VARIABLES.remote];
    const root = spec === undefined || !isFolderSpec(spec)
      ? null
      : openFolderBackend(spec, context.cwd).location.slice("file://".length);
    return { root, keyFiles };
  } catch {
    return { root: null, keyFiles };
  }
}
