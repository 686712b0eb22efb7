/**
 * Snapshot stamps: `YYYYMMDDTHHMMSSZ`, the UTC second a snapshot was started.
 *
 * @module
 */
import { RefusedError } from "../errors.ts";

const STAMP_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/**
 * Format a time as a stamp, in UTC, to the second.
 *
 * @throws {RefusedError} for a time no stamp can name (before year 1, after 9999): the system clock is wrong.
 */
export function formatStamp(time: Date): string {
  const year = time.getUTCFullYear();
  if (!(year >= 1 && year <= 9999)) {
    throw new RefusedError(
      `the system clock reads ${Number.isNaN(year) ? "no valid time" : time.toISOString()}, which no snapshot stamp ` +
        "(YYYYMMDDTHHMMSSZ) can name; nothing was done; set the clock right (timedatectl, NTP), then run again",
    );
  }
  const iso = time.toISOString(); // 2026-04-09T01:02:03.456Z
  return iso.slice(0, 19).replaceAll("-", "").replaceAll(":", "") + "Z";
}

/**
 * Parse a stamp into its UTC time, or `null` when the text is not a plain,
 * calendar-valid stamp (so `../x`, `/etc`, `""` and `20261340T000000Z` are all `null`).
 */
export function parseStamp(text: string): Date | null {
  const match = STAMP_PATTERN.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  const time = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  return formatStamp(time) === text ? time : null;
}

/** Tell whether a folder name is a plain stamp and so names a snapshot the tool may touch. */
export function isStamp(text: string): boolean {
  return parseStamp(text) !== null;
}

/**
 * Format a time the way Python's `datetime.isoformat()` does for an aware UTC time,
 * as the reference module writes `created_at`: `2026-04-09T01:02:03.456000+00:00`.
 */
export function formatCreatedAt(time: Date): string {
  return time.toISOString().replace(/\.(\d{3})Z$/, ".$1000+00:00");
}
