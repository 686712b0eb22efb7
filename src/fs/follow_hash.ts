/**
 * The SHA-256 of a file hashed by a worker behind its writer (SQLite's backup), so the checksum is done when
 * the copy is; the predicted first page and the length are checked against the finished file, and a mismatch means
 * hashing again from the start: a wrong prediction costs time, never a wrong checksum.
 *
 * @module
 */
import { sha256File } from "./hash.ts";
import { readAt } from "./read_at.ts";
import { newWorker } from "../sys/descriptor_room.ts";

/**
 * When the file was hashed: `"behind"` its writer (the hash made while following was
 * used), `"after"` it (the follower was never told anything, as for a copy made in one
 * step), or `"again"` (the check refuted what was followed and the file was read anew).
 */
export type HashedWhen = "behind" | "after" | "again";

/** What following a file gave. */
export interface FollowedHash {
  /** SHA-256 of the finished file, lowercase hex. */
  sha256: string;
  /** When it was hashed. */
  hashed: HashedWhen;
}

/** A file being hashed behind its writer; dispose of it to stop the worker on every path. */
export interface FileFollower extends Disposable {
  /**
   * Report that bytes from the end of `firstPage` up to `bytes` are written and final,
   * and that the file's first bytes will be `firstPage` (the same on every call).
   */
  settled(firstPage: Uint8Array, bytes: number): void;
  /** The SHA-256 of the file once its writer is done with it. */
  finish(): Promise<FollowedHash>;
}

/**
 * Start following the file at `path`. Nothing runs until the first
 * {@linkcode FileFollower.settled}; a follower never told hashes the whole file in
 * {@linkcode FileFollower.finish}.
 */
export function followFile(path: string): FileFollower {
  let following: Following | null | undefined;
  return {
    settled(firstPage, bytes) {
      if (following === undefined) following = startWorker(path, firstPage);
      following?.worker.postMessage({ settled: bytes });
    },
    async finish() {
      following?.worker.postMessage({ finish: true });
      const followed = await following?.outcome;
      this[Symbol.dispose]();
      if (following && followed && matchesFile(path, following.firstPage, followed.bytes)) {
        return { sha256: followed.sha256, hashed: "behind" };
      }
      return { sha256: sha256File(path), hashed: following === undefined ? "after" : "again" };
    },
    [Symbol.dispose]() {
      following?.worker.terminate();
    },
  };
}

/** A worker hashing a file, the first page it was given, and what it will answer (`null`: it failed). */
interface Following {
  worker: Worker;
  firstPage: Uint8Array;
  outcome: Promise<{ sha256: string; bytes: number } | null>;
}

/** Start the worker that hashes `path`, or return `null` when none can start (the file is then hashed after the copy). */
function startWorker(path: string, firstPage: Uint8Array): Following | null {
  let worker: Worker;
  try {
    worker = newWorker(new URL("./_follow_hash_worker.ts", import.meta.url));
  } catch {
    return null; // whatever the reason, hashing after the copy still gives the right answer
  }
  const outcome = new Promise<{ sha256: string; bytes: number } | null>((resolve) => {
    worker.onmessage = (event) => resolve(event.data.error === undefined ? event.data : null);
    worker.onerror = (event) => {
      event.preventDefault();
      resolve(null);
    };
  });
  worker.postMessage({ path, firstPage });
  return { worker, firstPage, outcome };
}

/** Whether the file at `path` begins with `firstPage` and is `bytes` long. */
function matchesFile(path: string, firstPage: Uint8Array, bytes: number): boolean {
  using file = Deno.openSync(path, { read: true });
  if (file.statSync().size !== bytes) return false;
  const actual = readAt(file, 0, firstPage.length);
  return actual !== null && actual.every((byte, index) => byte === firstPage[index]);
}
