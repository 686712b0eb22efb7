/**
 * The S3 access key, from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or else a
 * shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`; profile `AWS_PROFILE`, default
 * `default`). Only where the key came from is ever shown; its values go to the signer and nowhere else.
 *
 * @module
 */
import { join } from "node:path";
import { describeOsError, UsageError } from "../../errors.ts";
import { readRegularTextFile } from "../../fs/regular_file.ts";

/** The key the signer uses, and a description of where it came from (no value of it). */
export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** e.g. `env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)` or `file /root/.aws/credentials [default]`. */
  readonly from: string;
}

/** Where the credentials would come from, without reading them: for `config` and messages. */
export interface CredentialSource {
  /** `none`: no key in the environment, no AWS_SHARED_CREDENTIALS_FILE, and no HOME to find ~/.aws/credentials in. */
  source: "env" | "file" | "none";
  from: string;
  /** The credentials file and profile, for `file`. */
  file?: { path: string; profile: string };
}

type Env = Record<string, string | undefined>;

/**
 * Where the credentials come from: the environment when it names an access key, else the shared credentials file
 * (none when HOME is unset and no file is named: another user's home is never guessed).
 */
export function credentialSource(env: Env): CredentialSource {
  if (env.AWS_ACCESS_KEY_ID !== undefined || env.AWS_SECRET_ACCESS_KEY !== undefined) {
    const names = [
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      ...(env.AWS_SESSION_TOKEN ? ["AWS_SESSION_TOKEN"] : []),
    ];
    return { source: "env", from: `env (${names.join(", ")})` };
  }
  if (!env.AWS_SHARED_CREDENTIALS_FILE && !env.HOME) return { source: "none", from: NO_HOME };
  const path = env.AWS_SHARED_CREDENTIALS_FILE || join(env.HOME!, ".aws", "credentials");
  const profile = env.AWS_PROFILE || "default";
  return { source: "file", from: `file ${path} [${profile}]`, file: { path, profile } };
}

const NO_HOME = "none (HOME is not set, so there is no ~/.aws/credentials)";

/** Largest credentials file read. */
const FILE_MAX_BYTES = 1 << 20;

/**
 * The credentials, read from where {@linkcode credentialSource} says.
 *
 * @throws {UsageError} when one half of the key is missing, or the file or profile cannot be read; never showing a
 *   value.
 */
export function loadCredentials(env: Env): S3Credentials {
  const source = credentialSource(env);
  if (source.source === "none") {
    throw new UsageError(
      "an S3 remote needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give a credentials file " +
        "(AWS_SHARED_CREDENTIALS_FILE); HOME is not set, so there is no ~/.aws/credentials",
    );
  }
  if (source.file === undefined) {
    if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
      const missing = env.AWS_ACCESS_KEY_ID ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID";
      throw new UsageError(
        `an S3 remote needs both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; ${missing} is unset or empty`,
      );
    }
    return {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      sessionToken: env.AWS_SESSION_TOKEN || undefined,
      from: source.from,
    };
  }
  const { path, profile } = source.file;
  let text: string;
  try {
    text = readRegularTextFile(path, { maxBytes: FILE_MAX_BYTES, followLinks: true });
  } catch (error) {
    throw new UsageError(
      `an S3 remote needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give a credentials file ` +
        `(AWS_SHARED_CREDENTIALS_FILE); ${path} could not be read (${describeOsError(error)})`,
    );
  }
  const values = profileValues(text, profile);
  if (!values.aws_access_key_id || !values.aws_secret_access_key) {
    throw new UsageError(
      `${path} has no profile [${profile}] with aws_access_key_id and aws_secret_access_key; set AWS_PROFILE or ` +
        "fix the file",
    );
  }
  return {
    accessKeyId: values.aws_access_key_id,
    secretAccessKey: values.aws_secret_access_key,
    sessionToken: values.aws_session_token || undefined,
    from: source.from,
  };
}

/** The `key = value` lines of section `[profile]` of an INI text (`#` and `;` start comments). */
function profileValues(text: string, profile: string): Record<string, string> {
  const values: Record<string, string> = {};
  let inside = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (section) {
      inside = section[1] === profile || section[1] === `profile ${profile}`;
      continue;
    }
    const pair = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (inside && pair) values[pair[1].toLowerCase()] = pair[2].trim();
  }
  return values;
}
