/**
 * The SFTP backend: a repository in a folder of an SSH host (`sftp://USER@HOST[:PORT]/PATH`). Each write goes to
 * `.tmp/` in the repository (what a killed writer leaves there is cleared by `remote cleanup`), is fsynced where the
 * server can, then renamed into place; one connection, opened at the first request, reopened after a reset or stall.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import { OperationError, RefusedError } from "../../errors.ts";
import {
  AlteredObjectError,
  type Backend,
  checkObjectName,
  checkPrefix,
  MAX_OBJECT_BYTES,
  ObjectExistsError,
  type ObjectInfo,
  ObjectNotFoundError,
  ObjectTooLargeError,
  UnreachableError,
  type WriteOptions,
} from "../backend.ts";
import { DEFAULT_RETRY, errorLine, type RetryListener, type RetryPolicy, withRetries } from "../retry.ts";
import { connectSftp, type SftpCredentials, type SftpSession, type SftpTimeouts } from "./connection.ts";
import { describeSftpError, isTransientSftpError, SftpStallError, sftpStatus, STATUS } from "./errors.ts";
import { stagedName, STAGING_FOLDER } from "../layout.ts";
import { listFolder } from "./listing.ts";
import * as request from "./requests.ts";
import { readAll, writeAll } from "./transfer.ts";
import { parseSftpUrl, type SftpAddress } from "./url.ts";

/** The default waits: 20 s to connect and log in, 60 s without progress from the server while requests wait. */
export const DEFAULT_SFTP_TIMEOUTS: SftpTimeouts = { connectMs: 20_000, stallMs: 60_000 };

/** What opening an SFTP repository needs besides its URL. */
export interface SftpOptions extends SftpCredentials {
  timeouts?: SftpTimeouts;
  retry?: RetryPolicy;
  /** Hears each operation that is tried again on a new connection. */
  onRetry?: RetryListener;
}

/** A backend that holds a connection: {@linkcode close} ends it (the CLI closes every one when a command ends). */
export interface ClosableBackend extends Backend {
  /** End the connection, if one is open; a later request opens another. */
  close(): Promise<void>;
}

/**
 * Open the SFTP repository `spec` (`sftp://USER@HOST[:PORT]/PATH`, PATH from the login folder; `//PATH` absolute).
 * Nothing is connected until the first request.
 *
 * @throws {UsageError} for a malformed URL or one holding a password.
 */
export function openSftpBackend(spec: string, options: SftpOptions): ClosableBackend {
  return new SftpBackend(parseSftpUrl(spec), options);
}

class SftpBackend implements ClosableBackend {
  readonly location: string;
  private current: Promise<SftpSession> | null = null;
  private readonly folders = new Set<string>();

  constructor(private readonly address: SftpAddress, private readonly options: SftpOptions) {
    this.location = address.location;
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const start = checkPrefix(prefix);
    return await this.attempt("listing", prefix || "the repository", async (session) => {
      const found = await listFolder(session, this.pathOf(start), start.join("/"));
      return found.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    });
  }

  async unlisted(prefix = ""): Promise<string[]> {
    const start = checkPrefix(prefix);
    return await this.attempt("listing", prefix || "the repository", async (session) => {
      const names: string[] = [];
      await listFolder(session, this.pathOf(start), start.join("/"), names);
      return names.sort();
    });
  }

  async read(name: string, into?: Uint8Array, maxBytes = MAX_OBJECT_BYTES): Promise<Uint8Array> {
    const path = this.pathOf(checkObjectName(name));
    return await this.attempt("reading", name, async (session) => {
      // the server's open of a FIFO for reading blocks (with every later request of the session) until a writer comes
      const seen = await request.lstatOrNull(session, path);
      const what = seen?.kind === "folder" ? "a folder" : "a link or special file";
      if (seen !== null && seen.kind !== "file") throw altered(path, `not a regular file (${what})`);
      const handle = seen === null ? null : await request.openOrNull(session, path, "r");
      if (handle === null) throw new ObjectNotFoundError(this.location, name);
      try {
        const info = await request.statHandle(session, handle, path);
        if (info.kind !== "file") throw altered(path, "not a regular file");
        if (info.size > maxBytes) throw new ObjectTooLargeError(this.location, name, info.size, maxBytes);
        const buffer = into !== undefined && info.size <= into.length ? into : new Uint8Array(info.size);
        return buffer.subarray(0, await readAll(session, handle, buffer, info.size, name));
      } finally {
        await request.closeHandle(session, handle, path).catch(() => {});
      }
    });
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const path = this.pathOf(checkObjectName(name));
    return await this.attempt("reading", name, async (session) => {
      const info = await request.lstatOrNull(session, path);
      if (info === null) return null;
      if (info.kind !== "file") throw altered(path, "not a regular file");
      return { name, size: info.size };
    });
  }

  async remove(name: string): Promise<void> {
    const path = this.pathOf(checkObjectName(name));
    return await this.attempt("removing", name, async (session) => {
      const info = await request.lstatOrNull(session, path);
      if (info?.kind === "folder") throw altered(path, "a folder");
      if (info !== null) await request.removeFile(session, path);
    });
  }

  async write(name: string, bytes: Uint8Array, options: WriteOptions): Promise<void> {
    const segments = checkObjectName(name);
    const target = this.pathOf(segments);
    return await this.attempt("writing", name, async (session, attempt) => {
      await this.makeFolders(session, this.pathOf(segments.slice(0, -1)));
      await this.makeFolders(session, this.pathOf([STAGING_FOLDER]));
      const temporary = this.pathOf([STAGING_FOLDER, stagedName(segments)]);
      try {
        await this.upload(session, temporary, bytes, name);
        await this.publish(session, temporary, target, name, options.exclusive);
      } catch (error) {
        // the free space is read while what was written is still there: once removed (and another upload's), a full
        // disk would look roomy enough
        const failure = sftpStatus(error) === STATUS.FAILURE
          ? await this.explainFailure(session, name, bytes, error)
          : error;
        if (!session.broken) await request.removeFile(session, temporary).catch(() => {});
        if (error instanceof ObjectExistsError && attempt > 1 && await this.holds(session, target, bytes)) return;
        throw failure;
      }
    });
  }

  async clearStaging(graceMs: number, dryRun: boolean): Promise<string[]> {
    const staging = this.pathOf([STAGING_FOLDER]);
    return await this.attempt("clearing", `${STAGING_FOLDER}/`, async (session) => {
      const kind = (await request.lstatOrNull(session, staging))?.kind;
      if (kind !== undefined && kind !== "folder") throw altered(staging, "not a folder (a symbolic link?)");
      const entries = await request.readFolder(session, staging) ?? [];
      if (entries.length === 0) return [];
      const olderThan = new Date((dryRun ? Date.now() : await this.serverNow(session, staging)) - graceMs);
      // only files this backend staged, last written before the grace (by the server's clock): never a folder or link
      const stale = entries.filter((entry) =>
        entry.kind === "file" && (entry.mtimeMs ?? Infinity) < olderThan.getTime()
      )
        .map((entry) => entry.name).sort();
      if (!dryRun) { for (const name of stale) await request.removeFile(session, `${staging}/${name}`); }
      return stale.map((name) => `${STAGING_FOLDER}/${name}`);
    });
  }

  async close(): Promise<void> {
    const pending = this.current;
    this.current = null;
    const session = await pending?.catch(() => null);
    await session?.close();
  }

  /**
   * The server's clock, as it stamps a file written in `staging` now (removed again; whole seconds): the cleaning
   * host's clock may be ahead by more than the grace, and would take a running push's staged file for a killed one's.
   */
  private async serverNow(session: SftpSession, staging: string): Promise<number> {
    const probe = `${staging}/.clock-${crypto.randomUUID()}`;
    try {
      await this.upload(session, probe, new Uint8Array(0), `${STAGING_FOLDER}/ clock probe`);
      return (await request.lstatOrNull(session, probe))?.mtimeMs ?? Date.now();
    } finally {
      await request.removeFile(session, probe).catch(() => {});
    }
  }

  /** The server's path of the object or folder `segments` (the root's own path for none). */
  private pathOf(segments: readonly string[]): string {
    return [this.address.path, ...segments].join("/");
  }

  /** Write `bytes` to the new file `temporary`, fsync it where the server can, and close it. */
  private async upload(session: SftpSession, temporary: string, bytes: Uint8Array, name: string): Promise<void> {
    const handle = (await request.openOrNull(session, temporary, "wx")) as Buffer;
    try {
      await writeAll(session, handle, bytes, name);
      await request.syncHandle(session, handle, temporary);
    } catch (error) {
      await request.closeHandle(session, handle, temporary).catch(() => {});
      throw error;
    }
    await request.closeHandle(session, handle, temporary);
  }

  /** Rename the written file into place; an exclusive one that finds the name taken is refused. */
  private async publish(session: SftpSession, temporary: string, target: string, name: string, exclusive: boolean) {
    try {
      await request.renameFile(session, temporary, target, exclusive);
    } catch (error) {
      if (exclusive && sftpStatus(error) === STATUS.FAILURE && await request.lstatOrNull(session, target)) {
        throw new ObjectExistsError(this.location, name);
      }
      throw error;
    }
  }

  /** Whether `path` holds exactly `bytes`: an earlier attempt's rename went through though its answer was lost. */
  private async holds(session: SftpSession, path: string, bytes: Uint8Array): Promise<boolean> {
    const handle = await request.openOrNull(session, path, "r");
    if (handle === null) return false;
    try {
      const info = await request.statHandle(session, handle, path);
      if (info.kind !== "file" || info.size !== bytes.length) return false;
      const found = new Uint8Array(info.size);
      await readAll(session, handle, found, info.size, path);
      return found.every((byte, index) => byte === bytes[index]);
    } finally {
      await request.closeHandle(session, handle, path).catch(() => {});
    }
  }

  /** A write's failure (the server says only "Failure"): a full disk when `statvfs` shows too little room. */
  private async explainFailure(session: SftpSession, name: string, bytes: Uint8Array, error: unknown) {
    const free = await request.freeBytes(session, this.pathOf([STAGING_FOLDER])).catch(() => null);
    if (free !== null && free < bytes.length + 64 * 1024) {
      return new OperationError(
        `no space left on the SFTP server for ${name} in ${this.location} (${free} bytes free, ${bytes.length} ` +
          "needed); free space on that disk (remote cleanup removes unneeded packs only a grace period after a run " +
          "that could mark them) or move the repository, then run the command again",
        { cause: error },
      );
    }
    return new OperationError(
      `the SFTP server failed writing ${name} in ${this.location} (${describeSftpError(error)}); check the server's ` +
        "disk and logs, then run the command again",
      { cause: error },
    );
  }

  /**
   * Make the folder `path` and any missing parents up to the repository's root (each made once per backend), never
   * above it: a root whose parent is missing is a disk not mounted or a mistyped path, not a place to start one.
   */
  private async makeFolders(session: SftpSession, path: string): Promise<void> {
    if (this.folders.has(path)) return;
    let made = await request.makeFolder(session, path);
    if (made === "no-parent") {
      const parent = path.slice(0, Math.max(0, path.lastIndexOf("/")));
      if (path === this.pathOf([]) || parent === "" || parent === "." || parent === "~") throw noRoot(path);
      await this.makeFolders(session, parent);
      made = await request.makeFolder(session, path);
      if (made === "no-parent") throw noRoot(path);
    }
    this.folders.add(path);
  }

  /** Run `operation` on a connection, reconnecting and trying again after a transient failure, a bounded number. */
  private async attempt<T>(
    verb: string,
    name: string,
    operation: (session: SftpSession, attempt: number) => Promise<T>,
  ): Promise<T> {
    const policy = this.options.retry ?? DEFAULT_RETRY;
    try {
      return await withRetries(
        async (attempt) => {
          const session = await this.connected();
          try {
            return await operation(session, attempt);
          } catch (error) {
            if (isTransientSftpError(error)) session.drop();
            throw error;
          }
        },
        isTransientSftpError,
        policy,
        (error, attempt, waitMs) => {
          const notice = { location: this.location, object: name, attempt, attempts: policy.attempts, waitMs };
          this.options.onRetry?.({ ...notice, error: errorLine(error) });
        },
      );
    } catch (error) {
      if (!isTransientSftpError(error)) throw error;
      const next = /Unable to start subsystem/i.test(describeSftpError(error))
        ? "check that the server offers SFTP (a Subsystem sftp line in its sshd_config)"
        : error instanceof SftpStallError
        ? "check that the server is up and reachable, or give a slow link more time (--stall-timeout)"
        : "check that the server is up and reachable, and that SSH, not another service, listens on that port";
      throw new UnreachableError(
        `${verb} ${name} in ${this.location} failed after ${policy.attempts} attempts: ${describeSftpError(error)}; ` +
          `${next}, then run the command again`,
        { cause: error },
      );
    }
  }

  /** The open connection, or a new one when there is none or it broke (one connect shared by concurrent requests). */
  private async connected(): Promise<SftpSession> {
    while (true) {
      const pending = this.current ??= connectSftp(
        this.address,
        this.options,
        this.options.timeouts ?? DEFAULT_SFTP_TIMEOUTS,
      );
      let session: SftpSession;
      try {
        session = await pending;
      } catch (error) {
        if (this.current === pending) this.current = null;
        throw error;
      }
      if (!session.broken) return session;
      if (this.current === pending) this.current = null;
    }
  }
}

function altered(path: string, what: string): OperationError {
  return new AlteredObjectError(
    `${path} on the SFTP server is ${what}; the repository was altered by hand, check it ('remote verify')`,
    what,
  );
}

function noRoot(path: string): RefusedError {
  return new RefusedError(
    `cannot make ${path} on the SFTP server: its parent folder does not exist; mount the disk or create that folder, ` +
      "or check the path of --remote (sftp://USER@HOST/PATH is taken from the login folder, sftp://USER@HOST//PATH " +
      "from /); nothing was written",
  );
}
