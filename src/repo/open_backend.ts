/**
 * From a `--remote` value to its backend, by scheme: `file://` or a plain path (a folder), `s3://` and `sftp://`.
 * Backends that hold a connection are remembered so that the CLI closes them when its command ends.
 *
 * @module
 */
import { existsSync } from "node:fs";
import type { S3Settings } from "../config.ts";
import { UsageError } from "../errors.ts";
import type { Backend } from "./backend.ts";
import type { RetryListener } from "./retry.ts";
import { openFolderBackend } from "./folder.ts";
import { openS3Backend } from "./s3/open.ts";
import type { S3BackendOptions } from "./s3/s3_backend.ts";
import { DEFAULT_TIMEOUTS } from "./s3/transport.ts";
import { type ClosableBackend, openSftpBackend } from "./sftp/backend.ts";
import { parseSftpUrl } from "./sftp/url.ts";

/** What a network backend may need besides the location; credentials stay out of every message. */
export interface BackendContext {
  /** The directory a relative folder path is taken from. */
  cwd: string;
  /** The environment (credentials, endpoints), read here and nowhere else below the CLI. */
  env: Record<string, string | undefined>;
  /**
   * SFTP: the key file and known_hosts file as resolved from flags and environment, and ssh's default keys, tried in
   * order when no key file is given (absolute paths).
   */
  ssh?: { keyFile?: string; defaultKeyFiles?: readonly string[]; knownHostsFile?: string };
  /** The S3 endpoint, region and addressing from flags or environment (an `s3://` remote). */
  s3?: S3Settings;
  /** Network backends: how long a request may make no progress (default: the backend's own), and who hears retries. */
  network?: NetworkOptions;
}

/** What every network backend takes besides its protocol's settings. */
export interface NetworkOptions {
  /** Milliseconds without progress before a connection is dropped and the request tried again on a new one. */
  stallMs?: number;
  onRetry?: RetryListener;
}

/** The connections opened by {@linkcode openBackend}, until {@linkcode closeBackends}. */
const opened = new Set<ClosableBackend>();

/**
 * The backend `spec` names.
 *
 * @throws {UsageError} for a scheme this tool does not know, naming the ones it does.
 */
export function openBackend(spec: string, context: BackendContext): Backend {
  const scheme = schemeOf(spec);
  if (isFolderSpec(spec)) return openFolderBackend(spec, context.cwd);
  if (scheme === "sftp") return remember(openSftp(spec, context));
  if (scheme === "s3") return openS3Backend(spec, context.s3, context.env, s3Options(context.network));
  throw new UsageError(
    `remote ${JSON.stringify(`${scheme}://…`)} is not supported; give file:///path, sftp://USER@HOST/PATH or ` +
      "s3://BUCKET/PREFIX",
  );
}

/** The URL scheme of a `--remote` value, lower case, or `undefined` for a plain path. */
function schemeOf(spec: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec)?.[1]?.toLowerCase();
}

/** Whether a `--remote` value names a folder repository (`file://` or a plain path). */
export function isFolderSpec(spec: string): boolean {
  const scheme = schemeOf(spec);
  return scheme === undefined || scheme === "file";
}

/** Close every connection a backend opened here (the CLI calls this when its command ends, however it ends). */
export async function closeBackends(): Promise<void> {
  const all = [...opened];
  opened.clear();
  await Promise.allSettled(all.map((backend) => backend.close()));
}

function remember(backend: ClosableBackend): ClosableBackend {
  opened.add(backend);
  return backend;
}

/** The SFTP backend, with the key given or else the first of ssh's default keys that exists. */
function openSftp(spec: string, context: BackendContext): ClosableBackend {
  parseSftpUrl(spec); // a malformed address is named before the key it would be opened with is looked for
  const keyFile = context.ssh?.keyFile ?? context.ssh?.defaultKeyFiles?.find((path) => existsSync(path));
  if (keyFile === undefined) {
    throw new UsageError(
      "the SFTP repository needs an SSH key: give --ssh-key FILE or set ATOCORE_SSH_KEY_FILE (none of " +
        "~/.ssh/id_ed25519, id_ecdsa, id_rsa exists)",
    );
  }
  const knownHostsFile = context.ssh?.knownHostsFile;
  if (knownHostsFile === undefined) {
    throw new UsageError("SFTP needs a known_hosts file: give --known-hosts FILE (HOME is not set)");
  }
  const network = context.network;
  const stallMs = network?.stallMs;
  const timeouts = stallMs === undefined ? undefined : { connectMs: stallMs, stallMs };
  return openSftpBackend(spec, { keyFile, knownHostsFile, timeouts, onRetry: network?.onRetry });
}

/** The S3 session's options: the stall timeout bounds the wait for an answer and each 64 KiB of a download. */
function s3Options(network: NetworkOptions | undefined): S3BackendOptions {
  const stallMs = network?.stallMs;
  const timeouts = stallMs === undefined ? undefined : { ...DEFAULT_TIMEOUTS, answerMs: stallMs, stallMs };
  return { timeouts, onRetry: network?.onRetry };
}
