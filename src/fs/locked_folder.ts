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
