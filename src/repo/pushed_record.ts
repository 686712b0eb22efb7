/**
 * The stamps this backup folder pushed to one repository, kept beside its pin: each with the SHA-256 of the metadata it
 * was pushed with and the name it was listed under. Written only once a snapshot is listed; one lost, damaged or of
 * another repository reads as empty, so it can only make a push send again, never pass over a stamp never pushed.
 *
 * @module
 */
import { parseBoundedJson } from "../text/bounded_json.ts";
import { describeOsError } from "../errors.ts";
import type { StateFile } from "../fs/state_folder.ts";
import { lstatOrNull } from "../fs/probe.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";
import { isStamp } from "../snapshot/stamp.ts";

/** What the record keeps of one stamp pushed. */
interface Pushed {
  local_sha256: string;
  snapshot: string;
}

/** The largest record read: a line per local snapshot. */
const MAX_RECORD_BYTES = 16 << 20;

/** The record of one repository: stamp → what was pushed. */
export class PushedStamps {
  private readonly stamps = new Map<string, Pushed>();
  /** Why the record could not be read or written, when it could not (the push goes on; the next may send again). */
  readonly problems: string[] = [];
  /** A folder is where the record belongs: not written, and said once, when read. */
  private folderInTheWay = false;

  private constructor(private readonly file: StateFile, private readonly repositoryId: string) {}

  /** The record in `file` for repository `repositoryId`; empty when missing, of another repository, or unreadable. */
  static load(file: StateFile, repositoryId: string): PushedStamps {
    const path = file.path;
    const record = new PushedStamps(file, repositoryId);
    let value: { repository_id?: unknown; stamps?: unknown };
    try {
      value = parseBoundedJson(readRegularTextFile(path, { maxBytes: MAX_RECORD_BYTES })) as typeof value;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return record;
      // a folder there cannot be replaced by the record: said once, here, with what to do
      record.folderInTheWay = lstatOrNull(path)?.isDirectory ?? false;
      record.problems.push(
        record.folderInTheWay
          ? `${path} is a folder, where the record of the stamps pushed belongs: remove it (until then, if a remote ` +
            "cleanup removes a stamp pushed, 'push --all' sends it again)"
          : `${path} unreadable (${describeOsError(error)}); it is written anew`,
      );
      return record;
    }
    if (value?.repository_id !== repositoryId || typeof value.stamps !== "object" || value.stamps === null) {
      return record;
    }
    for (const [stamp, pushed] of Object.entries(value.stamps as Record<string, Partial<Pushed> | null>)) {
      const { local_sha256: sha256, snapshot } = pushed ?? {};
      if (
        isStamp(stamp) && typeof sha256 === "string" && /^[0-9a-f]{64}$/.test(sha256) && typeof snapshot === "string"
      ) {
        record.stamps.set(stamp, { local_sha256: sha256, snapshot });
      }
    }
    return record;
  }

  /** The record at `path`, only to be read (a restore asks whether this folder pushed a snapshot). */
  static read(path: string, repositoryId: string): PushedStamps {
    const readOnly: StateFile = {
      path,
      replace: () => {
        throw new Error(`${path} is only read here`);
      },
      removeTemporaries: () => {},
    };
    return PushedStamps.load(readOnly, repositoryId);
  }

  /** Whether this folder's record lists snapshot `name` (`<stamp>_<push id>`) as the push of its stamp. */
  lists(name: string): boolean {
    return this.stamps.get(name.split("_")[0])?.snapshot === name;
  }

  /** The name `stamp` was listed under when pushed with metadata of SHA-256 `localSha256`, or `null`. */
  pushedAs(stamp: string, localSha256: string): string | null {
    const pushed = this.stamps.get(stamp);
    return pushed?.local_sha256 === localSha256 ? pushed.snapshot : null;
  }

  /** Whether a stamp later than `stamp` is recorded under a name in `listed` (the repository's snapshots now). */
  listedLater(stamp: string, listed: Set<string>): boolean {
    return [...this.stamps].some(([later, pushed]) => later > stamp && listed.has(pushed.snapshot));
  }

  /**
   * Record `stamp` listed as `snapshot`, keep the stamps `held` says the backup folder still holds, and write the
   * record (atomically) when that changed it; a failure is noted in {@linkcode problems}.
   */
  add(stamp: string, pushed: Pushed, held: (stamp: string) => boolean): void {
    const before = JSON.stringify([...this.stamps]);
    this.stamps.set(stamp, pushed);
    for (const kept of this.stamps.keys()) if (!held(kept)) this.stamps.delete(kept);
    if (JSON.stringify([...this.stamps]) === before || this.folderInTheWay) return;
    const stamps = Object.fromEntries([...this.stamps].sort(([a], [b]) => a < b ? -1 : 1));
    try {
      this.file.removeTemporaries(); // one a killed push was writing (the caller's lock rules out a live one)
      this.file.replace(JSON.stringify({ repository_id: this.repositoryId, stamps }, null, 1) + "\n");
    } catch (error) {
      this.problems.push(
        `${this.file.path} not written (${
          describeOsError(error)
        }): if a remote cleanup removes ${stamp}, 'push --all' ` +
          "sends it again",
      );
    }
  }
}
