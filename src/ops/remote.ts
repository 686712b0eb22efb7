/**
 * From the repository settings to what the repository commands use: the backend (kept apart from the store's paths),
 * the identities read from their file, the recipients, and the pin check made by commands that only read.
 *
 * @module
 */
import { type Config, defaultSshKeyFiles, type RemoteSettings } from "../config.ts";
import { type AgeIdentity, parseIdentityFile, parseRecipientsFile, recipientOf } from "../crypto/age.ts";
import { parseAuthKeyFile } from "../crypto/auth_key.ts";
import type { PushAuth } from "../repo/authenticity.ts";
import { describeOsError, RefusedError, UsageError } from "../errors.ts";
import { isSameOrInside } from "../fs/real_path.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";
import { type Reporter, SILENT } from "../report/reporter.ts";
import type { RetryListener } from "../repo/retry.ts";
import { type Backend, isSftpBackend } from "../repo/backend.ts";
import { statOrNull } from "../fs/probe.ts";
import { openBackend } from "../repo/open_backend.ts";
import { canonicalRecipients, checkIfPinned, openRepository, type Repository } from "../repo/repository.ts";
import { ownFolders } from "../snapshot/layout.ts";
import { SIDECAR_SUFFIXES } from "../sqlite/file_format.ts";

/** Largest key file read: far above any real one (a line per key). */
const KEY_FILE_MAX_BYTES = 1 << 20;

/**
 * The repository the settings name.
 *
 * @throws {UsageError} when none is given, or the location is not a supported one.
 */
export function remoteBackend(
  settings: RemoteSettings,
  cwd: string,
  command: string,
  env: Record<string, string | undefined>,
  reporter: Reporter = SILENT,
): Backend {
  if (settings.remote === null) {
    throw new UsageError(
      `${command} needs a repository: give --remote file:///path (or a folder path, sftp://USER@HOST/PATH or ` +
        "s3://BUCKET/PREFIX), or set ATOCORE_BACKUP_REMOTE",
    );
  }
  const ssh = {
    keyFile: settings.sshKeyFile?.value,
    defaultKeyFiles: defaultSshKeyFiles(env, cwd),
    knownHostsFile: settings.knownHosts?.value,
  };
  const stall = settings.stallTimeout;
  const network = { stallMs: stall === null ? undefined : stall.value * 1000, onRetry: retryWarning(reporter) };
  const backend = openBackend(settings.remote.value, { cwd, env, ssh, s3: settings.s3, network });
  // OpenSSH refuses such a key; this tool logs in with it, and says so
  if (isSftpBackend(backend) && ssh.keyFile !== undefined && statOrNull(ssh.keyFile) !== null) {
    warnIfReadableByOthers(ssh.keyFile, "ssh_key_file_readable_by_others", reporter);
  }
  return backend;
}

/** Each retry of a network request as the warning event `remote_retry`: an operator sees a flaky link. */
function retryWarning(reporter: Reporter): RetryListener {
  return (notice) =>
    reporter.event("warning", "remote_retry", {
      location: notice.location,
      object: notice.object,
      attempt: notice.attempt,
      attempts: notice.attempts,
      wait_ms: notice.waitMs,
      error: notice.error,
    });
}

/**
 * Refuse a folder repository inside (or holding) the live store (the database's `-wal`, `-shm` and `-journal` names
 * too: a folder there keeps SQLite from opening the database) or the backup folder's own folders: restore replaces
 * the store's files, and create, cleanup and recovery clear or remove what those folders hold, which would take the
 * repository with them.
 *
 * @throws {UsageError} naming both paths.
 */
export function refuseRemoteInStore(config: Config, backend: Backend): void {
  const root = backend.location.startsWith("file://") ? backend.location.slice("file://".length) : null;
  if (root === null) return;
  const places: [string, string][] = [
    ["the database", config.db.path],
    ...SIDECAR_SUFFIXES.map((suffix): [string, string] => [`the database's ${suffix}`, config.db.path + suffix]),
    ["the registry", config.registry.path],
    ["the Chroma folder", config.chromaDir.path],
    ...ownFolders(config.backupDir.path).map((path): [string, string] => ["the backup folder's own folder", path]),
  ];
  for (const [label, path] of places) {
    if (isSameOrInside(root, path) || isSameOrInside(path, root)) {
      throw new UsageError(
        `the repository ${root} overlaps ${label} ${path}; nothing was done; give the repository a place of its own ` +
          `(--remote or ATOCORE_BACKUP_REMOTE), off this host's store`,
      );
    }
  }
}

/**
 * Refuse `identities` (of the file `file`) none of which is a recipient the repository's config lists: every object
 * would fail to open, each said to be altered or copied in from another repository, of a repository that is whole.
 * Said of the key instead, before anything is read.
 *
 * @throws {RefusedError} naming the file and the config's recipients.
 */
function refuseForeignIdentities(
  recipients: readonly string[],
  identities: readonly AgeIdentity[],
  file: string | undefined,
): void {
  if (identities.length === 0 || identities.some((identity) => recipients.includes(recipientOf(identity)))) return;
  throw new RefusedError(
    `the identity ${file ?? "given"} is none of the repository's recipients (its config lists ${
      recipients.join(", ")
    });` +
      " nothing was read; give the identity of one of them (--identity or ATOCORE_BACKUP_IDENTITY_FILE), or, if this" +
      " is the right one, the config was altered: compare it with a pushing host's remotes/<key>/pin.json",
  );
}

/**
 * The identities of the identity file the settings name, for `purpose` (`restore --from-remote`, ...). A file that
 * others may read is warned about. Errors name the file and a line number, never its content.
 *
 * @throws {UsageError} when no identity file is given, or it cannot be read or holds no X25519 identity.
 */
export function identitiesFrom(settings: RemoteSettings, purpose: string, reporter: Reporter): AgeIdentity[] {
  if (settings.identityFile === null) {
    throw new UsageError(
      `${purpose} needs the identity: give --identity FILE (the age-keygen key file) or set ` +
        `ATOCORE_BACKUP_IDENTITY_FILE (a push needs only the recipients and the authentication key)`,
    );
  }
  const path = settings.identityFile.value;
  const text = readKeyFile(path, `identity file (${settings.identityFile.from})`);
  warnIfReadableByOthers(path, "identity_file_readable_by_others", reporter);
  try {
    return parseIdentityFile(text, path);
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; check --identity or ATOCORE_BACKUP_IDENTITY_FILE`);
  }
}

/**
 * The authentication keys a push (`purpose`) makes its MACs with, from the key file the settings name; `undefined`
 * with `allowUnauthenticated` and no file (an unauthenticated push, warned about). A file that others may read is
 * warned about. Errors name the file and a line number, never its content.
 *
 * @throws {UsageError} when no key file is given (without `allowUnauthenticated`), or it cannot be read or parsed.
 */
export function pushAuthFrom(
  settings: RemoteSettings,
  purpose: string,
  allowUnauthenticated: boolean,
  reporter: Reporter,
): PushAuth | undefined {
  if (settings.authKeyFile === null) {
    if (allowUnauthenticated) {
      reporter.event("warning", "push_unauthenticated", { command: purpose });
      return undefined;
    }
    throw new UsageError(
      `${purpose} needs the authentication key: run 'atocore-backup remote auth-key --identity FILE' where the ` +
        "identity is, install its output on this host with mode 600, and give it with --auth-key FILE or " +
        "ATOCORE_BACKUP_AUTH_KEY_FILE (or push unauthenticated with --allow-unauthenticated)",
    );
  }
  const path = settings.authKeyFile.value;
  const text = readKeyFile(path, `authentication key file (${settings.authKeyFile.from})`);
  warnIfReadableByOthers(path, "auth_key_file_readable_by_others", reporter);
  try {
    return { keys: parseAuthKeyFile(text, path), source: path };
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; check --auth-key or ATOCORE_BACKUP_AUTH_KEY_FILE`);
  }
}

/** Warn (event `event`) when the key file at `path` may be read by its group or others: it holds a secret. */
function warnIfReadableByOthers(path: string, event: string, reporter: Reporter): void {
  const mode = Deno.statSync(path).mode;
  if (mode !== null && (mode & 0o077) !== 0) {
    reporter.event("warning", event, { path, mode: `0${(mode & 0o777).toString(8)}` });
  }
}

/**
 * The recipients the settings give (inline and from recipients files), canonical and deduplicated; `undefined` when
 * none are given.
 *
 * @throws {UsageError} naming the value or the file (and line) that is not an X25519 recipient.
 */
export function recipientsFrom(settings: RemoteSettings): string[] | undefined {
  const given = settings.recipients;
  if (given === null) return undefined;

  const fromFiles = given.value.files.flatMap((path) => {
    const text = readKeyFile(path, "recipients file (--recipients-file)");
    try {
      return parseRecipientsFile(text, path);
    } catch (error) {
      throw new UsageError(`${(error as Error).message}; check --recipients-file`);
    }
  });
  return canonicalRecipients([...given.value.inline, ...fromFiles], given.from);
}

/** A repository opened for a command that only reads, and this backup folder's source id there (`null`: never pushed). */
export interface OpenedForReading {
  repository: Repository;
  own: string | null;
}

/**
 * Open the repository of `backend` for a command that only reads, checked against this host's pin (where it pushed
 * there), the `recipients` given and the `identities` of `identityFile` (one must be a recipient of its).
 *
 * @throws {UsageError} when there is no repository; {@linkcode RefusedError} as {@linkcode checkPinIfPinned} and
 *   {@linkcode refuseForeignIdentities}.
 */
export async function openForReading(
  config: Config,
  backend: Backend,
  given: { recipients?: readonly string[]; identities: readonly AgeIdentity[]; identityFile?: string },
): Promise<OpenedForReading> {
  const repository = await openRepository(backend);
  const own = checkPinIfPinned(config, repository, given.recipients);
  refuseForeignIdentities(repository.config.recipients, given.identities, given.identityFile);
  return { repository, own };
}

/**
 * For commands that only read: where this host pinned the repository (by pushing to it), refuse one whose id or
 * recipients changed since, and recipients given that are not the repository's. Nothing is pinned here. Returns this
 * backup folder's source id in the repository when it pinned it, else `null`.
 *
 * @throws {RefusedError} as {@linkcode checkIfPinned}, or for recipients given that are not the repository's.
 */
export function checkPinIfPinned(
  config: Config,
  repository: Repository,
  recipients?: readonly string[],
): string | null {
  // under this spelling of the location, or another of its folder
  const source = checkIfPinned(config.backupDir.path, repository);
  if (recipients && recipients.length > 0) {
    const given = canonicalRecipients(recipients, "--recipient");
    const actual = repository.config.recipients;
    if (given.join() !== actual.join()) {
      throw new RefusedError(
        `the recipients of ${repository.backend.location} (${actual.join(", ")}) are not the ones given ` +
          `(${given.join(", ")}); a swapped recipient is an attack: check the repository's config`,
      );
    }
  }
  return source;
}

function readKeyFile(path: string, what: string): string {
  try {
    return readRegularTextFile(path, { followLinks: true, maxBytes: KEY_FILE_MAX_BYTES });
  } catch (error) {
    throw new UsageError(`cannot read the ${what} ${path} (${describeOsError(error)}); give a readable key file`, {
      cause: error,
    });
  }
}
