/**
 * The drill's recovery-point check (`drill --max-age`): a snapshot that restores but is older than the operator allows
 * fails the drill, so a nightly CI job notices when pushes stopped.
 *
 * @module
 */
import type { DrillResult } from "./drill_result.ts";

/** `result` with a `recovery_point` check appended: failed when the snapshot is older than `maxAgeSeconds` or its age is unknown (stamped in the future). */
export function withRecoveryPointCheck<T extends DrillResult>(result: T, maxAgeSeconds: number): T {
  const age = result.recovery_point_seconds;
  const passed = age !== null && age <= maxAgeSeconds;
  const detail = age === null
    ? `the snapshot's age is unknown (stamped in the future), so it cannot be shown to be under ${maxAgeSeconds} s`
    : `the snapshot is ${age} s old; at most ${maxAgeSeconds} s allowed`;
  const check = {
    name: "recovery_point" as const,
    status: passed ? "passed" as const : "failed" as const,
    detail,
    seconds: 0,
  };
  return {
    ...result,
    ok: result.ok && passed,
    checks: [...result.checks, check],
    errors: passed ? result.errors : [...result.errors, `recovery_point: ${detail}`],
  };
}
