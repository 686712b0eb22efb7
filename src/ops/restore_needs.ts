/**
 * The backup folder's record of the snapshots an unfinished live restore needs (what it restores, its way back), kept
 * beside the record by the live database, so that a cleanup that knows only the backup folder keeps them too.
 *
 * @module
 */
import { parseBoundedJson } from "../text/bounded_json.ts";
import { isAbsolute, join } from "node:path";
import { describeOsError, OperationError, RefusedError } from "../errors.ts";
import { removeQuietly, removeTemporariesOf, syncDir, writeFileAtomic } from "../fs/durable.ts";
import { giveLikeItsFolder } from "../fs/give_tree.ts";
import { entriesOrNone, lstatOrNull, statOrNull } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import { RESTORE_NEEDS_NAME, restoreNeedsPath } from "../snapshot/layout.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { isReadOnly } from "./lock.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";

/** Largest record read; a real one is a few hundred bytes. */
const MAX_NEEDS_BYTES = 64 * 1024;

/** The record: the live database the restore goes into, and the stamps it needs until it finishes. */
export interface RestoreNeeds {
  format: 1;
  db: string;
  stamps: string[];
  started_at: string;
}

/**
 * Write the record of `needs` in `backupDir` durably, before the restore's first live change. Where the folder may
 * not be written (a restore with `--no-pre-snapshot` from a read-only copy) it warns and goes on: no cleanup through
 * that path removes anything there either; where there is none, it writes nothing.
 *
 * @returns whether the record was written.
 */
export function recordNeeds(backupDir: string, needs: RestoreNeeds, reporter: Reporter): boolean {
  const path = restoreNeedsPath(backupDir, needs.db);
  if (statOrNull(backupDir) === null) return false; // `--from-remote` on a host without one: nothing there to remove
  try {
    removeTemporariesOf(path); // a killed write's; the restore holds the lock
    // a root restore's goes to the backup folder's owner, whose runs clear or remove it
    writeFileAtomic(path, JSON.stringify(needs, null, 2) + "\n", { beforeRename: giveLikeItsFolder });
    return true;
  } catch (error) {
    if (!isReadOnly(error)) throw error;
    reporter.event("warning", "restore_needs_not_recorded", {
      path,
      stamps: needs.stamps,
      error: describeOsError(error),
      next: "a cleanup that does not look at this live store may remove them until the restore finishes",
    });
    return false;
  }
}

/**
 * Remove the record of the restore into `dbPath` from `backupDir` when it is there: the restore finished, or changed
 * nothing.
 *
 * @throws {OperationError} when it cannot be removed, naming it (the restore itself is done; cleanup keeps the
 *   snapshots it names while it is there).
 */
export function clearNeeds(backupDir: string, dbPath: string): void {
  const path = restoreNeedsPath(backupDir, dbPath);
  try {
    if (lstatOrNull(path) === null) return;
    removeQuietly(path);
    syncDir(backupDir);
  } catch (error) {
    throw new OperationError(
      `restore could not remove its record ${path} (${describeOsError(error)}); the restore itself is done; remove ` +
        `${path} (cleanup keeps the snapshots it names while it is there)`,
      { cause: error },
    );
  }
}

/**
 * The records of unfinished restores in `backupDir`, by path.
 *
 * @throws {RefusedError} when one is not a small regular file or not a record this tool wrote (never followed).
 */
export function readNeeds(backupDir: string): { path: string; needs: RestoreNeeds }[] {
  const found = entriesOrNone(backupDir).filter((entry) => RESTORE_NEEDS_NAME.test(entry.name));
  return found.map((entry) => join(backupDir, entry.name)).sort().map((path) => {
    const unreadable = (why: string) =>
      new RefusedError(
        `the record of the snapshots an unfinished restore needs ${path} ${why}; nothing was removed: check it, and ` +
          `remove it once no restore it names is unfinished ('create' with that store's paths says so)`,
      );
    const info = lstatOrNull(path);
    if (info === null) return null; // removed since the folder was read: that restore finished
    if (!info.isFile || info.size > MAX_NEEDS_BYTES) throw unreadable("is not a small regular file");
    let parsed: unknown;
    try {
      // from the file checked above: never through a link (to root's file) or a FIFO put in since
      parsed = parseBoundedJson(readRegularTextFile(path, { maxBytes: MAX_NEEDS_BYTES }));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw unreadable(`cannot be read (${(error as Error).message.split("\n")[0]})`);
    }
    if (!isNeeds(parsed) || restoreNeedsPath(backupDir, parsed.db) !== path) {
      throw unreadable("is not one this tool wrote");
    }
    return { path, needs: parsed };
  }).filter((one) => one !== null);
}

function isNeeds(value: unknown): value is RestoreNeeds {
  const needs = value as RestoreNeeds;
  return typeof value === "object" && value !== null && needs.format === 1 && typeof needs.db === "string" &&
    isAbsolute(needs.db) && Array.isArray(needs.stamps) && needs.stamps.length <= 8 &&
    needs.stamps.every((stamp) => typeof stamp === "string" && isStamp(stamp)) &&
    typeof needs.started_at === "string";
}
