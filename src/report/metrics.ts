/**
 * Prometheus textfile-collector metrics of one run of an operation, so that the host's node exporter can alert
 * on stale or failing backups; the file is replaced atomically, so the collector never reads half of it.
 *
 * @module
 */
import type { StateFile } from "../fs/state_folder.ts";
import { readRegularTextFile } from "../fs/regular_file.ts";
import { parseStamp } from "../snapshot/stamp.ts";

/** The operations that write metrics; the value of the `operation` label. */
export type MetricsOperation = "create" | "validate" | "drill" | "push";

/** What a run learned that is worth a metric; each field is left out when this run does not know it. */
export interface MetricFacts {
  /** The snapshot the run made or checked. */
  stamp?: string;
  /** Its size in bytes. */
  bytes?: number;
  /** Whether it is valid (for a drill: whether it restored whole). */
  valid?: boolean;
  /** Drill only: the snapshot's age when the drill started (recovery point). */
  recoveryPointSeconds?: number;
  /** Drill only: seconds validation plus restore into the scratch folder took (recovery time). */
  restoreSeconds?: number;
  /** Push (and `create --push`): what the push read, sent and saved. */
  pushed?: PushFacts;
}

/** What a push did, for its metrics. */
export interface PushFacts {
  bytesRead: number;
  bytesSent: number;
  objectsWritten: number;
  bytesDeduplicated: number;
}

/** One finished run, as the metrics file describes it. */
export interface RunRecord {
  operation: MetricsOperation;
  /** When the run started. */
  startedAt: Date;
  /** When it ended. */
  finishedAt: Date;
  /** Whether it succeeded (exit code 0). */
  success: boolean;
  facts: MetricFacts;
}

const PREFIX = "atocore_backup";

/**
 * Render a run as Prometheus text exposition format, each metric with its HELP
 * and TYPE lines and an `operation` label.
 *
 * @param previousSuccess Seconds since the epoch of the last earlier success, kept
 *   when this run failed so that alerts on a stale success keep working (not when it is after this run's end);
 *   `null` if unknown.
 */
export function renderMetrics(run: RunRecord, previousSuccess: number | null): string {
  const finished = seconds(run.finishedAt);
  // one after this run's end (edited, or the clock was set back since) would keep a stale-success alert quiet for ever
  const lastSuccess = run.success
    ? finished
    : previousSuccess !== null && previousSuccess <= finished
    ? previousSuccess
    : null;
  const snapshotTime = run.facts.stamp ? parseStamp(run.facts.stamp) : null;
  const lines: string[] = [];
  const gauge = (name: string, help: string, value: number | null | undefined) => {
    if (value === null || value === undefined) return;
    lines.push(
      `# HELP ${PREFIX}_${name} ${help}`,
      `# TYPE ${PREFIX}_${name} gauge`,
      `${PREFIX}_${name}{operation="${run.operation}"} ${value}`,
    );
  };
  gauge("last_run_timestamp_seconds", "When the last run ended, seconds since the epoch.", finished);
  gauge("last_run_success", "1 if the last run succeeded, else 0.", run.success ? 1 : 0);
  gauge("last_success_timestamp_seconds", "When the last successful run ended, seconds since the epoch.", lastSuccess);
  gauge("last_run_duration_seconds", "How long the last run took.", round(finished - seconds(run.startedAt)));
  gauge(
    "snapshot_timestamp_seconds",
    "When the snapshot of the last run was taken.",
    snapshotTime && seconds(snapshotTime),
  );
  gauge("snapshot_bytes", "Size of the snapshot of the last run.", run.facts.bytes);
  gauge("snapshot_valid", "1 if the snapshot of the last run was valid, else 0.", bit(run.facts.valid));
  gauge(
    "drill_recovery_point_seconds",
    "Age of the drilled snapshot when the drill started.",
    run.facts.recoveryPointSeconds,
  );
  gauge(
    "drill_recovery_time_seconds",
    "How long the drill's validation and restore took (and the fetch, from a repository).",
    run.facts.restoreSeconds,
  );
  const pushed = run.facts.pushed;
  gauge("push_bytes_read", "Bytes of local snapshots the last push read.", pushed?.bytesRead);
  gauge("push_bytes_sent", "Bytes the last push wrote to the repository.", pushed?.bytesSent);
  gauge("push_objects_written", "Objects the last push wrote to the repository.", pushed?.objectsWritten);
  gauge(
    "push_bytes_deduplicated",
    "Bytes the last push did not send: the repository held them.",
    pushed?.bytesDeduplicated,
  );
  return lines.join("\n") + "\n";
}

/**
 * Write a run's metrics to `file` atomically (its `replace`), keeping the last success time that the file held before
 * when this run failed.
 *
 * @throws {Deno.errors.NotFound} and other OS errors when the folder cannot be written.
 */
export function writeMetrics(file: Pick<StateFile, "path" | "replace">, run: RunRecord): void {
  file.replace(renderMetrics(run, previousSuccess(file.path, run.operation)));
}

/** The last success time of `operation` recorded in the metrics file at `path`, or `null`. */
export function previousSuccess(path: string, operation: MetricsOperation): number | null {
  let text: string;
  try {
    text = readRegularTextFile(path, { followLinks: true }); // an operator's path: a FIFO there must not block
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  const sample = `${PREFIX}_last_success_timestamp_seconds{operation="${operation}"} `;
  const line = text.split("\n").find((candidate) => candidate.startsWith(sample));
  const value = line ? Number(line.slice(sample.length)) : NaN;
  return Number.isFinite(value) ? value : null;
}

function seconds(time: Date): number {
  return round(time.getTime() / 1000);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function bit(value: boolean | undefined): number | undefined {
  return value === undefined ? undefined : value ? 1 : 0;
}
