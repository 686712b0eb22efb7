/**
 * The S3 backend: a repository under a key prefix of a bucket on AWS S3 or any S3-compatible server (Ceph, MinIO,
 * Backblaze B2, Wasabi, R2).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { OperationError } from "../../errors.ts";
import {
  type Backend,
  checkObjectName,
  checkPrefix,
  MAX_OBJECT_BYTES,
  ObjectExistsError,
  type ObjectInfo,
  ObjectNotFoundError,
  ObjectTooLargeError,
  type WriteOptions,
} from "../backend.ts";
import type { S3Address } from "./address.ts";
import type { S3Credentials } from "./credentials.ts";
import { putMultipart } from "./multipart.ts";
import { type Answer, S3Session, type SessionOptions } from "./session.ts";
import { errorFields, notFromS3, S3Error, s3Failure } from "./failure.ts";
import { readBody, readText } from "./transport.ts";

/**
 * Objects larger than this are uploaded in parts. Measured on loopback radosgw (best of 3): a single PUT beat parts sent
 * one after another at 8 to 128 MiB (128 MiB: 113 MiB/s whole, 85 in 32 MiB parts); at 256 MiB parts won (99 to 86).
 * Everything this tool writes today (packs of about 8 MiB, documents) goes whole.
 */
export const MULTIPART_THRESHOLD = 128 << 20;
/** The size of each part of a multipart upload (S3 needs at least 5 MiB but for the last); 32 beat 16 at every size. */
export const PART_BYTES = 32 << 20;

/** Options of {@linkcode S3Backend}: the session's timeouts and retries, and the multipart sizes. */
export interface S3BackendOptions extends SessionOptions {
  multipartThreshold?: number;
  partBytes?: number;
}

/** A repository in an S3 bucket. */
/** The most bytes of a bucket's versioning answer read (a few dozen in practice). */
const VERSIONING_TEXT_LIMIT = 64 * 1024;

/**
 * The most objects one listing may name (a repository of 4 TB in 8 MiB packs) and the most pages it
 * may take (S3 gives up to 1,000 keys a page): a server that says "more to come" for ever is refused, not followed.
 */
const MAX_LISTED = 500_000;
const MAX_LIST_PAGES = 5_000;

/**
 * A repository under a key prefix of a bucket. Objects are written whole with a signed payload, exclusively with
 * `If-None-Match: *`, in parts above a threshold; reads are bounded by the announced length before the body is read,
 * or as the bytes come when none is announced.
 */
export class S3Backend implements Backend {
  readonly location: string;
  readonly #session: S3Session;
  readonly #threshold: number;
  readonly #partBytes: number;
  /** Set once a listing has shown the bucket exists (a HEAD's 404 cannot tell a missing object from a missing bucket). */
  #bucketSeen = false;

  /** A backend for the repository at `address`, signing with `credentials`. */
  constructor(address: S3Address, credentials: S3Credentials, options: S3BackendOptions = {}) {
    this.#session = new S3Session(address, credentials, options);
    this.location = this.#session.location;
    this.#threshold = options.multipartThreshold ?? MULTIPART_THRESHOLD;
    this.#partBytes = options.partBytes ?? PART_BYTES;
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    checkPrefix(prefix);
    const base = this.#session.key("");
    const found = new Map<string, ObjectInfo>(); // a key a server lists twice is one object
    const tokens = new Set<string>();
    let token: string | null = null;
    do {
      const page = await this.#session.listPage(base + prefix, token);
      for (const { key, size } of page.objects) {
        if (key.startsWith(base) && !key.endsWith("/")) found.set(key, { name: key.slice(base.length), size });
      }
      token = page.next;
      if (token !== null && (tokens.has(token) || found.size > MAX_LISTED || tokens.size >= MAX_LIST_PAGES)) {
        throw new OperationError(
          `the listing of ${prefix || "the objects"} in ${this.location} does not end (${tokens.size + 1} pages, ` +
            `${found.size} objects, ${tokens.has(token) ? "a page token given twice" : "past this tool's bound"}): ` +
            "the server is not answering as S3 does; check the endpoint (--s3-endpoint)",
        );
      }
      if (token !== null) tokens.add(token);
    } while (token !== null);
    if (found.size > MAX_LISTED) {
      throw new OperationError(
        `the listing of ${prefix || "the objects"} in ${this.location} names ${found.size} objects, past this tool's ` +
          `bound (${MAX_LISTED}): the server is not answering as S3 does; check the endpoint (--s3-endpoint)`,
      );
    }
    this.#bucketSeen = true;
    return [...found.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  async read(name: string, into?: Uint8Array, maxBytes = MAX_OBJECT_BYTES): Promise<Uint8Array> {
    checkObjectName(name);
    const session = this.#session;
    return await session.exchange(name, { method: "GET", url: session.url(name) }, async (answer) => {
      const { response } = answer;
      if (response.status === 404) {
        await this.#checkObjectMissing(answer);
        throw new ObjectNotFoundError(this.location, name);
      }
      if (response.status !== 200) return await session.fail(answer);
      const foreign = notFromS3(response.headers);
      if (foreign !== null) {
        throw new S3Error(
          `S3 GET ${name} in ${this.location} was answered ${foreign}, not with the object; is the endpoint an S3 ` +
            "server? check --s3-endpoint or ATOCORE_S3_ENDPOINT (a captive portal or a web server answers so)",
          200,
          "",
          false,
        );
      }
      const length = Number(response.headers.get("content-length") ?? NaN);
      if (Number.isSafeInteger(length) && length > maxBytes) {
        throw new ObjectTooLargeError(this.location, name, length, maxBytes);
      }
      const known = Number.isSafeInteger(length) ? length : null;
      const tooLong = () => new ObjectTooLargeError(this.location, name, null, maxBytes);
      return await readBody(response, known, maxBytes, session.timeouts, answer.deadline, { into, tooLong });
    });
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    checkObjectName(name);
    const session = this.#session;
    return await session.exchange(name, { method: "HEAD", url: session.url(name) }, async (answer) => {
      if (answer.response.status === 200) return { name, size: Number(answer.response.headers.get("content-length")) };
      if (answer.response.status === 404) return await this.#checkObjectMissing(answer).then(() => null);
      return await this.#failHead(answer);
    });
  }

  async remove(name: string): Promise<void> {
    checkObjectName(name);
    const session = this.#session;
    await session.exchange(name, { method: "DELETE", url: session.url(name) }, async (answer) => {
      const status = answer.response.status;
      if (status === 204 || status === 200) return;
      if (status === 404) return await this.#checkObjectMissing(answer);
      return await session.fail(answer);
    });
  }

  async keepsDeletedVersions(): Promise<boolean | null> {
    const session = this.#session;
    return await session.exchange("", { method: "GET", url: session.url(null, "versioning") }, async (answer) => {
      const status = answer.response.status;
      if (status === 403 || status === 405 || status === 501) { // not allowed to ask, or not a thing here
        await answer.response.body?.cancel();
        return null;
      }
      if (status !== 200) return await session.fail(answer);
      const xml = await readText(answer.response, VERSIONING_TEXT_LIMIT, session.timeouts, answer.deadline);
      return /<Status>\s*(Enabled|Suspended)\s*<\/Status>/.test(xml);
    });
  }

  async write(name: string, bytes: Uint8Array, options: WriteOptions): Promise<void> {
    checkObjectName(name);
    if (bytes.length > this.#threshold) {
      // where a server ignores If-None-Match on the completion, this check is what keeps an object from being replaced
      if (options.exclusive && (await this.stat(name)) !== null) throw new ObjectExistsError(this.location, name);
      try {
        return await putMultipart(this.#session, name, bytes, this.#partBytes, options.exclusive);
      } catch (error) {
        throw error instanceof ObjectExistsError ? await this.#refusedAsPresent(name, "POST") : error;
      }
    }
    const session = this.#session;
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (options.exclusive) headers["if-none-match"] = "*";
    const request = { method: "PUT" as const, url: session.url(name), headers, body: bytes, sha256: options.sha256 };
    const outcome = await session.exchange(name, request, async (answer) => {
      if (answer.response.status === 200) return "written";
      if (answer.response.status === 412 && options.exclusive) return answer.attempt > 1 ? "retried" : "exists";
      return await session.fail(answer);
    });
    if (outcome === "exists" || (outcome === "retried" && !(await this.#holds(name, bytes)))) {
      throw await this.#refusedAsPresent(name, "PUT");
    }
  }

  /**
   * The error of an exclusive write the server refused (412) as though `name` existed: {@linkcode ObjectExistsError}
   * when it does, which the caller judges (its own bytes, sent before, count as written); else one line saying the
   * server holds no such object, since nothing is there to judge and "already exists" would be untrue.
   */
  async #refusedAsPresent(name: string, method: "PUT" | "POST"): Promise<Error> {
    if ((await this.stat(name)) !== null) return new ObjectExistsError(this.location, name);
    return new S3Error(
      `S3 ${method} ${name} in ${this.location} failed: HTTP 412 (the server refused to create it as existing, yet ` +
        "holds no such object); check that nothing else writes to this repository, then run 'remote verify'",
      412,
      "PreconditionFailed",
      false,
    );
  }

  /** Whether the object `name` holds `bytes` (its ETag is their MD5): an attempt whose answer was lost wrote it. */
  async #holds(name: string, bytes: Uint8Array): Promise<boolean> {
    const session = this.#session;
    const etag = await session.exchange(name, { method: "HEAD", url: session.url(name) }, (answer) => {
      return Promise.resolve(answer.response.status === 200 ? answer.response.headers.get("etag") : null);
    });
    return etag?.replace(/"/g, "") === createHash("md5").update(bytes).digest("hex");
  }

  /**
   * For a 404, make sure it is the object that is missing, not the bucket: the server's code says so, or (for HEAD,
   * which has none) a listing of the repository, once.
   *
   * @throws {S3Error} explaining NoSuchBucket (or whatever the listing meets).
   */
  async #checkObjectMissing(answer: Answer): Promise<void> {
    const session = this.#session;
    if (answer.context.method !== "HEAD") {
      const text = await readText(answer.response, 1 << 20, session.timeouts, answer.deadline);
      const { code } = errorFields(text);
      if (code === "NoSuchKey") return;
      if (code === "NoSuchBucket") {
        throw s3Failure(answer.context, 404, text, {
          serverDate: answer.response.headers.get("date"),
          retryAfter: null,
        });
      }
    }
    if (!this.#bucketSeen) await session.listPage(session.key(""), null, 1);
    this.#bucketSeen = true;
  }

  /** A HEAD answer carries no error code: a listing of the repository (which does) says what is wrong, if it fails. */
  async #failHead(answer: Answer): Promise<never> {
    await this.#session.listPage(this.#session.key(""), null, 1);
    return await this.#session.fail(answer);
  }
}
