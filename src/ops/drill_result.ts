/**
 * What a drill reports: its checks, in the order they run, and its result; the drill, its `--max-age` check and the
 * commands that print or render a drill all read these.
 *
 * @module
 */
import type { RestoreResult } from "./restore.ts";

/** The checks of a drill, in the order they run. */
export const DRILL_CHECKS = [
  "snapshot_valid",
  "restore",
  "db_integrity",
  "row_counts",
  "registry",
  "chroma_files",
  "chroma_db_integrity",
] as const;

/** The name of one check: a step's, or `recovery_point` when the drill was given a largest age. */
export type DrillCheckName = typeof DRILL_CHECKS[number] | "recovery_point";

/** How one check went: what a step decides. */
export interface CheckOutcome {
  /** `skipped` when the snapshot has no such part, or an earlier step failed. */
  status: "passed" | "failed" | "skipped";
  /** One line: what was found. */
  detail: string;
}

/** One check of a drill and how it went. */
export interface DrillCheck extends CheckOutcome {
  name: DrillCheckName;
  /** Seconds the check took. */
  seconds: number;
}

/** What a drill did and found. */
export interface DrillResult {
  stamp: string;
  /** True when every check passed or was skipped for a part the snapshot does not hold. */
  ok: boolean;
  snapshot_path: string;
  created_at: string | null;
  /** The snapshot's age when the drill ran: the recovery point; `null` (unknown) for a stamp in the future. */
  recovery_point_seconds: number | null;
  /** The stamp is later than the drill's start beyond the allowed skew: the clock was wrong. */
  stamp_in_future: boolean;
  /** How long a restore takes: deep validation plus the restore itself, and a fetch from a repository (the recovery time). */
  recovery_time_seconds: number | null;
  /** How long the restore itself took (the snapshot having just been validated deeply). */
  restore_seconds: number | null;
  /** How long the whole drill took. */
  drill_seconds: number;
  /** Bytes of the snapshot (its manifest, else database plus Chroma). */
  snapshot_bytes: number;
  db_size_bytes: number;
  chroma_bytes: number;
  /** Tables compared and the rows they hold. */
  tables: number;
  rows: number;
  checks: DrillCheck[];
  /** One line per failed check. */
  errors: string[];
  scratch_dir: string | null;
  scratch_kept: boolean;
  restore: RestoreResult | null;
}
