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
import type { DocumentFile } from "./document.ts";
import { READ_BYTES } from "./blocks.ts";

/** Where a file's extents lie, in file order: copied, as the fetch empties the document's own extent tables. */
interface Layout {
  ats: Float64Array;
  lengths: Uint32Array;
}

interface Progress {
  hash: Hash;
  /** Index of the first extent not yet hashed. */
  next: number;
  written: Uint8Array;
}

/** The hashes of the files of one fetch, fed as extents are written. */
export class FileHashes {
  private readonly layouts: Layout[];
  private readonly progress = new Map<number, Progress>();
  private buffer: Uint8Array | null = null;
  private digests: string[] | null = null;

  /** Files rebuilt under `root`: `files` with their extents (read here, before a fetch lets them go). */
  constructor(private readonly root: string, private readonly files: readonly DocumentFile[]) {
    this.layouts = files.map((file) => ({
      ats: file.extents.at.slice(),
      lengths: file.extents.lengths.slice(),
    }));
  }

  /**
   * Note that the extent at `at` of file number `index` (in `files`) is written with `bytes` (its bytes, just
   * written): hashed now when every byte before it is, then every extent after it already written, read back from
   * the file.
   */
  written(index: number, at: number, bytes: Uint8Array): void {
    const layout = this.layouts[index];
    let progress = this.progress.get(index);
    if (!progress) {
      progress = { hash: createHash("sha256"), next: 0, written: new Uint8Array(layout.ats.length) };
      this.progress.set(index, progress);
    }
    const position = positionOf(layout.ats, at);
    progress.written[position] = 1;
    if (position !== progress.next) return;
    progress.hash.update(bytes);
    progress.next += 1;
    while (progress.written[progress.next]) {
      this.readBack(this.files[index], layout.ats[progress.next], layout.lengths[progress.next], progress.hash);
      progress.next += 1;
    }
  }

  /**
   * The index of the first file whose bytes do not match its SHA-256 in the document, or `null` (a file whose extents
   * were not all noted is read whole). The digests are taken once.
   */
  firstMismatch(): number | null {
    this.digests ??= this.files.map((file, index) => {
      const progress = this.progress.get(index);
      return progress !== undefined && progress.next === this.layouts[index].ats.length
        ? progress.hash.digest("hex")
        : sha256File(join(this.root, file.path));
    });
    const index = this.files.findIndex((file, at) => this.digests![at] !== file.sha256);
    return index < 0 ? null : index;
  }

  /**
   * Check every file against its SHA-256 in the document, once no extent of a mismatched file was found damaged: its
   * intact extents were put together wrongly, which only the whole file's hash shows (`remote verify` checks extents).
   *
   * @throws {OperationError} naming the file and the snapshot when one does not match.
   */
  check(snapshot: string): void {
    const index = this.firstMismatch();
    if (index !== null) {
      throw new OperationError(
        `snapshot ${snapshot}: ${this.files[index].path} rebuilt does not match its SHA-256, though each of its ` +
          "extents matches its own hash (put together wrongly: a forged document, or a push that trusted a rewritten " +
          "push cache; 'remote verify' cannot see this)",
      );
    }
  }

  private readBack(file: DocumentFile, at: number, length: number, hash: Hash): void {
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

/** The position of the extent at file offset `at` among `ats` (ascending: a document lists extents in file order). */
function positionOf(ats: Float64Array, at: number): number {
  let low = 0, high = ats.length - 1;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (ats[middle] < at) low = middle + 1;
    else high = middle;
  }
  return low;
}
