/**
 * Hashing files on a worker thread while this thread does other work: a validation checks the databases' integrity
 * (SQLite, on this thread) while the snapshot's files are hashed, instead of one after the other.
 *
 * @module
 */
import { newWorker } from "../sys/descriptor_room.ts";

/** Files being hashed on a worker. */
export interface HashesAhead extends Disposable {
  /**
   * Each file's SHA-256 by path once all are hashed. A file the worker could not hash (not a regular file, unreadable,
   * or no worker here) is left out: the caller hashes it itself and says what is wrong.
   */
  digests(): Promise<ReadonlyMap<string, string>>;
}

/** A file to hash ahead: its absolute path and the size it should have (the manifest's). */
export interface FileToHash {
  path: string;
  size: number;
}

/**
 * Start hashing `files` on a worker; `onBytes` is called with each chunk's size as the worker reports it (when this
 * thread's event loop runs). A file of another size than the one given is left out unread (a sparse file of terabytes
 * in a snapshot would otherwise be read to its end when its size alone already fails the check).
 */
export function hashAhead(files: readonly FileToHash[], onBytes?: (bytes: number) => void): HashesAhead {
  let worker: Worker | null = null;
  let outcome: Promise<ReadonlyMap<string, string>>;
  try {
    worker = newWorker(new URL("./_hash_ahead_worker.ts", import.meta.url));
    const started = worker;
    outcome = new Promise((resolve) => {
      started.onmessage = (event) => {
        if (event.data.bytes !== undefined) onBytes?.(event.data.bytes);
        else resolve(new Map(event.data.digests));
      };
      started.onerror = (event) => {
        event.preventDefault();
        resolve(new Map());
      };
    });
    started.postMessage({ files });
  } catch {
    outcome = Promise.resolve(new Map()); // no worker here: the caller hashes every file itself
  }
  return {
    digests: () => outcome,
    [Symbol.dispose]: () => worker?.terminate(),
  };
}
