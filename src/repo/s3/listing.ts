/**
 * The parts of a ListObjectsV2 answer a listing needs: each key (asked URL-encoded, so any key survives the XML) with
 * its size, and the token that continues a truncated listing.
 *
 * @module
 */
import { unescapeXml } from "./failure.ts";

/** One page of a listing. */
export interface ListPage {
  objects: { key: string; size: number }[];
  /** The token for the next page, or `null` when this was the last. */
  next: string | null;
}

/** The query of a ListObjectsV2 request for keys under `prefix`, from `token` when continuing. */
export function listQuery(prefix: string, token: string | null, maxKeys = 1000): string {
  const parameters: [string, string][] = [
    ["list-type", "2"],
    ["encoding-type", "url"],
    ["max-keys", String(maxKeys)],
    ["prefix", prefix],
  ];
  if (token !== null) parameters.push(["continuation-token", token]);
  return parameters.map(([key, value]) => `${key}=${encodeRfc3986(value)}`).join("&");
}

function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Parse one page of a ListObjectsV2 answer.
 *
 * @throws {Error} when the text is not such an answer (the caller names the request).
 */
export function parseListPage(xml: string): ListPage {
  if (!/<ListBucketResult[\s>]/.test(xml)) throw new Error("the answer is not a ListObjectsV2 result");
  const urlEncoded = /<EncodingType>url<\/EncodingType>/i.test(xml);
  const objects: ListPage["objects"] = [];
  for (const [, contents] of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const rawKey = /<Key>([^<]*)<\/Key>/.exec(contents)?.[1];
    const size = Number(/<Size>(\d+)<\/Size>/.exec(contents)?.[1]);
    if (rawKey === undefined || !Number.isSafeInteger(size)) throw new Error("a listed object has no key or size");
    const text = unescapeXml(rawKey);
    objects.push({ key: urlEncoded ? decodeURIComponent(text.replace(/\+/g, " ")) : text, size });
  }
  const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
  const token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
  if (truncated && !token) throw new Error("a truncated listing has no continuation token");
  return { objects, next: truncated ? unescapeXml(token!) : null };
}
