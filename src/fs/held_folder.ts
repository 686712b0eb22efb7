/**
 * A folder held open, whose entries are reached through the open descriptor (`/proc/self/fd/N/name`) rather than by its
 * path: a writer who renames the folder, or swaps it or a folder above it for a link, cannot redirect them.
 *
 * @module
 */
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { FOLDER_MODE } from "./durable.ts";

/** Where an open descriptor's folder can be named; without `/proc` (a bare chroot) entries go by path. */
const DESCRIPTORS = "/proc/self/fd";

let descriptorsNamed: boolean | undefined;

/** An open folder: its path, for messages, and its entries by the descriptor. */
export class HeldFolder {
  private constructor(readonly path: string, private readonly handle: FileHandle) {}

  /** Open the folder at `path`, following links (the caller's own configured path). */
  static async open(path: string): Promise<HeldFolder> {
    return new HeldFolder(path, await open(path, constants.O_RDONLY | constants.O_DIRECTORY));
  }

  /**
   * The folder `name` inside this one, made first when `make` and missing (this folder fsynced then). A link or a file
   * in its place is refused with `notFolder`'s error, never followed.
   */
  async child(name: string, make: boolean, notFolder: (path: string) => Error): Promise<HeldFolder> {
    const path = join(this.path, name);
    if (make) {
      try {
        await this.naming(() => Deno.mkdir(this.entry(name), { mode: FOLDER_MODE }));
        await this.sync();
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
    }
    let handle: FileHandle;
    try {
      handle = await open(this.entry(name), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ELOOP" || code === "ENOTDIR") throw notFolder(path);
      throw this.named(error);
    }
    return new HeldFolder(path, handle);
  }

  /** A path that reaches `name` inside this folder, whatever this folder's own path leads to now. */
  entry(name: string): string {
    descriptorsNamed ??= hasDescriptorFolder();
    return descriptorsNamed ? `${DESCRIPTORS}/${this.handle.fd}/${name}` : join(this.path, name);
  }

  /** Run `step`; an error it throws names this folder by its path instead of by the descriptor. */
  async naming<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      throw this.named(error);
    }
  }

  /** Make this folder's entries durable (its new names and removed ones). */
  async sync(): Promise<void> {
    await this.naming(() => this.handle.sync());
  }

  /** Close the descriptor. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.handle.close();
  }

  /** `error` with this folder's descriptor name replaced by its path, in its message and its `path`. */
  private named(error: unknown): unknown {
    if (!(error instanceof Error)) return error;
    const by = `${DESCRIPTORS}/${this.handle.fd}`;
    error.message = error.message.replaceAll(by, this.path);
    const carrier = error as { path?: unknown };
    if (typeof carrier.path === "string") carrier.path = carrier.path.replace(by, this.path);
    return error;
  }
}

function hasDescriptorFolder(): boolean {
  try {
    return Deno.statSync(DESCRIPTORS).isDirectory;
  } catch {
    return false;
  }
}
