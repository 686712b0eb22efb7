/**
 * A multipart upload for objects above the single-PUT threshold: parts sent whole (each with its signed SHA-256,
 * retried on its own, its ETag checked against its MD5), the object published by the completion alone, and the upload
 * aborted when anything fails so no part is left to bill.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ObjectExistsError } from "../backend.ts";
import { errorFields, S3Error, s3Failure } from "./failure.ts";
import type { Answer, S3Session } from "./session.ts";
import { readText } from "./transport.ts";

const TEXT_LIMIT = 1 << 20;

/**
 * Publish `bytes` as `name` in parts of `partBytes` (the last may be smaller). With `exclusive`, the completion carries
 * `If-None-Match: *` (a 412 is {@linkcode ObjectExistsError}); the caller checks beforehand on servers that ignore it.
 */
export async function putMultipart(
  session: S3Session,
  name: string,
  bytes: Uint8Array,
  partBytes: number,
  exclusive: boolean,
): Promise<void> {
  const uploadId = await session.exchange(name, { method: "POST", url: session.url(name, "uploads=") }, async (a) => {
    if (a.response.status !== 200) return await session.fail(a);
    const id = /<UploadId>([^<]+)<\/UploadId>/.exec(
      await readText(a.response, TEXT_LIMIT, session.timeouts, a.deadline),
    );
    if (id === null) {
      throw new S3Error(`S3 multipart upload of ${name} in ${session.location}: no upload id`, 200, "", false);
    }
    return id[1];
  });
  const query = (extra: string) => `${extra}uploadId=${encodeURIComponent(uploadId)}`;
  try {
    const etags: string[] = [];
    for (let offset = 0, part = 1; offset < bytes.length; offset += partBytes, part++) {
      const body = bytes.subarray(offset, Math.min(bytes.length, offset + partBytes));
      etags.push(await putPart(session, name, query(`partNumber=${part}&`), body));
    }
    await complete(session, name, query(""), etags, exclusive, bytes.length);
  } catch (error) {
    await session.exchange(name, { method: "DELETE", url: session.url(name, query("")) }, async (a) => {
      await a.response.body?.cancel();
    }).catch(() => {}); // the upload is gone or expires by the bucket's lifecycle; the write's error is what matters
    throw error;
  }
}

async function putPart(session: S3Session, name: string, query: string, body: Uint8Array): Promise<string> {
  return await session.exchange(name, { method: "PUT", url: session.url(name, query), body }, async (answer) => {
    if (answer.response.status !== 200) return await session.fail(answer);
    await answer.response.body?.cancel();
    const etag = answer.response.headers.get("etag");
    const md5 = createHash("md5").update(body).digest("hex");
    if (etag === null || etag.replace(/"/g, "") !== md5) {
      throw new S3Error(
        `S3 part of ${name} in ${session.location}: the server's ETag is not the part's MD5`,
        200,
        "",
        true,
      );
    }
    return etag;
  });
}

async function complete(
  session: S3Session,
  name: string,
  query: string,
  etags: string[],
  exclusive: boolean,
  size: number,
): Promise<void> {
  const xml = `<CompleteMultipartUpload>${
    etags.map((etag, index) => `<Part><PartNumber>${index + 1}</PartNumber><ETag>${etag}</ETag></Part>`).join("")
  }</CompleteMultipartUpload>`;
  const request = {
    method: "POST" as const,
    url: session.url(name, query),
    headers: { "content-type": "application/xml", ...(exclusive ? { "if-none-match": "*" } : {}) },
    body: new TextEncoder().encode(xml),
  };
  await session.exchange(name, request, async (answer: Answer) => {
    const { response } = answer;
    if (response.status === 412) throw new ObjectExistsError(session.location, name);
    if (response.status === 404 && answer.attempt > 1 && (await publishedSize(session, name)) === size) return;
    if (response.status !== 200) return await session.fail(answer);
    // an error can come with 200 once the server has begun its answer
    const text = await readText(response, TEXT_LIMIT, session.timeouts, answer.deadline);
    if (/<Error>/.test(text)) throw s3Failure(answer.context, 500, text, { serverDate: null, retryAfter: null });
    if (!/<CompleteMultipartUploadResult[\s>]/.test(text)) {
      throw new S3Error(
        `S3 completion of ${name} in ${session.location}: ${errorFields(text).code || "no result"}`,
        200,
        "",
        true,
      );
    }
  });
}

/** The size of the object `name` as published, or `null` (a completion whose answer was lost did publish it). */
async function publishedSize(session: S3Session, name: string): Promise<number | null> {
  return await session.exchange(name, { method: "HEAD", url: session.url(name) }, (answer) => {
    return Promise.resolve(
      answer.response.status === 200 ? Number(answer.response.headers.get("content-length")) : null,
    );
  });
}
