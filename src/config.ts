/**
 * Resolution of the four paths of the machine store (flag, else environment, else default), once, in one place:
 * the result is a plain value passed down to every operation, and nothing else reads the environment.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { isAbsolute, join, resolve } from "node:path";
import { parseDurationSeconds } from "./duration.ts";
import { UsageError } from "./errors.ts";
import { realPathAsFarAsExists } from "./fs/real_path.ts";

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
  /** The path as given, where links were resolved to make `path` (the database's): the links the checks judge. */
  given?: string;
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
  const config = Object.fromEntries(entries) as unknown as Config;
  const real = realPathAsFarAsExists(config.db.path);
  return { ...config, db: real === config.db.path ? config.db : { ...config.db, path: real, given: config.db.path } };
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
    const value = flags[setting.key];
    if (value !== undefined) refuseOddPathFlag(value, setting.flag);
  }
  for (const name of [...SETTINGS.map((setting) => setting.env), ...OTHER_PATH_VARIABLES]) {
    const value = env[name];
    if (value === undefined) continue;
    refuseSecretValue(value, name);
    if (value.trim() === "") {
      throw new UsageError(
        `${name} is set but empty; give it a path or unset it (an empty value is not taken as the default; see 'config')`,
      );
    }
    refuseEdgeWhitespace(value, name);
    refuseUnexpandedHome(value, name);
  }
}

/**
 * Refuse the value `value` of path flag `flag` (`--db`, `--metrics-file`) when it is empty, begins or ends with
 * whitespace, or begins with `~`, as an environment variable's is.
 *
 * @throws {UsageError} naming the flag.
 */
export function refuseOddPathFlag(value: string, flag: string): void {
  if (value.trim() === "") {
    throw new UsageError(`${flag} needs a path, not an empty value; give one, or leave ${flag} out`);
  }
  refuseEdgeWhitespace(value, flag);
  refuseUnexpandedHome(value, flag);
}

/** A path that starts or ends with whitespace: pasted or quoted by mistake (a leading space makes it relative). */
function refuseEdgeWhitespace(value: string, from: string): void {
  if (value.trim() === value) return;
  throw new UsageError(
    `${from} begins or ends with whitespace (a space or a line break); give the value without it`,
  );
}

/**
 * Refuse a path that is `~` or begins with `~/`: only a shell expands it (a systemd environment file, a quoted value or
 * `--db=~/x` does not), and taken as it is it names a folder `~` in the working folder, made there without a word.
 *
 * @throws {UsageError} naming `from` and saying to write the path out in full.
 */
export function refuseUnexpandedHome(value: string, from: string): void {
  if (value !== "~" && !value.startsWith("~/")) return;
  throw new UsageError(
    `${from} begins with "~", which the shell did not expand (an environment file, a quoted value or --flag=~/... ` +
      `is not expanded): it would name a folder "~" in the working folder; write the path out in full (/home/...)`,
  );
}

/**
 * Refuse a value holding U+FFFD: Deno reads an argument's bytes that are not UTF-8 as that character, so a path named
 * so would name another file, or one that is not there.
 *
 * @throws {UsageError} naming `from` and saying to give the path in UTF-8.
 */
export function refuseReplacedBytes(value: string, from: string): void {
  if (!value.includes("\uFFFD")) return;
  throw new UsageError(
    `${from} ${value} holds bytes that are not UTF-8 (or U+FFFD), which reach this tool changed and would name ` +
      "another file; nothing was done; give it in UTF-8 (rename a file or folder whose name is not)",
  );
}

/**
 * The libsqlite3 that `ATOCORE_SQLITE_LIB` names for the FFI driver, as given (a bare name is searched for as the
 * system's loader searches), or `undefined`.
 *
 * @throws {UsageError} for a path variable set but empty, as {@linkcode refuseEmptyValues}.
 */
export function sqliteLibraryFrom(env: Record<string, string | undefined>): string | undefined {
  refuseEmptyValues({}, env); // ATOCORE_SQLITE_LIB= is refused like the store's variables
  return env.ATOCORE_SQLITE_LIB || undefined;
}

/** A setting of the off-host repository that is not a path of the store (a location, a key file, public keys). */
export interface RemoteSetting<T> {
  value: T;
  /** Where the value came from (`default` only for the known_hosts file). */
  source: Source;
  /** The flag(s) or variable that supplied it. */
  from: string;
}

/** The off-host repository's settings; each is `null` when neither a flag nor the environment gives it. */
export interface RemoteSettings {
  /** `file:///path` or a path, as given (a relative path is taken from `cwd` when the repository is opened). */
  remote: RemoteSetting<string> | null;
  /** The age identity file (secret key) that restore, drill and verify --read-data decrypt with. */
  identityFile: RemoteSetting<string> | null;
  /** The authentication key file (`remote auth-key`'s output) that a push makes the refs' MACs with. */
  authKeyFile: RemoteSetting<string> | null;
  /** Recipients given inline (`age1…`) and recipients files (absolute paths), from flags or else the environment. */
  recipients: RemoteSetting<{ inline: string[]; files: string[] }> | null;

  /** SFTP: the SSH private key file (absolute); `null` leaves it to ~/.ssh/id_ed25519, id_ecdsa or id_rsa. */
  sshKeyFile: RemoteSetting<string> | null;
  /** SFTP: the known_hosts file the server's host key must be in (absolute; default ~/.ssh/known_hosts). */
  knownHosts: RemoteSetting<string> | null;
  /** SFTP and S3: seconds a connection may make no progress before it is dropped and retried; `null`: the backend's. */
  stallTimeout: RemoteSetting<number> | null;
  // --- S3 (an s3:// remote) ---
  /** Endpoint, region and addressing of an `s3://` remote (credentials are read where used: see repo/s3/credentials). */
  s3: S3Settings;
  // --- end S3 ---
}

// --- S3 (an s3:// remote) ---
/** The settings of an `s3://` remote; each `null` when neither a flag nor the environment gives it (then defaulted). */
export interface S3Settings {
  /** A custom server's URL (`http://127.0.0.1:7480`); `null`: AWS's endpoint for the region. */
  endpoint: RemoteSetting<string> | null;
  /** The region signed for; `null`: `us-east-1`. */
  region: RemoteSetting<string> | null;
  /** `path` or `virtual`; `null`: path-style for a custom endpoint, virtual-hosted for AWS. */
  addressing: RemoteSetting<"path" | "virtual"> | null;
}

/** The S3 flags and their variables (the region also from `AWS_DEFAULT_REGION`). */
const S3_SETTINGS = [
  { key: "endpoint", flag: "--s3-endpoint", env: ["ATOCORE_S3_ENDPOINT"] },
  { key: "region", flag: "--s3-region", env: ["AWS_REGION", "AWS_DEFAULT_REGION"] },
  { key: "addressing", flag: "--s3-addressing", env: ["ATOCORE_S3_ADDRESSING"] },
] as const;

/**
 * The S3 settings from flags and environment (a flag wins).
 *
 * @throws {UsageError} for an empty value, or an addressing other than `path` or `virtual`.
 */
function resolveS3Settings(flags: RemoteFlags, env: Record<string, string | undefined>): S3Settings {
  const given = { endpoint: flags.s3Endpoint, region: flags.s3Region, addressing: flags.s3Addressing };
  const settings: Record<string, RemoteSetting<string> | null> = {};
  for (const setting of S3_SETTINGS) {
    const flag = given[setting.key];
    // an empty AWS_REGION is taken as unset, as AWS's own tools take it; this tool's variables and flags are refused
    const variable = setting.env.find((name) =>
      env[name] !== undefined && (env[name] !== "" || !name.startsWith("AWS_"))
    );
    const found: RemoteSetting<string> | null = flag !== undefined
      ? { value: flag, source: "flag", from: setting.flag }
      : variable === undefined
      ? null
      : { value: env[variable]!, source: "env", from: variable };
    if (found !== null && found.value.trim() === "") {
      throw new UsageError(`${found.from} needs a value, not an empty one; unset it or see 'config'`);
    }
    if (setting.key === "endpoint" && found !== null) refusePassword(found.value, found.from);
    settings[setting.key] = found;
  }
  const addressing = settings.addressing;
  if (addressing !== null && addressing.value !== "path" && addressing.value !== "virtual") {
    throw new UsageError(`${addressing.from} is ${JSON.stringify(addressing.value)}; give path or virtual`);
  }
  return settings as unknown as S3Settings;
}
// --- end S3 ---

/** The repository settings given on the command line; any may be missing. */
export interface RemoteFlags {
  remote?: string;
  identity?: string;
  authKey?: string;
  recipient?: string[];
  recipientsFile?: string;

  sshKey?: string;
  knownHosts?: string;
  stallTimeout?: string;
  // --- S3 ---
  s3Endpoint?: string;
  s3Region?: string;
  s3Addressing?: string;
  // --- end S3 ---
}

/** The environment variables of the repository settings. */
export const REMOTE_VARIABLES = {
  remote: "ATOCORE_BACKUP_REMOTE",
  identity: "ATOCORE_BACKUP_IDENTITY_FILE",
  authKey: "ATOCORE_BACKUP_AUTH_KEY_FILE",
  recipient: "ATOCORE_BACKUP_RECIPIENT",
  stallTimeout: "ATOCORE_BACKUP_STALL_TIMEOUT",
} as const;

/** The environment variables of the SFTP settings. */
export const SSH_VARIABLES = {
  sshKey: "ATOCORE_SSH_KEY_FILE",
  knownHosts: "ATOCORE_SSH_KNOWN_HOSTS",
} as const;

/**
 * Resolve the repository settings from flags and an environment map: a flag wins over its variable. Recipients from
 * `--recipient` and `--recipients-file` are taken together; `ATOCORE_BACKUP_RECIPIENT` holds one or more `age1…`
 * separated by commas or spaces. Nothing is read here (files are read where they are used).
 *
 * @throws {UsageError} naming the flag or variable given an empty value, never taken as unset.
 */
export function resolveRemoteSettings(
  flags: RemoteFlags,
  env: Record<string, string | undefined>,
  cwd: string,
): RemoteSettings {
  const empty = (name: string) => new UsageError(`${name} needs a value, not an empty one; see 'config'`);
  for (
    const [flag, value] of [
      ["--remote", flags.remote],
      ["--identity", flags.identity],
      ["--auth-key", flags.authKey],
      ["--recipients-file", flags.recipientsFile],
    ] as const
  ) {
    if (value === "") throw empty(flag);
  }
  if (flags.recipient?.some((value) => value.trim() === "")) throw empty("--recipient");
  for (const name of Object.values(REMOTE_VARIABLES)) {
    if (env[name] !== undefined && env[name]!.trim() === "") {
      throw new UsageError(`${name} is set but empty; give it a value or unset it (see 'config')`);
    }
  }
  refuseSecretKeys(flags, env);
  refusePasswordInRemote(flags.remote ?? env[REMOTE_VARIABLES.remote], flags.remote !== undefined);
  const pick = (flag: string | undefined, flagName: string, variable: string): RemoteSetting<string> | null => {
    const given: RemoteSetting<string> | null = flag !== undefined
      ? { value: flag, source: "flag", from: flagName }
      : env[variable] === undefined
      ? null
      : { value: env[variable]!, source: "env", from: variable };
    if (given !== null) refuseEdgeWhitespace(given.value, given.from);
    if (given !== null) refuseUnexpandedHome(given.value.replace(/^file:\/\//, ""), given.from);
    return given;
  };
  const identity = pick(flags.identity, "--identity", REMOTE_VARIABLES.identity);
  const authKey = pick(flags.authKey, "--auth-key", REMOTE_VARIABLES.authKey);
  return {
    remote: pick(flags.remote, "--remote", REMOTE_VARIABLES.remote),
    identityFile: identity && { ...identity, value: resolve(cwd, identity.value) },
    authKeyFile: authKey && { ...authKey, value: resolve(cwd, authKey.value) },
    recipients: recipientsFrom(flags, env, cwd),
    ...resolveSshSettings(flags, env, cwd),
    stallTimeout: stallTimeoutFrom(pick(flags.stallTimeout, "--stall-timeout", REMOTE_VARIABLES.stallTimeout)),
    s3: resolveS3Settings(flags, env),
  };
}

/** The longest stall timeout taken: a day (a larger value is a typo, and would hold a command for days). */
const MAX_STALL_SECONDS = 86_400;

/**
 * The stall timeout in seconds from its text (`90s`, `5m`).
 *
 * @throws {UsageError} for another form, zero, or more than a day, naming the flag or variable.
 */
function stallTimeoutFrom(given: RemoteSetting<string> | null): RemoteSetting<number> | null {
  if (given === null) return null;
  const seconds = parseDurationSeconds(given.value, given.from);
  if (seconds < 1 || seconds > MAX_STALL_SECONDS) {
    throw new UsageError(`${given.from} must be between 1s and 1d, not ${JSON.stringify(given.value)}`);
  }
  return { ...given, value: seconds };
}

/** The most transfers (packs moved at once) a command accepts. */
export const MAX_TRANSFERS = 32;

/**
 * The packs to move at once from `--transfers` (given as `flag`), else `ATOCORE_BACKUP_TRANSFERS`, else `undefined`.
 *
 * @throws {UsageError} for anything but a whole number from 1 to {@linkcode MAX_TRANSFERS}, an empty one included.
 */
export function resolveTransfers(
  flag: string | undefined,
  env: Record<string, string | undefined>,
): number | undefined {
  const [text, source] = flag !== undefined
    ? [flag, "--transfers"]
    : [env.ATOCORE_BACKUP_TRANSFERS, "ATOCORE_BACKUP_TRANSFERS"];
  if (text === undefined) return undefined;
  const count = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (!(count >= 1 && count <= MAX_TRANSFERS)) {
    throw new UsageError(`${source} must be a whole number from 1 to ${MAX_TRANSFERS}, not ${JSON.stringify(text)}`);
  }
  return count;
}

/** A private key's armour: a key pasted where its file's path goes would be printed by `config` and in errors. */
const SSH_PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/**
 * The SFTP settings: `--ssh-key` else `ATOCORE_SSH_KEY_FILE`; `--known-hosts` else `ATOCORE_SSH_KNOWN_HOSTS` else
 * `$HOME/.ssh/known_hosts`. Paths are made absolute against `cwd`.
 *
 * @throws {UsageError} for an empty value or a private key given instead of its file's path (never echoed).
 */
function resolveSshSettings(
  flags: RemoteFlags,
  env: Record<string, string | undefined>,
  cwd: string,
): Pick<RemoteSettings, "sshKeyFile" | "knownHosts"> {
  const settings = (flag: string | undefined, flagName: string, variable: string): RemoteSetting<string> | null => {
    const given = flag !== undefined
      ? { value: flag, source: "flag" as const, from: flagName }
      : env[variable] !== undefined
      ? { value: env[variable]!, source: "env" as const, from: variable }
      : null;
    if (given === null) return null;
    if (given.value.trim() === "") throw new UsageError(`${given.from} needs a path, not an empty value; see 'config'`);
    if (SSH_PRIVATE_KEY.test(given.value)) {
      throw new UsageError(`${given.from} was given a private key itself; give the path of the key file`);
    }
    refuseEdgeWhitespace(given.value, given.from);
    refuseUnexpandedHome(given.value, given.from);
    return { ...given, value: resolve(cwd, given.value) };
  };
  const home = env.HOME;
  const knownHosts = settings(flags.knownHosts, "--known-hosts", SSH_VARIABLES.knownHosts) ??
    (home ? { value: join(resolve(cwd, home), ".ssh", "known_hosts"), source: "default", from: "$HOME" } : null);
  return { sshKeyFile: settings(flags.sshKey, "--ssh-key", SSH_VARIABLES.sshKey), knownHosts };
}

/**
 * ssh's default private keys, `$HOME/.ssh/id_ed25519`, `id_ecdsa` and `id_rsa` in that order, of which SFTP takes the
 * first that exists when no key is given; none when HOME is unset.
 */
export function defaultSshKeyFiles(env: Record<string, string | undefined>, cwd: string): string[] {
  const home = env.HOME;
  return home ? ["id_ed25519", "id_ecdsa", "id_rsa"].map((name) => join(resolve(cwd, home), ".ssh", name)) : [];
}

/** An age secret key: never taken as a setting's value, which messages and `config` print. */
// a part of one too: its first 52 characters give the key whole (the last 6 are a checksum), 8 would leak 40 bits; a
// path named age-secret-key-1-old passes
const SECRET_KEY = /AGE-SECRET-KEY-1[02-9ac-hj-np-z]{8}/i;

/**
 * An authentication key given where a path or a recipient goes: the value is 64 hex, or a line of the key file (its
 * recipient, then the 64 hex). A path with 64 hex in it (a Docker volume's folder) is none.
 */
const AUTH_KEY = /^\s*(age1\S*[\s,]+)?[0-9a-f]{64}\s*$/i;

/**
 * Refuse a secret (an age secret key, an SSH private key, an authentication key) given as any value: a path, a stamp,
 * a setting (`--source`, `--keep-weekly`). Messages, a JUnit report, `config`, metadata and folder names would show
 * it. The value is never echoed.
 *
 * @throws {UsageError} naming `from` (the flag, variable or argument).
 */
export function refuseSecretValue(value: string, from: string): void {
  if (AUTH_KEY.test(value)) {
    throw new UsageError(
      `${from} was given what looks like an authentication key (64 hex, as 'remote auth-key' prints it; not shown); ` +
        "give the path of the file 'remote auth-key' wrote to --auth-key, and here what is asked for",
    );
  }
  if (SECRET_KEY.test(value)) {
    throw new UsageError(
      `${from} was given an age secret key itself; give the path of the key file to ` +
        "--identity (ATOCORE_BACKUP_IDENTITY_FILE), and only public age1… keys as recipients",
    );
  }
  if (SSH_PRIVATE_KEY.test(value)) {
    throw new UsageError(`${from} was given a private key itself; give the path of the key file`);
  }
  if (isEncodedKey(value)) {
    throw new UsageError(
      `${from} was given a key file encoded in base64 (as CI systems often keep secrets; not shown); decode it ` +
        "into a file readable only by this user and give that file's path",
    );
  }
}

/** Base64 that decodes to a key file: the markers of an age identity, a PEM or an OpenSSH private key. */
const ENCODED_KEY_MARKERS = /AGE-SECRET-KEY-1|PRIVATE KEY-----|^openssh-key-v1\0/;

/** Whether `value` is a key file encoded in base64 (whitespace and line breaks aside): it decodes to one. */
function isEncodedKey(value: string): boolean {
  const compact = value.replace(/\s+/g, "");
  return /^[A-Za-z0-9+/]{40,}={0,2}$/.test(compact) &&
    ENCODED_KEY_MARKERS.test(Buffer.from(compact, "base64").toString("latin1"));
}

/**
 * Refuse a secret key given where a path or a recipient goes (`--identity AGE-SECRET-KEY-1…`, `--recipient …`, an
 * authentication key's hex as `--auth-key`): the value would be printed by `config` and in errors. Never echoed.
 *
 * @throws {UsageError} naming the flag or variable.
 */
function refuseSecretKeys(flags: RemoteFlags, env: Record<string, string | undefined>): void {
  const flag = (name: string) => `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
  const given: [string, string | undefined][] = [
    ...Object.entries(flags).flatMap(([name, value]): [string, string | undefined][] =>
      (Array.isArray(value) ? value : [value]).map((one) => [flag(name), one])
    ),
    ...[...Object.values(REMOTE_VARIABLES), ...Object.values(SSH_VARIABLES), ...S3_SETTINGS.flatMap((one) => one.env)]
      .map((name): [string, string | undefined] => [name, env[name]]),
  ];
  for (const [from, value] of given) if (value !== undefined) refuseSecretValue(value, from);
}

/**
 * Refuse a remote URL that carries a password (`sftp://user:pw@host`, `s3://KEY:SECRET@bucket`): `config`, every
 * message and the local state's key would show it. The value is never echoed; SFTP logs in with a key, S3 takes its
 * credentials from the environment or the credentials file.
 *
 * @throws {UsageError} naming the flag or variable.
 */
function refusePasswordInRemote(remote: string | undefined, fromFlag: boolean): void {
  if (remote === undefined) return;
  refusePassword(remote, fromFlag ? "--remote" : REMOTE_VARIABLES.remote);
  refuseLookalikeRemote(remote, fromFlag ? "--remote" : REMOTE_VARIABLES.remote);
}

/**
 * Refuse a plain path whose first name holds a `:`: another tool's way to name a network repository (`HOST:PATH` or
 * `USER@HOST:PATH`, as scp and rsync write it; `sftp:USER@HOST:/PATH` or `s3:HOST/BUCKET`, as restic does). Taken as a
 * folder, it would keep the off-host copy on this host. A folder named so is given as `./NAME` or `file:///…`. Not
 * echoed: such an address may hold a password.
 *
 * @throws {UsageError} naming `where`.
 */
function refuseLookalikeRemote(remote: string, where: string): void {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(remote) || !/^[^/]*:/.test(remote)) return; // a URL, or a path
  throw new UsageError(
    `${where} names no folder but another tool's network address (HOST:PATH or USER@HOST:PATH as scp writes it, ` +
      "restic's sftp:… or s3:…), which would keep the copy on this host; nothing was done; give " +
      "sftp://USER@HOST//PATH or s3://BUCKET/PREFIX (or, for a folder named so, ./NAME or file:///…)",
  );
}

/** @throws {UsageError} naming `where` when `url` carries a password, which is never echoed (see above). */
function refusePassword(url: string, where: string): void {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*:[^/?#]*@/i.test(url)) return;
  throw new UsageError(
    `${where} holds a password (user:password@); it is not shown and nothing was done: give SFTP a key ` +
      "(--ssh-key) and S3 its keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a credentials file",
  );
}

function recipientsFrom(
  flags: RemoteFlags,
  env: Record<string, string | undefined>,
  cwd: string,
): RemoteSetting<{ inline: string[]; files: string[] }> | null {
  const inline = flags.recipient ?? [];
  if (flags.recipientsFile !== undefined) refuseUnexpandedHome(flags.recipientsFile, "--recipients-file");
  const files = flags.recipientsFile === undefined ? [] : [resolve(cwd, flags.recipientsFile)];
  if (inline.length > 0 || files.length > 0) {
    const from = [inline.length ? "--recipient" : "", files.length ? "--recipients-file" : ""].filter(Boolean);
    return { value: { inline, files }, source: "flag", from: from.join(", ") };
  }
  const fromEnv = env[REMOTE_VARIABLES.recipient];
  if (fromEnv === undefined) return null;
  const values = fromEnv.split(/[\s,]+/).filter(Boolean);
  return { value: { inline: values, files: [] }, source: "env", from: REMOTE_VARIABLES.recipient };
}
