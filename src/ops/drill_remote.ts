/**
 * The CI drill from a repository: the snapshot fetched into scratch, then the drill with all its checks reading it
 * from there. The recovery time includes the fetch; a snapshot that cannot be fetched intact is a failed drill.
 *
 * @module
 */
import { describeOsError, UsageError } from "../errors.ts";
import type { Config } from "../config.ts";
import { InterruptedError, stopIfInterrupted } from "../sys/interrupt.ts";
import { isInFuture, stampAgeSeconds } from "../snapshot/clock.ts";
import { type DrillOptions, drillSnapshot } from "./drill.ts";
import { DRILL_CHECKS, type DrillCheck, type DrillResult } from "./drill_result.ts";
import {
  checkSource,
  type FetchSummary,
  fetchToScratch,
  type RemoteSource,
  resolveRemoteSnapshot,
} from "./from_remote.ts";
import { withRecoveryPointCheck } from "./drill_max_age.ts";
import { latestOfSource, latestVouched } from "./remote_latest.ts";

/** A drill read from a repository: the drill's result and what was fetched (`null` when the fetch failed). */
export type RemoteDrillResult = DrillResult & { remote: FetchSummary | null };

/**
 * Drill snapshot `given` (`STAMP`, `STAMP_PUSHID` or `"latest"`: see {@linkcode latestVouched}) of the repository;
 * `"latest"` with `ofSource`: the newest that backup folder pushed (see {@linkcode latestOfSource}). Never throws for
 * what it finds.
 *
 * @throws {UsageError} for a name that matches no snapshot or several; {@linkcode RefusedError} for a repository that
 *   is not the pinned one; {@linkcode OperationError} for a repository without snapshots (of that source).
 */
export async function drillFromRemote(
  config: Config,
  source: RemoteSource,
  given: string,
  options: DrillOptions & { ofSource?: string },
): Promise<RemoteDrillResult> {
  const begun = performance.now();
  const { repositoryId } = await checkSource(config, source);
  const { backend, identities, repositoryFlags } = source;
  const lookup = { backend, repositoryId, identities, repositoryFlags };
  const name = options.ofSource !== undefined && given === "latest"
    ? await latestOfSource(lookup, options.ofSource, options)
    : given === "latest"
    ? await latestVouched(
      { ...lookup, allowUnauthenticated: source.allowUnauthenticated ?? false },
      await resolveRemoteSnapshot(backend, given, options, repositoryFlags),
      options,
    )
    : await resolveRemoteSnapshot(backend, given, options, repositoryFlags);
  const snapshotPath = `${source.backend.location}/snapshots/${name}`;
  const words = (): [string, string] => [
    `drill of ${name} from ${source.backend.location}`,
    "nothing was drilled and no report written, the scratch copy is removed; run the drill again",
  ];
  let fetched;
  try {
    fetched = await fetchToScratch(config, source, name, options);
  } catch (error) {
    if (error instanceof InterruptedError) throw error.told(...words());
    if (error instanceof UsageError) throw error;
    const failed = failedFetch(name, snapshotPath, describeOsError(error), seconds(begun), options.now);
    const result = options.maxAgeSeconds == null ? failed : withRecoveryPointCheck(failed, options.maxAgeSeconds);
    options.reporter.event("warning", "drill_finished", { stamp: result.stamp, ok: false, errors: result.errors });
    return result;
  }
  using _scratch = fetched;
  stopIfInterrupted(options.signal, words); // then the drill stops only between its checks
  const drilled = await drillSnapshot(config, fetched.stamp, {
    ...options,
    sourceDir: fetched.sourceDir,
    verified: fetched.verified,
    integrityChecked: fetched.integrityChecked,
    fetchSeconds: fetched.summary.fetch_seconds, // so that the drill_finished event counts it too
  });
  return {
    ...drilled,
    snapshot_path: snapshotPath,
    drill_seconds: seconds(begun),
    remote: fetched.summary,
  };
}

/** A drill whose snapshot could not be fetched: `snapshot_valid` failed with the reason, the other checks skipped. */
function failedFetch(name: string, snapshotPath: string, why: string, took: number, now: Date): RemoteDrillResult {
  const stamp = name.split("_")[0];
  const detail = `not fetched: ${why}`; // `why` says whether the snapshot is damaged or the network failed
  const checks: DrillCheck[] = DRILL_CHECKS.map((check, index) =>
    index === 0
      ? { name: check, status: "failed", detail, seconds: took }
      : { name: check, status: "skipped", detail: "snapshot not fetched", seconds: 0 }
  );
  return {
    stamp,
    ok: false,
    snapshot_path: snapshotPath,
    created_at: null,
    recovery_point_seconds: stampAgeSeconds(stamp, now),
    stamp_in_future: isInFuture(stamp, now),
    recovery_time_seconds: null,
    restore_seconds: null,
    drill_seconds: took,
    snapshot_bytes: 0,
    db_size_bytes: 0,
    chroma_bytes: 0,
    tables: 0,
    rows: 0,
    checks,
    errors: [`snapshot_valid: ${detail}`],
    scratch_dir: null,
    scratch_kept: false,
    restore: null,
    remote: null,
  };
}

function seconds(since: number): number {
  return round3((performance.now() - since) / 1000);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
