/**
 * The SFTP requests the backend makes, one small function each, with the server's status turned into what the
 * backend acts on: `null` for a missing path, one line naming the path for a denied one.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import { OperationError } from "../../errors.ts";
import { AccessDeniedError } from "../backend.ts";
import type { SftpSession } from "./connection.ts";
import { sftpStatus, STATUS } from "./errors.ts";
import { S_IFDIR, S_IFMT, S_IFREG } from "../../sys/linux_constants.ts";

/** What `lstat` tells of a path: its kind and size. */
export interface RemoteEntry {
  name: string;
  kind: "file" | "folder" | "other";
  size: number;
  /** Last modification, in milliseconds since the epoch by the server's clock (listings only). */
  mtimeMs?: number;
}

function kindOf(mode: number): RemoteEntry["kind"] {
  const type = mode & S_IFMT;
  return type === S_IFREG ? "file" : type === S_IFDIR ? "folder" : "other";
}

/** The error for a path the server does not let the SSH user reach, naming it and the next step. */
export function deniedError(verb: string, path: string, cause: unknown): AccessDeniedError {
  return new AccessDeniedError(
    `the SFTP server denies ${verb} ${path} (permission denied); give the SSH user that access there, or choose ` +
      "another --remote",
    { cause },
  );
}

/** Rethrow `error`, a denied path as {@linkcode deniedError}. */
function rethrow(error: unknown, verb: string, path: string): never {
  if (sftpStatus(error) === STATUS.PERMISSION_DENIED) throw deniedError(verb, path, error);
  throw error;
}

/** `lstat` of `path` (a final link not followed), or `null` when nothing is there. */
export async function lstatOrNull(session: SftpSession, path: string): Promise<RemoteEntry | null> {
  try {
    const attrs = await session.request<{ mode: number; size: number; mtime?: number }>(
      `lstat ${path}`,
      (done) => session.sftp.lstat(path, done),
    );
    const mtimeMs = attrs.mtime === undefined ? undefined : attrs.mtime * 1000;
    return { name: path, kind: kindOf(attrs.mode), size: attrs.size, mtimeMs };
  } catch (error) {
    if (sftpStatus(error) === STATUS.NO_SUCH_FILE) return null;
    rethrow(error, "reading", path);
  }
}

/** The entries of the folder `path` (names, kinds, sizes as `lstat` gives them), or `null` when it does not exist. */
export async function readFolder(session: SftpSession, path: string): Promise<RemoteEntry[] | null> {
  try {
    const entries = await session.request<
      { filename: string; attrs: { mode: number; size: number; mtime?: number } }[]
    >(
      `listing ${path}`,
      (done) => session.sftp.readdir(path, done),
    );
    return entries.map(({ filename, attrs }) => ({
      name: filename,
      kind: kindOf(attrs.mode),
      size: attrs.size,
      mtimeMs: attrs.mtime === undefined ? undefined : attrs.mtime * 1000,
    }));
  } catch (error) {
    if (sftpStatus(error) === STATUS.NO_SUCH_FILE) return null;
    rethrow(error, "listing", path);
  }
}

/** Open `path` for reading (`"r"`) or as a new file (`"wx"`: fails when it exists); `null` when it is missing. */
export async function openOrNull(session: SftpSession, path: string, flags: "r" | "wx"): Promise<Buffer | null> {
  try {
    return await session.request<Buffer>(`opening ${path}`, (done) => session.sftp.open(path, flags, done));
  } catch (error) {
    if (flags === "r" && sftpStatus(error) === STATUS.NO_SUCH_FILE) return null;
    rethrow(error, flags === "r" ? "reading" : "writing", path);
  }
}

/** The kind and size of the open file `handle`. */
export async function statHandle(session: SftpSession, handle: Buffer, path: string): Promise<RemoteEntry> {
  const attrs = await session.request<{ mode: number; size: number }>(
    `fstat ${path}`,
    (done) => session.sftp.fstat(handle, done),
  );
  return { name: path, kind: kindOf(attrs.mode), size: attrs.size };
}

/** Close `handle`; the server's answer is waited for (a write is complete once its close is answered). */
export function closeHandle(session: SftpSession, handle: Buffer, path: string): Promise<void> {
  return session.request<void>(`closing ${path}`, (done) => session.sftp.close(handle, done));
}

/** Flush the open file to the server's disk where it offers `fsync@openssh.com` (else the close is all there is). */
export async function syncHandle(session: SftpSession, handle: Buffer, path: string): Promise<void> {
  if (!session.has("fsync@openssh.com")) return;
  await session.request<void>(`fsync ${path}`, (done) => session.sftp.ext_openssh_fsync(handle, done));
}

/** Make the folder `path`: `"made"`, `"exists"` (a folder is there), or `"no-parent"`. */
export async function makeFolder(session: SftpSession, path: string): Promise<"made" | "exists" | "no-parent"> {
  try {
    await session.request<void>(`mkdir ${path}`, (done) => session.sftp.mkdir(path, done));
    return "made";
  } catch (error) {
    const status = sftpStatus(error);
    if (status === STATUS.NO_SUCH_FILE) return "no-parent";
    const there = status === STATUS.FAILURE || status === STATUS.PERMISSION_DENIED
      ? await lstatOrNull(session, path)
      : null;
    if (there?.kind === "folder") return "exists";
    if (there !== null) {
      throw new OperationError(
        `${path} on the SFTP server is not a folder; the repository was altered by hand, check it ('remote verify')`,
      );
    }
    rethrow(error, "making the folder", path);
  }
}

/**
 * Rename `from` to `to`. Exclusive: the SFTP v3 rename, which fails when `to` exists (OpenSSH links, then unlinks);
 * else `posix-rename@openssh.com`, which replaces `to` atomically (where the server lacks it: remove, then rename).
 */
export async function renameFile(session: SftpSession, from: string, to: string, exclusive: boolean): Promise<void> {
  try {
    if (exclusive || !session.has("posix-rename@openssh.com")) {
      if (!exclusive) await removeFile(session, to); // without posix-rename, a v3 rename never replaces
      await session.request<void>(`rename to ${to}`, (done) => session.sftp.rename(from, to, done));
    } else {
      await session.request<void>(`rename to ${to}`, (done) => session.sftp.ext_openssh_rename(from, to, done));
    }
  } catch (error) {
    rethrow(error, "writing", to);
  }
}

/** Remove the file `path`; `false` when it was not there. A link is removed itself (the server never follows it). */
export async function removeFile(session: SftpSession, path: string): Promise<boolean> {
  try {
    await session.request<void>(`remove ${path}`, (done) => session.sftp.unlink(path, done));
    return true;
  } catch (error) {
    if (sftpStatus(error) === STATUS.NO_SUCH_FILE) return false;
    rethrow(error, "removing", path);
  }
}

/** Bytes free to the SSH user on the file system of `path` (`statvfs@openssh.com`), or `null` when not offered. */
export async function freeBytes(session: SftpSession, path: string): Promise<number | null> {
  if (!session.has("statvfs@openssh.com")) return null;
  const info = await session.request<{ f_bavail: number | bigint; f_frsize: number | bigint }>(
    `statvfs ${path}`,
    (done) => session.sftp.ext_openssh_statvfs(path, done),
  );
  return Number(info.f_bavail) * Number(info.f_frsize);
}
