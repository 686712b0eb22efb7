/**
 * The worker behind `off_thread.ts`: one read of one database with the built-in driver. In: `{ read, path }` once.
 * Out: `{ state }` before and after each SQLite open of that file, then `{ value }` or `{ error }`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { readIntegrity, readRowCounts } from "./builtin_open.ts";
import { type OffThreadMessage, type OffThreadRead, posted } from "./off_thread_messages.ts";

const say = (message: OffThreadMessage) => self.postMessage(message);

self.onmessage = ({ data }: MessageEvent<{ read: OffThreadRead; path: string }>) => {
  const watch = { opening: () => say({ state: "opening" }), opened: () => say({ state: "opened" }) };
  try {
    say({ value: data.read === "integrity" ? readIntegrity(data.path, watch) : readRowCounts(data.path, watch) });
  } catch (error) {
    say({ error: posted(error) });
  }
};
