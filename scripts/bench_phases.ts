/**
 * Where `create --chroma` spends its time: the steps of `createSnapshot`, done one by
 * one with the engine's own exported functions and timed, beside the same steps of
 * the Python module (`conn.backup()`, `shutil.copytree`, `validate_backup`).
 *
 * The steps mirror `src/ops/create.ts` (backup of the database, hashed by a worker
 * behind the copy; copy of the Chroma folder with its
 * `chroma.sqlite3` through the backup API; SHA-256 manifest of the other files;
 * metadata; fsync of the tree; quick validation with integrity checks; publishing
 * rename), one after the other: `create` itself copies Chroma and validates while
 * the database's fsync runs, so its wall time is below the sum shown here by up to the
 * smaller of those two. If `src/ops/create.ts` changes, this mirror may drift.
 *
 * Usage: `deno run --allow-all scripts/bench_phases.ts [--db-mib N] [--chroma-mib N] [--reps N]
 *   [--driver ffi|builtin] [--work DIR] [--keep]`
 *
 * Not part of the tests.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { hasReference, referenceDir, referenceMissing } from "./reference.ts";
import { makeSampleStore, type SampleStore } from "./sample_store.ts";
import { renameDurable, syncFile, syncTree } from "../src/fs/durable.ts";
import { followFile } from "../src/fs/follow_hash.ts";
import { copyEntries, walkTree } from "../src/fs/tree.ts";
import { buildManifest } from "../src/snapshot/manifest.ts";
import { buildMetadata, serializeMetadata } from "../src/snapshot/metadata.ts";
import { openDriver } from "../src/sqlite/open_driver.ts";
import type { SqliteDriver } from "../src/sqlite/driver.ts";
import { CHROMA_DB_FILE } from "../src/snapshot/chroma.ts";
import { validateSnapshotAt } from "../src/ops/validate.ts";

/** Seconds taken by each named step of one run. */
type Phases = Record<string, number>;

/** Run the tool's create steps once into a fresh `out` folder and time each one. */
async function toolPhases(store: SampleStore, out: string, driver: SqliteDriver): Promise<Phases> {
  const phases: Phases = {};
  const step = async <T>(name: string, work: () => T | Promise<T>): Promise<T> => {
    const start = performance.now();
    const result = await work();
    phases[name] = (performance.now() - start) / 1000;
    return result;
  };
  const staging = join(out, ".staging", "s");
  const root = join(out, "snapshots", "s");
  Deno.mkdirSync(join(staging, "db"), { recursive: true });
  Deno.mkdirSync(join(staging, "config"));
  Deno.mkdirSync(join(out, "snapshots"));
  const copy = join(staging, "db", "atocore.db");
  const databaseSha256 = await step("database backup API copy, hashed behind the copy (no fsync)", async () => {
    using follower = followFile(copy);
    await driver.backup(store.db, copy, undefined, (firstPage, bytes) => follower.settled(firstPage, bytes));
    return (await follower.finish()).sha256;
  });
  await step("fsync of the database copy (create copies Chroma and validates meanwhile)", () => syncFile(copy));
  await step(
    "registry copy",
    () => Deno.copyFileSync(store.registry, join(staging, "config", "project-registry.json")),
  );
  const chroma = await step("chroma files copy (copy_file_range, walk before/after)", () => {
    const skip = (path: string) => path === CHROMA_DB_FILE || path.startsWith(`${CHROMA_DB_FILE}-`);
    Deno.mkdirSync(join(staging, "chroma"));
    const before = walkTree(store.chromaDir, skip);
    const totals = copyEntries(store.chromaDir, join(staging, "chroma"), before);
    walkTree(store.chromaDir, skip);
    return totals;
  });
  await step(
    "chroma.sqlite3 backup API",
    () => driver.backup(join(store.chromaDir, CHROMA_DB_FILE), join(staging, "chroma", CHROMA_DB_FILE)),
  );
  const manifest = await step(
    "SHA-256 manifest of the other files",
    () => buildManifest(staging, undefined, new Map([["db/atocore.db", databaseSha256]])),
  );
  await step("metadata written (made durable by the fsync of the tree)", () => {
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
    });
    Deno.writeTextFileSync(join(staging, "backup-metadata.json"), serializeMetadata(metadata));
  });
  await step("fsync of the whole tree", () => syncTree(staging));
  await step("post-validation (quick: integrity checks, sizes)", async () => {
    const result = await validateSnapshotAt(staging, "s", { driver, quick: true });
    if (!result.valid) throw new Error(`validation failed: ${result.errors.join("; ")}`);
  });
  await step("publish (rename, fsync folders)", () => renameDurable(staging, root));
  await step(
    "(diagnostic, not a step) integrity check of the database alone",
    () => driver.integrityCheck(join(root, "db", "atocore.db")),
  );
  return phases;
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
    const tool: Phases[] = [];
    const python: Phases[] = [];
    const withModule = hasReference();
    if (!withModule) console.log(`SKIPPED: ${referenceMissing("the python module's phases are left out")}`);
    for (let rep = 0; rep < Number(values.reps); rep++) {
      const out = join(work, "out");
      await new Deno.Command("sync").output();
      tool.push(await toolPhases(store, out, driver));
      Deno.removeSync(out, { recursive: true });
      if (!withModule) continue;
      await new Deno.Command("sync").output();
      python.push(await pythonPhases(store, out));
      Deno.removeSync(out, { recursive: true });
    }
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

if (import.meta.main) await main();
