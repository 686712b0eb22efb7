/**
 * The record a live restore keeps beside the live database from before its first change to after its last, so that
 * a restore that did not finish is known to create (which refuses the half-restored store) and to the next restore.
 *
 * @module
 */
import { parseBoundedJson } from "../text/bounded_json.ts";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { Config } from "../config.ts";
import { describeOsError, OperationError, RefusedError } from "../errors.ts";
import { removeQuietly, syncDir, writeFileAtomic } from "../fs/durable.ts";
import { giveLikeItsFolder } from "../fs/give_tree.ts";
import { entriesOrNone, lstatOrNull } from "../fs/probe.ts";
import type { Reporter } from "../report/reporter.ts";
import { CHROMA_OLD_PREFIX, CHROMA_STAGING_PREFIX } from "../snapshot/chroma.ts";
import { isStamp } from "../snapshot/stamp.ts";
import { clearLeftovers, type RecordSwap, settleSwap, type SwapState } from "./chroma_swap.ts";
import { type FolderIdentity, folderIdentity } from "./chroma_folder.ts";
import type { Change } from "./restore_wal.ts";
import { parseSnapshotKey } from "../repo/layout.ts";
import { locationFlags } from "../repo/s3/address.ts";
import { restoreIntentPath } from "../snapshot/layout.ts";
import { clearNeeds, recordNeeds } from "./restore_needs.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";

/** Largest intent file read; a real one is a few hundred bytes. */
const MAX_INTENT_BYTES = 64 * 1024;
const PHASES = ["moving-old-aside", "moving-new-in", "clearing-old"];

/** What a live restore is doing, as recorded in its intent file. */
export interface RestoreIntent {
  format: 1;
  /** The snapshot being restored. */
  stamp: string;
  /** The backup folder it comes from. */
  backup_dir: string;
  /** The live Chroma folder. */
  chroma_dir: string;
  /** Whether Chroma is restored. */
  chroma: boolean;
  /** The stamp that undoes the restore, when there is one. */
  pre_restore_snapshot: string | null;
  started_at: string;
  pid: number;
  /** The Chroma swap in progress, or `null` while Chroma is whole (old or new). */
  swap: SwapState | null;
  /** Where the snapshot came from when it was fetched from a repository (`restore --from-remote`). */
  remote?: RemoteOrigin;
}

/** A repository snapshot a restore read: its `STAMP_PUSHID` and the repository's location (no credentials). */
export interface RemoteOrigin {
  snapshot: string;
  location: string;
  /** It was accepted without a MAC (`--allow-unauthenticated`): the restore that finishes it needs the flag too. */
  unauthenticated?: true;
  /** It is another backup folder's (`--other-source`): the restore that finishes it needs the flag too. */
  other_source?: true;
  /** The identity file it was decrypted with: the restore that finishes it is printed with it. */
  identity_file?: string;
}

/** A live restore's intent as the run holds it: written before its first change, cleared after its last. */
export interface IntentContext {
  /** The live database, beside which the record is kept. */
  db: string;
  record: RestoreIntent;
  /** The intent of an earlier restore that did not finish, which this run settled and goes on from. */
  unfinished: RestoreIntent | null;
  /** Whether this run has written its record. */
  written: boolean;
  /** Whether this run has written the record of the snapshots it needs in the backup folder (`restore_needs.ts`). */
  needsWritten: boolean;
  /** This run's paths: the commands it prints to finish or go back name those given as flags. */
  config: Config;
}

/** The intent of a live restore of `stamp` about to begin (going on from `unfinished`, when one was found). */
export function newIntentContext(
  config: Config,
  what: { stamp: string; chroma: boolean; preStamp: string | null; remote?: RemoteOrigin },
  unfinished: RestoreIntent | null,
): IntentContext {
  const record: RestoreIntent = {
    format: 1,
    stamp: what.stamp,
    backup_dir: config.backupDir.path,
    chroma_dir: config.chromaDir.path,
    chroma: what.chroma,
    pre_restore_snapshot: what.preStamp,
    started_at: new Date().toISOString(),
    pid: Deno.pid,
    swap: null,
    ...(what.remote ? { remote: what.remote } : {}),
  };
  return { db: config.db.path, config, record, unfinished, written: false, needsWritten: false };
}

/** A step of restore's replacement of the store (the shape restore runs and names when it fails). */
interface IntentStep {
  doing: string;
  run: (changes: Change[]) => void;
}

/**
 * The step that writes the intent before the first live change (a record, not a change of the store's data): first
 * the snapshots it needs in the backup folder, then the intent beside the database, so that whichever a kill leaves
 * the snapshots are kept.
 */
export function recordStep(intent: IntentContext, reporter: Reporter): IntentStep {
  const { record, unfinished } = intent;
  const stamps = [record.stamp, record.pre_restore_snapshot, unfinished?.stamp ?? null].filter((one) => one !== null);
  return {
    doing: `recording the restore's intent in the backup folder ${record.backup_dir} and beside the database ` +
      `${intent.db} (${restoreIntentPath(intent.db)})`,
    run: () => {
      const needs = {
        format: 1 as const,
        db: resolve(intent.db),
        stamps: [...new Set(stamps)],
        started_at: record.started_at,
      };
      intent.needsWritten = recordNeeds(record.backup_dir, needs, reporter);
      writeIntent(intent.db, record);
      intent.written = true;
    },
  };
}

/**
 * Remove the record after the restore's last change, then the backup folder's record of what it needed: the store is
 * whole, the snapshot's.
 *
 * @throws {OperationError} when one cannot be removed: the restore itself is complete, but create (or cleanup, for
 *   those snapshots) holds on until then.
 */
export function finishIntent(intent: IntentContext): void {
  const path = restoreIntentPath(intent.db);
  try {
    clearIntent(intent.db);
  } catch (error) {
    throw new OperationError(
      `restore failed while removing the record of the finished restore ${path} (${describeOsError(error)}); the ` +
        `restore itself is complete; remove ${path} (create refuses while it is there)`,
      { cause: error },
    );
  }
  // after the intent: a kill in between leaves snapshots kept, never an unfinished restore without them
  const folders = [intent.record.backup_dir, intent.unfinished?.backup_dir ?? intent.record.backup_dir];
  for (const backupDir of new Set(folders)) clearNeeds(backupDir, intent.db);
}

/**
 * Remove the records (beside the database, in the backup folder) of a run that changed none of the store's data (its
 * own failure): `null` when done, else why one is still there.
 */
export function dropIntent(intent: IntentContext): string | null {
  try {
    if (intent.written) clearIntent(intent.db);
    if (intent.needsWritten) clearNeeds(intent.record.backup_dir, intent.db);
    return null;
  } catch (error) {
    return describeOsError(error);
  }
}

/** How the swap records its phases in the intent, so that a killed swap can be settled; `null` with `--to`. */
export function recordSwap(intent: IntentContext | null): RecordSwap {
  return (swap) => {
    if (intent === null) return; // nothing live, nothing to record
    intent.record.swap = swap;
    writeIntent(intent.db, intent.record);
  };
}

/** Where the unfinished restore is recorded, and how to finish it or go back. */
export function unfinishedNote(intent: IntentContext): string {
  const record = intent.written ? intent.record : intent.unfinished ?? intent.record;
  return `the restore is recorded as unfinished in ${restoreIntentPath(intent.db)} and create refuses until ` +
    `then: fix the cause, then ${finishOrGoBack(record, intent.config)}`;
}

/**
 * Write the intent durably (replacing any earlier one at once: never torn), owned as the live database's folder is (a
 * root restore's: the service's user's runs finish or remove it).
 */
export function writeIntent(dbPath: string, intent: RestoreIntent): void {
  const text = JSON.stringify(intent, null, 2) + "\n";
  writeFileAtomic(restoreIntentPath(dbPath), text, { beforeRename: giveLikeItsFolder });
}

/** Remove the intent durably: the restore is finished, or changed nothing. */
export function clearIntent(dbPath: string): void {
  removeQuietly(restoreIntentPath(dbPath));
  syncDir(dirname(dbPath));
}

/**
 * The intent a restore left unfinished beside the live database `dbPath`, or `null` when there is none.
 *
 * @throws {RefusedError} when the file is not a regular file or not an intent this tool wrote (never followed,
 *   never guessed at).
 */
export function readIntent(dbPath: string): RestoreIntent | null {
  const path = restoreIntentPath(dbPath);
  const info = lstatOrNull(path);
  if (info === null) return null;
  const unreadable = (why: string) =>
    new RefusedError(
      `the record of an unfinished restore ${path} ${why}; the live store may be part old, part new: ` +
        `check it, remove the file, then restore a snapshot (see 'list')`,
    );
  if (!info.isFile || info.size > MAX_INTENT_BYTES) throw unreadable("is not a small regular file");
  let parsed: unknown;
  try {
    // from the file checked above: never through a link (to root's file) or a FIFO put in since
    parsed = parseBoundedJson(readRegularTextFile(path, { maxBytes: MAX_INTENT_BYTES }));
  } catch (error) {
    throw unreadable(`cannot be read (${(error as Error).message.split("\n")[0]})`);
  }
  if (!isIntent(parsed)) throw unreadable("is not one this tool wrote");
  return parsed;
}

function isIntent(value: unknown): value is RestoreIntent {
  const intent = value as RestoreIntent;
  return typeof value === "object" && value !== null && intent.format === 1 && typeof intent.stamp === "string" &&
    isStamp(intent.stamp) && isAbsolutePath(intent.backup_dir) && isAbsolutePath(intent.chroma_dir) &&
    typeof intent.chroma === "boolean" &&
    (intent.pre_restore_snapshot === null ||
      (typeof intent.pre_restore_snapshot === "string" && isStamp(intent.pre_restore_snapshot))) &&
    (intent.swap === null || isSwapState(intent.swap)) &&
    (intent.remote === undefined || (typeof intent.remote === "object" && intent.remote !== null &&
      parseSnapshotKey(String(intent.remote.snapshot)) !== null && typeof intent.remote.location === "string" &&
      [undefined, true].includes(intent.remote.unauthenticated) &&
      [undefined, true].includes(intent.remote.other_source) &&
      (intent.remote.identity_file === undefined || isAbsolutePath(intent.remote.identity_file))));
}

function isAbsolutePath(value: unknown): boolean {
  return typeof value === "string" && isAbsolute(value);
}

/** A swap state whose folder names are this tool's hidden folders, plain names that stay inside Chroma's folder. */
function isSwapState(value: unknown): value is SwapState {
  const state = value as SwapState;
  const plain = (name: unknown, prefix: string) =>
    typeof name === "string" && name.startsWith(prefix) && !name.includes("/") && name.length > prefix.length;
  return typeof value === "object" && value !== null && PHASES.includes(state.phase) &&
    plain(state.old, CHROMA_OLD_PREFIX) && plain(state.staged, CHROMA_STAGING_PREFIX) &&
    (state.folder === undefined || isIdentity(state.folder));
}

function isIdentity(value: unknown): value is FolderIdentity {
  const identity = value as FolderIdentity;
  return typeof value === "object" && value !== null && Number.isSafeInteger(identity.dev) &&
    Number.isSafeInteger(identity.ino);
}

/**
 * Before a live restore changes anything: the intent a restore left unfinished, or `null`.
 *
 * @throws {RefusedError} when its record is unreadable, or names another Chroma folder than this run's, or the path
 *   leads to another folder than the one its swap recorded (an unmounted volume, a link swapped in): nothing changed.
 */
export function findUnfinished(config: Config, reporter: Reporter): RestoreIntent | null {
  const path = restoreIntentPath(config.db.path);
  const intent = readIntent(config.db.path);
  if (intent === null) return null;
  reporter.event("warning", "restore_unfinished_found", { intent: path, stamp: intent.stamp, swap: intent.swap });
  if (intent.swap !== null && !sameFolder(intent.chroma_dir, config.chromaDir.path)) {
    throw new RefusedError(
      `the unfinished restore recorded in ${path} was swapping the Chroma folder ${intent.chroma_dir}, not ` +
        `${config.chromaDir.path}; nothing was changed; run again with --chroma-dir ${intent.chroma_dir}`,
    );
  }
  const recorded = intent.swap?.folder;
  const now = recorded === undefined ? null : folderIdentity(config.chromaDir.path);
  if (recorded !== undefined && (now?.dev !== recorded.dev || now?.ino !== recorded.ino)) {
    throw new RefusedError(
      `the Chroma folder ${config.chromaDir.path} is not the folder the unfinished restore recorded in ${path} was ` +
        `swapping (a volume not mounted, or a folder moved or swapped for a link since); nothing was changed; mount ` +
        `the volume or put that folder back at ${config.chromaDir.path}, then run the restore again`,
    );
  }
  return intent;
}

/**
 * Refuse to resume an unfinished restore with the other choice for Chroma: one that left Chroma alone took a
 * pre-restore snapshot without it, so replacing Chroma now would leave the Chroma that was live in no snapshot; one
 * that was restoring Chroma may have swapped it, so leaving Chroma alone now (`--no-chroma`, going back too) would end
 * in a mixture no record flags.
 *
 * @throws {RefusedError} naming how to finish the unfinished restore or go back (nothing changed).
 */
export function requireSameChromaChoice(
  unfinished: RestoreIntent,
  run: { stamp: string; restoresChroma: boolean; noChroma: boolean },
  config: Config,
): void {
  const path = restoreIntentPath(config.db.path);
  if (run.stamp === unfinished.pre_restore_snapshot) { // going back, with what the pre-restore snapshot holds
    if (!unfinished.chroma || !run.noChroma) return;
    throw new RefusedError(
      `the unfinished restore of ${unfinished.stamp} recorded in ${path} was restoring Chroma and may have swapped it; ` +
        `going back with --no-chroma would keep its Chroma beside the old database; nothing was changed; go back ` +
        `without --no-chroma: ${goBackCommand(unfinished, config)}`,
    );
  }
  if (unfinished.chroma === run.restoresChroma) return;
  const [was, now] = unfinished.chroma
    ? ["restoring Chroma too", "leaves Chroma alone (--no-chroma, or a snapshot without Chroma)"]
    : [
      `leaving Chroma alone${unfinished.pre_restore_snapshot === null ? "" : " (its pre-restore snapshot holds none)"}`,
      "would replace Chroma",
    ];
  throw new RefusedError(
    `the unfinished restore of ${unfinished.stamp} recorded in ${path} was ${was}; this run ${now}; nothing was ` +
      `changed; ${finishOrGoBack(unfinished, config)}; then run this restore`,
  );
}

/**
 * The first step of a live restore: clear temporaries of the intent file left by a kill, and when a restore was
 * left unfinished (`intent.unfinished`), settle the Chroma swap it was in (undone, or finished once the new entries
 * were all in) and clear what it staged; each change noted.
 */
export function settleStep(intent: IntentContext, reporter: Reporter): IntentStep {
  const { db, unfinished, record: { chroma_dir: chroma } } = intent;
  return {
    doing: unfinished?.swap
      ? `settling the Chroma swap of the unfinished restore of ${unfinished.stamp} in ${chroma}`
      : `clearing what an unfinished restore left beside ${db}`,
    run: (changes) => {
      removeIntentTemporaries(db, reporter, changes);
      if (unfinished === null) return;
      if (unfinished.swap !== null) {
        changes.push(settleSwap(chroma, unfinished.swap, (swap) => {
          unfinished.swap = swap;
          writeIntent(db, unfinished);
        }, reporter));
      }
      // Chroma is whole now; what the unfinished run staged goes, also when this run leaves Chroma alone.
      const removed = sameFolder(unfinished.chroma_dir, chroma) ? clearLeftovers(chroma, reporter) : 0;
      if (removed > 0) {
        changes.push({ what: `removed ${removed} leftover(s) of the unfinished restore from ${chroma}` });
      }
    },
  };
}

/** Remove temporaries of the intent file that a killed write left. */
function removeIntentTemporaries(dbPath: string, reporter: Reporter, changes: Change[]): void {
  const path = restoreIntentPath(dbPath);
  let removed = 0;
  for (const entry of entriesOrNone(dirname(path))) {
    if (!entry.name.startsWith(`.${basename(path)}.tmp-`)) continue;
    removeQuietly(join(dirname(path), entry.name));
    removed += 1;
    reporter.event("warning", "stale_leftover_removed", { path: join(dirname(path), entry.name) });
  }
  if (removed > 0) changes.push({ what: `removed ${removed} temporary file(s) of the record ${path}` });
}

function sameFolder(first: string, second: string): boolean {
  return resolve(first) === resolve(second);
}

/** The flag of each of the store's paths. */
const PATH_FLAGS = {
  db: "--db",
  backupDir: "--backup-dir",
  registry: "--registry",
  chromaDir: "--chroma-dir",
} as const;

/**
 * The path flags (each with a leading space) a command printed for the operator needs to reach this run's store: the
 * paths given as flags, and `recorded` ones where they differ from this run's. Run without them, the command would
 * work on the paths of the environment or the defaults. `keys`: the paths the command uses (default all four).
 */
export function pathFlags(
  config: Config,
  recorded: Partial<Record<keyof typeof PATH_FLAGS, string>> = {},
  keys: readonly (keyof typeof PATH_FLAGS)[] = ["backupDir", "db", "registry", "chromaDir"],
): string {
  return keys.map((key) => {
    const path = recorded[key] ?? config[key].path;
    const named = config[key].source === "flag" || resolve(path) !== resolve(config[key].path);
    return named ? ` ${PATH_FLAGS[key]} ${quoted(path)}` : "";
  }).join("");
}

/**
 * The next step while `intent` is unfinished: finish it (the same restore again) or go back (the pre-restore
 * snapshot), as commands for the store of this run: with the path flags it was given (run without them, the commands
 * would work on the paths of the environment or the defaults), and the recorded backup and Chroma folders when they
 * are others.
 */
export function finishOrGoBack(intent: RestoreIntent, config: Config): string {
  // the folders the record names (a run elsewhere would not finish this one), the other paths as this run got them
  const where = pathFlags(config, { backupDir: intent.backup_dir, chromaDir: intent.chroma_dir });
  const source = intent.remote ? remoteSourceWords(intent.remote) : intent.stamp;
  // each command unquoted as a whole, ended by a ";" or the line's end as a shell ends it: its words are quoted
  // for a shell (quoted), which runs it as printed
  const finish = `atocore-backup restore ${source} --confirm-service-stopped${intent.chroma ? "" : " --no-chroma"}`;
  const back = intent.pre_restore_snapshot === null
    ? "or go back by restoring another snapshot (no pre-restore snapshot was taken)"
    : `or go back to the pre-restore snapshot with: ${goBackCommand(intent, config)}`;
  return `finish it with: ${finish}${where}; ${back}`;
}

/** The words after `restore` that fetch `remote`'s snapshot again, with the flags its restore needed. */
function remoteSourceWords(remote: RemoteOrigin): string {
  const location = locationFlags(remote.location).map(([flag, value]) => ` ${flag} ${quoted(value)}`).join("");
  const identity = remote.identity_file === undefined ? "FILE" : quoted(remote.identity_file);
  return `${remote.snapshot} --from-remote${location} --identity ${identity}` +
    `${remote.unauthenticated ? " --allow-unauthenticated" : ""}${remote.other_source ? " --other-source" : ""}`;
}

/** The command, unquoted as a whole, that restores the pre-restore snapshot `intent` names into this run's store. */
function goBackCommand(intent: RestoreIntent, config: Config): string {
  const where = pathFlags(config, { backupDir: intent.backup_dir, chromaDir: intent.chroma_dir });
  return `atocore-backup restore ${intent.pre_restore_snapshot} --confirm-service-stopped${where}`;
}

/**
 * Refuse to back up a store that a restore left unfinished: it may be part old, part new.
 *
 * @throws {RefusedError} naming the record and how to finish or go back.
 */
export function refuseUnfinishedRestore(config: Config): void {
  const intent = readIntent(config.db.path);
  if (intent === null) return;
  throw new RefusedError(
    `a restore of snapshot ${intent.stamp} into this store did not finish (recorded in ` +
      `${restoreIntentPath(config.db.path)} at ${intent.started_at}): the live store may be part old, part new, ` +
      `and is not backed up; ${finishOrGoBack(intent, config)}`,
  );
}

/**
 * A path (or another value) as a shell word, for a command printed for the operator to run. One holding a control
 * character (a line break) is written `$'…'` with escapes, which bash and zsh turn back into those bytes: the message
 * stays one line, where the escape a message shows in its place would reach the command as a backslash and a letter.
 */
export function quoted(path: string): string {
  if (/^[\w./@%+=:,-]+$/.test(path)) return path;
  // deno-lint-ignore no-control-regex
  if (!/[\x00-\x1f\x7f-\x9f]/.test(path)) return `'${path.replaceAll("'", `'\\''`)}'`;
  // deno-lint-ignore no-control-regex
  return `$'${path.replace(/[\\'\x00-\x1f\x7f-\x9f]/g, ansiEscape)}'`;
}

/** One character of a `$'…'` word: `\\`, `\'`, `\n`, `\t`, `\r`, or its UTF-8 bytes as `\xHH`. */
function ansiEscape(char: string): string {
  const named: Record<string, string> = { "\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r" };
  if (char in named) return named[char];
  return [...new TextEncoder().encode(char)].map((byte) => `\\x${byte.toString(16).padStart(2, "0")}`).join("");
}
