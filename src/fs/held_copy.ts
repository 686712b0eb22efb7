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
 * throws stops the copy).
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
  },
): CopyTotals {
  const total = entries.reduce((sum, entry) => sum + (entry.kind === "file" ? entry.size : 0), 0);
  const totals = { files: 0, bytes: 0 };
  const buffer = new Uint8Array(1 << 20);
  using folders = new OpenTree(calls, target);
  for (const entry of entries) {
    const from = join(source, entry.path);
    const { parent, name, shown } = folders.place(entry.path);
    if (entry.kind === "dir") {
      calls.makeFolder(parent, name, 0o700, shown); // opened to others once filled, below
      folders.open(entry.path);
    } else if (entry.kind === "symlink") {
      const target = Deno.readLinkSync(from);
      hooks.onLinked?.(entry, target); // read once: the target checked is the one made
      calls.makeLink(target, parent, name, shown);
    } else if (entry.kind === "file") {
      const hash = hooks.onCopied ? createHash("sha256") : null;
      totals.bytes += copyFile(calls, from, { parent, name, shown }, buffer, hash);
      if (hash !== null) hooks.onCopied!(entry, hash.digest("hex"));
      totals.files += 1;
      hooks.onProgress?.(totals.bytes, total);
    }
  }
  for (const entry of entries.filter((entry) => entry.kind === "dir").reverse()) {
    calls.setMode(folders.open(entry.path), modeOf(join(source, entry.path)), join(target.path, entry.path));
  }
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
  using source = Deno.openSync(from, { read: true });
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
 * Open each file and folder of `entries` inside the held folder `target` (never through a link), `fit` it, and flush
 * it; then flush `target` itself.
 */
export function fitHeld(calls: FolderCalls, target: OpenFolder, entries: TreeEntry[], fit: Fit): void {
  using folders = new OpenTree(calls, target);
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
  for (const entry of entries.filter((entry) => entry.kind === "dir").reverse()) {
    const shown = join(target.path, entry.path);
    fit(entry, folders.open(entry.path), shown);
    calls.syncNow(folders.open(entry.path), shown);
  }
  calls.syncNow(target.fd, target.path);
}

/** The permission bits a copy of `path` gets: its own, less any write permission for others. */
function modeOf(path: string): number {
  return (Deno.statSync(path).mode ?? FOLDER_MODE) & FOLDER_MODE;
}

/**
 * The folders of a tree below a held one, each opened once inside its parent (never through a link), made first where
 * asked, all closed together.
 */
export class OpenTree implements Disposable {
  private readonly fds = new Map<string, number>();

  /** Hold the tree below `root`; with `ownsRoot`, `root`'s descriptor is closed with the others. */
  constructor(
    private readonly calls: FolderCalls,
    private readonly root: OpenFolder,
    private readonly ownsRoot = false,
  ) {
    this.fds.set(".", root.fd);
  }

  /**
   * Where the entry at the relative `path` goes: its parent's descriptor (the folders above made first with `make`),
   * its name, its path for messages.
   */
  place(path: string, make = false): { parent: number; name: string; shown: string } {
    return { parent: this.open(dirname(path), make), name: basename(path), shown: join(this.root.path, path) };
  }

  /** The descriptor of the folder at the relative `path`, opened (made first with `make`) the first time it is asked for. */
  open(path: string, make = false): number {
    const known = this.fds.get(path);
    if (known !== undefined) return known;
    const { parent, name, shown } = this.place(path, make);
    if (make) {
      try {
        this.calls.makeFolder(parent, name, FOLDER_MODE, shown);
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
    }
    const fd = this.calls.openFolder(name, { fd: parent, shown });
    this.fds.set(path, fd);
    return fd;
  }

  /** Close every folder opened here (the root only when owned). */
  [Symbol.dispose](): void {
    for (const [path, fd] of this.fds) if (path !== "." || this.ownsRoot) this.calls.close(fd);
  }
}
