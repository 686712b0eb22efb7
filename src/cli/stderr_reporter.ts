/**
 * The CLI's reporter on stderr: JSON log lines in the reference module's logger shape and event names for
 * scripts, journald and CI; progress bars and readable warnings on a terminal.
 *
 * @module
 */
import type { Reporter } from "../report/reporter.ts";
import { formatBytes } from "../text/bytes.ts";
import { warningText } from "./warning_text.ts";

const encoder = new TextEncoder();
const BAR_WIDTH = 30;
const REDRAW_MS = 100;

/**
 * Write `text` to stderr, whole; a stderr that fails (a log reader gone, a full disk) is given up on, never an error:
 * a log line must not stop an operation half done, such as a restore replacing the store.
 */
export function writeStderr(text: string): void {
  if (stderrBroken) return;
  try {
    const bytes = encoder.encode(text);
    for (let written = 0; written < bytes.length;) written += Deno.stderr.writeSync(bytes.subarray(written));
  } catch {
    stderrBroken = true;
  }
}

let stderrBroken = false;

/**
 * A reporter writing to stderr (see {@linkcode writeStderr}).
 *
 * @param terminal Whether stderr is a terminal: progress bars and readable warnings, else JSON lines.
 */
export function stderrReporter(terminal: boolean): Reporter & { clear(): void } {
  let lastDraw = 0;
  let drawn = false;
  const clear = () => {
    if (drawn) writeStderr("\r\x1b[2K");
    drawn = false;
  };
  return {
    /** Erase an unfinished progress line, before the command's own output. */
    clear,
    event(level, name, fields = {}) {
      if (terminal && level === "info") return;
      clear();
      const line = terminal
        ? readableWarning(name, fields)
        : JSON.stringify({ logger: "backup", level, event: name, ...fields });
      writeStderr(line + "\n");
    },
    progress(label, done, total) {
      if (!terminal) return;
      const now = Date.now();
      const finished = total > 0 && done >= total;
      if (!finished && now - lastDraw < REDRAW_MS) return;
      lastDraw = now;
      writeStderr(`\r\x1b[2K${progressLine(label, done, total)}`);
      drawn = !finished;
      if (finished) writeStderr("\n");
    },
  };
}

/** One line of progress: a bar when the total is known, else a running count. */
export function progressLine(label: string, done: number, total: number): string {
  const amount = label.includes("pages") ? `${done}/${total} pages` : formatBytes(done);
  if (total <= 0) return `${label}: ${amount}`;
  const filled = Math.round((Math.min(done, total) / total) * BAR_WIDTH);
  return `${label} [${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${
    Math.floor((done / total) * 100)
  }% ${amount}`;
}

/** A warning event as one readable line, in words (see `warning_text.ts`). */
export function readableWarning(name: string, fields: Record<string, unknown>): string {
  return warningText(name, fields);
}
