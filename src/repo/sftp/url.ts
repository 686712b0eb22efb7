/**
 * `sftp://USER@HOST[:PORT]/PATH` parsed, in restic's convention: one slash after the host starts a path relative to
 * the login (home) folder, two an absolute one (`sftp://u@host//srv/atocore`).
 *
 * @module
 */
import { UsageError } from "../../errors.ts";

/** Where an SFTP repository is. */
export interface SftpAddress {
  user: string;
  /** The host name or IP address (an IPv6 address without its brackets). */
  host: string;
  port: number;
  /** The repository folder as the server takes it: absolute (`/srv/x`) or relative to the login folder (`x`). */
  path: string;
  /** The canonical URL, for messages and to key local state (the port only when not 22). */
  location: string;
}

const FORM = /^sftp:\/\/([^@/]*)@(\[[0-9a-fA-F:.]+\]|[^/:[\]]+)(?::(\d{1,5}))?\/(.*)$/i;

/**
 * Parse `spec`. A password in the URL is refused (it would be printed wherever the location is): SFTP logs in with a
 * key. A query, a fragment and `.` or `..` segments are refused too: the location keys this host's state for the
 * repository, so one folder must have one spelling.
 *
 * @throws {UsageError} naming the expected form.
 */
export function parseSftpUrl(spec: string): SftpAddress {
  const form = "give sftp://USER@HOST[:PORT]/PATH (PATH from the login folder) or sftp://USER@HOST[:PORT]//ABS/PATH";
  const match = FORM.exec(spec);
  if (match === null) throw new UsageError(`not an SFTP location: ${JSON.stringify(redact(spec))}; ${form}`);
  const [, rawUser, rawHost, rawPort, rawPath] = match;
  if (rawUser.includes(":")) {
    throw new UsageError(
      `the SFTP location holds a password (${JSON.stringify(redact(spec))}); nothing was done; ` +
        "log in with a key instead: --ssh-key FILE or ATOCORE_SSH_KEY_FILE",
    );
  }
  if (/[?#]/.test(rawPath)) {
    throw new UsageError(
      `the SFTP location ${
        JSON.stringify(redact(spec))
      } has a query or fragment (? or #), which no folder path takes; ` +
        "write ? as %3F and # as %23 if the folder's name holds them",
    );
  }
  const user = decode(rawUser, spec, form);
  const host = rawHost.replace(/^\[|\]$/g, "");
  const port = rawPort === undefined ? 22 : Number(rawPort);
  const path = decode(rawPath, spec, form).replace(/\/+$/, "");
  const dotted = path.split("/").some((segment) => segment === "." || segment === "..");
  if (user === "" || port < 1 || port > 65535 || path === "" || path === "/" || path.includes("\0") || dotted) {
    throw new UsageError(`not an SFTP location: ${JSON.stringify(redact(spec))}; ${form}`);
  }
  const hostPart = host.includes(":") ? `[${host}]` : host;
  const location = `sftp://${encodeURIComponent(user)}@${hostPart}${port === 22 ? "" : `:${port}`}/${encodePath(path)}`;
  return { user, host, port, path, location };
}

function decode(text: string, spec: string, form: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new UsageError(`not an SFTP location: ${JSON.stringify(redact(spec))} (bad %-escape); ${form}`);
  }
}

function encodePath(path: string): string {
  return path.split("/").map((segment) => encodeURIComponent(segment)).join("/");
}

/** `spec` with anything between `://` and `@` that holds a `:` (a password) masked. */
function redact(spec: string): string {
  return spec.replace(/^(sftp:\/\/)([^@/]*):[^@/]*@/i, "$1$2:***@");
}
