/**
 * Finding a repository's snapshots and reading one back: its refs (public) and its document (sealed), checked against
 * each other, against the repository's id and against the name it was found under.
 *
 * @module
 */
import type { AgeIdentity } from "../crypto/age.ts";
import { OperationError, UsageError } from "../errors.ts";
import { AlteredObjectError, type Backend, ObjectNotFoundError, ObjectTooLargeError } from "./backend.ts";
import { decompressOpened, getPublic, NotJsonError, openSealed, sha256Hex } from "./boundary.ts";
import { parseDocument, type SnapshotDocument } from "./document.ts";
import {
  parseName,
  parseSnapshotKey,
  PREFIXES,
  refsName,
  type SnapshotKey,
  snapshotKeyText,
  snapshotName,
} from "./layout.ts";
import { MalformedRefsError, parseRefs, type Refs } from "./public_objects.ts";
import type { Repository } from "./repository.ts";
import { checkAuthenticity, snapshotClaim } from "./authenticity.ts";

/**
 * The most bytes a refs may have: about 100,000 packs (a store of 800 GB in 8 MiB packs). Its JSON takes several times
 * its size while it is parsed; a larger one is refused as altered, so that a writer cannot take a reader's memory.
 */
export const REFS_MAX_BYTES = 8 << 20;

/**
 * The largest snapshot object read (sealed): a document of several hundred MB compresses 2 to 4 times; a larger object
 * is refused before a reader holds it (a server or a writer that sends more cannot take its memory).
 */
export const MAX_SNAPSHOT_OBJECT_BYTES = 128 << 20;

/** Largest snapshot document accepted (decompressed). */
const MAX_DOCUMENT_BYTES = 512 << 20;

/**
 * Largest document of a snapshot accepted without a MAC (`--allow-unauthenticated`): whoever can write the repository
 * can drop such a document in, so it must not take a reader past its memory bound: one of 16 MB recording 185,000
 * ranges of one pack took a verify to 166 MiB, one of 32 MB to 230 (a store of a GiB or more split at every changed
 * page makes documents larger: push it with the auth key).
 */
const MAX_UNAUTHENTICATED_DOCUMENT_BYTES = 16 << 20;

/**
 * A document's plaintext at most, for `sealed` bytes of it: 1 MiB, and 32 times its size beyond that. A document is
 * JSON around SHA-256 hex, which zstd shrinks 2 to 4 times (the small-row store's 21st day: 22 MB in 10.2); a zstd
 * bomb dropped in the repository (500 MB in 17 KB) is refused before it takes memory.
 */
function documentBound(sealed: number): number {
  return Math.min(MAX_DOCUMENT_BYTES, (1 << 20) + sealed * 32);
}

/** What a listing of `snapshots/` and `refs/` shows. */
export interface SnapshotListing {
  /** Listed snapshots (their object exists), sorted by stamp then push id, with the object's size. */
  snapshots: { key: SnapshotKey; size: number }[];
  /** Every refs object's key. */
  refs: SnapshotKey[];
  /** Names under these prefixes that are not the format's: never read, never deleted. */
  unknown: string[];
}

/** List the snapshots and refs of a repository. */
export async function listSnapshots(backend: Backend): Promise<SnapshotListing> {
  const listing: SnapshotListing = { snapshots: [], refs: [], unknown: [] };
  // refs before snapshots: a push writes its refs, then its snapshot, so a snapshot written meanwhile is still seen
  for (const prefix of [PREFIXES.refs, PREFIXES.snapshots]) {
    for (const { name, size } of await backend.list(prefix)) {
      const parsed = parseName(name);
      if (parsed?.kind === "snapshot") listing.snapshots.push({ key: parsed.key, size });
      else if (parsed?.kind === "refs") listing.refs.push(parsed.key);
      else listing.unknown.push(name);
    }
  }
  listing.snapshots.sort((a, b) => compareKeys(a.key, b.key));
  return listing;
}

/** Order snapshot keys by stamp, then push id. */
export function compareKeys(a: SnapshotKey, b: SnapshotKey): number {
  const left = snapshotKeyText(a);
  const right = snapshotKeyText(b);
  return left < right ? -1 : left > right ? 1 : 0;
}

/**
 * Parse a snapshot argument: `<stamp>_<push id>` or `snapshots/<stamp>_<push id>`.
 *
 * @throws {UsageError} naming the value.
 */
export function snapshotArgument(text: string): SnapshotKey {
  const key = parseSnapshotKey(text.startsWith(PREFIXES.snapshots) ? text.slice(PREFIXES.snapshots.length) : text);
  if (!key) {
    throw new UsageError(
      `not a remote snapshot name: ${
        JSON.stringify(text.slice(0, 60))
      }; give one like 20260409T010203Z_0123456789abcdef ('remote list')`,
    );
  }
  return key;
}

/**
 * Whether `error`, from {@linkcode readRefs}, says the refs are there but altered past reading (malformed, not JSON,
 * too large, or a link, folder or special file), not that they could not be reached.
 */
export function isAlteredRefs(error: unknown): boolean {
  const altered = [MalformedRefsError, NotJsonError, ObjectTooLargeError, AlteredObjectError];
  return altered.some((kind) => error instanceof kind);
}

/** The refs of snapshot `key`, or `null` when there are none. */
export async function readRefs(backend: Backend, key: SnapshotKey): Promise<Refs | null> {
  const name = refsName(key);
  try {
    return parseRefs(await getPublic(backend, name, REFS_MAX_BYTES), name, key);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return null;
    throw error;
  }
}

/** A snapshot read back: its document, its refs (when present), and the sealed object's SHA-256 and size. */
export interface ReadSnapshot {
  document: SnapshotDocument;
  refs: Refs | null;
  sha256: string;
  size: number;
  /** Whether its refs hold a valid MAC for one of the identities' recipients (else it was allowed unauthenticated). */
  authenticated: boolean;
}

/** Options of {@linkcode readSnapshot}. */
export interface ReadOptions {
  /** Accept a snapshot whose refs hold no MAC for the identities' recipients (a wrong MAC is refused all the same). */
  allowUnauthenticated?: boolean;
}

/**
 * Read, check and decrypt snapshot `key`: the object's SHA-256 must be the one its refs record, its refs must hold a MAC
 * of it by the key of one of the identities (see `authenticity.ts`), the document must be of this repository and of
 * this name, and its packs those its refs list.
 *
 * @throws {OperationError} naming the object at the first mismatch; `RefusedError` naming the refs when the
 *   snapshot is not authenticated; {@linkcode ObjectNotFoundError} when it is absent.
 */
export async function readSnapshot(
  repository: Repository,
  identities: readonly AgeIdentity[],
  key: SnapshotKey,
  options: ReadOptions = {},
): Promise<ReadSnapshot> {
  const name = snapshotName(key);
  const refs = await readRefs(repository.backend, key);
  const allow = options.allowUnauthenticated ?? false;
  const judge = (sha256: string) =>
    checkAuthenticity(refs, identities, snapshotClaim(repository.config.id, key, sha256), key, allow);
  // The MACs cover the SHA-256 the refs record: judged before the object is read, a forged one costs no reading; unless
  // no identity is for a recipient of the repository, which decryption then reports as such.
  const ours = identities.some((identity) => repository.config.recipients.includes(identity.recipient));
  let authenticated = ours ? judge(refs?.snapshot_sha256 ?? "") : undefined; // no refs: none, unless allowed
  // an unauthenticated document is bounded sealed too: padding that decompresses to nothing must not cost memory
  const readBound = authenticated === false ? MAX_UNAUTHENTICATED_DOCUMENT_BYTES : MAX_SNAPSHOT_OBJECT_BYTES;
  const sealed = await repository.backend.read(name, undefined, readBound);
  const sha256 = sha256Hex(sealed);
  if (refs && refs.snapshot_sha256 !== sha256) {
    throw new OperationError(`${name}: its SHA-256 is not the one ${refsName(key)} records (replaced or altered)`);
  }
  const body = openSealed(name, sealed, identities, { compression: "none", into: sealed }); // hashed: used up
  authenticated ??= judge(sha256); // before decompression and the document's own checks
  const bound = documentBound(sealed.length);
  const plain = decompressOpened(
    name,
    body,
    authenticated ? bound : Math.min(bound, MAX_UNAUTHENTICATED_DOCUMENT_BYTES),
  );
  const document = parseDocument(plain, name, repository.config.id, key);
  if (refs) {
    const listed = new Map(refs.packs.map((pack) => [pack.id, pack.size]));
    const missing = document.packs.find((pack) => listed.get(pack.id) !== pack.size);
    if (missing) {
      const size = listed.get(missing.id);
      throw new OperationError(
        size === undefined
          ? `${name}: uses pack ${missing.id} that ${refsName(key)} does not list`
          : `${name}: records ${missing.size} bytes for pack ${missing.id}, ${refsName(key)} ${size} (altered)`,
      );
    }
  }
  return { document, refs, sha256, size: sealed.length, authenticated };
}
