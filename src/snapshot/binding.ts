/**
 * The binding of a snapshot's metadata: `metadata_sha256`, the SHA-256 of every other key (the manifest, and so
 * every file's hash, included) in a canonical form, so that any change to the metadata is detected.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** The key that holds the digest. */
export const DIGEST_KEY = "metadata_sha256";

/** Nesting deeper than this is no metadata this tool wrote (it writes three levels). */
const MAX_DEPTH = 8;

/** `metadata` with its digest added as its last key. */
export function bindMetadata<T extends object>(metadata: T): T & { metadata_sha256: string } {
  return { ...metadata, [DIGEST_KEY]: metadataDigest(metadata)! };
}

/**
 * The SHA-256 (lowercase hex) of every key of `metadata` but {@linkcode DIGEST_KEY}, as canonical JSON: keys sorted,
 * no spaces, so that the digest does not depend on how the file is laid out or escaped.
 *
 * @returns `null` for a value nested deeper than any this tool writes.
 */
export function metadataDigest(metadata: object): string | null {
  const rest = Object.entries(metadata).filter(([key]) => key !== DIGEST_KEY);
  const text = canonical(Object.fromEntries(rest), 0);
  return text === null ? null : createHash("sha256").update(text).digest("hex");
}

/** What checking the binding found: whether the metadata is bound (`null`: a module snapshot), and any problem. */
export interface BindingCheck {
  bound: boolean | null;
  errors: string[];
}

/**
 * Check the digest of metadata read from disk. The module's snapshots have none (`bound: null`); this tool's of
 * format 1 were made before the binding and are valid unbound (`bound: false`); from format 2 the digest is required.
 *
 * @param written Whether this tool wrote the metadata (it has this tool's keys).
 * @param formatVersion Its `format_version`.
 */
export function checkBinding(
  metadata: Record<string, unknown>,
  written: boolean,
  formatVersion: unknown,
): BindingCheck {
  const recorded = metadata[DIGEST_KEY];
  if (recorded === undefined) {
    // Format 2 and later lack it only when damaged: `metadata_key_missing` names that.
    return { bound: written ? false : null, errors: [] };
  }
  if (recorded === metadataDigest(metadata)) return { bound: true, errors: [] };
  return {
    bound: false,
    errors: [
      `metadata_digest_mismatch: ${DIGEST_KEY} does not match the metadata (format ${formatVersion}); ` +
      "it was changed after the snapshot was made",
    ],
  };
}

function canonical(value: unknown, depth: number): string | null {
  if (depth > MAX_DEPTH) return null;
  if (Array.isArray(value)) {
    const items = value.map((item) => canonical(item, depth + 1));
    return items.includes(null) ? null : `[${items.join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    const items = keys.map((key) => {
      const item = canonical((value as Record<string, unknown>)[key], depth + 1);
      return item === null ? null : `${JSON.stringify(key)}:${item}`;
    });
    return items.includes(null) ? null : `{${items.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
