/**
 * A scratch folder locked (flock) before it takes its name, so that a run removing what killed runs left (folders of
 * that name no one holds locked) never takes one being made for a leftover.
 *
 * @module
 */
import { basename, join } from "node:path";
import { removeQuietly } from "./durable.ts";

/** A folder made by {@linkcode makeLockedFolder}: locked while it lives; disposing of it unlocks it and removes it. */
export interface LockedFolder extends Disposable {
  path: string;
}

/** The names of such folders: `prefix` once locked, `unlockedPrefix` from being made until then. */
export interface LockedNames {
  prefix: string;
  unlockedPrefix: string;
}

/**
 * Make a folder in `parent` named `unlockedPrefix` and a random suffix, lock it with `lock` (which may throw, or keep
 * it unlocked where the filesystem has no locks), and rename it to `prefix` and the same suffix. Where any step fails
 * the folder is removed and the error thrown (one a kill leaves is a leftover for the next run).
 */
export function makeLockedFolder(
  parent: string,
  names: LockedNames,
  lock: (holder: Deno.FsFile) => void,
): LockedFolder {
  const unnamed = Deno.makeTempDirSync({ dir: parent, prefix: names.unlockedPrefix });
  const path = join(parent, names.prefix + basename(unnamed).slice(names.unlockedPrefix.length));
  let holder: Deno.FsFile | null = null;
  try {
    holder = Deno.openSync(unnamed, { read: true });
    lock(holder);
    Deno.renameSync(unnamed, path);
  } catch (error) {
    holder?.close();
    removeQuietly(unnamed);
    throw error;
  }
  return {
    path,
    [Symbol.dispose]: () => {
      holder.close();
      removeQuietly(path);
    },
  };
}

/** How long a folder may keep its unlocked name: a run locks and renames its own in moments. */
const UNLOCKED_MS = 60_000;

/**
 * Whether a folder of an unlocked name (`info`, its lstat) is a leftover by its age: last changed a minute or more
 * before now, or as far after (a clock set back since it was made; one being made now is never that far either way).
 */
export function unlockedTooLong(info: Deno.FileInfo, now = Date.now()): boolean {
  const changed = info.mtime?.getTime() ?? now;
  return Math.abs(now - changed) >= UNLOCKED_MS;
}
