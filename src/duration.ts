/**
 * Durations as flags and variables give them (`36h`, `2d`, `90m`, `3600s`): `remote cleanup --grace`,
 * `drill --max-age` and the stall timeout.
 *
 * @module
 */
import { UsageError } from "./errors.ts";

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `ms` as a duration flag takes it, in whole hours, else minutes, else seconds (`24h`, `90m`), for help and messages. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const unit = ["h", "m"].find((name) => seconds > 0 && seconds % UNITS[name] === 0) ?? "s";
  return `${seconds / UNITS[unit]}${unit}`;
}

/**
 * The seconds `text` gives.
 *
 * @throws {UsageError} for another form, naming the command and flag.
 */
export function parseDurationSeconds(text: string, where: string): number {
  const match = /^(\d{1,9})([smhd])$/.exec(text);
  if (!match) {
    throw new UsageError(`${where} must be a duration such as 36h, 2d or 90m, not ${JSON.stringify(text)}`);
  }
  return Number(match[1]) * UNITS[match[2]];
}
