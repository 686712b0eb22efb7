/**
 * The built-in driver's reads of a database (integrity check, row counts) on a worker of their own: `node:sqlite` has
 * no call off the thread, and its open of a file swapped for a FIFO would hold the thread for ever.
 *
 * @module
 */
import { notOpenedInTime, READ_OPEN_MS } from "./read_open.ts";
import { type OffThreadMessage, type OffThreadRead, revived } from "./off_thread_messages.ts";
import { newWorker } from "../sys/descriptor_room.ts";

/** What `integrity` gives, and what `counts` gives. */
interface Reads {
  integrity: string;
  counts: Record<string, number>;
}

/**
 * Do `read` of the database at `path` on a new worker, giving up (with `notOpenedInTime`'s error) when one of SQLite's
 * opens there does not end within {@linkcode READ_OPEN_MS}; the worker left waiting ends with the process.
 */
export function readOffThread<R extends OffThreadRead>(read: R, path: string): Promise<Reads[R]> {
  const worker = newWorker(new URL("./_read_worker.ts", import.meta.url));
  return new Promise<Reads[R]>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      clearTimeout(timer);
      worker.terminate();
    };
    worker.onmessage = ({ data }: MessageEvent<OffThreadMessage>) => {
      if ("state" in data) {
        clearTimeout(timer);
        if (data.state === "opening") timer = setTimeout(() => (end(), reject(notOpenedInTime(path))), READ_OPEN_MS);
        return;
      }
      end();
      if ("error" in data) reject(revived(data.error));
      else resolve(data.value as Reads[R]);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      end();
      reject(new Error(`reading ${path} failed on its worker: ${event.message}`));
    };
    worker.postMessage({ read, path });
  });
}
