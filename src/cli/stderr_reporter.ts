/**
 * The CLI's reporter: structured JSON log lines on stderr (the reference module's
 * logger shape), and progress bars on stderr when it is a terminal.
 *
 * @module
 */
import type { Reporter } from "../reporter.ts";
import { formatBytes } from "./format.ts";

const encoder = new TextEncoder();
const BAR_WIDTH = 30;
const REDRAW_MS = 100;

/**
 * A reporter writing to stderr.
 *
 * @param showProgress Draw progress bars (only when stderr is a terminal).
 */
export function stderrReporter(showProgress: boolean): Reporter {
  let lastDraw = 0;
  let drawn = false;
  const clear = () => {
    if (drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
    drawn = false;
  };
  return {
    event(level, name, fields = {}) {
      clear();
      const line = JSON.stringify({ logger: "backup", level, event: name, ...fields });
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    },
    progress(label, done, total) {
      if (!showProgress) return;
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
