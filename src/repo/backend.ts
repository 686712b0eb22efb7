/**
 * The five verbs a repository needs from where it is stored (a folder, later SFTP and S3): whole objects written once,
 * read, listed, removed. No rename, no append, no lock; a backend publishes each write atomically.
 *
 * @module
 */
import { OperationError } from "../errors.ts";

/** An object found by a listing or a stat: its name relative to the repository root and its size in bytes. */
export interface ObjectInfo {
  name: string;
  size: number;
}

/** Options of {@linkcode Backend.write}. */
export interface WriteOptions {
  /** Refuse (with {@linkcode ObjectExistsError}) when an object of that name already exists. */
  exclusive: boolean;
  /**
   * The SHA-256 of the bytes as lowercase hex, when the caller knows it (a pack's id, a sealed object's recorded hash):
   * a backend that sends it (S3's signed payload) does not hash the bytes again.
   */
  sha256?: string;
}

/** Whether `backend` is a folder on this host (its location a `file://` URL), not a server reached over the network. */
export function isFolderBackend(backend: Pick<Backend, "location">): boolean {
  return backend.location.startsWith("file://");
}

/** Whether `backend` is an SFTP server (its location an `sftp://` URL), whose client runs on the main thread. */
export function isSftpBackend(backend: Pick<Backend, "location">): boolean {
  return backend.location.startsWith("sftp://");
}

/** A place a repository is stored. Names use `/`; every method refuses a name that is not plain. */
export interface Backend {
  /** Where the repository is, for messages and to key local state; never holds a credential. */
  readonly location: string;
  /**
   * Every object whose name starts with `prefix` (`""` or ending in `/`), sorted by name, with sizes; a folder as deep
   * as an object (the layout's `OBJECT_DEPTH`) as `<name>/`, not descended.
   */
  list(prefix: string): Promise<ObjectInfo[]>;
  /**
   * The whole object; {@linkcode ObjectNotFoundError} when it does not exist. With `into`, an object that fits is read
   * into it and a view of it returned (a reader of many objects reuses one buffer); a larger one is read as without.
   * An object over `maxBytes` (default {@linkcode MAX_OBJECT_BYTES}) is refused unread, or as soon as its bytes pass
   * it when its size is not told first ({@linkcode ObjectTooLargeError}): a hostile repository must not make a reader
   * exhaust memory.
   */
  read(name: string, into?: Uint8Array, maxBytes?: number): Promise<Uint8Array>;
  /** Publish `bytes` as `name` atomically: a reader sees the whole object or none (durable once it resolves). */
  write(name: string, bytes: Uint8Array, options: WriteOptions): Promise<void>;
  /** Remove an object; nothing happens when it is already gone. */
  remove(name: string): Promise<void>;
  /** The object's size, or `null` when it does not exist. */
  stat(name: string): Promise<ObjectInfo | null>;
  /**
   * Remove what writers killed in the middle of a write left in the backend's staging area (never listed or read),
   * last modified more than `graceMs` ago by the storage's own clock (a file it stamps there now; with `dryRun`, which
   * writes nothing, this host's clock), and only say what with `dryRun`. Returns the staged names. A backend that
   * stages nothing where it could be left behind does not have it.
   */
  clearStaging?(graceMs: number, dryRun: boolean): Promise<string[]>;
  /**
   * Names that a listing leaves out (symbolic links and special files; at the location's top, hidden names other than
   * the backend's own staging), under `prefix` (ending in `/`) or everywhere: for `remote init`, which must find the
   * location empty, and for what must not be taken for absent. A backend whose listing shows everything does not have
   * it.
   */
  unlisted?(prefix?: string): Promise<string[]>;
  /**
   * Whether the storage keeps what is deleted (an S3 bucket with versioning enabled or suspended: deleted objects stay
   * as noncurrent versions, stored and billed, until a lifecycle rule expires them); `null` when it cannot be asked.
   * A backend that deletes for good does not have it.
   */
  keepsDeletedVersions?(): Promise<boolean | null>;
}

/** The most bytes an object may have unless its reader says less: above any pack or snapshot document this tool writes. */
export const MAX_OBJECT_BYTES = 256 * 1024 * 1024;

/**
 * A finding about the repository's objects, its message ending with the next step of checking the repository with
 * `remote verify`; `finding` is the message without that step, for a caller that gives its own (with the repository's
 * flags, or a verify already running).
 */
export class RepositoryFindingError extends OperationError {
  /** Make the error: `finding`, what is wrong and where; `step`, the `remote verify` step the message ends with. */
  constructor(readonly finding: string, step: string) {
    super(`${finding}; ${step}`);
  }
}

/**
 * An object is larger than its kind can be: refused before it is read, or as soon as more bytes came when its size was
 * not known beforehand (`size` null: a server that sent no length).
 */
export class ObjectTooLargeError extends RepositoryFindingError {
  /** What is wrong with the object, without its name (`has N bytes, more than …`). */
  readonly what: string;

  constructor(location: string, name: string, size: number | null, maxBytes: number) {
    const what = size === null
      ? `came with more than the ${maxBytes} bytes an object of its kind can have (no length was announced; the read ` +
        "stopped there)"
      : `has ${size} bytes, more than the ${maxBytes} an object of its kind can have`;
    super(`${name} in ${location} ${what}`, "the repository was altered: run 'remote verify'");
    this.what = what;
  }
}

/**
 * Where an object is read, the storage holds something this tool never writes there (a link, a folder, a FIFO): the
 * repository was altered by hand. `what` says what was found, without the path.
 */
export class AlteredObjectError extends OperationError {
  /** Make the error: `message` names the path, `what` is what was found there (`not a regular file`). */
  constructor(message: string, readonly what: string) {
    super(message);
  }
}

/** An object that should exist does not. */
export class ObjectNotFoundError extends RepositoryFindingError {
  /** Make the error for `name` at `location`. */
  constructor(location: string, name: string) {
    super(`repository object missing: ${name} (in ${location})`, "run 'remote verify' to see what else is missing");
  }
}

/**
 * A network backend gave up on the link after its retries (refused, reset, stalled, throttled): the storage could not
 * be reached, which says nothing of the objects; the next step is the network or the server, not the repository.
 */
export class UnreachableError extends OperationError {}

/** Whether `error` is a backend giving up on the link ({@linkcode UnreachableError}, or an error marked `unreachable`). */
export function isUnreachable(error: unknown): boolean {
  return error instanceof UnreachableError || (error as { unreachable?: unknown } | null)?.unreachable === true;
}

/** The storage, not the objects, is at fault: its message names the path and the next step for the storage. */
export class StorageError extends OperationError {}

/** The folder of a repository that this run saw is gone (its disk unmounted, or it was moved): never made again. */
export class RepositoryVanishedError extends OperationError {}

/**
 * The storage refuses this host's user a path (permission denied): the access, not the objects, is at fault; the next
 * step is the storage's permissions.
 */
export class AccessDeniedError extends StorageError {}

/** The storage failed to read a path (EIO: a bad sector, a network filesystem or a disk that went away). */
export class StorageFailedError extends StorageError {
  /** Make the error for `path`, which the storage failed `doing` (`reading`, `listing`) with `cause`. */
  constructor(path: string, doing: string, cause: unknown) {
    super(
      `an I/O error ${doing} ${path}: the repository's storage failed; check it (dmesg, the disk's health), then run ` +
        "again",
      { cause },
    );
  }
}

/** An exclusive write found an object of that name already there; nothing was changed. */
export class ObjectExistsError extends RepositoryFindingError {
  /** Make the error for `name` at `location`. */
  constructor(location: string, name: string) {
    super(
      `repository object already exists: ${name} (in ${location})`,
      "objects are never overwritten: check that nothing else writes to this repository, then run 'remote verify'",
    );
  }
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Check that `name` is a plain relative object name (segments of letters, digits, `.`, `_`, `-`, none starting with a
 * dot, none empty), so no backend can be led outside its root or into its own temporary area.
 *
 * @throws {RangeError} naming the refused value.
 */
export function checkObjectName(name: string): string[] {
  const segments = name.split("/");
  if (name.length > 1024 || segments.some((segment) => !SEGMENT.test(segment))) {
    throw new RangeError(`not a plain repository object name: ${JSON.stringify(name.slice(0, 120))}`);
  }
  return segments;
}

/**
 * Check a listing prefix: `""` or plain segments each followed by `/`.
 *
 * @throws {RangeError} naming the refused value.
 */
export function checkPrefix(prefix: string): string[] {
  if (prefix === "") return [];
  if (!prefix.endsWith("/")) throw new RangeError(`a listing prefix ends with "/": ${JSON.stringify(prefix)}`);
  return checkObjectName(prefix.slice(0, -1));
}
