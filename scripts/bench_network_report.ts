/**
 * The network section's report: the transfer rates of issue 12, the week's table of issue 13 with its targets, and
 * every sample, from {@linkcode measureNetwork}'s results.
 *
 * @module
 */
import { median, type Sample } from "./bench_run.ts";
import { DAY_ADDED, DAY_UPDATED, type NetResult, type WeekFixture, type WeekRun } from "./bench_network.ts";

const MiB = 1048576;
const seconds = (samples: Sample[]) => median(samples.map((sample) => sample.seconds));
const peakMiB = (samples: Sample[]) => median(samples.map((sample) => sample.peakKiB)) / 1024;
const mib = (bytes: number) => (bytes / MiB).toFixed(1);

/** A side that ran at least once and did not fail. */
function usable(entry?: NetResult): NetResult | undefined {
  return entry && !entry.failure && entry.runs.length > 0 ? entry : undefined;
}

/** The tool's and restic's results on each backend that ran, in the order run. */
function pairs(results: NetResult[]): { backend: string; tool?: NetResult; other?: NetResult }[] {
  const names = [...new Set(results.map((entry) => entry.backend))];
  return names.map((backend) => {
    const here = results.filter((entry) => entry.backend === backend);
    return {
      backend,
      tool: usable(here.find((entry) => entry.side.isTool)),
      other: usable(here.find((entry) => !entry.side.isTool)),
    };
  });
}

const all = (entry: NetResult, pick: (run: WeekRun) => Sample | Sample[]) => entry.runs.flatMap(pick);

/** The section's report. */
export function formatNetwork(fixture: WeekFixture, results: NetResult[], reps: number): string {
  const days = fixture.stamps.length;
  const sum = fixture.snapshotBytes.reduce((a, b) => a + b, 0);
  return [
    `Store: ${mib(fixture.storeBytes)} MiB at the first snapshot (database ${mib(fixture.dbBytes)} MiB at the last, ` +
    `${fixture.shape}); ${days} snapshots, one a day, each day ${DAY_UPDATED * 100}% of the rows updated and ` +
    `${DAY_ADDED * 100}% added (${fixture.updated} and ${fixture.added} the last day); the ${days} snapshots hold ` +
    `${mib(sum)} MiB together. Each program pushes the ${days} snapshot folders in turn to a new repository on ` +
    `each backend (this tool: \`remote init\`, \`push STAMP\`, \`remote verify --read-data\`, ` +
    `\`restore --from-remote STAMP --to DIR\`; restic: \`init\`, \`backup FOLDER\`, \`check --read-data\`, ` +
    `\`restore latest --target DIR\`; this tool with ${
      fixture.transfers ? `${fixture.transfers} transfers` : "its default transfers"
    }), ${reps} week${reps === 1 ? "" : "s"} each, order rotated, medians; ` +
    `the first week's restores compared byte for byte with the snapshot. Backends: ` +
    `${[...new Set(results.map((entry) => `${entry.backend}: ${entry.backendText}`))].join("; ")}.`,
    "",
    `Rates: MiB of snapshot per wall second; the first push stores the first snapshot (${
      mib(fixture.storeBytes)
    } MiB), the restore writes the last (${mib(fixture.snapshotBytes.at(-1)!)} MiB).`,
    "",
    rateTable(fixture, results),
    "",
    weekTable(fixture, results),
    "",
    ...pairs(results).flatMap(({ backend, tool, other }) => targetLines(fixture, backend, tool, other)),
    "",
    "Samples (wall s and peak RSS MiB; MiB stored after the first push, then added by each next push):",
    ...results.map(sampleLine),
  ].join("\n");
}

/** Issue 12: the first push's and the restore's rate, MiB of snapshot per wall second. */
function rateTable(fixture: WeekFixture, results: NetResult[]): string {
  const last = fixture.snapshotBytes.at(-1)!;
  const rate = (bytes: number, entry: NetResult | undefined, pick: (run: WeekRun) => Sample) =>
    entry ? `${(bytes / MiB / seconds(all(entry, pick))).toFixed(1)}` : "-";
  const name = (isTool: boolean) => results.find((entry) => entry.side.isTool === isTool)?.side.label ?? "restic";
  return [
    `| backend | push MiB/s, ${name(true)} | push MiB/s, ${name(false)} | restore MiB/s, ${name(true)} | ` +
    `restore MiB/s, ${name(false)} |`,
    "|---|---:|---:|---:|---:|",
    ...pairs(results).map(({ backend, tool, other }) =>
      `| ${backend} | ${rate(fixture.storeBytes, tool, (run) => run.first)} | ${
        rate(fixture.storeBytes, other, (run) => run.first)
      } | ${rate(last, tool, (run) => run.restore)} | ${rate(last, other, (run) => run.restore)} |`
    ),
  ].join("\n");
}

/** Issue 13: per backend, each step's medians side by side, and what the repository holds. */
function weekTable(fixture: WeekFixture, results: NetResult[]): string {
  const sum = fixture.snapshotBytes.reduce((a, b) => a + b, 0);
  const steps: [string, (run: WeekRun) => Sample | Sample[], (entry: NetResult) => string][] = [
    ["first push (MiB stored)", (run) => run.first, (entry) => mib(median(entry.runs.map((run) => run.stored)))],
    ["push after a day (MiB added: median, most)", (run) => run.days, (entry) => {
      const added = entry.runs.flatMap((run) => run.added);
      return `${mib(median(added))}, ${mib(Math.max(...added))}`;
    }],
    [
      `after ${fixture.stamps.length} pushes (MiB stored; snapshots ${mib(sum)})`,
      () => [],
      (entry) => mib(median(entry.runs.map((run) => run.repoBytes))),
    ],
    ["restore --to / restore --target", (run) => run.restore, () => ""],
    ["verify --read-data / check --read-data", (run) => run.verify, () => ""],
  ];
  const cell = (entry: NetResult | undefined, pick: (run: WeekRun) => Sample | Sample[], show: typeof seconds) => {
    const samples = entry ? all(entry, pick) : [];
    return samples.length ? show(samples).toFixed(show === seconds ? 2 : 1) : "-";
  };
  const rows = pairs(results).flatMap(({ backend, tool, other }) =>
    steps.map(([label, pick, bytes]) => {
      const ratio = tool && other && all(tool, pick).length
        ? (seconds(all(tool, pick)) / Math.max(seconds(all(other, pick)), 0.005)).toFixed(2)
        : "-";
      return `| ${backend} | ${label} | ${cell(tool, pick, seconds)} | ${cell(other, pick, seconds)} | ${ratio} | ${
        cell(tool, pick, peakMiB)
      } | ${cell(other, pick, peakMiB)} | ${tool ? bytes(tool) : "-"} | ${other ? bytes(other) : "-"} |`;
    })
  );
  return [
    "| backend | step | this tool s | restic s | ratio | this tool peak MiB | restic peak MiB | this tool MiB | " +
    "restic MiB |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
  ].join("\n");
}

/** One line per target of issue 13 on one backend: the figures compared, and whether it holds. */
function targetLines(fixture: WeekFixture, backend: string, tool?: NetResult, other?: NetResult): string[] {
  if (!tool) return [`Targets on ${backend}: not measured (this tool's rows did not run).`];
  const verdict = (holds: boolean) => holds ? "holds" : "DOES NOT HOLD";
  const shares = tool.runs.flatMap((run) => run.added.map((bytes, day) => bytes / fixture.snapshotBytes[day + 1]));
  const worst = Math.max(...shares);
  const lines = [
    `- each next push adds ≤ 5% of the store: at most ${(100 * worst).toFixed(2)}%: ${verdict(worst <= 0.05)}`,
  ];
  if (other) {
    const toolDays = dayMedians(tool), otherDays = dayMedians(other);
    const fractions = toolDays.map((bytes, day) => otherDays[day] / Math.max(bytes, 1));
    const least = Math.min(...fractions);
    lines.push(
      `- each next push adds ≤ 1/10 of restic's: day by day 1/${least.toFixed(1)} at worst (1/${
        Math.max(...fractions).toFixed(1)
      } at best): ${verdict(least >= 10)}`,
      ...speedLines(tool, other, verdict),
    );
  }
  const peak =
    Math.max(...tool.runs.flatMap((run) => [run.first, ...run.days, run.restore, run.verify]).map((s) => s.peakKiB)) /
    1024;
  lines.push(`- memory under 256 MiB: at most ${peak.toFixed(1)} MiB in any run: ${verdict(peak < 256)}`);
  return [`Targets on ${backend} (issue 13):`, ...lines];
}

/** The median bytes each day's push added, over the weeks. */
function dayMedians(entry: NetResult): number[] {
  return entry.runs[0].added.map((_, day) => median(entry.runs.map((run) => run.added[day])));
}

function speedLines(tool: NetResult, other: NetResult, verdict: (holds: boolean) => string): string[] {
  return (["first", "restore"] as const).map((step) => {
    const mine = seconds(all(tool, (run) => run[step]));
    const theirs = seconds(all(other, (run) => run[step]));
    return `- ${step === "first" ? "first push" : "restore"} no slower than restic: ${mine.toFixed(2)} s against ${
      theirs.toFixed(2)
    } s (${(mine / theirs).toFixed(2)} times): ${verdict(mine <= theirs)}`;
  });
}

function sampleLine(entry: NetResult): string {
  const runs = (samples: Sample[]) =>
    samples.map((sample) => `${sample.seconds.toFixed(2)} s ${(sample.peakKiB / 1024).toFixed(0)}`).join(", ");
  const weeks = entry.runs.map((run) =>
    `first ${runs([run.first])} | days ${runs(run.days)} | verify ${runs([run.verify])} | restore ${
      runs([run.restore])
    } | MiB ${mib(run.stored)} + ${run.added.map(mib).join(" + ")} = ${mib(run.repoBytes)}`
  );
  return `- ${entry.backend} / ${entry.side.label}: ${weeks.join(" ;; ")}${
    entry.failure ? ` FAILED: ${entry.failure.slice(0, 400)}` : ""
  }`;
}
