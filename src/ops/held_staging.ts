/**
 * The staging folder of one create, held open: `.staging` opened by name in the backup folder and the snapshot's folder
 * made and opened by name in it (libc's `*at` calls), so what create writes there, and the removal of a failed one,
 * goes into the folder it made, whatever another writer of the backup folder turns its path into meanwhile.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { HeldFolder } from "../fs/held_folder.ts";

/** The snapshot's folder in `.staging`, held from its making to its publishing. */
export class HeldStaging implements AsyncDisposable {
  private left = false;

  private constructor(
    private readonly backup: HeldFolder,
    private readonly staging: HeldFolder,
    /** The snapshot's folder. */
    readonly root: HeldFolder,
  ) {}

  /**
   * Make the new folder `root` (`<backup>/.staging/<name>`, `.staging` made when missing) and hold it and `.staging`.
   * A link or a file in place of `.staging` is refused with `notFolder`'s error, never followed.
   */
  static async make(root: string, notFolder: (path: string) => Error): Promise<HeldStaging> {
    const backup = HeldFolder.open(dirname(dirname(root)));
    const staging = await backup.child(basename(dirname(root)), notFolder).catch(async (error) => {
      await backup[Symbol.asyncDispose]();
      throw error;
    });
    try {
      return new HeldStaging(backup, staging, await staging.child(basename(root), notFolder));
    } catch (error) {
      await staging[Symbol.asyncDispose]();
      await backup[Symbol.asyncDispose]();
      throw error;
    }
  }

  /** The folder `name` in the snapshot's folder, made when missing, held (the caller disposes of it). */
  folder(name: string, notFolder: (path: string) => Error): Promise<HeldFolder> {
    return this.root.child(name, notFolder);
  }

  /**
   * The path of `.staging` or of the snapshot's folder when its name no longer holds the folder made (moved, or swapped
   * for a link, since); `null` while both names still hold them, or once create moved it out ({@linkcode moved}).
   */
  swapped(): string | null {
    if (this.left) return null;
    if (!this.backup.holds(basename(this.staging.path), this.staging)) return this.staging.path;
    if (!this.staging.holds(basename(this.root.path), this.root)) return this.root.path;
    return null;
  }

  /**
   * Remove the snapshot's folder and all in it through `.staging`'s descriptor, when its name there still holds the
   * folder made; one another program moved away is emptied through its own descriptor and left there, empty (a link
   * in its place is not followed); one create moved out itself ({@linkcode moved}) is kept.
   */
  remove(): void {
    if (this.left) return;
    const name = basename(this.root.path);
    if (this.staging.holds(name, this.root)) this.staging.removeTree(name);
    else this.root.empty();
  }

  /** Note that create moved the snapshot's folder out of `.staging` itself (published it or set it aside). */
  moved(): void {
    this.left = true;
  }

  /** Close the three descriptors. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.root[Symbol.asyncDispose]();
    await this.staging[Symbol.asyncDispose]();
    await this.backup[Symbol.asyncDispose]();
  }
}
