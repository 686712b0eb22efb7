/**
 * The benchmark's network section: a week of pushes of one store (a first push, then a day's changes before each
 * next one), a restore and a full read-back, by this tool and by restic, on a folder, a real sshd and a real radosgw.
 *
 * @module
 */
import { basename, join } from "node:path";
import type { SampleStore } from "./sample_store.ts";
import { removeQuietly } from "../src/fs/durable.ts";
import { DB_FOLDER, snapshotsDir } from "../src/snapshot/layout.ts";
import {
  type Bench,
  log,
  makeSnapshot,
  noteRepetition,
  type Sample,
  settle,
  storeEnv,
  timed,
  treeBytes,
} from "./bench_run.ts";
import { checkRestored, type RemoteFixture, type RowShape, writeAuthKeyFile } from "./bench_remote.ts";
import { type BackendName, type BenchBackend, type Location, startBackend } from "./bench_servers.ts";

/** Rows updated, and rows added, each day (of `documents` and of `chunks`). */
export const DAY_UPDATED = 0.01;
export const DAY_ADDED = 0.005;
const RESTIC_PASSWORD = "atocore-bench";

/** The snapshots of a week: one per day, the first of the store as made, each next after a day's changes. */
export interface WeekFixture extends RemoteFixture {
  stamps: string[];
  /** Bytes of each snapshot's files, in the order of `stamps`. */
  snapshotBytes: number[];
  /** This tool's `--transfers`, when the run sets it. */
  transfers?: string;
}

/**
 * Snapshot the store `days` times, changing its rows (of the given shape) before each snapshot but the first (a new
 * seed each day), and make an age key pair. Untimed. `transfers`: this tool's `--transfers` in the runs, when given.
 */
export async function makeWeekFixture(
  bench: Bench,
  store: SampleStore,
  rows: RowShape,
  days: number,
  transfers?: string,
): Promise<WeekFixture> {
  const backupDir = join(bench.work, "network-backups");
  const stamps: string[] = [];
  let updated = 0, added = 0;
  for (let day = 0; day < days; day++) {
    if (day > 0) {
      const changes = rows.change(store.db, DAY_UPDATED, DAY_ADDED, 7 + day);
      updated = changes.updated;
      added = changes.added;
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the next snapshot's stamp is a later second
    }
    stamps.push(await makeSnapshot(bench, store, backupDir));
    log(`network: snapshot ${day + 1}/${days} made (${stamps.at(-1)})`);
  }
  const { identityFile, recipient } = await ageKeyPair(bench.work);
  const snapshotBytes = stamps.map((stamp) => treeBytes(join(snapshotsDir(backupDir), stamp)));
  const last = join(snapshotsDir(backupDir), stamps.at(-1)!);
  return {
    store,
    backupDir,
    first: stamps[0],
    second: stamps.at(-1)!,
    stamps,
    snapshotBytes,
    transfers,
    identityFile,
    authKeyFile: writeAuthKeyFile(identityFile),
    recipient,
    updated,
    added,
    shape: rows.text,
    storeBytes: snapshotBytes[0],
    dbBytes: Deno.statSync(join(last, DB_FOLDER, basename(store.db))).size,
  };
}

async function ageKeyPair(work: string): Promise<{ identityFile: string; recipient: string }> {
  const identityFile = join(work, "network-key.txt");
  removeQuietly(identityFile);
  const keygen = await new Deno.Command("age-keygen", { args: ["-o", identityFile], stderr: "piped" }).output();
  if (keygen.code !== 0) throw new Error(`age-keygen failed: ${new TextDecoder().decode(keygen.stderr).trim()}`);
  const recipient = Deno.readTextFileSync(identityFile).match(/public key: (age1[0-9a-z]+)/)?.[1];
  if (!recipient) throw new Error(`no public key in ${identityFile}`);
  return { identityFile, recipient };
}

/** One program's commands against a location. */
export interface NetSide {
  label: string;
  isTool: boolean;
  env: (location: Location) => Record<string, string>;
  init: (location: Location) => string[];
  push: (location: Location, stamp: string) => string[];
  restore: (location: Location, out: string) => string[];
  check: (location: Location) => string[];
  /** Remove, untimed, the program's own state outside the repository after a sequence. */
  after: () => void;
}

function toolSide(bench: Bench, fixture: WeekFixture): NetSide {
  const tool = (location: Location, ...args: string[]) => [
    ...bench.toolPrefix,
    ...args,
    "--remote",
    location.toolRemote,
  ];
  const recipient = ["--recipient", fixture.recipient];
  const key = ["--identity", fixture.identityFile];
  return {
    label: "this tool",
    isTool: true,
    env: (location) => ({
      ...storeEnv(fixture.store, fixture.backupDir),
      ...(fixture.transfers ? { ATOCORE_BACKUP_TRANSFERS: fixture.transfers } : {}),
      ...location.toolEnv,
    }),
    init: (location) => tool(location, "remote", "init", ...recipient),
    push: (location, stamp) => tool(location, "push", stamp, ...recipient, "--auth-key", fixture.authKeyFile),
    restore: (location, out) => tool(location, "restore", "--from-remote", fixture.second, "--to", out, ...key),
    check: (location) => tool(location, "remote", "verify", "--read-data", ...key),
    after: () => removeQuietly(join(fixture.backupDir, "remotes")), // the pin and push cache of that repository
  };
}

function resticSide(bench: Bench, fixture: WeekFixture, version: string): NetSide {
  const cache = join(bench.work, "restic-cache");
  const restic = (location: Location, ...args: string[]) => [
    "restic",
    ...args,
    "--repo",
    location.resticRepo,
    ...location.resticArgs,
  ];
  return {
    label: version,
    isTool: false,
    env: (location) => ({ RESTIC_PASSWORD, RESTIC_CACHE_DIR: cache, ...location.resticEnv }),
    init: (location) => restic(location, "init"),
    push: (location, stamp) =>
      restic(location, "backup", "--host", "bench", join(snapshotsDir(fixture.backupDir), stamp)),
    restore: (location, out) => restic(location, "restore", "latest", "--target", out),
    check: (location) => restic(location, "check", "--read-data"),
    after: () => removeQuietly(cache),
  };
}

/** The sides that can run here: the tool's, and restic's when it is installed (else a SKIPPED line). */
async function networkSides(bench: Bench, fixture: WeekFixture): Promise<NetSide[]> {
  const sides = [toolSide(bench, fixture)];
  try {
    const output = await new Deno.Command("restic", { args: ["version"], stdout: "piped" }).output();
    sides.push(resticSide(bench, fixture, new TextDecoder().decode(output.stdout).split(" ").slice(0, 2).join(" ")));
  } catch {
    log("network: SKIPPED restic's rows: restic is not installed (apt-get install restic)");
  }
  return sides;
}

/** One week of one side on one backend: each step's wall time and peak RSS, and what the repository held. */
export interface WeekRun {
  first: Sample;
  /** Bytes stored after the first push. */
  stored: number;
  /** The pushes after the first, one per day. */
  days: Sample[];
  /** Bytes each of those pushes added. */
  added: number[];
  /** Bytes stored after the last push. */
  repoBytes: number;
  verify: Sample;
  restore: Sample;
}

/**
 * One week of `side` in a fresh repository on `backend`: init (untimed), the pushes (each after an untimed `sync`,
 * the repository's size after each), the full read-back, then a restore of the last snapshot (checked byte for byte
 * when `checked`). The repository and the restored files are removed after.
 */
async function runWeek(side: NetSide, backend: BenchBackend, fixture: WeekFixture, work: string, checked: boolean) {
  const slug = `${backend.name}-${side.isTool ? "tool" : "restic"}`;
  const location = await backend.fresh(slug);
  const out = join(work, `net-restored-${slug}`);
  removeQuietly(out);
  const env = side.env(location);
  const step = async (argv: string[]) => {
    await settle();
    return await timed(argv, env);
  };
  try {
    await timed(side.init(location), env);
    const first = await step(side.push(location, fixture.stamps[0]));
    const stored = await location.bytes();
    const days: Sample[] = [], added: number[] = [];
    let before = stored;
    for (const stamp of fixture.stamps.slice(1)) {
      days.push(await step(side.push(location, stamp)));
      const now = await location.bytes();
      added.push(now - before);
      before = now;
    }
    const verify = await step(side.check(location));
    const restore = await step(side.restore(location, out));
    if (checked) checkRestored(out, fixture, `${side.label} (${backend.name})`);
    return { first, stored, days, added, repoBytes: before, verify, restore };
  } finally {
    removeQuietly(out);
    await location.remove();
    side.after();
  }
}

/** Every week run of one side on one backend, and its failure if it failed (it is not run again then). */
export interface NetResult {
  backend: BackendName;
  backendText: string;
  side: NetSide;
  runs: WeekRun[];
  failure?: string;
}

/**
 * For each backend that can run here: start its server, run `reps` weeks of each side (order rotated each time; the
 * first checked), stop the server. Returns every side's runs, backend by backend.
 */
export async function measureNetwork(
  bench: Bench,
  fixture: WeekFixture,
  backends: readonly BackendName[],
  reps: number,
): Promise<NetResult[]> {
  const sides = await networkSides(bench, fixture);
  const results: NetResult[] = [];
  for (const name of backends) {
    await using backend = await startBackend(name, bench.work);
    if (backend === null) continue;
    const entries: NetResult[] = sides.map((side) => ({ backend: name, backendText: backend.text, side, runs: [] }));
    for (let rep = 0; rep < reps; rep++) {
      for (let turn = 0; turn < entries.length; turn++) {
        const entry = entries[(rep + turn) % entries.length];
        if (entry.failure) continue;
        try {
          log(`network: ${name} / ${entry.side.label}: week ${rep + 1}/${reps}`);
          const run = await runWeek(entry.side, backend, fixture, bench.work, rep === 0);
          entry.runs.push(run);
          const days = run.days.map((sample) => sample.seconds.toFixed(1)).join(" ");
          log(
            `network: ${name} / ${entry.side.label}: first ${run.first.seconds} s, days ${days} s, verify ` +
              `${run.verify.seconds} s, restore ${run.restore.seconds} s; ${run.added.join(" ")} bytes added`,
          );
        } catch (error) {
          entry.failure = (error as Error).message;
          log(`network / ${name} / ${entry.side.label} FAILED: ${entry.failure}`);
        }
      }
      noteRepetition(`network ${name}`, rep, reps);
    }
    results.push(...entries);
  }
  return results;
}
