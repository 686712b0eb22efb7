/**
 * Small formatters for the readable (terminal) output.
 *
 * @module
 */

/** Seconds as a short age: `45s`, `12m`, `5h`, `3d`. */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return "-";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** Rows as a left-aligned table with a header line; each cell {@linkcode printable}, so a row stays one line. */
export function formatTable(header: string[], cells: string[][]): string {
  const rows = cells.map((row) => row.map(printable));
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** A validation's errors as indented lines, or nothing. */
export function formatErrors(errors: string[]): string {
  return errors.map((error) => `  - ${printable(error)}`).join("\n");
}

/**
 * `text` with its control characters shown as escapes (`\n`, `\x1b`): a name read from disk or a repository must not
 * break a message's one line or send a terminal its own commands.
 */
export function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (char) => {
    if (char === "\n") return "\\n";
    if (char === "\t") return "\\t";
    if (char === "\r") return "\\r";
    return `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}
