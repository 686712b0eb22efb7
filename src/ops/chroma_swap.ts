/**
 * Replacing the contents of a Chroma folder while keeping the folder (a bind mount in production): a copy staged
 * inside it, swapped in by renames, after clearing what killed restores left there; all of it inside the folders held
 * open ({@linkcode HeldChroma}).
 *
 * @module
 */
import { lchownSync } from "node:fs";
import { join } from "node:path";
import { describeOsError } from "../errors.ts";
import { removeQuietly, syncTree } from "../fs/durable.ts";
import { copyIntoHeld, fitHeld } from "../fs/held_copy.ts";
import { sha256File } from "../fs/hash.ts";
import { entriesOrNone, exists, lstatOrNull } from "../fs/probe.ts";
import { copyEntries, type CopyTotals, type TreeEntry, walkTree } from "../fs/tree.ts";
import type { Reporter } from "../report/reporter.ts";
import { CHROMA_OLD_PREFIX, CHROMA_STAGING_PREFIX } from "../snapshot/chroma.ts";
import { type Aside, type FolderIdentity, folderIdentity, HeldChroma } from "./chroma_folder.ts";
import type { Change } from "./restore_wal.ts";
import type { TreeProof } from "./restore_proof.ts";

/** A full Chroma copy staged in a hidden folder inside the Chroma folder, both held open until disposed. */
export interface StagedChroma extends Disposable {
  held: HeldChroma;
  staging: Aside;
  /** The names staged (the snapshot's top-level entries): what the swap moves in, never a listing of the folder. */
  names: string[];
  totals: CopyTotals;
}

/** Entries of a Chroma folder: listed by `names`, removed (never through a link) by `remove`, named by `shown`. */
interface ChromaEntries {
  names(): string[];
  remove(name: string): void;
  shown(name: string): string;
}

/** The entries of the Chroma folder at `path`, by path: for clearing leftovers where no swap is recorded. */
function byPath(path: string): ChromaEntries {
  return {
    names: () => entriesOrNone(path).map((entry) => entry.name),
    remove: (name) => removeQuietly(join(path, name)),
    shown: (name) => join(path, name),
  };
}

/**
 * Copy the snapshot's Chroma folder into a hidden folder inside `target` (created
 * when missing, never removed), owned like `target`, fsynced. `target` is opened
 * once, and must still be the folder `seen` identifies (the one the restore checked):
 * from here on its entries are made, filled and moved inside the folders held open
 * ({@linkcode HeldChroma}). With `move` (a scratch copy this run made), the folder is
 * moved there by a rename instead where one filesystem holds both. Leftovers of killed
 * restores (staged copies and old entries moved aside) are removed first; a copy that
 * fails part way is removed. `noteChange` hears, as they are made, the changes that
 * stay in `target` when a later step fails: the folder created, leftovers removed. `proof` checks the walked entries,
 * then each file copied (its SHA-256 taken as its bytes pass), before the copy can be swapped in.
 */
export function stageChroma(
  source: string,
  target: { path: string; seen: FolderIdentity | null },
  reporter: Reporter,
  noteChange: (what: string) => void,
  { move = false, proof }: { move?: boolean; proof?: TreeProof } = {},
): StagedChroma {
  const held = HeldChroma.open(
    target.path,
    target.seen,
    () => noteChange(`created the empty Chroma folder ${target.path}`),
  );
  const name = `${CHROMA_STAGING_PREFIX}${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const removed = clearLeftovers(held, reporter);
    if (removed > 0) noteChange(`removed ${removed} leftover(s) of a killed restore from ${target.path}`);
    const entries = walkTree(source);
    proof?.walked(entries);
    reporter.event("info", "restore_chroma_staging", { path: target.path, entries: entries.length });
    const moved = move && held.adopt(source, name);
    let staging: Aside | null = null;
    try {
      staging = held.aside(name, !moved)!;
      const totals = moved ? totalsOf(entries) : copyInto(held, source, entries, staging, { reporter, proof });
      fitInto(held, staging, entries);
      held.sync();
      reporter.event("info", "restore_chroma_staged", { path: staging.path, moved, ...totals });
      const aside = staging;
      const dispose = () => (aside[Symbol.dispose](), held[Symbol.dispose]());
      const names = entries.filter((entry) => !entry.path.includes("/")).map((entry) => entry.path);
      return { held, staging: aside, names, totals, [Symbol.dispose]: dispose };
    } catch (error) {
      staging?.[Symbol.dispose]();
      if (staging !== null || moved) removeFailedCopy(held, name, noteChange); // it would keep a full disk full
      throw error;
    }
  } catch (error) {
    held[Symbol.dispose]();
    throw error;
  }
}

/**
 * Remove the staged copy `name` after its staging failed, inside the folder held (never through the path, which may
 * lead elsewhere now); one that cannot go (the open-file limit, below a deep tree) is noted and left for the next
 * restore, and the copy's own failure is the one told.
 */
function removeFailedCopy(held: HeldChroma, name: string, noteChange: (what: string) => void): void {
  try {
    held.remove(name);
  } catch (error) {
    noteChange(
      `left the staged Chroma copy ${held.shown(name)} (${describeOsError(error)}; the next restore removes it)`,
    );
  }
}

/**
 * Copy the walked `entries` of `source` into the hidden folder `staging`: inside it when FFI is there, else by path;
 * each file's bytes checked by `proof` (by path, the copy is read again to hash it).
 */
function copyInto(
  held: HeldChroma,
  source: string,
  entries: TreeEntry[],
  staging: Aside,
  { reporter, proof }: { reporter: Reporter; proof?: TreeProof },
): CopyTotals {
  const onProgress = (done: number, total: number) => reporter.progress("chroma bytes", done, total);
  if (held.calls !== null) {
    return copyIntoHeld(held.calls, source, entries, staging, {
      onProgress,
      onCopied: proof?.copied,
      onLinked: proof?.linked,
    });
  }
  const totals = copyEntries(source, held.at(staging.name), entries, onProgress);
  for (const entry of proof ? entries : []) {
    const copy = join(held.at(staging.name), entry.path);
    if (entry.kind === "file") proof!.copied(entry, sha256File(copy));
    if (entry.kind === "symlink") proof!.linked(entry, Deno.readLinkSync(copy));
  }
  return totals;
}

/** Give the staged entries the owner and modes of {@linkcode ownLike}, and flush them. */
function fitInto(held: HeldChroma, staging: Aside, entries: TreeEntry[]): void {
  const folder = Deno.statSync(held.at());
  if (held.calls === null) {
    ownLike(held.at(staging.name), entries, folder, held.at());
    return syncTree(held.at(staging.name));
  }
  const calls = held.calls;
  let chown = folder.uid !== null && folder.gid !== null;
  fitHeld(calls, staging, entries, (entry, fd, shown) => {
    if (entry.kind !== "file" && entry.kind !== "dir") return;
    if (chown) chown = calls.setOwner(fd, folder.uid!, folder.gid!, shown);
    const mode = liveMode(entry, held.at());
    if (mode !== null) calls.setMode(fd, mode, shown); // after the owner: giving a file away clears its set-id bits
  });
}

/** What a copy of `entries` would have counted: files and their bytes. */
function totalsOf(entries: TreeEntry[]): CopyTotals {
  const files = entries.filter((entry) => entry.kind === "file");
  return { files: files.length, bytes: files.reduce((sum, entry) => sum + entry.size, 0) };
}

/**
 * Remove what killed restores left in `target`: staged copies and old entries moved aside (the lock rules out a
 * live restore); how many. Called only once no unfinished swap is recorded: the old entries are then never the only
 * copy.
 */
export function clearLeftovers(target: string | ChromaEntries, reporter: Reporter): number {
  const folder = typeof target === "string" ? byPath(target) : target;
  let removed = 0;
  for (const name of folder.names()) {
    if (!name.startsWith(CHROMA_STAGING_PREFIX) && !name.startsWith(CHROMA_OLD_PREFIX)) continue;
    folder.remove(name);
    removed += 1;
    reporter.event("warning", "stale_leftover_removed", { path: folder.shown(name) });
  }
  return removed;
}

/**
 * Give the copied entries the Chroma folder's owner, so the service's user can still write them, and the permission
 * bits of the live entry each replaces (a folder's setgid and group write included: a service writing through its
 * group goes on writing); an entry new to the folder keeps the snapshot's. Symbolic links keep the copier's owner (they
 * are never followed); a user who may not give files away keeps them. (By path, without FFI.)
 */
function ownLike(root: string, entries: TreeEntry[], folder: Deno.FileInfo, live: string): void {
  let chown = folder.uid !== null && folder.gid !== null;
  for (const entry of entries) {
    if (entry.kind !== "file" && entry.kind !== "dir") continue;
    const path = join(root, entry.path);
    const mode = liveMode(entry, live);
    if (mode !== null) Deno.chmodSync(path, mode);
    const info = Deno.statSync(path);
    if (!chown || (info.uid === folder.uid && info.gid === folder.gid)) continue;
    try {
      lchownSync(path, folder.uid!, folder.gid!);
    } catch (error) {
      if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
      chown = false;
    }
  }
}

/**
 * The permission bits of the live entry a copied `entry` replaces in `live`, `null` when none of its kind is there: a
 * folder's setgid kept (its new files keep the group), a file's set-user and set-group bits never (a writer of the
 * folder who sets them on its own file must not have the restorer make the copy a set-id program of its owner's).
 */
function liveMode(entry: TreeEntry, live: string): number | null {
  const replaced = lstatOrNull(join(live, entry.path));
  const kindMatches = replaced !== null && (entry.kind === "dir" ? replaced.isDirectory : replaced.isFile);
  if (!kindMatches || replaced.mode === null) return null;
  return replaced.mode & (entry.kind === "dir" ? 0o3777 : 0o1777);
}

/** Where a swap of a Chroma folder's contents stands, as recorded (durably) before each of its phases. */
export type SwapPhase = "moving-old-aside" | "moving-new-in" | "clearing-old";

/** A swap in progress: its phase and the names of its two hidden folders inside the Chroma folder. */
export interface SwapState {
  phase: SwapPhase;
  /** The hidden folder the old entries are moved into. */
  old: string;
  /** The hidden folder the new entries come from. */
  staged: string;
  /** The Chroma folder swapped in (absent in records of older versions): a swap is settled only in that folder. */
  folder?: FolderIdentity;
}

/** Records a swap's state durably before the swap goes on; `null` once the folder is whole again, old or new. */
export type RecordSwap = (state: SwapState | null) => void;

/** A swap that failed: its message says what went wrong, its `state` what state the Chroma folder was left in. */
export class SwapFailure extends Error {
  /** The Chroma folder's state, in words. */
  readonly state: string;
  /** Whether the folder was put back as it was before the swap (else its old entries are still aside). */
  readonly undone: boolean;

  /** Make a swap failure. */
  constructor(message: string, state: string, undone: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "SwapFailure";
    this.state = state;
    this.undone = undone;
  }
}

/**
 * Swap the contents of `target` for the staged ones with renames only (instant, on
 * one filesystem): move every old entry into a hidden folder beside the staged one,
 * move the staged entries in, fsync, and only then remove the old entries. `target`
 * itself is kept. `record` is called before each phase, so a killed swap can be
 * settled by {@linkcode settleSwap}. Old entries that cannot be removed are a warning,
 * not a failure: the swap is done, and the next restore removes them.
 *
 * @throws {SwapFailure} when a rename fails: the swap is undone (the old entries moved
 *   back, the staged copy removed) where it can be, and the message says which.
 */
export function swapChroma(staged: StagedChroma, reporter: Reporter, record: RecordSwap): void {
  const { held: folder, staging } = staged;
  const target = folder.path;
  const names = {
    old: `${CHROMA_OLD_PREFIX}${staging.name.slice(CHROMA_STAGING_PREFIX.length)}`,
    staged: staging.name,
    folder: folder.identity,
  };
  const oldNames = folder.names().filter((name) => name !== staging.name);
  oldNames.sort(); // the same order on every filesystem, so that a swap stopped half way can be replayed
  reporter.event("info", "restore_chroma_swapping", { target, entries: oldNames.length });
  // The phase being entered: when a step fails, undoing starts from it.
  let state: SwapState = { ...names, phase: "moving-old-aside" };
  let moving: string | null = null; // the entry whose rename failed, for the message
  try {
    record(state);
    using old = folder.aside(names.old, true)!;
    for (const name of oldNames) folder.moveOut(moving = name, old);
    folder.sync(old);
    folder.sync();
    state = { ...names, phase: "moving-new-in" };
    record(state);
    // The names staged, not a listing by path (a link swapped in could show none): one not there fails, and is undone.
    for (const name of staged.names) folder.moveIn(staging, moving = name);
    moving = null;
    folder.sync();
    record({ ...names, phase: "clearing-old" });
  } catch (error) {
    const failure = { error: error, moving: moving === null ? null : folder.shown(moving) };
    throw failedSwap(folder, state, record, failure, reporter);
  }
  folder.remove(staging.name);
  try {
    folder.remove(names.old);
  } catch (error) {
    const path = folder.shown(names.old);
    reporter.event("warning", "restore_old_chroma_not_removed", { path, error: describeOsError(error) });
  }
  folder.sync();
}

/**
 * Put `target` back as it was before the swap `state` describes, after `error` stopped it (renaming the entry
 * `moving`, when a rename failed), and say in the returned failure what state the folder is in.
 */
function failedSwap(
  folder: HeldChroma,
  state: SwapState,
  record: RecordSwap,
  { error, moving }: { error: unknown; moving: string | null },
  reporter: Reporter,
): SwapFailure {
  const busy = (error as { code?: unknown }).code === "EBUSY" ? "; an entry that is a mount point cannot be moved" : "";
  const cause = `${describeOsError(error)}${moving === null ? "" : ` moving ${moving}`}${busy}`;
  try {
    const moved = undoSwap(folder, state, record);
    reporter.event("warning", "restore_chroma_swap_undone", { target: folder.path, entries_moved_back: moved });
    const left = `Chroma was put back as it was (${moved} entries moved back, the staged copy removed)`;
    return new SwapFailure(cause, left, true, { cause: error });
  } catch (undoError) {
    const left = `Chroma could not be put back (${describeOsError(undoError)}): its old entries are in ` +
      `${folder.shown(state.old)}, kept until the next restore moves them back`;
    return new SwapFailure(cause, left, false, { cause: error });
  }
}

/**
 * Undo the swap `state` describes: remove the new entries moved in (copies of the snapshot), move the old ones
 * back, remove both hidden folders. Each step is recorded first, so that undoing can itself be interrupted.
 *
 * @returns How many old entries were moved back.
 */
function undoSwap(folder: HeldChroma, state: SwapState, record: RecordSwap): number {
  // The old entries' folder is held (and found to be the one made) first: one that is not stops this before any change.
  using old = folder.aside(state.old, false);
  if (state.phase === "moving-new-in") {
    // Every old entry was moved aside before this phase was recorded: what the folder shows now is new.
    for (const name of chromaEntryNames(folder.names())) folder.remove(name);
    folder.sync();
    record({ ...state, phase: "moving-old-aside" });
  }
  const names = old === null ? [] : folder.names(old);
  for (const name of names) {
    // Nothing else is in the folder under the same name in this phase; a rename would replace a file silently.
    if (exists(folder.at(name))) throw new Error(`${folder.shown(name)} is in the way of the old entry ${name}`);
    folder.moveIn(old!, name);
  }
  folder.sync();
  folder.remove(state.old);
  folder.remove(state.staged);
  folder.sync();
  tryRecord(record, null);
  return names.length;
}

/**
 * Settle a swap that a killed restore left in `target` (as its intent recorded it): undone while it was still
 * moving entries, finished (the old entries removed) once the new ones were all in; only in the folder the swap
 * recorded (held open), when it recorded one.
 *
 * @returns What settling changed, in words; `part` set when Chroma's visible contents changed.
 */
export function settleSwap(target: string, state: SwapState, record: RecordSwap, reporter: Reporter): Change {
  const seen = state.folder ?? folderIdentity(target); // an older record names no folder: the one there now
  using folder = HeldChroma.open(target, seen ?? { dev: -1, ino: -1 }, () => {});
  if (state.phase !== "clearing-old") {
    const moved = undoSwap(folder, state, record);
    reporter.event("warning", "restore_chroma_swap_undone", { target, entries_moved_back: moved });
    const what = `put the Chroma folder ${target} back as it was before the unfinished restore's swap ` +
      `(${moved} entries moved back)`;
    return moved > 0 || state.phase === "moving-new-in" ? { what, part: "chroma" } : { what };
  }
  folder.remove(state.staged);
  folder.remove(state.old);
  folder.sync();
  tryRecord(record, null);
  reporter.event("warning", "restore_chroma_swap_finished", { target });
  return { what: `finished the unfinished restore's swap of the Chroma folder ${target} (its old entries removed)` };
}

/**
 * Record that the folder is whole again where failing to do so is harmless: a recorded state whose old
 * folder is gone settles by moving nothing.
 */
function tryRecord(record: RecordSwap, state: SwapState | null): void {
  try {
    record(state);
  } catch {
    // Kept as it was: settling it again moves nothing (see above).
  }
}

/** The names of a Chroma folder's entries that are Chroma's, leaving out the hidden folders restore works in. */
function chromaEntryNames(names: string[]): string[] {
  return names.filter((name) => !name.startsWith(CHROMA_STAGING_PREFIX) && !name.startsWith(CHROMA_OLD_PREFIX));
}
