/**
 * What the built-in driver's read worker and the thread that started it say to each other (see `off_thread.ts`),
 * errors made so that they cross threads and are made again.
 *
 * @module
 */
import { IntegrityUncheckedError, SqliteError, type SystemCode } from "./driver.ts";

/** A read the worker does. */
export type OffThreadRead = "integrity" | "counts";

/** What the worker says: an open begins or ends, or the read's value or error. */
export type OffThreadMessage =
  | { state: "opening" | "opened" }
  | { value: unknown }
  | { error: PostedError };

/** An error as it crosses to the caller's thread. */
export type PostedError =
  | { kind: "sqlite"; resultCode: number; message: string; systemCode?: SystemCode }
  | { kind: "unchecked"; path: string; why: string }
  | { kind: "other"; message: string; code?: string };

/** `error` as it may cross to another thread. */
export function posted(error: unknown): PostedError {
  if (error instanceof SqliteError) {
    const { resultCode, message, systemCode } = error;
    return { kind: "sqlite", resultCode, message, systemCode };
  }
  if (error instanceof IntegrityUncheckedError) return { kind: "unchecked", path: error.path, why: error.why };
  const code = (error as { code?: unknown } | null)?.code; // the system's error name (EIO), which callers tell apart
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" ? { kind: "other", message, code } : { kind: "other", message };
}

/** The error `posted` made of one, made again on this thread. */
export function revived(error: PostedError): Error {
  if (error.kind === "sqlite") return new SqliteError(error.resultCode, error.message, error.systemCode);
  if (error.kind === "unchecked") return new IntegrityUncheckedError(error.path, error.why);
  return error.code === undefined
    ? new Error(error.message)
    : Object.assign(new Error(error.message), { code: error.code });
}
