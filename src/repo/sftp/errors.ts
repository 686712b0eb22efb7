/**
 * What an SFTP failure means: transient (a reset, a refused or timed-out connection, a stalled request: reconnect
 * and retry) or final (the server's status for one path: missing, permission denied, failure), and its one line.
 *
 * @module
 */
import { OperationError } from "../../errors.ts";

/** SFTP v3 status codes the backend tells apart. */
export const STATUS = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4 } as const;

/** The connection broke, timed out or stalled: worth a new connection and another attempt. */
export class SftpConnectionError extends OperationError {
  /** Make the error; `message` says what happened, without any credential. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Neither a whole answer nor 64 KiB came in the stall timeout while requests waited: the connection was dropped. */
export class SftpStallError extends SftpConnectionError {}

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTCONN",
  "EAI_AGAIN",
]);

const TRANSIENT_MESSAGES = new RegExp(
  "No response from server|Not connected|Channel open failure|Keepalive timeout|Connection lost|socket hang up|" +
    // a connection cut while the SFTP subsystem starts: also what a server without SFTP answers, retried the same
    "Unable to start subsystem|unexpected SFTP session termination",
  "i",
);

/** Whether `error` is worth a new connection and another attempt (never an auth, host key or path problem). */
export function isTransientSftpError(error: unknown): boolean {
  if (error instanceof SftpConnectionError) return true;
  if (!(error instanceof Error)) return false;
  const { code, level } = error as Error & { code?: unknown; level?: unknown };
  if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
  if (level === "client-timeout" || level === "client-socket") return true;
  return typeof code !== "number" && TRANSIENT_MESSAGES.test(error.message);
}

/** The SFTP status code of a server's answer, or `undefined` for any other error. */
export function sftpStatus(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** What a transient error was, briefly, for the message after the last attempt. */
export function describeSftpError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as Error & { code?: unknown }).code;
  const message = error.message.split("\n")[0];
  return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
}
