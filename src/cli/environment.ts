/**
 * The environment a command reads its settings from, with every variable this tool reads checked to be UTF-8: Deno
 * leaves a variable that is not out of its map, and a path setting taken as unset would act on the default store.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/** Every environment variable this tool reads (a test keeps the list whole against the source). */
export const READ_VARIABLES = [
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
  "AWS_ACCESS_KEY_ID",
  "AWS_DEFAULT_REGION",
  "AWS_PROFILE",
  "AWS_REGION",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_SHARED_CREDENTIALS_FILE",
  "HOME",
  "TMPDIR",
] as const;

/**
 * The environment as a map, once no variable of {@linkcode READ_VARIABLES} holds bytes that are not UTF-8.
 *
 * @throws {UsageError} naming the first such variable.
 */
export function readEnvironment(): Record<string, string> {
  for (const name of READ_VARIABLES) {
    try {
      Deno.env.get(name);
    } catch (error) {
      if (!(error instanceof Deno.errors.InvalidData)) throw error;
      throw new UsageError(
        `the environment variable ${name} is not valid UTF-8, so it cannot be read as set (it would be taken as ` +
          "unset); nothing was done; set it to a value in UTF-8 (a path renamed so) or unset it",
      );
    }
  }
  return Deno.env.toObject();
}
