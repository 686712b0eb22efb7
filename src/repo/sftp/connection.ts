/**
 * One SSH connection and its SFTP channel (npm `ssh2`, pure JavaScript): logged in with a key file, the host key
 * checked against known_hosts, dropped when the server sends neither a whole answer nor 64 KiB in a stall timeout while
 * requests wait.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import ssh2 from "ssh2";
import { describeOsError, OperationError, RefusedError, UsageError } from "../../errors.ts";
import { readRegularFile } from "../../fs/regular_file.ts";
import { lstatOrNull } from "../../fs/probe.ts";
import { describeSftpError, isTransientSftpError, SftpConnectionError, SftpStallError } from "./errors.ts";
import { PROGRESS_BYTES } from "../progress.ts";
import { interruptSignal } from "../../sys/interrupt.ts";
import {
  blobType,
  fingerprint,
  hostKeyAlgorithms,
  type HostKeyVerdict,
  judgeHostKey,
  keysForHost,
  knownHostsName,
} from "./known_hosts.ts";
import type { SftpAddress } from "./url.ts";

/**
 * The ciphers offered: `ssh2`'s defaults, AES-CTR first (Deno's `node:crypto` runs AES-GCM, `ssh2`'s first choice, at
 * less than half AES-CTR's speed, and this thread also seals and hashes), without ChaCha20-Poly1305: `ssh2` makes
 * three ciphers per packet for it and never finalizes them, and Deno 2.9.6 frees a cipher's native state only when it
 * is finalized: memory that grows with each GB moved, without bound (measured in the README, Performance).
 */
const SSH_CIPHERS = [
  "aes128-ctr",
  "aes192-ctr",
  "aes256-ctr",
  "aes128-gcm@openssh.com",
  "aes256-gcm@openssh.com",
] as const;

/** The files a connection logs in and checks the server with. */
export interface SftpCredentials {
  /** The private key file (OpenSSH or PEM format, without a passphrase). */
  keyFile: string;
  /** The known_hosts file the server's host key must be in. */
  knownHostsFile: string;
}

/** How long to wait. */
export interface SftpTimeouts {
  /** From the TCP connect to the SFTP channel being open. */
  connectMs: number;
  /**
   * Without a whole answer or 64 KiB from the server while requests wait; past it the connection is dropped (and the
   * operation retried).
   */
  stallMs: number;
}

/** The callback of an `ssh2` SFTP request. */
export type Done<T> = (error: Error | null | undefined, value?: T) => void;

// deno-lint-ignore no-explicit-any
type Ssh2Sftp = any;
// deno-lint-ignore no-explicit-any
type Ssh2Client = any;

/** An open SFTP channel: requests as promises, the connection dropped when the server sends too little for too long. */
export class SftpSession {
  /** Set once the connection failed or was closed; the backend then opens another. */
  broken = false;
  /** Why the connection was dropped, when a stall dropped it. */
  #dropped: SftpConnectionError | null = null;
  /** The requests waiting for an answer: failed at once when the connection closes (`ssh2` would leave them). */
  readonly #pending = new Set<() => void>();
  /**
   * When the stall timeout last restarted: a whole answer came, {@linkcode PROGRESS_BYTES} came since it last
   * restarted, or the first of the waiting requests was sent after none.
   */
  #heardAt = 0;
  /** The bytes the server sent on the channel since {@linkcode #heardAt}. */
  #bytesSince = 0;
  /** The stall check, armed while requests wait. */
  #watch: ReturnType<typeof setTimeout> | undefined;

  /** Wrap an open channel (made by {@linkcode connectSftp}). */
  constructor(private readonly client: Ssh2Client, readonly sftp: Ssh2Sftp, private readonly stallMs: number) {
    client.on("close", () => {
      this.broken = true;
      this.#failPending();
    });
    // the bytes of every answer count, so that a slow link with many requests queued on it (16 per transfer,
    // transfers sharing the connection) is not taken for a dead server, but only by 64 KiB at a time, so that a
    // server trickling a few bytes now and then is; an SSH keepalive's answer is not data of the channel
    const push = sftp.push.bind(sftp);
    sftp.push = (data: { length: number } | null) => {
      this.#bytesSince += data?.length ?? 0;
      if (this.#bytesSince >= PROGRESS_BYTES) this.#heard();
      return push(data);
    };
  }

  /** Whether the server offers the extension `name` (such as `fsync@openssh.com`). */
  has(name: string): boolean {
    return this.sftp._extensions?.[name] !== undefined;
  }

  /** The largest read and write payload the server takes in one request (OpenSSH: `limits@openssh.com`). */
  get chunkBytes(): number {
    return Math.max(32 * 1024, Math.min(this.sftp._maxReadLen ?? 32 * 1024, this.sftp._maxWriteLen ?? 32 * 1024));
  }

  /**
   * Send one request (`start` calls `ssh2` with `done`); when the server sends neither a whole answer nor 64 KiB on
   * the channel in the stall timeout while any request waits, the connection is dropped and every waiting request fails
   * with that reason.
   */
  request<T>(what: string, start: (done: Done<T>) => void): Promise<T> {
    if (this.broken) return Promise.reject(new SftpConnectionError(`the SFTP connection was lost before ${what}`));
    const stop = interruptSignal();
    if (stop?.aborted) return Promise.reject(stop.reason);
    return new Promise<T>((resolve, reject) => {
      // a stop asked for drops the connection (no request can be taken back alone): no wait for a stalled server
      const stopped = () => this.drop(new SftpConnectionError(`the SFTP connection was dropped to stop (${what})`));
      stop?.addEventListener("abort", stopped, { once: true });
      const settle = () => {
        stop?.removeEventListener("abort", stopped);
        this.#pending.delete(fail);
        if (this.#pending.size === 0) this.#unwatch();
      };
      const fail = () => {
        settle();
        reject(
          this.#dropped ??
            new SftpConnectionError(`the connection to the SFTP server closed before it answered (${what})`),
        );
      };
      if (this.#pending.size === 0) this.#heard();
      this.#pending.add(fail);
      this.#watch ??= setTimeout(() => this.#check(), this.stallMs);
      start((error, value) => {
        this.#heard(); // a whole answer, however small
        settle();
        if (error) reject(this.#dropped ?? error); // the requests failed by a drop say why it was dropped
        else resolve(value as T);
      });
    });
  }

  /** Restart the stall timeout. */
  #heard(): void {
    this.#heardAt = performance.now();
    this.#bytesSince = 0;
  }

  /** Past the stall timeout without progress while requests wait: drop the connection; else look again then. */
  #check(): void {
    this.#watch = undefined;
    if (this.#pending.size === 0 || this.broken) return;
    const quietMs = performance.now() - this.#heardAt;
    if (quietMs < this.stallMs) {
      this.#watch = setTimeout(() => this.#check(), this.stallMs - quietMs);
      return;
    }
    const waiting = this.#pending.size;
    const seconds = this.stallMs / 1000;
    const sent = this.#bytesSince === 0
      ? `nothing for ${seconds} s`
      : `only ${this.#bytesSince} bytes in ${seconds} s (less than 64 KiB, and no whole answer)`;
    this.drop(
      new SftpStallError(
        `the SFTP server sent ${sent} while ${waiting} ` +
          `request${waiting === 1 ? "" : "s"} waited on the connection, which was dropped`,
      ),
    );
  }

  #unwatch(): void {
    clearTimeout(this.#watch);
    this.#watch = undefined;
  }

  #failPending(): void {
    this.#unwatch();
    for (const fail of [...this.#pending]) fail();
  }

  /** Drop the connection at once (after a stall, saying so with `reason`): its pending requests fail. */
  drop(reason?: SftpConnectionError): void {
    this.#dropped ??= reason ?? null;
    this.broken = true;
    this.client.destroy();
    this.#failPending();
  }

  /** Close the connection and wait for its socket to close. */
  close(): Promise<void> {
    if (this.client._sock?.destroyed ?? true) {
      this.broken = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.client.once("close", () => resolve());
      this.broken = true;
      this.client.end();
    });
  }
}

/**
 * Connect to `address`, check its host key, log in with the key and open the SFTP channel.
 *
 * @throws {RefusedError} for an unknown, changed or revoked host key (with its fingerprint and the next step).
 * @throws {UsageError} when the key file cannot be used or the server refuses it.
 * @throws {SftpConnectionError} when the server cannot be reached or does not answer in time (worth a retry).
 * @throws {OperationError} when it offers none of the ciphers offered here, or fails otherwise.
 */
export async function connectSftp(
  address: SftpAddress,
  credentials: SftpCredentials,
  timeouts: SftpTimeouts,
): Promise<SftpSession> {
  const privateKey = readPrivateKey(credentials.keyFile);
  const known = keysForHost(readKnownHosts(credentials.knownHostsFile), address.host, address.port);
  let offered: { verdict: HostKeyVerdict; blob: Uint8Array } | null = null;
  const client = new ssh2.Client();
  let closed = false; // before the session listens: a connection cut as the channel opened
  const ready = new Promise<void>((resolve, reject) => {
    client.once("ready", resolve);
    client.on("error", reject); // stays: an error after the login marks the session broken (via close)
    client.once("close", () => {
      closed = true;
      reject(new SftpConnectionError(`the SFTP server ${address.location} closed the connection`));
    });
  });
  client.connect({
    host: address.host,
    port: address.port,
    username: address.user,
    privateKey,
    readyTimeout: timeouts.connectMs,
    keepaliveInterval: 15_000,
    keepaliveCountMax: 4,
    algorithms: { serverHostKey: hostKeyAlgorithms(known), cipher: [...SSH_CIPHERS] },
    hostVerifier: (blob: Buffer) => {
      offered = { verdict: judgeHostKey(known, new Uint8Array(blob)), blob: new Uint8Array(blob) };
      return offered.verdict === "trusted";
    },
  });
  client.setNoDelay(true); // many small requests wait on each answer: Nagle's delay would cost ~40 ms on each
  try {
    await ready;
    const sftp = await openSftpChannel(client, address, timeouts.connectMs);
    const session = new SftpSession(client, sftp, timeouts.stallMs);
    session.broken ||= closed; // its requests fail at once, not at the stall timeout
    return session;
  } catch (error) {
    client.destroy();
    const hostKey = offered as { verdict: HostKeyVerdict; blob: Uint8Array } | null;
    if (hostKey !== null && hostKey.verdict !== "trusted") throw hostKeyError(address, credentials, hostKey);
    throw connectError(address, credentials, error);
  }
}

/**
 * Open the SFTP channel of a logged-in `client`, within `timeoutMs`: a server whose SFTP subsystem never answers (its
 * SSH layer answering keepalives all the while) would otherwise hold the command for ever.
 */
function openSftpChannel(client: ssh2.Client, address: SftpAddress, timeoutMs: number): Promise<Ssh2Sftp> {
  return new Promise<Ssh2Sftp>((resolve, reject) => {
    const timer = setTimeout(() => {
      const seconds = Math.round(timeoutMs / 1000);
      reject(new SftpConnectionError(`the SFTP server ${address.location} did not start SFTP within ${seconds} s`));
    }, timeoutMs);
    client.sftp((error: Error | undefined, channel: Ssh2Sftp) => {
      clearTimeout(timer);
      error ? reject(error) : resolve(channel);
    });
  });
}

/** The private key, parsed to check it can be used before connecting; its content never reaches a message. */
function readPrivateKey(path: string): Buffer {
  let bytes: Uint8Array;
  try {
    bytes = readRegularFile(path, { followLinks: true, maxBytes: 1 << 20 });
  } catch (error) {
    throw new UsageError(
      `cannot read the SSH key ${path} (${describeOsError(error)}); give a readable private key file with ` +
        "--ssh-key or ATOCORE_SSH_KEY_FILE",
    );
  }
  const key = Buffer.from(bytes);
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) {
    const encrypted = /passphrase|encrypted/i.test(parsed.message);
    throw new UsageError(
      encrypted
        ? `the SSH key ${path} is protected by a passphrase, which this tool does not ask for; give it a key of its ` +
          "own without one (ssh-keygen -t ed25519 -N '' -f FILE), restricted on the server"
        : `the SSH key ${path} is not a private key this tool can read; give an OpenSSH private key file (ssh-keygen)`,
    );
  }
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first && typeof first.isPrivateKey === "function" && !first.isPrivateKey()) {
    throw new UsageError(
      `the SSH key ${path} is a public key; give the private key it was made with (the same name without .pub)`,
    );
  }
  return key;
}

/** The known_hosts text; a missing file is empty (every host then unknown, and the message says how to add it). */
function readKnownHosts(path: string): string {
  let text: string;
  try {
    text = new TextDecoder().decode(readRegularFile(path, { followLinks: true, maxBytes: 16 << 20 }));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw new UsageError(
      `cannot read the known_hosts file ${path} (${describeOsError(error)}); give a readable one with --known-hosts`,
    );
  }
  if (/AGE-SECRET-KEY-1|PRIVATE KEY-----/.test(text)) { // the advice for an unknown host would append to it
    throw new UsageError(`${path} holds a secret key, not known hosts; give the known_hosts file with --known-hosts`);
  }
  return text;
}

function hostKeyError(
  address: SftpAddress,
  credentials: SftpCredentials,
  offered: { verdict: HostKeyVerdict; blob: Uint8Array },
): RefusedError {
  const name = knownHostsName(address.host, address.port);
  const file = credentials.knownHostsFile;
  const key = `${blobType(offered.blob)} ${fingerprint(offered.blob)}`;
  const scan = `ssh-keyscan${address.port === 22 ? "" : ` -p ${address.port}`} ${address.host} >> ${file}`;
  if (offered.verdict === "unknown") {
    return new RefusedError(
      `the SSH host key of ${name} is not in ${file}${
        lstatOrNull(file) === null ? " (no such file: check the path)" : ""
      } ` +
        `(the server offered ${key}); nothing was done; if that is the ` +
        `server's key (compare with 'ssh-keygen -lf' on the server), add it: ${scan}`,
    );
  }
  if (offered.verdict === "revoked") {
    return new RefusedError(
      `the SSH host key of ${name} (${key}) is marked @revoked in ${file}; nothing was done; give the server a new ` +
        `host key, then add it: ${scan}`,
    );
  }
  return new RefusedError(
    `the SSH host key of ${name} CHANGED: the server offered ${key}, which is not the one ${file} holds; this can be ` +
      `an attack; nothing was done; if the server's key was replaced on purpose: ssh-keygen -R '${name}' -f ${file}, ` +
      `then ${scan}`,
  );
}

function connectError(address: SftpAddress, credentials: SftpCredentials, error: unknown): Error {
  if (error instanceof OperationError || error instanceof UsageError) return error;
  const level = (error as { level?: unknown } | null)?.level;
  if (level === "client-authentication") {
    return new UsageError(
      `the SFTP server ${address.location} refused the SSH key ${credentials.keyFile} for user ${address.user}; ` +
        `give the right key (--ssh-key) or add its .pub to ~${address.user}/.ssh/authorized_keys there`,
    );
  }
  if (level === "handshake" && /no matching host key/i.test((error as Error).message)) {
    // only the key types known_hosts holds for this server are offered: the server has none of them now
    const name = knownHostsName(address.host, address.port);
    return new RefusedError(
      `the SFTP server ${name} offers no host key of the types ${credentials.knownHostsFile} holds for it: its key ` +
        `may have been replaced, which can be an attack; nothing was done; compare with 'ssh-keygen -lf' on the ` +
        `server, and if it was replaced on purpose: ssh-keygen -R '${name}' -f ${credentials.knownHostsFile}, then ` +
        `ssh-keyscan${
          address.port === 22 ? "" : ` -p ${address.port}`
        } ${address.host} >> ${credentials.knownHostsFile}`,
    );
  }
  if (level === "handshake" && /no matching .*cipher/i.test((error as Error).message)) {
    return new OperationError(
      `the SFTP server ${address.location} offers none of the ciphers this tool uses (${SSH_CIPHERS.join(", ")}); ` +
        "nothing was done; add one to the server's sshd_config (Ciphers) and restart sshd",
    );
  }
  const what = `cannot connect to the SFTP server ${address.location}: ${describeSftpError(error)}`;
  if (isTransientSftpError(error)) return new SftpConnectionError(what, { cause: error });
  return new OperationError(`${what}; check the address and that the server offers SFTP`, { cause: error });
}
