/**
 * Where `create --chroma` spends its time: create's steps timed one by one with the engine's
 * own functions, beside the same steps of the Python module. Not part of the tests.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { hasReference, referenceDir, referenceMissing } from "./reference.ts";
import { makeSampleStore, type SampleStore } from "./sample_store.ts";
import { renameDurable, syncFile, syncTree } from "../src/fs/durable.ts";
import { followFile } from "../src/fs/follow_hash.ts";
import { copyEntries, type CopyTotals, walkTree } from "../src/fs/tree.ts";
import { buildManifest, type ManifestEntry } from "../src/snapshot/manifest.ts";
import { buildMetadata, serializeMetadata } from "../src/snapshot/metadata.ts";
import { openDriver } from "../src/sqlite/open_driver.ts";
import type { SqliteDriver } from "../src/sqlite/driver.ts";
import { backupFollowedIfOffered } from "../src/sqlite/followed_backup.ts";
import { setJournalMode, withJournalMode } from "../src/sqlite/journal_header.ts";
import { CHROMA_DB_FILE } from "../src/snapshot/chroma.ts";
import { validateSnapshotAt } from "../src/ops/validate.ts";

/** Seconds taken by each named step of one run. */
type Phases = Record<string, number>;

/** Times the steps of one run, in order; {@linkcode PhaseClock.phases} is what it measured. */
class PhaseClock {
  readonly phases: Phases = {};

  /** Run `work` as the step `name` and record its seconds. */
  async step<T>(name: string, work: () => T | Promise<T>): Promise<T> {
    const start = performance.now();
    const result = await work();
    this.phases[name] = (performance.now() - start) / 1000;
    return result;
  }
}

/** The folders of one run: its staging snapshot, where it is published, and the database copy. */
interface RunPaths {
  staging: string;
  root: string;
  copy: string;
}

/** Make the folders of one run in the fresh folder `out`. */
function makeRunFolders(out: string): RunPaths {
  const staging = join(out, ".staging", "s");
  Deno.mkdirSync(join(staging, "db"), { recursive: true });
  Deno.mkdirSync(join(staging, "config"));
  Deno.mkdirSync(join(out, "snapshots"));
  return { staging, root: join(out, "snapshots", "s"), copy: join(staging, "db", "atocore.db") };
}

/**
 * Run the tool's create steps once into a fresh `out` folder and time each one. They mirror
 * `src/ops/create.ts` one after the other, where create itself copies Chroma and validates
 * while the database's fsync runs: its wall time is below the sum by up to the smaller of
 * those two. If create changes, this mirror may drift.
 */
async function toolPhases(store: SampleStore, out: string, driver: SqliteDriver): Promise<Phases> {
  const clock = new PhaseClock();
  const paths = makeRunFolders(out);
  const databaseSha256 = await clock.step(
    "database backup API copy, hashed behind the copy (no fsync)",
    () => copyDatabase(driver, store.db, paths.copy),
  );
  await clock.step(
    "fsync of the database copy (create copies Chroma and validates meanwhile)",
    () => syncFile(paths.copy),
  );
  await clock.step(
    "registry copy",
    () => Deno.copyFileSync(store.registry, join(paths.staging, "config", "project-registry.json")),
  );
  const chroma = await copyChromaSteps(clock, store, paths.staging, driver);
  const manifest = await clock.step(
    "SHA-256 manifest of the other files",
    () => buildManifest(paths.staging, undefined, new Map([["db/atocore.db", databaseSha256]])),
  );
  await clock.step(
    "metadata written (made durable by the fsync of the tree)",
    () => writeMetadata(paths, chroma, driver, manifest),
  );
  await finishSteps(clock, paths, driver);
  return clock.phases;
}

/** Back up the database into `copy`, hashed behind the copy where the driver offers it; its SHA-256. */
async function copyDatabase(driver: SqliteDriver, source: string, copy: string): Promise<string> {
  using follower = followFile(copy);
  await backupFollowedIfOffered(
    driver,
    source,
    copy,
    (firstPage, bytes) => follower.settled(withJournalMode(firstPage, "rollback"), bytes),
  );
  setJournalMode(copy, "rollback");
  return (await follower.finish()).sha256;
}

/** The timed steps of the Chroma copy: its files, then `chroma.sqlite3` through the backup API. */
async function copyChromaSteps(
  clock: PhaseClock,
  store: SampleStore,
  staging: string,
  driver: SqliteDriver,
): Promise<CopyTotals> {
  const chroma = await clock.step("chroma files copy (copy_file_range, walk before/after)", () => {
    const skip = (path: string) => path === CHROMA_DB_FILE || path.startsWith(`${CHROMA_DB_FILE}-`);
    Deno.mkdirSync(join(staging, "chroma"));
    const before = walkTree(store.chromaDir, skip);
    const totals = copyEntries(store.chromaDir, join(staging, "chroma"), before);
    walkTree(store.chromaDir, skip);
    return totals;
  });
  await clock.step(
    "chroma.sqlite3 backup API",
    async () => {
      await driver.backup(join(store.chromaDir, CHROMA_DB_FILE), join(staging, "chroma", CHROMA_DB_FILE));
      setJournalMode(join(staging, "chroma", CHROMA_DB_FILE), "rollback");
    },
  );
  return chroma;
}

/** Write the staged snapshot's metadata, as create does (made durable later by the fsync of the tree). */
function writeMetadata(paths: RunPaths, chroma: CopyTotals, driver: SqliteDriver, manifest: ManifestEntry[]): void {
  const { staging, root } = paths;
  const metadata = buildMetadata({
    createdAt: "2026-01-01T00:00:00.000000+00:00",
    backupRoot: root,
    dbSnapshotPath: join(root, "db", "atocore.db"),
    dbSizeBytes: Deno.statSync(join(staging, "db", "atocore.db")).size,
    registrySnapshotPath: join(root, "config", "project-registry.json"),
    chromaSnapshotPath: join(root, "chroma"),
    chromaBytes: chroma.bytes + Deno.statSync(join(staging, "chroma", CHROMA_DB_FILE)).size,
    chromaFiles: chroma.files + 1,
    includeChroma: true,
    driver,
    manifest,
    dbJournalMode: "wal",
    chromaDbJournalMode: "wal",
  });
  Deno.writeTextFileSync(join(staging, "backup-metadata.json"), serializeMetadata(metadata));
}

/** The timed last steps: fsync of the tree, quick validation, publishing, and one diagnostic. */
async function finishSteps(clock: PhaseClock, paths: RunPaths, driver: SqliteDriver): Promise<void> {
  await clock.step("fsync of the whole tree", () => syncTree(paths.staging));
  await clock.step("post-validation (quick: integrity checks, sizes)", async () => {
    const result = await validateSnapshotAt(paths.staging, "s", { driver, quick: true });
    if (!result.valid) throw new Error(`validation failed: ${result.errors.join("; ")}`);
  });
  await clock.step("publish (rename, fsync folders)", () => renameDurable(paths.staging, paths.root));
  await clock.step(
    "(diagnostic, not a step) integrity check of the database alone",
    () => driver.integrityCheck(join(paths.root, "db", "atocore.db")),
  );
}

const PYTHON_PHASES = `
import json, os, shutil, sqlite3, sys, time
from pathlib import Path
from atocore.ops import backup
db, registry, chroma, out = map(Path, sys.argv[1:5])
phases = {}
def step(name, work):
    start = time.perf_counter(); work(); phases[name] = time.perf_counter() - start
root = out / "snapshots" / "20260101T000000Z"
(root / "db").mkdir(parents=True); (root / "config").mkdir()
step("database conn.backup() (SQLite fdatasyncs the copy at its commit)", lambda: backup._backup_sqlite_db(db, root / "db" / db.name))
step("registry copy", lambda: (root / "config" / registry.name).write_text(registry.read_text()))
step("chroma shutil.copytree (+ rglob count)", lambda: backup._copy_directory_tree(chroma, root / "chroma"))
meta = {"db_snapshot_path": str(root / "db" / db.name), "registry_snapshot_path": str(root / "config" / registry.name),
        "chroma_snapshot_path": str(root / "chroma")}
step("metadata write", lambda: (root / "backup-metadata.json").write_text(json.dumps(meta, indent=2)))
os.environ["ATOCORE_BACKUP_DIR"] = str(out)
step("validate_backup (integrity_check of the database)", lambda: backup.validate_backup(root.name))
def fsync_all():
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY); os.fsync(fd); os.close(fd)
step("(not done by the module) fsync of every file", fsync_all)
print(json.dumps(phases))
`;

async function pythonPhases(store: SampleStore, out: string): Promise<Phases> {
  const output = await new Deno.Command("python3", {
    args: ["-c", PYTHON_PHASES, store.db, store.registry, store.chromaDir, out],
    env: {
      PYTHONPATH: referenceDir(),
      ATOCORE_DB_PATH: store.db,
      ATOCORE_BACKUP_DIR: out,
      ATOCORE_PROJECT_REGISTRY_PATH: store.registry,
      ATOCORE_CHROMA_PATH: store.chromaDir,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (output.code !== 0) throw new Error(new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** A markdown table of the median seconds of each step, with its share of the total (names in parentheses are extras, not summed). */
function phaseTable(title: string, runs: Phases[]): string {
  const names = Object.keys(runs[0]);
  const medians = names.map((name) => median(runs.map((run) => run[name])));
  const isStep = (name: string) => !name.startsWith("(");
  const total = medians.reduce((sum, value, index) => sum + (isStep(names[index]) ? value : 0), 0);
  return [
    `| ${title} | median s | share |`,
    "|---|---:|---:|",
    ...names.map((name, index) =>
      `| ${name} | ${medians[index].toFixed(3)} | ${
        isStep(name) ? `${(100 * medians[index] / total).toFixed(0)}%` : "-"
      } |`
    ),
    `| total of the steps (diagnostics in parentheses left out) | ${total.toFixed(3)} | |`,
  ].join("\n");
}

/**
 * `deno run --allow-all scripts/bench_phases.ts [--db-mib N] [--chroma-mib N] [--reps N]
 * [--driver ffi|builtin] [--work DIR] [--keep]`: median seconds of each step, as two tables.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "db-mib": { type: "string", default: "256" },
      "chroma-mib": { type: "string", default: "64" },
      reps: { type: "string", default: "3" },
      driver: { type: "string", default: "ffi" },
      work: { type: "string" },
      keep: { type: "boolean" },
    },
  });
  const work = values.work ?? Deno.makeTempDirSync({ prefix: "atocore-phases-" });
  try {
    const store = makeSampleStore(join(work, "store"), {
      dbMiB: Number(values["db-mib"]),
      chromaMiB: Number(values["chroma-mib"]),
    });
    const driver = openDriver(values.driver as "ffi" | "builtin");
    const withModule = hasReference();
    if (!withModule) console.log(`SKIPPED: ${referenceMissing("the python module's phases are left out")}`);
    const { tool, python } = await measureRuns(store, join(work, "out"), driver, Number(values.reps), withModule);
    console.log(
      `Store: database ${(Deno.statSync(store.db).size / 1048576).toFixed(0)} MiB, Chroma ${
        values["chroma-mib"]
      } MiB; ` +
        `${values.reps} runs, medians; driver ${driver.name} (SQLite ${driver.version}); in-process, no start-up.\n`,
    );
    console.log(phaseTable(`this tool, create --chroma step (${driver.name})`, tool));
    if (withModule) console.log(`\n${phaseTable("python module, create --chroma step", python)}`);
  } finally {
    if (!values.keep) Deno.removeSync(work, { recursive: true });
  }
}

/** `reps` runs of the tool's steps and, `withModule`, of the module's, each into `out` after a `sync`, then removed. */
async function measureRuns(
  store: SampleStore,
  out: string,
  driver: SqliteDriver,
  reps: number,
  withModule: boolean,
): Promise<{ tool: Phases[]; python: Phases[] }> {
  const tool: Phases[] = [];
  const python: Phases[] = [];
  for (let rep = 0; rep < reps; rep++) {
    await new Deno.Command("sync").output();
    tool.push(await toolPhases(store, out, driver));
    Deno.removeSync(out, { recursive: true });
    if (!withModule) continue;
    await new Deno.Command("sync").output();
    python.push(await pythonPhases(store, out));
    Deno.removeSync(out, { recursive: true });
  }
  return { tool, python };
}

if (import.meta.main) await main();
