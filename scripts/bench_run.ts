/**
 * What every section of the benchmark shares: a run under `/usr/bin/time`, the load seen, the log, and the
 * store's environment and snapshot (split from `scripts/bench.ts` so that a section can live in its own file).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import type { SampleStore } from "./sample_store.ts";

/** The repository's root: the working folder of every run. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** One timed run. */
export interface Sample {
  seconds: number;
  peakKiB: number;
}

/** Everything the contenders share: the store, the work folder and how the tool is started. */
export interface Bench {
  work: string;
  store: SampleStore;
  toolPrefix: string[];
  hasReference: boolean;
  reps: number;
}

/** Run `argv` under `/usr/bin/time` and return its wall time and peak RSS; throw when it fails. */
export async function timed(argv: string[], env: Record<string, string>): Promise<Sample> {
  const timeFile = Deno.makeTempFileSync({ prefix: "bench-time-" });
  try {
    const output = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%e %M", "-o", timeFile, ...argv],
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/root", ...env },
      clearEnv: true,
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (output.code !== 0) {
      const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-3).join(" | ");
      throw new Error(`exit ${output.code}: ${argv.join(" ")}: ${stderr}`);
    }
    const [seconds, peakKiB] = Deno.readTextFileSync(timeFile).trim().split("\n").at(-1)!.split(" ").map(Number);
    return { seconds, peakKiB };
  } finally {
    Deno.removeSync(timeFile);
  }
}

/** Flush dirty pages left by earlier runs, so they are not charged to the next one. */
export async function settle(): Promise<void> {
  await new Deno.Command("sync").output();
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The 1-minute load average after each repetition, to judge how noisy the figures are. */
export const loadSeen: number[] = [];

/** The three load averages of /proc/loadavg. */
export function loadAverage(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

/** Note the 1-minute load after a repetition, and say so. */
export function noteRepetition(what: string, rep: number, reps: number): void {
  loadSeen.push(Number(loadAverage().split(" ")[0]));
  log(`${what}: repetition ${rep + 1}/${reps} done (load ${loadSeen.at(-1)})`);
}

/** A progress line on stderr (the report goes to stdout). */
export function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

/** The environment that points both the tool and the module at `store` with backup folder `backupDir`. */
export function storeEnv(store: SampleStore, backupDir: string): Record<string, string> {
  return {
    ATOCORE_DB_PATH: store.db,
    ATOCORE_BACKUP_DIR: backupDir,
    ATOCORE_PROJECT_REGISTRY_PATH: store.registry,
    ATOCORE_CHROMA_PATH: store.chromaDir,
  };
}

/** Make one snapshot with the tool (`create --chroma`) in `backupDir` and return its stamp. */
export async function makeSnapshot(bench: Bench, store: SampleStore, backupDir: string): Promise<string> {
  const output = await new Deno.Command(bench.toolPrefix[0], {
    args: [...bench.toolPrefix.slice(1), "create", "--chroma", "--json"],
    env: storeEnv(store, backupDir),
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (output.code !== 0) throw new Error(`create failed: ${new TextDecoder().decode(output.stderr)}`);
  return JSON.parse(new TextDecoder().decode(output.stdout)).stamp;
}

/** The bytes of every regular file below `root` (apparent sizes; links and folders count nothing). */
export function treeBytes(root: string): number {
  let total = 0;
  for (const entry of Deno.readDirSync(root)) {
    const path = join(root, entry.name);
    if (entry.isDirectory) total += treeBytes(path);
    else if (entry.isFile) total += Deno.lstatSync(path).size;
  }
  return total;
}
