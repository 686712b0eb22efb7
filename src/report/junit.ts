/**
 * A drill's result as JUnit XML, so a CI system shows each check of the drill as
 * a test case (passed, failed with its detail, or skipped).
 *
 * @module
 */
/**
 * What a JUnit report shows of a drill: ops/drill_result.ts's `DrillResult` has it (the shape is declared here, since
 * the report layer imports nothing from the operations above it).
 */
export interface JunitDrill {
  stamp: string;
  snapshot_path: string;
  drill_seconds: number;
  recovery_point_seconds: number | null;
  recovery_time_seconds: number | null;
  snapshot_bytes: number;
  tables: number;
  rows: number;
  checks: readonly { name: string; status: "passed" | "failed" | "skipped"; detail: string; seconds: number }[];
}

/** The suite name CI systems show. */
export const JUNIT_SUITE = "atocore-backup drill";

/**
 * Render a drill as a JUnit XML document: one `testsuite` for the snapshot, one
 * `testcase` per check, and the recovery point and time as suite properties.
 *
 * @param timestamp When the drill started (the suite's `timestamp`).
 */
export function renderJunit(drill: JunitDrill, timestamp: Date): string {
  const failures = drill.checks.filter((check) => check.status === "failed").length;
  const skipped = drill.checks.filter((check) => check.status === "skipped").length;
  const counts = `tests="${drill.checks.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${
    drill.drill_seconds.toFixed(3)
  }"`;
  const properties = {
    stamp: drill.stamp,
    snapshot_path: drill.snapshot_path,
    recovery_point_seconds: drill.recovery_point_seconds,
    recovery_time_seconds: drill.recovery_time_seconds,
    snapshot_bytes: drill.snapshot_bytes,
    tables: drill.tables,
    rows: drill.rows,
  };
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${escapeXml(JUNIT_SUITE)}" ${counts}>`,
    `  <testsuite name="${escapeXml(`${JUNIT_SUITE} ${drill.stamp}`)}" ${counts} timestamp="${
      timestamp.toISOString().slice(0, 19)
    }">`,
    `    <properties>`,
    ...Object.entries(properties).map(([name, value]) =>
      `      <property name="${name}" value="${escapeXml(value === null ? "" : String(value))}"/>`
    ),
    `    </properties>`,
  ];
  for (const check of drill.checks) {
    const open = `    <testcase classname="atocore-backup.drill" name="${check.name}" time="${
      check.seconds.toFixed(3)
    }"`;
    const detail = escapeXml(check.detail);
    if (check.status === "passed") {
      lines.push(`${open}>`, `      <system-out>${detail}</system-out>`, `    </testcase>`);
    } else if (check.status === "failed") {
      lines.push(`${open}>`, `      <failure message="${detail}">${detail}</failure>`, `    </testcase>`);
    } else {
      lines.push(`${open}>`, `      <skipped message="${detail}"/>`, `    </testcase>`);
    }
  }
  lines.push(`  </testsuite>`, `</testsuites>`);
  return lines.join("\n") + "\n";
}

/**
 * Render a drill that could not run its checks (no snapshot to drill, a repository that cannot be read) as a JUnit
 * document with one failed `testcase`, `drill`, holding `message`: a report from an earlier, passing run is never left
 * to stand for this one.
 */
export function renderJunitFailure(message: string, timestamp: Date): string {
  const counts = `tests="1" failures="1" errors="0" skipped="0" time="0.000"`;
  const detail = escapeXml(message);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${escapeXml(JUNIT_SUITE)}" ${counts}>`,
    `  <testsuite name="${escapeXml(JUNIT_SUITE)}" ${counts} timestamp="${timestamp.toISOString().slice(0, 19)}">`,
    `    <testcase classname="atocore-backup.drill" name="drill" time="0.000">`,
    `      <failure message="${detail}">${detail}</failure>`,
    `    </testcase>`,
    `  </testsuite>`,
    `</testsuites>`,
  ].join("\n") + "\n";
}

/** Escape text for an XML attribute or element, dropping characters XML 1.0 cannot hold. */
export function escapeXml(text: string): string {
  return text
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}
