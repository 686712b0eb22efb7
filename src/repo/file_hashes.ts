/**
 * Each rebuilt file's SHA-256 taken in file order while a fetch writes its extents, so that the fetch proves each whole
 * file without reading it back: only the extents written ahead of a gap are read again, from the file.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { join } from "node:path";
import { OperationError } from "../errors.ts";
import { sha256File } from "../fs/hash.ts";
import type { DocumentFile, Extent } from "./document.ts";

/** Bytes read at once when an extent written earlier is read back (an extent is at most 8 MiB + 64 KiB). */
const READ_BYTES = 1 << 20;

interface Progress {
  hash: Hash;
  /** Index of the first extent not yet hashed. */
  next: number;
  written: boolean[];
  index: Map<Extent, number>;
}

/** The hashes of the files of one fetch, fed as extents are written. */
export class FileHashes {
  private readonly files = new Map<DocumentFile, Progress>();
  private buffer: Uint8Array | null = null;

  /** Files rebuilt under `root`. */
  constructor(private readonly root: string) {}

  /**
   * Note that `extent` of `file` is written with `bytes` (its bytes, just written): hashed now when every byte before
   * it is, then every extent after it already written, read back from the file.
   */
  written(file: DocumentFile, extent: Extent, bytes: Uint8Array): void {
    let progress = this.files.get(file);
    if (!progress) {
      const index = new Map(file.extents.map((each, at) => [each, at]));
      this.files.set(file, progress = { hash: createHash("sha256"), next: 0, written: [], index });
    }
    const at = progress.index.get(extent)!;
    progress.written[at] = true;
    if (at !== progress.next) return;
    progress.hash.update(bytes);
    progress.next += 1;
    while (progress.written[progress.next]) {
      this.readBack(file, file.extents[progress.next], progress.hash);
      progress.next += 1;
    }
  }

  /**
   * Check every file against its SHA-256 in the document (a file whose extents were not all noted is read whole).
   *
   * @throws {OperationError} naming the file and the snapshot when one does not match.
   */
  check(files: readonly DocumentFile[], snapshot: string): void {
    for (const file of files) {
      const progress = this.files.get(file);
      const digest = progress?.next === file.extents.length
        ? progress.hash.digest("hex")
        : sha256File(join(this.root, file.path));
      if (digest !== file.sha256) {
        throw new OperationError(`snapshot ${snapshot}: ${file.path} rebuilt does not match its SHA-256`);
      }
    }
  }

  private readBack(file: DocumentFile, [at, , , length]: Extent, hash: Hash): void {
    this.buffer ??= new Uint8Array(READ_BYTES);
    using handle = Deno.openSync(join(this.root, file.path), { read: true });
    handle.seekSync(at, Deno.SeekMode.Start);
    for (let done = 0; done < length;) {
      const read = handle.readSync(this.buffer.subarray(0, Math.min(READ_BYTES, length - done)));
      if (read === null) break; // short: the digest will not match
      hash.update(this.buffer.subarray(0, read));
      done += read;
    }
  }
}
