/**
 * A repository's life: `init` writes its public config once; `open` reads and checks it; the pin kept in the backup
 * folder makes a push refuse a repository whose id or recipients changed since this host first pushed to it.
 *
 * @module
 */
import { parseBoundedJson } from "../text/bounded_json.ts";
import { createHash, randomBytes } from "node:crypto";
import { parseRecipient } from "../crypto/age.ts";
import { describeOsError, OperationError, RefusedError, UsageError } from "../errors.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";
import { entriesOrNone } from "../fs/probe.ts";
import { realPathAsFarAsExists } from "../fs/real_path.ts";
import { listedPinPath, remotePinPath, remotesRoot } from "../snapshot/layout.ts";
import { HostState, requireHostStateFolders } from "./host_state.ts";
import {
  AlteredObjectError,
  type Backend,
  ObjectExistsError,
  ObjectNotFoundError,
  ObjectTooLargeError,
} from "./backend.ts";
import { Boundary, getPublic, NotJsonError } from "./boundary.ts";
import { CONFIG_NAME, isRandomId, newRandomId, PREFIXES } from "./layout.ts";

/** The format name in every repository's config. */
export const REPOSITORY_FORMAT = "atocore-backup-repository";
/** The repository format version this tool writes and reads. */
export const REPOSITORY_VERSION = 1;

/** The public `config` object. */
export interface RepositoryConfig {
  format: typeof REPOSITORY_FORMAT;
  version: number;
  id: string;
  recipients: string[];
  created_at: string;
}

/** An opened repository: where it is, its config, and the boundary that writes to it. */
export interface Repository {
  backend: Backend;
  config: RepositoryConfig;
  io: Boundary;
}

/**
 * Make a new repository at `backend` for `recipients` (canonical `age1…`, deduplicated and sorted).
 *
 * @throws {RefusedError} when the location already holds objects (a repository or anything else).
 * @throws {UsageError} when no recipient is given or one is not an X25519 recipient.
 */
export async function initRepository(
  backend: Backend,
  recipients: readonly string[],
  now: Date = new Date(),
): Promise<RepositoryConfig> {
  const canonical = canonicalRecipients(recipients, "--recipient");
  const existing = await backend.list("");
  if (existing.some((object) => object.name === CONFIG_NAME)) {
    throw new RefusedError(`${backend.location} is already a repository; use it as it is (nothing was changed)`);
  }
  const present = [...existing.map((object) => object.name), ...(await backend.unlisted?.() ?? [])];
  if (present.length > 0) {
    throw new RefusedError(
      `${backend.location} is not empty and not a repository (${present[0]} …); give an empty or new folder`,
    );
  }
  const config: RepositoryConfig = {
    format: REPOSITORY_FORMAT,
    version: REPOSITORY_VERSION,
    id: randomBytes(16).toString("hex"),
    recipients: canonical,
    created_at: now.toISOString(),
  };
  try {
    await new Boundary(backend, canonical).putPublic(CONFIG_NAME, config);
  } catch (error) {
    if (error instanceof ObjectExistsError) {
      throw new RefusedError(
        `${backend.location} was initialised meanwhile by another 'remote init'; nothing was changed: use that ` +
          "repository as it is",
      );
    }
    throw error;
  }
  return config;
}

/**
 * Open the repository at `backend`: read and check its config.
 *
 * @throws {UsageError} when there is no repository there; {@linkcode RefusedError} when one lost its config;
 *   {@linkcode OperationError} when its config is not one.
 */
export async function openRepository(backend: Backend): Promise<Repository> {
  let value: unknown;
  try {
    value = await getPublic(backend, CONFIG_NAME);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) {
      const held = await backend.list(PREFIXES.snapshots); // a listing that fails says why, not "no repository"
      if (held.length > 0) {
        throw new RefusedError(
          `${backend.location} holds ${held.length} snapshot object(s) but no config (removed?); nothing was done; ` +
            "put the config back from a copy (its id and recipients are pinned in remotes/<key>/pin.json of the " +
            "backup folder of each host that pushed there); 'remote init' makes new repositories only",
        );
      }
      throw new UsageError(
        `no repository at ${backend.location} (no config object); check the location given (--remote or ` +
          "ATOCORE_BACKUP_REMOTE) and that its disk or server is the one meant; to make a new one there, 'remote init'",
      );
    }
    if (error instanceof NotJsonError) throw unusableConfig(backend.location, "is not JSON");
    if (error instanceof ObjectTooLargeError || error instanceof AlteredObjectError) {
      throw unusableConfig(backend.location, error instanceof AlteredObjectError ? `is ${error.what}` : error.what);
    }
    throw error;
  }
  const config = parseRepositoryConfig(value, backend.location);
  return { backend, config, io: new Boundary(backend, config.recipients) };
}

/**
 * Check a config object read from a repository, field by field.
 *
 * @throws {OperationError} naming the location and the first field that is wrong.
 */
export function parseRepositoryConfig(value: unknown, location: string): RepositoryConfig {
  const bad = (what: string) => unusableConfig(location, what);
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw bad("is not a JSON object");
  const config = value as Record<string, unknown>;
  if (config.format !== REPOSITORY_FORMAT) throw bad(`has format ${JSON.stringify(config.format)}`);
  const version = config.version;
  if (!Number.isSafeInteger(version) || (version as number) < 1) throw bad(`has version ${JSON.stringify(version)}`);
  if (version !== REPOSITORY_VERSION) { // a later format, which a newer release reads
    throw new OperationError(
      `${location} is repository format version ${JSON.stringify(config.version)}; this tool reads version ` +
        `${REPOSITORY_VERSION}: use a newer atocore-backup`,
    );
  }
  if (typeof config.id !== "string" || !/^[0-9a-f]{32}$/.test(config.id)) throw bad("has no valid id");
  if (typeof config.created_at !== "string") throw bad("has no created_at");
  if (!Array.isArray(config.recipients) || config.recipients.length === 0) throw bad("lists no recipient");
  let recipients: string[];
  try {
    recipients = canonicalRecipients(config.recipients as string[], "config");
  } catch {
    throw bad("lists a recipient that is not age1…");
  }
  if (recipients.join() !== (config.recipients as string[]).join()) {
    throw bad("lists recipients not as this tool writes them (lower case, sorted, each once)");
  }
  return {
    format: REPOSITORY_FORMAT,
    version: REPOSITORY_VERSION,
    id: config.id,
    recipients,
    created_at: config.created_at,
  };
}

/**
 * A config this tool cannot use (`what`: "is not JSON", "has format …"): the location given is another tool's, or
 * the config was altered. Either way the next step is the operator's, and `remote verify` would say the same again.
 */
function unusableConfig(location: string, what: string): OperationError {
  return new OperationError(
    `the config of ${location} ${what}: not a repository of this tool, or its config was altered; nothing was done; ` +
      "check the repository given (--remote or ATOCORE_BACKUP_REMOTE), and if it is this tool's, put its config back " +
      "from a copy (its id and recipients are pinned in remotes/<key>/pin.json of the backup folder of each host " +
      "that pushed there)",
  );
}

/**
 * Recipients as the config stores them: canonical, deduplicated, sorted.
 *
 * @throws {UsageError} naming `source` when none is given or one is not an X25519 recipient.
 */
export function canonicalRecipients(recipients: readonly unknown[], source: string): string[] {
  if (recipients.length === 0) throw new UsageError(`no recipient given (${source}); give age1… from age-keygen -y`);
  const canonical = recipients.map((recipient) => {
    try {
      return parseRecipient(String(recipient));
    } catch (error) {
      throw new UsageError(
        `${source}: ${(error as Error).message}; give the public key 'age-keygen -y KEYFILE' prints`,
      );
    }
  });
  return [...new Set(canonical)].sort();
}

/** What is pinned on this host for one repository location. */
export interface RepositoryPin {
  location: string;
  repository_id: string;
  recipients: string[];
  pinned_at: string;
  /** This backup folder's random id in the repository's refs: remote cleanup keeps each source's snapshots apart. */
  source_id?: string;
}

/**
 * Check `repository` against the pin kept in `backupDir` for its location (and against `expected` recipients when the
 * operator gave some), pinning it when this is the first push. Returns whether it was pinned now.
 *
 * @throws {RefusedError} when the id or the recipients differ: a swapped config is an attack until proven otherwise.
 */
export function checkPin(
  backupDir: string,
  repository: Repository,
  expected?: readonly string[],
  state?: HostState,
): { pinned: boolean; sourceId: string } {
  const { config, backend } = repository;
  if (expected && expected.length > 0) {
    const given = canonicalRecipients(expected, "--recipient");
    if (given.join() !== config.recipients.join()) {
      throw new RefusedError(
        `the recipients of ${backend.location} (${config.recipients.join(", ")}) are not the ones given ` +
          `(${given.join(", ")}); a swapped recipient is an attack: check the repository's config`,
      );
    }
  }
  const found = findPin(backupDir, backend.location);
  if (found) checkPinned(found, config, backend.location);
  if (found?.exact) return { pinned: false, sourceId: sourceIdOf(found.pin) };
  const value: RepositoryPin = {
    location: backend.location,
    repository_id: config.id,
    recipients: config.recipients,
    pinned_at: new Date().toISOString(),
    source_id: found ? sourceIdOf(found.pin) : newRandomId(),
  };
  using own = state ? null : new HostState(backupDir, backend.location);
  (state ?? own!).file(remotePinPath(backupDir, backend.location)).replace(JSON.stringify(value, null, 2) + "\n");
  return { pinned: true, sourceId: value.source_id! };
}

/**
 * Check `repository` against what this host pinned for it, under this spelling of its location or another of the
 * same folder, without pinning anything (for the commands that only read, and cleanup); this backup folder's source id
 * there when a pin was found, else `null`.
 *
 * @throws {RefusedError} when its id or recipients differ from that pin's.
 */
export function checkIfPinned(backupDir: string, repository: Repository): string | null {
  const found = findPin(backupDir, repository.backend.location);
  if (found) checkPinned(found, repository.config, repository.backend.location);
  return found && sourceIdOf(found.pin);
}

/** A pin found on this host, and its file. */
interface FoundPin {
  path: string;
  pin: RepositoryPin;
}

/** The pin of `location`: under this spelling (`exact`), else under another of the same folder; `null` when none. */
function findPin(backupDir: string, location: string): (FoundPin & { exact: boolean }) | null {
  requireHostStateFolders(backupDir, location);
  const path = remotePinPath(backupDir, location);
  const pin = readPin(path);
  if (pin !== null) return { path, pin, exact: true };
  const other = pinOfSameFolder(backupDir, location);
  return other && { ...other, exact: false };
}

/** @throws {RefusedError} when the repository's id or recipients are not those `found` pinned. */
function checkPinned({ path, pin }: FoundPin, config: RepositoryConfig, location: string): void {
  const what = pin.repository_id !== config.id
    ? "id"
    : pin.recipients.join() !== config.recipients.join()
    ? "recipients"
    : null;
  if (what) {
    throw new RefusedError(
      `the ${what} of the repository at ${location} changed since this host pinned it (${path}); ` +
        `a swapped repository or recipient is an attack: if you re-created it on purpose, remove ${path}`,
    );
  }
}

/**
 * For a folder repository not pinned under this spelling of its location, the pin of the same folder under another
 * (a link to it, or one written before locations were normalised): the same repository, checked the same way.
 */
function pinOfSameFolder(backupDir: string, location: string): FoundPin | null {
  if (!location.startsWith("file://")) return null;
  const real = realPathAsFarAsExists(location.slice("file://".length));
  for (const entry of entriesOrNone(remotesRoot(backupDir))) {
    if (!entry.isDirectory) continue;
    const path = listedPinPath(backupDir, entry.name);
    try {
      const pin = readPin(path);
      if (pin?.location.startsWith("file://") && realPathAsFarAsExists(pin.location.slice("file://".length)) === real) {
        return { path, pin };
      }
    } catch {
      continue; // an unreadable pin of another location is that location's problem
    }
  }
  return null;
}

/** The pin's source id; a pin written before source ids existed gets one derived from its own fields, stable. */
function sourceIdOf(pin: RepositoryPin): string {
  if (typeof pin.source_id === "string" && isRandomId(pin.source_id)) return pin.source_id;
  return createHash("sha256").update(`${pin.location}\0${pin.repository_id}\0${pin.pinned_at}`).digest("hex").slice(
    0,
    16,
  );
}

function readPin(path: string): RepositoryPin | null {
  let text: string;
  try {
    text = readRegularTextFile(path, { maxBytes: 1 << 20 }); // never a FIFO to wait on, a link or a huge file
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    if (error instanceof Deno.errors.NotADirectory) { // the backup folder given is wrong, not the pin
      throw new UsageError(
        `the repository pin ${path} cannot be reached (a part of its path is a file); point --backup-dir ` +
          "(ATOCORE_BACKUP_DIR) at the backup folder, or move the file in the way aside; nothing was done",
      );
    }
    if (error instanceof Deno.errors.PermissionDenied) { // the user, not the pin: removing it would make a new source
      throw new OperationError(
        `the repository pin ${path} cannot be read by this user (permission denied); run as the user that owns the ` +
          "backup folder (the one that pushes), or give this one read access; nothing was done",
      );
    }
    throw new RefusedError(`the repository pin ${path} cannot be read (${describeOsError(error)}); ${PIN_WAY_OUT}`);
  }
  try {
    const pin = parseBoundedJson(text) as Partial<Record<keyof RepositoryPin, unknown>> | null;
    if (typeof pin?.repository_id === "string" && Array.isArray(pin.recipients)) return pin as RepositoryPin;
  } catch {
    // falls through to the refusal
  }
  throw new RefusedError(`the repository pin ${path} is unreadable; ${PIN_WAY_OUT}`);
}

/**
 * The way out of a pin that cannot be used: put it back; removing it pins the repository anew under a new source, so
 * this folder's earlier pushes count as another source's (kept by cleanup until forgotten).
 */
const PIN_WAY_OUT = "put it back from a copy of the backup folder, or remove it to pin the repository anew (this " +
  "folder's earlier pushes then count as another source's, which 'remote cleanup' keeps until '--forget')";
