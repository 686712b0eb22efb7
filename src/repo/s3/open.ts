/**
 * From an `s3://BUCKET/PREFIX` remote and its settings to the S3 backend: the endpoint (AWS's for the region unless
 * one is given), the addressing style (path-style for a custom endpoint, virtual-hosted for AWS) and the credentials.
 *
 * @module
 */
import type { S3Settings } from "../../config.ts";
import { UsageError } from "../../errors.ts";
import type { Backend } from "../backend.ts";
import { awsEndpoint, parseEndpoint, parseS3Url, type S3Address } from "./address.ts";
import { loadCredentials } from "./credentials.ts";
import { S3Backend, type S3BackendOptions } from "./s3_backend.ts";

/** The region signed for when none is given. */
export const DEFAULT_REGION = "us-east-1";

/** The address `spec` and `settings` name, with the defaults applied. */
export function s3Address(spec: string, settings: S3Settings | undefined): S3Address {
  const { bucket, prefix } = parseS3Url(spec);
  const region = settings?.region?.value ?? DEFAULT_REGION;
  const given = settings?.endpoint ?? null;
  const endpoint = given === null ? awsEndpoint(region) : parseEndpoint(given.value, given.from);
  const addressing = settings?.addressing?.value ?? (given === null ? "virtual" : "path");
  if (addressing === "virtual" && isAddressLiteral(endpoint)) {
    throw new UsageError(
      `${settings?.addressing?.from}: virtual-hosted addressing puts the bucket in the endpoint's host name, and ` +
        `${endpoint} is an IP address, which has no such names; nothing was done; give --s3-addressing path`,
    );
  }
  return { bucket, prefix, endpoint, addressing, region, customEndpoint: given !== null };
}

/** Whether the endpoint's host is an IP address (v4, or v6 in brackets), under which no bucket name can be put. */
function isAddressLiteral(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The S3 backend of `spec` (`s3://BUCKET/PREFIX`); credentials are read from `env` (or its credentials file) now.
 *
 * @throws {UsageError} for a malformed remote or endpoint, or missing credentials.
 */
export function openS3Backend(
  spec: string,
  settings: S3Settings | undefined,
  env: Record<string, string | undefined>,
  options: S3BackendOptions = {},
): Backend {
  return new S3Backend(s3Address(spec, settings), loadCredentials(env), options);
}
