/**
 * The CLI's reporter on stderr: JSON log lines in the reference module's logger shape and event names for
 * scripts, journald and CI; progress bars and readable warnings on a terminal.
 *
 * @module
 */
import type { Reporter } from "../report/reporter.ts";
import { formatBytes } from "./format.ts";
import { warningText } from "./warning_text.ts";

const encoder = new TextEncoder();
const BAR_WIDTH = 30;
const REDRAW_MS = 100;

/**
 * A reporter writing to stderr.
 *
 * @param terminal Whether stderr is a terminal: progress bars and readable warnings, else JSON lines.
 */
export function stderrReporter(terminal: boolean): Reporter & { clear(): void } {
  let lastDraw = 0;
  let drawn = false;
  const clear = () => {
    if (drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
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
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    },
    progress(label, done, total) {
      if (!terminal) return;
      const now = Date.now();
      const finished = total > 0 && done >= total;
      if (!finished && now - lastDraw < REDRAW_MS) return;
      lastDraw = now;
      Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${progressLine(label, done, total)}`));
      drawn = !finished;
      if (finished) Deno.stderr.writeSync(encoder.encode("\n"));
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
