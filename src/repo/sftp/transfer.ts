/**
 * An object's bytes moved through an open SFTP handle in chunks of the server's largest request, many requests in
 * flight: one request at a time waits a round trip per chunk (well under 1 MiB/s), pipelined ones fill the link.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { STATUS } from "./errors.ts";
import type { SftpSession } from "./connection.ts";

/** Requests in flight per transfer: enough to fill a link with a long round trip, small in memory (views, no copies). */
export const REQUESTS_IN_FLIGHT = 16;

/** Run `task` for each chunk start in `[0, size)`, at most {@linkcode REQUESTS_IN_FLIGHT} at a time, in order. */
async function eachChunk(size: number, chunk: number, task: (offset: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < size) {
      const offset = next;
      next += chunk;
      await task(offset);
    }
  };
  const workers = Array.from({ length: Math.min(REQUESTS_IN_FLIGHT, Math.ceil(size / chunk)) }, worker);
  const outcomes = await Promise.allSettled(workers);
  const failed = outcomes.find((outcome) => outcome.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** Write all of `bytes` at offset 0 of `handle`. */
export async function writeAll(session: SftpSession, handle: Buffer, bytes: Uint8Array, what: string): Promise<void> {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunk = session.chunkBytes;
  await eachChunk(bytes.length, chunk, (offset) => {
    const length = Math.min(chunk, bytes.length - offset);
    return session.request<void>(
      `writing ${what}`,
      (done) => session.sftp.write(handle, data, offset, length, offset, done),
    );
  });
}

/**
 * Read `size` bytes from offset 0 of `handle` into `buffer` (at least `size` long); the count read, less than `size`
 * only when the file ended early (it shrank since it was measured).
 */
export async function readAll(
  session: SftpSession,
  handle: Buffer,
  buffer: Uint8Array,
  size: number,
  what: string,
): Promise<number> {
  const target = Buffer.from(buffer.buffer, buffer.byteOffset, size);
  const chunk = session.chunkBytes;
  let end = size;
  await eachChunk(size, chunk, async (offset) => {
    const stop = Math.min(offset + chunk, size);
    let at = offset;
    while (at < stop) {
      const got = await readAt(session, handle, target, at, stop - at, what);
      if (got === 0) {
        end = Math.min(end, at);
        return;
      }
      at += got; // a short read is not the end: ask again for the rest
    }
  });
  return end;
}

function readAt(session: SftpSession, handle: Buffer, target: Buffer, at: number, length: number, what: string) {
  return session.request<number>(`reading ${what}`, (done) => {
    session.sftp.read(handle, target, at, length, at, (error: Error & { code?: number } | undefined, got: number) => {
      if (error?.code === STATUS.EOF) done(null, 0);
      else done(error, got);
    });
  });
}
