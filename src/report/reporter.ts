/**
 * How the engine tells the outside what it is doing without printing: it calls a {@linkcode Reporter}, and
 * the CLI decides what becomes a JSON log line on stderr or a progress bar.
 *
 * @module
 */

/** Receives events and progress from an operation. */
export interface Reporter {
  /** A structured event, named as the reference module names its log events. */
  event(level: "info" | "warning", name: string, fields?: Record<string, unknown>): void;
  /** Progress of a long step: `done` out of `total` units (pages or bytes). */
  progress(label: string, done: number, total: number): void;
}

/** A reporter that drops everything (tests and nested operations). */
export const SILENT: Reporter = { event() {}, progress() {} };
