/**
 * The environment a command reads its settings from, with the variables it reads checked to be UTF-8: Deno leaves a
 * variable that is not out of its map, and a path setting taken as unset would act on the default store.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { variableText } from "../sys/variable.ts";

/** This tool's own variables, which every command may read. */
const TOOL_VARIABLES = [
  "ATOCORE_BACKUP_AUTH_KEY_FILE",
  "ATOCORE_BACKUP_DIR",
  "ATOCORE_BACKUP_IDENTITY_FILE",
  "ATOCORE_BACKUP_RECIPIENT",
  "ATOCORE_BACKUP_REMOTE",
  "ATOCORE_BACKUP_STALL_TIMEOUT",
  "ATOCORE_BACKUP_TRANSFERS",
  "ATOCORE_CHROMA_PATH",
  "ATOCORE_DATA_DIR",
  "ATOCORE_DB_PATH",
  "ATOCORE_PROJECT_REGISTRY_PATH",
  "ATOCORE_S3_ADDRESSING",
  "ATOCORE_S3_ENDPOINT",
  "ATOCORE_SQLITE_LIB",
  "ATOCORE_SSH_KEY_FILE",
  "ATOCORE_SSH_KNOWN_HOSTS",
] as const;

/** Variables other programs share, read only to reach a repository (SSH's files under HOME, S3's credentials). */
const REMOTE_VARIABLES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_DEFAULT_REGION",
  "AWS_PROFILE",
  "AWS_REGION",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_SHARED_CREDENTIALS_FILE",
  "HOME",
] as const;

/** Every variable this tool reads: TMPDIR besides, read by name where a scratch copy is made (`sys/variable.ts`). */
export const READ_VARIABLES: readonly string[] = [...TOOL_VARIABLES, ...REMOTE_VARIABLES, "TMPDIR"];

/**
 * Whether a run of command `name` given `values` reaches a repository, or says how it would (`config`): `push` and the
 * `remote` commands do, `create` only with `--push`, `restore` and `drill` only with `--from-remote`; a nightly local
 * `create` never reads HOME.
 */
export function reachesRepository(name: string, values: Record<string, unknown>): boolean {
  if (name === "push" || name === "config" || name.startsWith("remote ")) return true;
  return values.push === true || values["from-remote"] === true;
}

/**
 * The environment as a map, once this tool's variables, and with `remote` (a run that reaches a repository, see
 * {@linkcode reachesRepository}) the ones it reads to reach one, hold UTF-8: a local run is not refused for a HOME it
 * never reads.
 *
 * @throws {UsageError} naming the first variable that does not.
 */
export function readEnvironment(remote: boolean): Record<string, string> {
  for (const name of remote ? [...TOOL_VARIABLES, ...REMOTE_VARIABLES] : TOOL_VARIABLES) variableText(name);
  return Deno.env.toObject();
}

/**
 * The environment for a run, read as {@linkcode readEnvironment} reads it; for a run that reports itself
 * (`--metrics-file`, `--junit`: `reports`), a variable that is not UTF-8 is handed back as `refused` instead of thrown,
 * so that the report says the run failed rather than leaving the last run's success standing (that variable is left
 * out of `env`, which then serves only to check where the report may be written).
 *
 * @throws {UsageError} naming the variable, for a run that does not report itself.
 */
export function runEnvironment(
  remote: boolean,
  reports: boolean,
): { env: Record<string, string>; refused?: UsageError } {
  try {
    return { env: readEnvironment(remote) };
  } catch (error) {
    if (!reports || !(error instanceof UsageError)) throw error;
    return { env: Deno.env.toObject(), refused: error };
  }
}
