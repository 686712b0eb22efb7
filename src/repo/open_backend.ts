/**
 * From a `--remote` value to its backend, by scheme: `file://` or a plain path (a folder), `s3://` and `sftp://`.
 *
 * @module
 */
import type { S3Settings } from "../config.ts";
import { UsageError } from "../errors.ts";
import type { Backend } from "./backend.ts";
import { openFolderBackend } from "./folder.ts";
import { openS3Backend } from "./s3/open.ts";

/** What a network backend may need besides the location; credentials stay out of every message. */
export interface BackendContext {
  /** The directory a relative folder path is taken from. */
  cwd: string;
  /** The environment (credentials, endpoints), read here and nowhere else below the CLI. */
  env: Record<string, string | undefined>;
  /** The S3 endpoint, region and addressing from flags or environment (an `s3://` remote). */
  s3?: S3Settings;
}

/**
 * The backend `spec` names.
 *
 * @throws {UsageError} for a scheme this tool does not know, naming the ones it does.
 */
export function openBackend(spec: string, context: BackendContext): Backend {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === "file") return openFolderBackend(spec, context.cwd);
  if (scheme === "s3") return openS3Backend(spec, context.s3, context.env);
  throw new UsageError(
    `remote ${JSON.stringify(`${scheme}://…`)} is not supported; give file:///path, sftp://USER@HOST/PATH or ` +
      "s3://BUCKET/PREFIX",
  );
}
