/**
 * When this host first saw each condemned marker (and refs without their snapshot object) of a repository, kept in the
 * backup folder: a cleanup acts on one only once known a whole grace period by this host's clock, not the writer's.
 *
 * @module
 */
import { describeOsError } from "../errors.ts";
import type { StateFile } from "../fs/state_folder.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";
import { parseName } from "./layout.ts";
import { parseBoundedJson } from "../text/bounded_json.ts";

/** The sightings of one repository's markers: name → first seen (ms since the epoch, this host's clock). */
export class MarkerSightings {
  private readonly seen = new Map<string, number>();
  /** Why the file could not be read or written, when it could not (the run goes on: unseen means seen now). */
  readonly problems: string[] = [];

  private constructor(private readonly file: StateFile, private readonly repositoryId: string) {}

  /**
   * The sightings kept in `file` for repository `repositoryId`; none when the file is missing, of another repository,
   * or unreadable (noted in {@linkcode problems}): every marker then counts as first seen now, which only delays.
   */
  static load(file: StateFile, repositoryId: string): MarkerSightings {
    const path = file.path;
    const sightings = new MarkerSightings(file, repositoryId);
    let value: { repository_id?: unknown; markers?: unknown };
    try {
      value = parseBoundedJson(readRegularTextFile(path)) as typeof value;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        sightings.problems.push(`${path} unreadable (${describeOsError(error)}); markers count as first seen now`);
      }
      return sightings;
    }
    if (value?.repository_id !== repositoryId || typeof value.markers !== "object" || value.markers === null) {
      return sightings;
    }
    for (const [name, at] of Object.entries(value.markers as Record<string, unknown>)) {
      const time = typeof at === "string" ? Date.parse(at) : NaN;
      const kind = parseName(name)?.kind;
      if ((kind === "condemned" || kind === "refs") && !Number.isNaN(time)) sightings.seen.set(name, time);
    }
    return sightings;
  }

  /**
   * When marker `name` was first seen, recording `now` when it was not seen before, or when its sighting lies ahead
   * of `now` by more than `tolerance` ms (this host's clock was set back since: counting again from now only delays).
   */
  firstSeen(name: string, now: number, tolerance: number): number {
    const at = this.seen.get(name);
    if (at !== undefined && at <= now + tolerance) return at;
    this.seen.set(name, now);
    return now;
  }

  /** Keep only the markers in `listed` and write the file (atomically); a failure is noted in {@linkcode problems}. */
  save(listed: Iterable<string>): void {
    const keep = new Set(listed);
    const markers: Record<string, string> = {};
    for (const [name, at] of [...this.seen].sort(([a], [b]) => a < b ? -1 : 1)) {
      if (keep.has(name)) markers[name] = new Date(at).toISOString();
    }
    try {
      this.file.replace(JSON.stringify({ repository_id: this.repositoryId, markers }, null, 1) + "\n");
    } catch (error) {
      this.problems.push(
        `${this.file.path} not written (${describeOsError(error)}): markers first seen in this run are seen anew ` +
          "by the next, which delays their deletion",
      );
    }
  }
}
