/**
 * A regular file held by its descriptor and read as a `Deno.FsFile` is (`readSync`, `seekSync`): opened by
 * {@linkcode openRegularFile}, so a FIFO swapped in after the look never holds the open, a link is never read through,
 * and the file read is the one looked at.
 *
 * @module
 */
import { closeSync, fstatSync, readSync } from "node:fs";
import { openRegularFile } from "./regular_file.ts";

/** What a reader of a whole file or a range of it needs of an open file: a `Deno.FsFile`, or an {@linkcode OpenedRegular}. */
export type ReadableFile = Pick<Deno.FsFile, "readSync" | "seekSync">;

/** What {@linkcode OpenedRegular.statSync} tells of the file held: what `fileIdentity` compares. */
export type HeldFileInfo = Pick<Deno.FileInfo, "dev" | "ino" | "size" | "mtime" | "ctime" | "mode">;

/** The regular file at a path, held open by its descriptor; dispose of it to close it. */
export class OpenedRegular implements ReadableFile, Disposable {
  private position = 0;

  private constructor(private readonly fd: number) {}

  /**
   * Open the regular file at `path` (never a FIFO, a device or a folder, nor a link unless `followLinks`, for a live
   * path; checked before and once open).
   *
   * @throws as `openRegularFile` does: `NotRegularFileError` (also for one replaced while being opened), `NotFound`.
   */
  static open(path: string, options: { followLinks?: boolean } = {}): OpenedRegular {
    const { followLinks } = options;
    return new OpenedRegular(openRegularFile(path, { maxBytes: Number.MAX_SAFE_INTEGER, followLinks }).fd);
  }

  /** Read into `into` from the file's position: the bytes read, `null` at its end. */
  readSync(into: Uint8Array): number | null {
    if (into.length === 0) return 0;
    const read = readSync(this.fd, into, 0, into.length, this.position);
    if (read === 0) return null;
    this.position += read;
    return read;
  }

  /** Move the file's position (from its start, its position or its end); the new position. */
  seekSync(offset: number | bigint, whence: Deno.SeekMode): number {
    const base = whence === Deno.SeekMode.Start
      ? 0
      : whence === Deno.SeekMode.Current
      ? this.position
      : this.statSync().size;
    this.position = base + Number(offset);
    return this.position;
  }

  /** The device, inode, size, times and mode of the file held. */
  statSync(): HeldFileInfo {
    const info = fstatSync(this.fd);
    return { dev: info.dev, ino: info.ino, size: info.size, mtime: info.mtime, ctime: info.ctime, mode: info.mode };
  }

  /** Close the descriptor. */
  [Symbol.dispose](): void {
    closeSync(this.fd);
  }
}
