/**
 * What a restore copies is held to the manifest its validation read: each file is hashed as it is copied and compared
 * there before it goes live, so a snapshot changed in the backup folder after the validation puts nothing in place.
 *
 * @module
 */
import { join, relative } from "node:path";
import type { TreeEntry } from "../fs/tree.ts";
import type { ManifestEntry } from "../snapshot/manifest.ts";

/** A snapshot file whose copy is not what the manifest the validation read lists: the backup folder changed since. */
export class SnapshotChangedError extends Error {
  /** The snapshot file (or folder entry) that changed. */
  readonly path: string;
  /** The snapshot's stamp, for the next step. */
  readonly stamp: string;

  /** Make the error for `path` of snapshot `stamp`, with what differs (`why`). */
  constructor(stamp: string, path: string, why: string) {
    super(`the snapshot file ${path} ${why}`);
    this.name = "SnapshotChangedError";
    this.path = path;
    this.stamp = stamp;
  }
}

/** The checks of a copied tree: its walked entries against the manifest, then each file's bytes as copied. */
export interface TreeProof {
  /** Throws unless `entries` (walked from the tree) are the manifest's entries below it, kind and link target alike. */
  walked(entries: TreeEntry[]): void;
  /** Throws unless `sha256` (of the bytes copied for `entry`) is the manifest's. */
  copied(entry: TreeEntry, sha256: string): void;
  /** Throws unless `target` (read for the link `entry` as it was copied) is the manifest's. */
  linked(entry: TreeEntry, target: string): void;
}

/** The manifest of a validated snapshot, by path: what a copy of each of its files must hash to. */
export class ManifestProof {
  private readonly entries = new Map<string, ManifestEntry>();
  private readonly listed: boolean;

  /** Read `manifest` (the validated metadata's, not read again) of the snapshot `stamp` at `root`. */
  constructor(private readonly root: string, private readonly stamp: string, manifest: unknown) {
    this.listed = Array.isArray(manifest);
    for (const entry of this.listed ? manifest as ManifestEntry[] : []) this.entries.set(entry.path, entry);
  }

  /** The check of a copy of the snapshot file `path`; `undefined` for a snapshot without a manifest (the module's). */
  fileCheck(path: string): ((sha256: string) => void) | undefined {
    if (!this.listed) return undefined;
    return (sha256) => this.requireFile(relative(this.root, path), sha256);
  }

  /** The checks of a copy of the snapshot's tree at `source`; `undefined` for a snapshot without a manifest. */
  treeCheck(source: string): TreeProof | undefined {
    if (!this.listed) return undefined;
    const prefix = relative(this.root, source);
    return {
      walked: (entries) => this.requireTree(prefix, entries),
      copied: (entry, sha256) => this.requireFile(join(prefix, entry.path), sha256),
      linked: (entry, target) => this.requireLink(join(prefix, entry.path), target),
    };
  }

  private requireFile(path: string, sha256: string): void {
    const entry = this.entries.get(path);
    if (entry === undefined || !("sha256" in entry)) throw this.changed(path, "is not a file the manifest lists");
    if (entry.sha256 !== sha256) {
      throw this.changed(path, `was copied with SHA-256 ${sha256}, not the manifest's ${entry.sha256}`);
    }
  }

  private requireLink(path: string, target: string): void {
    const entry = this.entries.get(path);
    if (entry === undefined || !("symlink" in entry)) throw this.changed(path, "is not a link the manifest lists");
    if (entry.symlink !== target) throw this.changed(path, `no longer links to ${entry.symlink}, as the manifest says`);
  }

  private requireTree(prefix: string, walked: TreeEntry[]): void {
    const seen = new Set<string>();
    for (const entry of walked) {
      if (entry.kind === "dir") continue;
      const path = join(prefix, entry.path);
      seen.add(path);
      const listed = this.entries.get(path);
      if (listed === undefined) throw this.changed(path, "is not in the manifest");
      if (("symlink" in listed) !== (entry.kind === "symlink") || entry.kind === "other") {
        throw this.changed(
          path,
          `is a ${entry.kind === "other" ? "special file" : entry.kind} the manifest does not list`,
        );
      }
      if ("symlink" in listed) this.requireLink(path, Deno.readLinkSync(join(this.root, path)));
    }
    for (const path of this.entries.keys()) {
      if (path.startsWith(`${prefix}/`) && !seen.has(path)) throw this.changed(path, "is missing");
    }
  }

  private changed(path: string, why: string): SnapshotChangedError {
    return new SnapshotChangedError(this.stamp, join(this.root, path), why);
  }
}
