/**
 * Where an S3 repository is: the bucket and key prefix of an `s3://BUCKET/PREFIX` remote, the endpoint, and the URL of
 * each object under path-style or virtual-hosted addressing. Keys are percent-encoded here, segment by segment, since
 * WHATWG URL parsing would collapse `.` and `..` segments (also encoded ones) and so address another key.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";

/** How the bucket is named in a request's URL: `path` (`ENDPOINT/BUCKET/KEY`) or `virtual` (`BUCKET.HOST/KEY`). */
export type Addressing = "path" | "virtual";

/** A resolved S3 location: every URL of the repository is made from this. */
export interface S3Address {
  bucket: string;
  /** The key prefix of the repository: `""` or segments each followed by `/`. */
  prefix: string;
  /** The endpoint's origin and base path (no trailing `/`), e.g. `http://127.0.0.1:7480` or `https://s3.eu-west-1.amazonaws.com`. */
  endpoint: string;
  addressing: Addressing;
  region: string;
  /** Whether the endpoint was given (a custom server) or is AWS's for the region. */
  customEndpoint: boolean;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * The bucket and prefix of `spec` (`s3://BUCKET` or `s3://BUCKET/PREFIX`). Prefix segments are letters, digits, `.`,
 * `_`, `-`, none empty and none `.` or `..`.
 *
 * @throws {UsageError} naming what is wrong with the URL.
 */
export function parseS3Url(spec: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/?#]*)(?:\/([^?#]*))?$/i.exec(spec);
  if (match === null) throw new UsageError(`not an S3 remote: ${JSON.stringify(spec)}; give s3://BUCKET/PREFIX`);
  const [, bucket, rest = ""] = match;
  if (!BUCKET.test(bucket) || bucket.includes("..")) {
    throw new UsageError(
      `not an S3 bucket name: ${JSON.stringify(bucket)} in ${JSON.stringify(spec)}; a bucket name has 3 to 63 ` +
        "lowercase letters, digits, dots and hyphens",
    );
  }
  const segments = rest.split("/").filter((segment, index, all) => !(segment === "" && index === all.length - 1));
  if (rest !== "" && segments.some((segment) => !PREFIX_SEGMENT.test(segment) || segment.length > 200)) {
    throw new UsageError(
      `not a plain S3 prefix: ${JSON.stringify(rest)} in ${JSON.stringify(spec)}; use segments of letters, digits, ` +
        "'.', '_' and '-' separated by single '/'",
    );
  }
  return { bucket, prefix: rest === "" ? "" : `${segments.join("/")}/` };
}

/**
 * The endpoint as `origin[/base]` with no trailing `/`.
 *
 * @throws {UsageError} for a URL that is not http(s), carries a user, password, query or fragment (a credential
 *   would end up in messages), or has a `.` or `..` path segment (URL parsing would rewrite it to another path).
 */
export function parseEndpoint(value: string, from: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${from}: not a URL: ${JSON.stringify(value)}; give e.g. http://127.0.0.1:7480`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`${from}: ${JSON.stringify(url.protocol)} is not http: or https:`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new UsageError(
      `${from}: an endpoint has no user, password, query or fragment; give credentials in AWS_ACCESS_KEY_ID and ` +
        "AWS_SECRET_ACCESS_KEY",
    );
  }
  if (hasDotSegment(value)) {
    throw new UsageError(
      `${from}: ${JSON.stringify(value)} has a '.' or '..' path segment, which would be used as another path; give ` +
        "the endpoint's path without them",
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** Whether the path of `value` has a `.` or `..` segment, also percent-encoded or split by characters URLs drop. */
function hasDotSegment(value: string): boolean {
  const plain = value.trim().replace(/[\t\n\r]/g, ""); // URL parsing removes these, so `.\t.` is `..`
  const path = /^[a-z][a-z0-9+.-]*:[/\\]*[^/\\?#]*([^?#]*)/i.exec(plain)?.[1] ?? "";
  return path.split(/[/\\]/).some((segment) => /^(?:\.|%2e){1,2}$/i.test(segment));
}

/** AWS's endpoint for `region`. */
export function awsEndpoint(region: string): string {
  return `https://s3.${region}.amazonaws.com`;
}

/** A key's percent-encoding: each segment by RFC 3986 (unreserved characters kept), `/` between them kept. */
export function encodeKey(key: string): string {
  return key.split("/").map((segment) =>
    encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  ).join("/");
}

/**
 * The URL of the object `key` (the full key, prefix included; `""` for the bucket itself) with `query` appended as
 * given (already encoded), under the address's addressing.
 */
export function objectUrl(address: S3Address, key: string, query = ""): string {
  const path = `/${encodeKey(key)}${query === "" ? "" : `?${query}`}`;
  if (address.addressing === "path") return `${address.endpoint}/${address.bucket}${path}`;
  const url = new URL(address.endpoint);
  return `${url.protocol}//${address.bucket}.${url.host}${url.pathname.replace(/\/$/, "")}${path}`;
}

/** How the repository is named in messages and local state: `s3://BUCKET/PREFIX`, and the endpoint when custom. */
export function s3Location(address: S3Address): string {
  const where = `s3://${address.bucket}/${address.prefix.replace(/\/$/, "")}`;
  return address.customEndpoint ? `${where}${ENDPOINT_JOINER}${address.endpoint}` : where;
}

/** What {@linkcode s3Location} puts between the repository and a custom endpoint. */
const ENDPOINT_JOINER = " at ";

/**
 * The flags and values that reach the repository a location names, for a command printed for the operator: an S3
 * location with an endpoint ({@linkcode s3Location}) is `--remote s3://BUCKET/PREFIX --s3-endpoint URL`, since the
 * location as a whole is no `--remote`; any other is `--remote LOCATION`.
 */
export function locationFlags(location: string): [string, string][] {
  const at = location.startsWith("s3://") ? location.indexOf(ENDPOINT_JOINER) : -1;
  if (at < 0) return [["--remote", location]];
  return [["--remote", location.slice(0, at)], ["--s3-endpoint", location.slice(at + ENDPOINT_JOINER.length)]];
}
