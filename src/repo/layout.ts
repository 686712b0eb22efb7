/**
 * Every object name of a repository (drawn in the README, "Off-host repository format"), and the parsing of names read
 * back from listings: a name that is not exactly one of these forms is never read, trusted or deleted.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { isStamp } from "../snapshot/stamp.ts";

/** The name of the repository's configuration object. */
export const CONFIG_NAME = "config";

/** The folder at the top of a folder or SFTP repository where writes are staged before they are published. */
export const STAGING_FOLDER = ".tmp";

/** A new name in {@linkcode STAGING_FOLDER} to write the object named by `segments`: `<name with / as _>.<uuid>`. */
export function stagedName(segments: string[]): string {
  return `${segments.join("_")}.${crypto.randomUUID()}`;
}

/** A filesystem's own folder at the top of a volume, which a repository on a whole disk may hold. */
const LOST_AND_FOUND = "lost+found";

/** Whether a top-level entry of a folder or SFTP repository belongs there though it is no object (verify names none). */
export function isExpectedTopEntry(name: string): boolean {
  return name === STAGING_FOLDER || name === LOST_AND_FOUND;
}

/**
 * Segments of the deepest object name (`packs/<xx>/<id>`): a listing does not descend into a folder named this deep,
 * which holds no object (a writer's folders nested past the system's path limit must not fail every listing), and
 * lists it as `<name>/`, not an object of the format.
 */
export const OBJECT_DEPTH = 3;

/** Whether a folder found at `name` in a listing lies where the format has objects only (see {@linkcode OBJECT_DEPTH}). */
export function isTooDeepFolder(name: string): boolean {
  return name.split("/").length >= OBJECT_DEPTH;
}

/**
 * Whether `name` is the place of an object that is a file and only that (`snapshots/`, `refs/`, `leases/` or
 * `condemned/` and a name): a folder there would hide it from every listing, unsaid (a snapshot, a lease, a marker),
 * where a missing pack is named by the documents that use it.
 */
export function isObjectPlace(name: string): boolean {
  const parts = name.split("/");
  return parts.length === 2 && parts[0] !== "packs" && Object.values(PREFIXES).includes(`${parts[0]}/` as never);
}

/** The prefixes listed to find each kind of object. */
export const PREFIXES = {
  packs: "packs/",
  refs: "refs/",
  snapshots: "snapshots/",
  leases: "leases/",
  condemned: "condemned/",
} as const;

const PACK_ID = /^[0-9a-f]{64}$/;
const RANDOM_ID = /^[0-9a-f]{16}$/;

/** A snapshot's identity in a repository: the local stamp and the random id of the push that sent it. */
export interface SnapshotKey {
  stamp: string;
  pushId: string;
}

/** A new random id (16 lowercase hex) for a push or a cleanup run. */
export function newRandomId(): string {
  return randomBytes(8).toString("hex");
}

/** Whether `text` is a pack id: 64 lowercase hex (a SHA-256). */
export function isPackId(text: unknown): text is string {
  return typeof text === "string" && PACK_ID.test(text);
}

/** Whether `text` is a push or run id: 16 lowercase hex. */
export function isRandomId(text: unknown): text is string {
  return typeof text === "string" && RANDOM_ID.test(text);
}

/** `<stamp>_<push id>`: the last segment of a snapshot's and its refs' names. */
export function snapshotKeyText(key: SnapshotKey): string {
  return `${checked(isStamp(key.stamp), key.stamp)}_${checked(isRandomId(key.pushId), key.pushId)}`;
}

/** Parse `<stamp>_<push id>`, or `null` when it is not exactly that. */
export function parseSnapshotKey(text: string): SnapshotKey | null {
  const [stamp, pushId, ...rest] = text.split("_");
  if (rest.length > 0 || !isStamp(stamp ?? "") || !isRandomId(pushId)) return null;
  return { stamp, pushId };
}

/** `packs/<xx>/<id>`. */
export function packName(id: string): string {
  return `${PREFIXES.packs}${checked(isPackId(id), id).slice(0, 2)}/${id}`;
}

/** `snapshots/<stamp>_<push id>`. */
export function snapshotName(key: SnapshotKey): string {
  return PREFIXES.snapshots + snapshotKeyText(key);
}

/** `refs/<stamp>_<push id>`. */
export function refsName(key: SnapshotKey): string {
  return PREFIXES.refs + snapshotKeyText(key);
}

/** `leases/<push id>`. */
export function leaseName(pushId: string): string {
  return PREFIXES.leases + checked(isRandomId(pushId), pushId);
}

/** `condemned/<run id>`. */
export function condemnedName(runId: string): string {
  return PREFIXES.condemned + checked(isRandomId(runId), runId);
}

/** What a well-formed object name designates. */
export type ParsedName =
  | { kind: "config" }
  | { kind: "pack"; id: string }
  | { kind: "refs"; key: SnapshotKey }
  | { kind: "snapshot"; key: SnapshotKey }
  | { kind: "lease"; pushId: string }
  | { kind: "condemned"; runId: string };

/** Parse an object name read from a listing; `null` for anything that is not exactly one of the repository's forms. */
export function parseName(name: string): ParsedName | null {
  if (name === CONFIG_NAME) return { kind: "config" };
  const parts = name.split("/");
  if (parts.length === 3 && parts[0] === "packs" && isPackId(parts[2]) && parts[1] === parts[2].slice(0, 2)) {
    return { kind: "pack", id: parts[2] };
  }
  if (parts.length !== 2) return null;
  const [folder, last] = parts;
  if (folder === "refs" || folder === "snapshots") {
    const key = parseSnapshotKey(last);
    if (!key) return null;
    return folder === "refs" ? { kind: "refs", key } : { kind: "snapshot", key };
  }
  if (folder === "leases" && isRandomId(last)) return { kind: "lease", pushId: last };
  if (folder === "condemned" && isRandomId(last)) return { kind: "condemned", runId: last };
  return null;
}

function checked(ok: boolean, value: string): string {
  if (!ok) throw new RangeError(`not a valid part of a repository object name: ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}
