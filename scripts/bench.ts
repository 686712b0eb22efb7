/**
 * The benchmark: this tool side by side with the Python module, `sqlite3 .backup`, `cp -r` +
 * fsync and `sha256sum` on one generated store (see HELP). Not part of the tests; `--allow-all`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { makeSampleStore, type SampleStore } from "./sample_store.ts";
import { removeQuietly } from "../src/fs/durable.ts";
import { isFile } from "../src/fs/probe.ts";
import { COMPILE_PERMISSIONS } from "./compile.ts";
import { hasReference as referenceAvailable, referenceDir, referenceMissing } from "./reference.ts";
import {
  type Bench,
  loadAverage,
  loadSeen,
  log,
  makeSnapshot,
  median,
  noteRepetition,
  ROOT,
  type Sample,
  settle,
  storeEnv,
  timed,
} from "./bench_run.ts";
import {
  formatRemote,
  makeRemoteFixture,
  measureRemote,
  remoteStore,
  type RowShape,
  SAMPLE_ROWS,
  SMALL_ROWS,
} from "./bench_remote.ts";
import { makeSmallRowStore } from "./bench_small_rows.ts";
import { makeWeekFixture, measureNetwork } from "./bench_network.ts";
import { formatNetwork } from "./bench_network_report.ts";
import { type BackendName, BACKENDS } from "./bench_servers.ts";

const DRIVERS = ["ffi", "builtin"] as const;
const SECTIONS = [
  "create",
  "create-chroma",
  "validate",
  "list",
  "restore",
  "remote",
  "remote-small",
  "network",
] as const;
type Section = typeof SECTIONS[number];

/** One program run in the benchmark, and how to give it a clean start. */
interface Contender {
  /** Shown in the table. */
  label: string;
  /** True for this tool's runs (the left side of each ratio). */
  isTool: boolean;
  /** Builds the command line; called before each run, so it can point at a fresh folder. */
  argv: () => string[];
  /** Environment added to PATH and HOME. */
  env?: () => Record<string, string>;
  /** Untimed clean-up after each run (remove what the run wrote). */
  after?: () => void;
}

/** The samples of one contender of one command. */
interface Measured {
  contender: Contender;
  samples: Sample[];
  /** Why the contender stopped being measured (its first failed run), if it did. */
  failure?: string;
}

/** A command measured for every contender. */
interface CommandResult {
  command: string;
  measured: Measured[];
}

/**
 * Measure every contender `reps` times, rotating the order each repetition (A B C, B C A, ...),
 * after one untimed warm-up run of each (Deno's first run of changed code transpiles it and
 * fills its cache; the first command after the store is made pays for the store's writes).
 * Each run is a subprocess under `/usr/bin/time`, after an untimed `sync`, followed by its
 * contender's clean-up (outputs go to fresh folders, removed after each run).
 */
async function compare(command: string, contenders: Contender[], reps: number): Promise<CommandResult> {
  const measured: Measured[] = contenders.map((contender) => ({ contender, samples: [] }));
  for (const { contender } of measured) {
    await settle();
    try {
      await timed(contender.argv(), contender.env?.() ?? {});
    } catch {
      // a failing contender fails again in the timed runs, which report it
    } finally {
      contender.after?.();
    }
  }
  for (let rep = 0; rep < reps; rep++) {
    for (let turn = 0; turn < measured.length; turn++) {
      const entry = measured[(rep + turn) % measured.length];
      if (entry.failure) continue;
      await settle();
      try {
        entry.samples.push(await timed(entry.contender.argv(), entry.contender.env?.() ?? {}));
      } catch (error) {
        entry.failure = (error as Error).message;
        log(`${command} / ${entry.contender.label} FAILED: ${entry.failure}`);
      } finally {
        entry.contender.after?.();
      }
    }
    noteRepetition(command, rep, reps);
  }
  return { command, measured };
}

function medianSeconds(entry: Measured): number {
  return median(entry.samples.map((sample) => sample.seconds));
}

function medianMiB(entry: Measured): number {
  return median(entry.samples.map((sample) => sample.peakKiB)) / 1024;
}

/** The markdown table: one row per tool run and other contender of each command. */
function formatTable(results: CommandResult[]): string {
  const lines = [
    "| command | tool | other | tool median s | other median s | ratio tool/other | tool peak MiB | other peak MiB |",
    "|---|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const result of results) {
    const tools = result.measured.filter((entry) => entry.contender.isTool);
    const others = result.measured.filter((entry) => !entry.contender.isTool);
    for (const tool of tools) {
      for (const other of others) {
        if (tool.failure || other.failure) {
          const cell = (entry: Measured) => entry.failure ? "failed" : medianSeconds(entry).toFixed(2);
          const mib = (entry: Measured) => entry.failure ? "-" : medianMiB(entry).toFixed(1);
          lines.push(
            `| ${result.command} | ${tool.contender.label} | ${other.contender.label} | ${cell(tool)} | ${
              cell(other)
            } | - | ${mib(tool)} | ${mib(other)} |`,
          );
          continue;
        }
        const ratio = medianSeconds(tool) / Math.max(medianSeconds(other), 0.005);
        lines.push(
          `| ${result.command} | ${tool.contender.label} | ${other.contender.label} | ${
            medianSeconds(tool).toFixed(2)
          } | ${medianSeconds(other).toFixed(2)} | ${ratio.toFixed(2)} | ${medianMiB(tool).toFixed(1)} | ${
            medianMiB(other).toFixed(1)
          } |`,
        );
      }
    }
  }
  return lines.join("\n");
}

/** Every sample, so the noise can be judged. */
function formatSamples(results: CommandResult[]): string {
  return results.flatMap((result) =>
    result.measured.map((entry) =>
      `- ${result.command} / ${entry.contender.label}: ${
        entry.samples.map((sample) => `${sample.seconds.toFixed(2)} s ${(sample.peakKiB / 1024).toFixed(1)} MiB`)
          .join("; ")
      }${entry.failure ? ` FAILED: ${entry.failure.slice(0, 400)}` : ""}`
    )
  ).join("\n");
}

async function commandText(program: string, args: string[]): Promise<string> {
  try {
    const output = await new Deno.Command(program, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(output.stdout).trim();
  } catch {
    return "unavailable";
  }
}

/** One line naming the machine and the versions of everything measured. */
async function machineLine(workDir: string): Promise<string> {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  const memKiB = Number(Deno.readTextFileSync("/proc/meminfo").match(/^MemTotal:\s*(\d+)/m)?.[1] ?? 0);
  const sqliteShell = (await commandText("sqlite3", ["--version"])).split(" ")[0];
  const { DatabaseSync } = await import("node:sqlite");
  const memory = new DatabaseSync(":memory:");
  const builtinSqlite = (memory.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
  memory.close();
  const fsType = await commandText("findmnt", ["-n", "-o", "FSTYPE", "-T", workDir]);
  return `Machine: ${navigator.hardwareConcurrency} CPUs (nproc), ${cpu}, ${
    (memKiB / 1024 / 1024).toFixed(1)
  } GiB RAM, ` +
    `Linux ${Deno.osRelease()}, work folder on ${fsType}; deno ${Deno.version.deno}; ` +
    `sqlite ${sqliteShell} (libsqlite3 and sqlite3 shell), ${builtinSqlite} (node:sqlite built-in); ` +
    `${await commandText("python3", ["--version"])}`;
}

function toolContender(bench: Bench, label: string, args: () => string[], env: () => Record<string, string>) {
  return { label, isTool: true, argv: () => [...bench.toolPrefix, ...args()], env };
}

function moduleArgv(args: string[]): string[] {
  return ["python3", "-m", "atocore.ops.backup", ...args];
}

function moduleEnv(store: SampleStore, backupDir: string): Record<string, string> {
  return { PYTHONPATH: referenceDir(), ...storeEnv(store, backupDir) };
}

/** `create` (database and registry) or `create --chroma`, against the module, sqlite3 and cp. */
function createContenders(bench: Bench, chroma: boolean): Contender[] {
  const { store, work } = bench;
  const out = join(work, "out");
  const clean = () => removeQuietly(out);
  const flag = chroma ? ["--chroma"] : [];
  const sources = chroma ? [store.db, store.registry, store.chromaDir] : [store.db, store.registry];
  const contenders: Contender[] = DRIVERS.map((driver) =>
    toolContender(
      bench,
      `this tool (${driver})`,
      () => ["create", ...flag, "--sqlite-driver", driver],
      () => storeEnv(store, out),
    )
  ).map((contender) => ({ ...contender, after: clean }));
  if (bench.hasReference) {
    contenders.push({
      label: "python module",
      isTool: false,
      argv: () => moduleArgv(["create", ...flag]),
      env: () => moduleEnv(store, out),
      after: clean,
    });
    contenders.push({
      label: "python module + fsync of its files",
      isTool: false,
      argv: () => ["sh", "-c", '"$@" && find "$OUT" -exec sync {} +', "sh", ...moduleArgv(["create", ...flag])],
      env: () => ({ ...moduleEnv(store, out), OUT: out }),
      after: clean,
    });
  }
  const sqliteScript = chroma
    ? 'mkdir -p "$0" && sqlite3 "$1" ".backup \'$0/db\'" && cp -r "$2" "$3" "$0/" && find "$0" -exec sync {} +'
    : 'mkdir -p "$0" && sqlite3 "$1" ".backup \'$0/db\'" && cp "$2" "$0/" && find "$0" -exec sync {} +';
  contenders.push({
    label: chroma ? "sqlite3 .backup + cp -r chroma + fsync" : "sqlite3 .backup",
    isTool: false,
    argv: () => ["sh", "-c", sqliteScript, out, store.db, store.registry, ...(chroma ? [store.chromaDir] : [])],
    after: clean,
  });
  contenders.push({
    label: "cp -r + fsync (floor)",
    isTool: false,
    argv: () => [
      "sh",
      "-c",
      'out="$1"; shift; mkdir -p "$out" && cp -r "$@" "$out/" && find "$out" -exec sync {} +',
      "sh",
      out,
      ...sources,
    ],
    after: clean,
  });
  return contenders;
}

/** `validate STAMP` (hashing) against sha256sum and the module; `--quick` against the module. */
function validateContenders(bench: Bench, backupDir: string, stamp: string, quick: boolean): Contender[] {
  const env = () => storeEnv(bench.store, backupDir);
  const contenders: Contender[] = DRIVERS.map((driver) =>
    toolContender(
      bench,
      `this tool (${driver})`,
      () => ["validate", stamp, ...(quick ? ["--quick"] : []), "--sqlite-driver", driver],
      env,
    )
  );
  if (!quick) {
    contenders.push({
      label: "sha256sum of the same files",
      isTool: false,
      argv: () => [
        "sh",
        "-c",
        'find "$0" -type f ! -name backup-metadata.json -exec sha256sum {} +',
        join(backupDir, "snapshots", stamp),
      ],
    });
  }
  if (bench.hasReference) {
    contenders.push({
      label: "python module (integrity check only, no hashing)",
      isTool: false,
      argv: () => moduleArgv(["validate", stamp]),
      env: () => moduleEnv(bench.store, backupDir),
    });
  }
  return contenders;
}

/**
 * Fill `backupDir` with `count` snapshots: one real small one made by the tool, and
 * copies of it under other stamps (files hard-linked, metadata rewritten with the new stamp).
 */
async function makeManySnapshots(bench: Bench, backupDir: string, count: number): Promise<void> {
  const tiny = makeSampleStore(join(bench.work, "tiny-store"), { dbMiB: 0.1, chromaMiB: 0.05, segments: 2 });
  const stamp = await makeSnapshot(bench, tiny, backupDir);
  const snapshots = join(backupDir, "snapshots");
  const original = join(snapshots, stamp);
  const metadataText = Deno.readTextFileSync(join(original, "backup-metadata.json"));
  const entries = listTree(original).filter((path) => path !== "backup-metadata.json");
  const start = Date.UTC(2020, 0, 1);
  for (let index = 1; index < count; index++) {
    const time = new Date(start + index * 3_600_000);
    const copyStamp = time.toISOString().slice(0, 19).replaceAll("-", "").replaceAll(":", "") + "Z";
    const copy = join(snapshots, copyStamp);
    Deno.mkdirSync(copy);
    for (const path of entries) {
      const from = join(original, path);
      if (Deno.lstatSync(from).isDirectory) Deno.mkdirSync(join(copy, path));
      else Deno.linkSync(from, join(copy, path));
    }
    const metadata = JSON.parse(metadataText.replaceAll(stamp, copyStamp));
    metadata.created_at = time.toISOString().replace(/\.(\d{3})Z$/, ".$1000+00:00");
    Deno.writeTextFileSync(join(copy, "backup-metadata.json"), JSON.stringify(metadata, null, 2) + "\n");
  }
}

/** Relative paths below `root`, parents first. */
function listTree(root: string, relative = ""): string[] {
  const paths: string[] = [];
  for (const entry of [...Deno.readDirSync(join(root, relative))].sort((a, b) => a.name.localeCompare(b.name))) {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    paths.push(path);
    if (entry.isDirectory) paths.push(...listTree(root, path));
  }
  return paths;
}

/** Check, untimed, that the tool and the module both list `count` snapshots with their metadata. */
async function requireListed(bench: Bench, backupDir: string, count: number): Promise<void> {
  const runs = [{ argv: [...bench.toolPrefix, "list", "--json"], env: storeEnv(bench.store, backupDir) }];
  if (bench.hasReference) runs.push({ argv: moduleArgv(["list"]), env: moduleEnv(bench.store, backupDir) });
  for (const { argv, env } of runs) {
    const output = await new Deno.Command(argv[0], { args: argv.slice(1), env, cwd: ROOT, stdout: "piped" }).output();
    const backups = JSON.parse(new TextDecoder().decode(output.stdout)).backups as { metadata?: unknown }[];
    const withMetadata = backups.filter((entry) => entry.metadata).length;
    if (backups.length !== count || withMetadata !== count) {
      throw new Error(
        `${argv.join(" ")} listed ${backups.length} snapshots (${withMetadata} with metadata), not ${count}`,
      );
    }
  }
}

function listContenders(bench: Bench, backupDir: string): Contender[] {
  const contenders: Contender[] = [
    toolContender(bench, "this tool", () => ["list", "--json"], () => storeEnv(bench.store, backupDir)),
  ];
  if (bench.hasReference) {
    contenders.push({
      label: "python module",
      isTool: false,
      argv: () => moduleArgv(["list"]),
      env: () => moduleEnv(bench.store, backupDir),
    });
  }
  return contenders;
}

/**
 * `restore STAMP --confirm-service-stopped --no-pre-snapshot` into a copy of the store,
 * for the tool and the module; whatever a run leaves beside the live files or in the
 * backup folder (other than the snapshot) is removed after it.
 */
function restoreContenders(bench: Bench, backupDir: string, stamp: string): Contender[] {
  const live = makeLiveCopy(bench);
  const baseline = {
    live: names(live.dataDir),
    backup: names(backupDir),
    snapshots: names(join(backupDir, "snapshots")),
  };
  const after = () => {
    removeNew(live.dataDir, baseline.live);
    removeNew(backupDir, baseline.backup);
    removeNew(join(backupDir, "snapshots"), baseline.snapshots);
  };
  const args = ["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"];
  const contenders: Contender[] = DRIVERS.map((driver) => ({
    ...toolContender(
      bench,
      `this tool (${driver})`,
      () => [...args, "--sqlite-driver", driver],
      () => storeEnv(live, backupDir),
    ),
    after,
  }));
  if (bench.hasReference) {
    contenders.push({
      label: "python module",
      isTool: false,
      argv: () => moduleArgv(args),
      env: () => moduleEnv(live, backupDir),
      after,
    });
  }
  return contenders;
}

/** A copy of the bench store to restore into (the live store is never the bench's source). */
function makeLiveCopy(bench: Bench): SampleStore {
  const dataDir = join(bench.work, "live");
  removeQuietly(dataDir);
  Deno.mkdirSync(dataDir);
  const command = new Deno.Command("cp", {
    args: ["-r", bench.store.db, bench.store.registry, bench.store.chromaDir, dataDir],
  });
  if (command.outputSync().code !== 0) throw new Error("cannot copy the store for the restore benchmark");
  return {
    ...bench.store,
    dataDir,
    db: join(dataDir, "atocore.db"),
    registry: join(dataDir, "project-registry.json"),
    chromaDir: join(dataDir, "chroma"),
  };
}

function names(dir: string): Set<string> {
  try {
    return new Set([...Deno.readDirSync(dir)].map((entry) => entry.name));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return new Set();
    throw error;
  }
}

function removeNew(dir: string, baseline: Set<string>): void {
  for (const name of names(dir)) if (!baseline.has(name)) removeQuietly(join(dir, name));
}

function parseFlags(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      "db-mib": { type: "string" },
      "chroma-mib": { type: "string" },
      reps: { type: "string" },
      snapshots: { type: "string" },
      only: { type: "string" },
      backends: { type: "string" },
      days: { type: "string" },
      transfers: { type: "string" },
      "network-store": { type: "string" },
      binary: { type: "string" },
      out: { type: "string" },
      work: { type: "string" },
      keep: { type: "boolean" },
      quick: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const quick = Boolean(values.quick);
  const only = (values.only ?? SECTIONS.join(",")).split(",").map((name) => name.trim());
  for (const name of only) {
    if (!SECTIONS.includes(name as Section)) throw new Error(`--only: unknown section ${JSON.stringify(name)}`);
  }
  const backends = (values.backends ?? BACKENDS.join(",")).split(",").map((name) => name.trim());
  for (const name of backends) {
    if (!BACKENDS.includes(name as BackendName)) throw new Error(`--backends: unknown backend ${JSON.stringify(name)}`);
  }
  const networkStore = values["network-store"] ?? "blobs";
  if (!["blobs", "small"].includes(networkStore)) {
    throw new Error(`--network-store: give blobs or small, not ${JSON.stringify(networkStore)}`);
  }
  return {
    help: Boolean(values.help),
    networkStore,
    backends: backends as BackendName[],
    days: Number(values.days ?? (quick ? 3 : 7)),
    transfers: values.transfers,
    dbMiB: Number(values["db-mib"] ?? (quick ? 8 : 256)),
    remoteDbMiB: Number(values["db-mib"] ?? (quick ? 8 : 1024)),
    chromaMiB: Number(values["chroma-mib"] ?? (quick ? 4 : 64)),
    reps: Number(values.reps ?? (quick ? 1 : 3)),
    snapshots: Number(values.snapshots ?? (quick ? 50 : 2000)),
    only: only as Section[],
    binary: values.binary ? resolve(values.binary) : undefined,
    out: values.out,
    work: values.work,
    keep: Boolean(values.keep),
    quick,
  };
}

const HELP = `Usage: deno task bench [options]

Side by side, on one generated store: create, create --chroma, validate, list and
restore of this tool against the Python module, sqlite3 .backup, cp -r + fsync and
sha256sum. Wall seconds and peak RSS by /usr/bin/time; medians of --reps runs.
Section remote: push to an off-host repository (a folder), a second push after 1%
of the rows are updated and 0.5% added, and restore from it, against restic
backing up the same snapshot folders (needs restic and age-keygen). Section
remote-small: the same on a database of about 1 KiB text rows (AtoCore's shape).
Section network: a week of pushes (the first, then one after each day's changes),
a restore and a full read-back, against restic, on a folder, a real sshd and a
real radosgw started on 127.0.0.1 (root; openssh-server, radosgw ceph-mon ceph-osd).

Options:
  --db-mib N        database size (default 256; 1024 for the remote section)
  --chroma-mib N    Chroma segment files size (default 64)
  --reps N          repetitions of each command (default 3)
  --snapshots N     snapshots for the list benchmark (default 2000)
  --only LIST       sections: ${SECTIONS.join(",")} (default all)
  --backends LIST   the network section's backends: ${BACKENDS.join(",")} (default all)
  --days N          the network section's snapshots, one a day (default 7)
  --transfers N     the network section: this tool's --transfers (default its own)
  --network-store S the network section's store: blobs (the sample's) or small (1 KiB text rows; default blobs)
  --binary FILE     run a compiled atocore-backup instead of 'deno run main.ts'
  --out FILE        also write the report (markdown) to FILE
  --work DIR        work folder (default a new temporary folder, removed at the end)
  --keep            keep the work folder
  --quick           a tiny smoke run (8 MiB, 1 repetition, 50 snapshots, 3 days)

Example: deno task bench --only remote --reps 3`;

/** The flags of one run, as {@linkcode parseFlags} reads them. */
type Flags = ReturnType<typeof parseFlags>;

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args);
  if (flags.help) return console.log(HELP);
  if (!isFile("/usr/bin/time")) throw new Error("/usr/bin/time (GNU time) is needed; apt-get install time");
  const work = flags.work ? resolve(flags.work) : Deno.makeTempDirSync({ prefix: "atocore-bench-" });
  Deno.mkdirSync(work, { recursive: true });
  const hasReference = referenceAvailable();
  if (!hasReference) log(`SKIPPED: ${referenceMissing("the python module rows are left out")}`);
  const toolPrefix = flags.binary
    ? [flags.binary]
    : [Deno.execPath(), "run", ...COMPILE_PERMISSIONS, join(ROOT, "main.ts")];
  const loadBefore = loadAverage();
  try {
    const dbMiB = mainStoreMiB(flags);
    log(`making a store of ${dbMiB} MiB database and ${flags.chromaMiB} MiB Chroma in ${work}`);
    const store = makeSampleStore(join(work, "store"), { dbMiB, chromaMiB: flags.chromaMiB });
    const bench: Bench = { work, store, toolPrefix, hasReference, reps: flags.reps };
    await timed([...toolPrefix, "--version"], {});
    if (hasReference) await timed(moduleArgv(["list"]), moduleEnv(store, join(work, "warm")));
    const results = await measureSections(bench, flags);
    const remote = [
      flags.only.includes("remote") ? await remoteSection(bench, flags) : "",
      flags.only.includes("remote-small") ? await smallRowsSection(bench, flags) : "",
      flags.only.includes("network") ? await networkSection(bench, flags) : "",
    ].filter(Boolean).join("\n\n") || undefined;
    const report = await formatReport(bench, flags, results, remote, loadBefore);
    console.log(report);
    if (flags.out) Deno.writeTextFileSync(flags.out, report + "\n");
  } finally {
    if (!flags.keep) removeQuietly(work);
  }
}

/** The size of the store made first: the remote section's when it is the only one run (it then uses that store). */
function mainStoreMiB(flags: Flags): number {
  const ownStore = (section: Section) =>
    section === "remote-small" || (section === "network" && flags.networkStore === "small");
  if (flags.only.every(ownStore)) return 1; // those sections make their own store
  const remote = (section: Section) => section.startsWith("remote") || section === "network";
  return flags.only.every(remote) ? flags.remoteDbMiB : flags.dbMiB;
}

/** The remote section again on a store of AtoCore's shape (small text rows), made for it. */
async function smallRowsSection(bench: Bench, flags: Flags): Promise<string> {
  log(`remote-small: making a store of ${flags.remoteDbMiB} MiB of 1 KiB rows and ${flags.chromaMiB} MiB Chroma`);
  const store = makeSmallRowStore(join(bench.work, "small-store"), flags.remoteDbMiB, flags.chromaMiB);
  const fixture = await makeRemoteFixture(bench, store, SMALL_ROWS);
  return formatRemote(fixture, await measureRemote(bench, fixture, flags.reps), flags.reps);
}

/** The remote section, run last (it changes the rows of the store it uses): its report. */
async function remoteSection(bench: Bench, flags: Flags): Promise<string> {
  const store = remoteStore(bench, mainStoreMiB(flags), flags.remoteDbMiB, flags.chromaMiB);
  const fixture = await makeRemoteFixture(bench, store);
  return formatRemote(fixture, await measureRemote(bench, fixture, flags.reps), flags.reps);
}

/** The network section, run last (it changes the rows of the store it uses): its report. */
async function networkSection(bench: Bench, flags: Flags): Promise<string> {
  const { store, rows } = networkStore(bench, flags);
  const fixture = await makeWeekFixture(bench, store, rows, flags.days, flags.transfers);
  return formatNetwork(fixture, await measureNetwork(bench, fixture, flags.backends, flags.reps), flags.reps);
}

/** The network section's store (`--network-store`): the sample's, or one of small text rows made for it. */
function networkStore(bench: Bench, flags: Flags): { store: SampleStore; rows: RowShape } {
  const where = join(bench.work, "network-store");
  if (flags.networkStore === "small") {
    log(`network: making a store of ${flags.remoteDbMiB} MiB of 1 KiB rows and ${flags.chromaMiB} MiB Chroma`);
    return { store: makeSmallRowStore(where, flags.remoteDbMiB, flags.chromaMiB), rows: SMALL_ROWS };
  }
  if (mainStoreMiB(flags) === flags.remoteDbMiB) return { store: bench.store, rows: SAMPLE_ROWS };
  log(`network: making a store of ${flags.remoteDbMiB} MiB database and ${flags.chromaMiB} MiB Chroma`);
  return { store: makeSampleStore(where, { dbMiB: flags.remoteDbMiB, chromaMiB: flags.chromaMiB }), rows: SAMPLE_ROWS };
}

/** One command of a section, with its contenders made only when the section is run. */
interface Planned {
  section: Section;
  command: string;
  contenders: () => Promise<Contender[]> | Contender[];
}

/** Measure the commands of the sections that `--only` names, in order. */
async function measureSections(bench: Bench, flags: Flags): Promise<CommandResult[]> {
  const results: CommandResult[] = [];
  for (const { section, command, contenders } of plannedCommands(bench, flags)) {
    if (flags.only.includes(section)) results.push(await compare(command, await contenders(), flags.reps));
  }
  return results;
}

/** Every command of every section; the snapshot that validate and restore read is made once, when first needed. */
function plannedCommands(bench: Bench, flags: Flags): Planned[] {
  const backups = join(bench.work, "backups");
  const many = join(bench.work, "many");
  let stamp = "";
  const snapshot = async () => stamp ||= await makeSnapshot(bench, bench.store, backups);
  const hasRestore = isFile(join(ROOT, "src", "cli", "restore.ts"));
  if (flags.only.includes("restore") && !hasRestore) log("restore: src/cli/restore.ts is not there yet; skipped");
  return [
    { section: "create", command: "create", contenders: () => createContenders(bench, false) },
    { section: "create-chroma", command: "create --chroma", contenders: () => createContenders(bench, true) },
    {
      section: "validate",
      command: "validate",
      contenders: async () => validateContenders(bench, backups, await snapshot(), false),
    },
    {
      section: "validate",
      command: "validate --quick",
      contenders: async () => validateContenders(bench, backups, await snapshot(), true),
    },
    {
      section: "list",
      command: `list (${flags.snapshots} snapshots)`,
      contenders: async () => {
        await makeManySnapshots(bench, many, flags.snapshots);
        await requireListed(bench, many, flags.snapshots);
        return listContenders(bench, many);
      },
    },
    ...(hasRestore
      ? [{
        section: "restore" as const,
        command: "restore",
        contenders: async () => restoreContenders(bench, backups, await snapshot()),
      }]
      : []),
  ];
}

/** The report: the store, the table of medians, the machine, the load seen, and every sample. */
async function formatReport(
  bench: Bench,
  flags: Flags,
  results: CommandResult[],
  remote: string | undefined,
  loadBefore: string,
): Promise<string> {
  const storeSize = `database ${
    (Deno.statSync(bench.store.db).size / 1048576).toFixed(0)
  } MiB, Chroma ${flags.chromaMiB} MiB`;
  const toolRun = `Tool run as ${
    flags.binary ? `the binary ${flags.binary}` : "`deno run` of main.ts with the compile permissions"
  }.`;
  const sections = results.length
    ? [
      `Store: ${storeSize}; one warm-up run each, then ${flags.reps} repetitions, order rotated each time, medians; ` +
      `ratio below 1 means this tool is faster. ${toolRun}`,
      "",
      formatTable(results),
      "",
    ]
    : [`${toolRun}`, ""];
  return [
    ...sections,
    ...(remote ? [remote, ""] : []),
    await machineLine(bench.work),
    `Load average before: ${loadBefore}; after: ${loadAverage()}; 1-minute load after each repetition: ` +
    `${Math.min(...loadSeen)} to ${
      Math.max(...loadSeen)
    } (${navigator.hardwareConcurrency} CPUs; other work on the machine adds noise).`,
    "",
    ...(results.length ? ["Samples (wall s, peak RSS):", formatSamples(results)] : []),
  ].join("\n");
}

if (import.meta.main) await main();
