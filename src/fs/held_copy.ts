/**
 * Copying a walked tree into a folder held open, each entry made, fitted and flushed inside its parent's descriptor
 * (libc's `*at` calls): a writer who swaps that folder for a link meanwhile cannot send a byte, a mode or an owner
 * elsewhere.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { FolderCalls } from "../sys/folder_calls.ts";
import { FOLDER_MODE } from "./durable.ts";
import type { CopyTotals, TreeEntry } from "./tree.ts";
import { OpenedRegular } from "./opened_regular.ts";

/** A folder held open: its descriptor, and its path for messages. */
export interface OpenFolder {
  fd: number;
  path: string;
}

/** What is done to each file and folder of a tree before it is flushed (its mode and owner), through its descriptor. */
export type Fit = (entry: TreeEntry, fd: number, shown: string) => void;

/**
 * Copy `entries` (walked from `source`, parents first) into the held folder `target`: files with their content, mode
 * (less any write permission for others) and modification time, links as links
 * (never followed); sockets and devices are skipped. Nothing is flushed: {@linkcode fitHeld} does it. `onCopied`
 * hears each file's SHA-256, hashed as its bytes pass, and `onLinked` each link's target as it is made (what either
 * throws stops the copy). `readFile`, when given, reads each file instead of an open of its path (which follows
 * links), handing its bytes on in order; its mode is then read by path and its modification time is the walk's.
 */
export function copyIntoHeld(
  calls: FolderCalls,
  source: string,
  entries: TreeEntry[],
  target: OpenFolder,
  hooks: {
    onProgress?: (done: number, total: number) => void;
    onCopied?: (entry: TreeEntry, sha256: string) => void;
    onLinked?: (entry: TreeEntry, target: string) => void;
    readFile?: (from: string, entry: TreeEntry, onChunk: (chunk: Uint8Array) => void) => void;
  },
): CopyTotals {
  const total = entries.reduce((sum, entry) => sum + (entry.kind === "file" ? entry.size : 0), 0);
  const totals = { files: 0, bytes: 0 };
  const buffer = new Uint8Array(1 << 20);
  // each folder as open to others as its source, once filled (one without write permission could not be filled)
  const onClose = (path: string, fd: number, shown: string) => calls.setMode(fd, modeOf(join(source, path)), shown);
  using folders = new OpenTree(calls, target, { onClose });
  for (const entry of entries) {
    const from = join(source, entry.path);
    const { parent, name, shown } = folders.place(entry.path);
    if (entry.kind === "dir") {
      calls.makeFolder(parent, name, 0o700, shown); // opened to others once filled (onClose)
      folders.open(entry.path);
    } else if (entry.kind === "symlink") {
      const target = Deno.readLinkSync(from);
      hooks.onLinked?.(entry, target); // read once: the target checked is the one made
      calls.makeLink(target, parent, name, shown);
    } else if (entry.kind === "file") {
      const hash = hooks.onCopied ? createHash("sha256") : null;
      const to = { parent, name, shown };
      totals.bytes += hooks.readFile
        ? copyRead(calls, from, to, (onChunk) => hooks.readFile!(from, entry, onChunk), entry.mtimeMs, hash)
        : copyFile(calls, from, to, buffer, hash);
      if (hash !== null) hooks.onCopied!(entry, hash.digest("hex"));
      totals.files += 1;
      hooks.onProgress?.(totals.bytes, total);
    }
  }
  folders.finish();
  return totals;
}

/**
 * Copy the file `from` to a new file `to.name` in the folder `to.parent`, with its mode and modification time, its
 * bytes fed to `hash` as they pass.
 */
function copyFile(
  calls: FolderCalls,
  from: string,
  to: { parent: number; name: string; shown: string },
  buffer: Uint8Array,
  hash: Hash | null,
): number {
  using source = OpenedRegular.open(from); // never through a link, never waiting on a FIFO swapped in since the walk
  const info = source.statSync();
  const fd = calls.createFile(to.parent, to.name, 0o600, to.shown);
  try {
    let bytes = 0;
    for (let read = source.readSync(buffer); read !== null; read = source.readSync(buffer)) {
      hash?.update(buffer.subarray(0, read));
      calls.write(fd, buffer.subarray(0, read), to.shown);
      bytes += read;
    }
    calls.setMode(fd, (info.mode ?? 0o644) & FOLDER_MODE, to.shown);
    if (info.mtime !== null) calls.setModified(fd, info.mtime.getTime(), to.shown);
    return bytes;
  } finally {
    calls.close(fd);
  }
}

/**
 * Write what `read` hands on into a new file `to.name` in the folder `to.parent`, with the mode of `from` (read by path)
 * and the modification time `mtimeMs`, its bytes fed to `hash` as they pass.
 */
function copyRead(
  calls: FolderCalls,
  from: string,
  to: { parent: number; name: string; shown: string },
  read: (onChunk: (chunk: Uint8Array) => void) => void,
  mtimeMs: number | null,
  hash: Hash | null,
): number {
  const fd = calls.createFile(to.parent, to.name, 0o600, to.shown);
  try {
    let bytes = 0;
    read((chunk) => {
      hash?.update(chunk);
      calls.write(fd, chunk, to.shown);
      bytes += chunk.length;
    });
    calls.setMode(fd, modeOf(from), to.shown);
    if (mtimeMs !== null) calls.setModified(fd, mtimeMs, to.shown);
    return bytes;
  } finally {
    calls.close(fd);
  }
}

/**
 * Open each file and folder of `entries` inside the held folder `target` (never through a link), `fit` it, and flush
 * it; then flush `target` itself.
 */
export function fitHeld(calls: FolderCalls, target: OpenFolder, entries: TreeEntry[], fit: Fit): void {
  const dirs = new Map(entries.filter((entry) => entry.kind === "dir").map((entry) => [entry.path, entry]));
  const onClose = (path: string, fd: number, shown: string) => {
    fit(dirs.get(path)!, fd, shown);
    calls.syncNow(fd, shown);
  };
  using folders = new OpenTree(calls, target, { onClose });
  for (const entry of entries) {
    if (entry.kind === "dir") folders.open(entry.path);
    if (entry.kind !== "file") continue;
    const { parent, name, shown } = folders.place(entry.path);
    const fd = calls.openFile(parent, name, shown);
    try {
      fit(entry, fd, shown);
      calls.syncNow(fd, shown);
    } finally {
      calls.close(fd);
    }
  }
  folders.finish();
  calls.syncNow(target.fd, target.path);
}

/** The permission bits a copy of `path` gets: its own, less any write permission for others. */
function modeOf(path: string): number {
  return (Deno.statSync(path).mode ?? FOLDER_MODE) & FOLDER_MODE;
}

/**
 * The folders of a tree below a held one, opened one inside the other (never through a link), made first where asked:
 * only the chain down to the folder last asked for is open (a tree's depth of descriptors, not its number of folders);
 * each folder left is handed to `onClose` first (its mode set, its entries flushed), by {@linkcode OpenTree.finish}
 * at the end too. Disposing closes what is open without `onClose` (after a failure).
 */
export class OpenTree implements Disposable {
  private readonly chain: { path: string; fd: number }[] = [];

  /** Hold the tree below `root`; with `ownsRoot`, `root`'s descriptor is closed with the others. */
  constructor(
    private readonly calls: FolderCalls,
    private readonly root: OpenFolder,
    private readonly options: { ownsRoot?: boolean; onClose?: (path: string, fd: number, shown: string) => void } = {},
  ) {}

  /**
   * Where the entry at the relative `path` goes: its parent's descriptor (the folders above made first with `make`),
   * its name, its path for messages.
   */
  place(path: string, make = false): { parent: number; name: string; shown: string } {
    return { parent: this.open(dirname(path), make), name: basename(path), shown: join(this.root.path, path) };
  }

  /** The descriptor of the folder at the relative `path` (made first with `make`), the folders off its way left. */
  open(path: string, make = false): number {
    const top = () => this.chain.at(-1);
    while (top() && path !== top()!.path && !path.startsWith(`${top()!.path}/`)) this.leave(true);
    if (path === ".") return this.root.fd;
    const below = top() === undefined ? path : path.slice(top()!.path.length + 1);
    for (const name of below === "" ? [] : below.split("/")) {
      const parent = top()?.fd ?? this.root.fd;
      const at = top() === undefined ? name : `${top()!.path}/${name}`;
      const shown = join(this.root.path, at);
      if (make) {
        try {
          this.calls.makeFolder(parent, name, FOLDER_MODE, shown);
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        }
      }
      this.chain.push({ path: at, fd: this.calls.openFolder(name, { fd: parent, shown }) });
    }
    return top()!.fd;
  }

  /** Leave every folder still open, each handed to `onClose`: the end of a walk that went well. */
  finish(): void {
    while (this.chain.length > 0) this.leave(true);
  }

  private leave(finished: boolean): void {
    const { path, fd } = this.chain.pop()!;
    try {
      if (finished) this.options.onClose?.(path, fd, join(this.root.path, path));
    } finally {
      this.calls.close(fd);
    }
  }

  /** Close every folder still open (the root only when owned), without `onClose`. */
  [Symbol.dispose](): void {
    while (this.chain.length > 0) this.leave(false);
    if (this.options.ownsRoot) this.calls.close(this.root.fd);
  }
}
