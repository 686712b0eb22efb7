/**
 * Room for the descriptors the runtime opens for itself: Deno 2.9.6 panics, ending the whole process without a word
 * of this tool's, when a worker's event loop or its first signal listener meets the open-file limit. Looked at first,
 * a worker is refused (its caller goes on inline) and a command stops with one line.
 *
 * @module
 */
import { isOpenFileLimit } from "../errors.ts";

/**
 * Descriptors kept free for a worker's start or the first signal listener: each takes a few (`create --chroma`
 * panicked starting its worker under `ulimit -n 33` and not under 34); the rest leave the caller room to go on.
 */
const RUNTIME_DESCRIPTORS = 16;

/** The runtime cannot open what `what` needs: the process is at its open-file limit. */
export class DescriptorLimitError extends Error {
  /** `code` as an operating system's error, so that messages name the limit and its next step. */
  readonly code = "EMFILE";

  /** For `what` ("start a worker", "listen for signals"). */
  constructor(what: string) {
    super(`Too many open files (no room to ${what})`);
  }
}

/**
 * Start the module worker at `url` when there is room for its descriptors.
 *
 * @throws {DescriptorLimitError} at the open-file limit, before any thread starts.
 */
export function newWorker(url: URL): Worker {
  requireRoom(`start the worker ${url.pathname.split("/").at(-1)}`);
  return new Worker(url, { type: "module" });
}

/**
 * Throw unless {@linkcode RUNTIME_DESCRIPTORS} descriptors can be opened now, for `what`.
 *
 * @throws {DescriptorLimitError} at the open-file limit.
 */
export function requireRoom(what: string): void {
  const opened: Deno.FsFile[] = [];
  try {
    for (let i = 0; i < RUNTIME_DESCRIPTORS; i++) opened.push(Deno.openSync("/dev/null"));
  } catch (error) {
    if (isOpenFileLimit(error)) throw new DescriptorLimitError(what);
    // another failure (no /dev/null here) says nothing of the limit: go on
  } finally {
    for (const file of opened) file.close();
  }
}
