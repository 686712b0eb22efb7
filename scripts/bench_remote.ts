/**
 * The benchmark's off-host section: this tool's first push to a folder repository, a second push after a day's
 * changes and a restore from it, beside restic backing up the same snapshot folders to a local repository.
 *
 * @module
 */
import { basename, join } from "node:path";
import { changeSampleRows, makeSampleStore, type SampleStore } from "./sample_store.ts";
import { changeSmallRows } from "./bench_small_rows.ts";
import { removeQuietly } from "../src/fs/durable.ts";
import { parseIdentityFile } from "../src/crypto/age.ts";
import { formatAuthKeyFile } from "../src/crypto/auth_key.ts";
import { sha256File } from "../src/fs/hash.ts";
import { CHROMA_FOLDER, DB_FOLDER, snapshotsDir } from "../src/snapshot/layout.ts";
import {
  type Bench,
  log,
  makeSnapshot,
  median,
  noteRepetition,
  ROOT,
  type Sample,
  settle,
  storeEnv,
  timed,
  treeBytes,
} from "./bench_run.ts";

/** Rows updated, and rows added, between the two snapshots (of `documents` and of `chunks`). */
const UPDATED = 0.01;
const ADDED = 0.005;
const RESTIC_PASSWORD = "atocore-bench";
const MiB = 1048576;

/** The two snapshots both programs store, the key pair, and the changes between the snapshots. */
export interface RemoteFixture {
  store: SampleStore;
  backupDir: string;
  first: string;
  second: string;
  identityFile: string;
  /** The authentication key file derived from the identity, as `remote auth-key` prints it: pushes are authenticated. */
  authKeyFile: string;
  recipient: string;
  updated: number;
  added: number;
  /** What the database's rows are and what changed between the snapshots, for the report. */
  shape: string;
  /** Bytes of the second snapshot's files (what "the store's size" means in the targets). */
  storeBytes: number;
  dbBytes: number;
}

/** The rows of a store and how a day changes them. */
export interface RowShape {
  slug: string;
  text: string;
  /** Change the rows: `seed` picks which (a new one each day). */
  change: (
    db: string,
    updateFraction: number,
    addFraction: number,
    seed?: number,
  ) => { updated: number; added: number };
}

/** The sample store: rows of 64 KiB random blobs (a changed row is a run of about 17 contiguous 4 KiB pages). */
export const SAMPLE_ROWS: RowShape = {
  slug: "blobs",
  text: "rows of `documents` and `chunks` (chunks: 64 KiB random blobs)",
  change: (db, update, add, seed) => changeSampleRows(db, update, add, seed),
};

/** AtoCore's shape: about 1 KiB text rows with indexes ({@linkcode makeSmallRowStore}). */
export const SMALL_ROWS: RowShape = {
  slug: "small",
  text: "rows of `memories` and `chunks` (about 1 KiB of text each, indexed)",
  change: (db, update, add, seed) => changeSmallRows(db, update, add, seed),
};

/** One program's sequence against a fresh repository: init (untimed), two backups and a restore. */
interface Side {
  label: string;
  isTool: boolean;
  env: Record<string, string>;
  init: (repo: string) => string[];
  first: (repo: string) => string[];
  second: (repo: string) => string[];
  restore: (repo: string, out: string) => string[];
  /** Read the whole repository back, untimed, after the warm-up's second backup. */
  check: (repo: string) => string[];
  /** Remove, untimed, the program's own state outside the repository after a sequence. */
  after: () => void;
}

/** The samples of one side: wall time and peak RSS of each step, and the repository's size. */
interface SideResult {
  side: Side;
  first: Sample[];
  second: Sample[];
  restore: Sample[];
  stored: number[];
  grown: number[];
  failure?: string;
}

/**
 * Make the fixture: snapshot the store, update and add rows in the live database, snapshot it again, and make an
 * age key pair with `age-keygen`. Untimed.
 */
export async function makeRemoteFixture(
  bench: Bench,
  store: SampleStore,
  shape: RowShape = SAMPLE_ROWS,
): Promise<RemoteFixture> {
  const backupDir = join(bench.work, `remote-backups-${shape.slug}`);
  const first = await makeSnapshot(bench, store, backupDir);
  const { updated, added } = shape.change(store.db, UPDATED, ADDED);
  log(`remote: ${updated} rows updated and ${added} added in the live database`);
  await new Promise((resolve) => setTimeout(resolve, 1100)); // the next snapshot's stamp is a later second
  const second = await makeSnapshot(bench, store, backupDir);
  const identityFile = join(bench.work, "remote-key.txt");
  removeQuietly(identityFile);
  const keygen = await new Deno.Command("age-keygen", { args: ["-o", identityFile], stderr: "piped" }).output();
  if (keygen.code !== 0) throw new Error(`age-keygen failed: ${new TextDecoder().decode(keygen.stderr).trim()}`);
  const recipient = Deno.readTextFileSync(identityFile).match(/public key: (age1[0-9a-z]+)/)?.[1];
  if (!recipient) throw new Error(`no public key in ${identityFile}`);
  const root = join(snapshotsDir(backupDir), second);
  return {
    store,
    backupDir,
    first,
    second,
    identityFile,
    authKeyFile: writeAuthKeyFile(identityFile),
    recipient,
    updated,
    added,
    shape: shape.text,
    storeBytes: treeBytes(root),
    dbBytes: Deno.statSync(join(root, DB_FOLDER, basename(store.db))).size,
  };
}

/** The store the section uses: the bench's when it has the section's size, else a new one (it is changed). */
export function remoteStore(bench: Bench, mainMiB: number, dbMiB: number, chromaMiB: number): SampleStore {
  if (mainMiB === dbMiB) return bench.store;
  log(`remote: making a store of ${dbMiB} MiB database and ${chromaMiB} MiB Chroma`);
  return makeSampleStore(join(bench.work, "remote-store"), { dbMiB, chromaMiB });
}

/** Write the authentication key file of the identity file at `identityFile` beside it (mode 600); its path. */
export function writeAuthKeyFile(identityFile: string): string {
  const path = `${identityFile}.auth`;
  const identities = parseIdentityFile(Deno.readTextFileSync(identityFile), identityFile);
  Deno.writeTextFileSync(path, formatAuthKeyFile(identities), { mode: 0o600 });
  return path;
}

function toolSide(bench: Bench, fixture: RemoteFixture): Side {
  const tool = (...args: string[]) => [...bench.toolPrefix, ...args];
  const key = ["--identity", fixture.identityFile];
  const recipient = ["--recipient", fixture.recipient, "--auth-key", fixture.authKeyFile];
  return {
    label: "this tool",
    isTool: true,
    env: storeEnv(fixture.store, fixture.backupDir),
    init: (repo) => tool("remote", "init", "--remote", repo, "--recipient", fixture.recipient),
    first: (repo) => tool("push", fixture.first, "--remote", repo, ...recipient),
    second: (repo) => tool("push", fixture.second, "--remote", repo, ...recipient),
    restore: (repo, out) => tool("restore", "--from-remote", fixture.second, "--to", out, "--remote", repo, ...key),
    check: (repo) => tool("remote", "verify", "--read-data", "--remote", repo, ...key),
    after: () => removeQuietly(join(fixture.backupDir, "remotes")), // the pin and push cache of that repository
  };
}

function resticSide(bench: Bench, fixture: RemoteFixture, version: string): Side {
  const cache = join(bench.work, "restic-cache");
  const snapshot = (stamp: string) => join(snapshotsDir(fixture.backupDir), stamp);
  return {
    label: version,
    isTool: false,
    env: { RESTIC_PASSWORD, RESTIC_CACHE_DIR: cache },
    init: (repo) => ["restic", "init", "--repo", repo],
    first: (repo) => ["restic", "backup", "--repo", repo, "--host", "bench", snapshot(fixture.first)],
    second: (repo) => ["restic", "backup", "--repo", repo, "--host", "bench", snapshot(fixture.second)],
    restore: (repo, out) => ["restic", "restore", "latest", "--repo", repo, "--target", out],
    check: (repo) => ["restic", "check", "--read-data", "--repo", repo],
    after: () => removeQuietly(cache),
  };
}

/**
 * One sequence of `side` against a new repository: init, first backup, second backup, restore (each after an untimed
 * `sync`), the repository's size after each backup. `checked`: also read the repository back and compare the
 * restored database with the snapshot's (the warm-up). The repository and the restored files are removed after.
 */
async function runSequence(side: Side, work: string, fixture: RemoteFixture, checked: boolean) {
  const slug = side.isTool ? "tool" : "restic";
  const repo = join(work, `repo-${slug}`);
  const out = join(work, `restored-${slug}`);
  removeQuietly(repo);
  removeQuietly(out);
  try {
    await timed(side.init(repo), side.env);
    await settle();
    const first = await timed(side.first(repo), side.env);
    const stored = treeBytes(repo);
    await settle();
    const second = await timed(side.second(repo), side.env);
    const grown = treeBytes(repo) - stored;
    if (checked) await timed(side.check(repo), side.env);
    await settle();
    const restore = await timed(side.restore(repo, out), side.env);
    if (checked) checkRestored(out, fixture, side.label);
    return { first, second, restore, stored, grown };
  } finally {
    removeQuietly(repo);
    removeQuietly(out);
    side.after();
  }
}

/**
 * Throw unless the restored files hold the second snapshot's database byte for byte (but for header bytes 18-19,
 * the journal mode, which this tool's restore sets back to WAL) and as many bytes besides.
 */
export function checkRestored(out: string, fixture: RemoteFixture, label: string): void {
  const name = basename(fixture.store.db);
  const restoredDb = findFile(out, name);
  const snapshotDb = join(snapshotsDir(fixture.backupDir), fixture.second, DB_FOLDER, name);
  const hash = (path: string) => sha256File(path, undefined, { offset: 18, bytes: new Uint8Array([1, 1]) });
  if (!restoredDb || hash(restoredDb) !== hash(snapshotDb)) {
    throw new Error(`${label}: the restored ${name} is missing or differs from snapshot ${fixture.second}'s`);
  }
  const chromaBytes = treeBytes(join(snapshotsDir(fixture.backupDir), fixture.second, CHROMA_FOLDER));
  if (treeBytes(out) < fixture.dbBytes + chromaBytes) throw new Error(`${label}: restored fewer bytes than stored`);
  log(`remote: ${label}: repository read back, restored database identical to the snapshot's (journal mode aside)`);
}

function findFile(root: string, name: string): string | undefined {
  for (const entry of Deno.readDirSync(root)) {
    const path = join(root, entry.name);
    if (entry.isFile && entry.name === name) return path;
    const found = entry.isDirectory ? findFile(path, name) : undefined;
    if (found) return found;
  }
  return undefined;
}

/** The sides that can run here: the tool's when it has `push`, restic's when it is installed (else a SKIPPED line). */
async function availableSides(bench: Bench, fixture: RemoteFixture): Promise<Side[]> {
  const sides: Side[] = [];
  const push = await new Deno.Command(bench.toolPrefix[0], {
    args: [...bench.toolPrefix.slice(1), "push", "--help"],
    cwd: ROOT,
    stdout: "null",
    stderr: "null",
  }).output();
  if (push.code === 0) sides.push(toolSide(bench, fixture));
  else log("remote: SKIPPED this tool's rows: it has no 'push' command yet ('push --help' fails)");
  try {
    const output = await new Deno.Command("restic", { args: ["version"], stdout: "piped" }).output();
    const version = new TextDecoder().decode(output.stdout).split(" ").slice(0, 2).join(" ");
    sides.push(resticSide(bench, fixture, version));
  } catch {
    log("remote: SKIPPED restic's rows: restic is not installed (apt-get install restic)");
  }
  return sides;
}

/**
 * Run one checked warm-up sequence of each side, then `reps` sequences, the order of the sides rotated each time;
 * a side that fails once is not run again (its failure is reported).
 */
export async function measureRemote(bench: Bench, fixture: RemoteFixture, reps: number): Promise<SideResult[]> {
  const results: SideResult[] = (await availableSides(bench, fixture)).map((side) => ({
    side,
    first: [],
    second: [],
    restore: [],
    stored: [],
    grown: [],
  }));
  for (let rep = -1; rep < reps; rep++) {
    for (let turn = 0; turn < results.length; turn++) {
      const entry = results[(rep + 1 + turn) % results.length];
      if (entry.failure) continue;
      try {
        const run = await runSequence(entry.side, bench.work, fixture, rep < 0);
        if (rep < 0) continue;
        for (const step of ["first", "second", "restore"] as const) entry[step].push(run[step]);
        entry.stored.push(run.stored);
        entry.grown.push(run.grown);
      } catch (error) {
        entry.failure = (error as Error).message;
        log(`remote / ${entry.side.label} FAILED: ${entry.failure}`);
      }
    }
    if (rep >= 0) noteRepetition("remote", rep, reps);
  }
  return results;
}

const seconds = (samples: Sample[]) => median(samples.map((sample) => sample.seconds));
const peakMiB = (samples: Sample[]) => median(samples.map((sample) => sample.peakKiB)) / 1024;

/** The section's report: what was stored, the table of medians, the targets, and every sample. */
export function formatRemote(fixture: RemoteFixture, results: SideResult[], reps: number): string {
  const ok = (entry?: SideResult) => entry && !entry.failure && entry.first.length > 0 ? entry : undefined;
  const tool = ok(results.find((entry) => entry.side.isTool));
  const other = ok(results.find((entry) => !entry.side.isTool));
  const chromaMiB = (fixture.storeBytes - fixture.dbBytes) / MiB;
  return [
    `Off-host repository: the second snapshot holds ${(fixture.storeBytes / MiB).toFixed(0)} MiB (database ${
      (fixture.dbBytes / MiB).toFixed(0)
    } MiB, Chroma and the rest ${chromaMiB.toFixed(0)} MiB); between the two snapshots ${fixture.updated} ` +
    `${fixture.shape} were updated (${UPDATED * 100}%) and ${fixture.added} added (${ADDED * 100}%). ` +
    `Both programs store the snapshot folders in a new repository on this disk each time: this tool with ` +
    `\`remote init\`, \`push STAMP\` twice and \`restore --from-remote STAMP --to DIR\`; restic with \`init\`, ` +
    `\`backup SNAPSHOT_FOLDER\` twice and \`restore latest --target DIR\`. One warm-up sequence each (checked: ` +
    `\`remote verify --read-data\` / \`check --read-data\`, the restored database byte for byte), then ${reps} timed ` +
    `sequence${reps === 1 ? "" : "s"}, order rotated, medians; sizes are the files in the repository folder.`,
    "",
    remoteTable(tool, other, results),
    "",
    ...targetLines(fixture, tool, other),
    "",
    "Samples (wall s, peak RSS; repository MiB after the first backup, growth at the second):",
    ...results.map(sampleLine),
  ].join("\n");
}

function remoteTable(tool: SideResult | undefined, other: SideResult | undefined, results: SideResult[]): string {
  const name = (isTool: boolean) =>
    results.find((entry) => entry.side.isTool === isTool)?.side.label ?? (isTool ? "this tool" : "restic");
  const time = (entry: SideResult | undefined, step: "first" | "second" | "restore") =>
    entry ? seconds(entry[step]).toFixed(2) : "-";
  const peak = (entry: SideResult | undefined, step: "first" | "second" | "restore") =>
    entry ? peakMiB(entry[step]).toFixed(1) : "-";
  const ratio = (step: "first" | "second" | "restore") =>
    tool && other ? (seconds(tool[step]) / Math.max(seconds(other[step]), 0.005)).toFixed(2) : "-";
  const bytes = (entry: SideResult | undefined, what: "stored" | "grown") =>
    entry ? (median(entry[what]) / MiB).toFixed(1) : "-";
  const rows = [
    ["first push / backup", "first", "repository after, MiB", "stored"],
    ["second push / backup", "second", "repository growth, MiB", "grown"],
    ["restore from the repository", "restore", "", ""],
  ] as const;
  return [
    `| step | ${name(true)} median s | ${name(false)} median s | ratio | ${name(true)} peak MiB | ${
      name(false)
    } peak MiB | bytes | ${name(true)} | ${name(false)} |`,
    "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ...rows.map(([label, step, what, key]) =>
      `| ${label} | ${time(tool, step)} | ${time(other, step)} | ${ratio(step)} | ${peak(tool, step)} | ${
        peak(other, step)
      } | ${what} | ${key ? bytes(tool, key) : ""} | ${key ? bytes(other, key) : ""} |`
    ),
  ].join("\n");
}

/** One line per target of issue 11: the figures compared, and whether it holds. */
function targetLines(fixture: RemoteFixture, tool?: SideResult, other?: SideResult): string[] {
  if (!tool) return ["Targets: not measured (this tool's rows did not run)."];
  const verdict = (holds: boolean) => holds ? "holds" : "DOES NOT HOLD";
  const grown = median(tool.grown);
  const lines = [
    `- second push writes ≤ 5% of the store: ${(grown / MiB).toFixed(1)} MiB of ${
      (fixture.storeBytes / MiB).toFixed(0)
    } MiB = ${(100 * grown / fixture.storeBytes).toFixed(2)}%: ${verdict(grown <= 0.05 * fixture.storeBytes)}`,
  ];
  if (other) {
    const otherGrown = median(other.grown);
    lines.push(
      `- second push writes ≤ 1/10 of restic's second backup: ${(grown / MiB).toFixed(1)} MiB against ${
        (otherGrown / MiB).toFixed(1)
      } MiB = 1/${(otherGrown / Math.max(grown, 1)).toFixed(1)}: ${verdict(grown * 10 <= otherGrown)}`,
      `- first push within restic's wall time: ${seconds(tool.first).toFixed(2)} s against ${
        seconds(other.first).toFixed(2)
      } s: ${verdict(seconds(tool.first) <= seconds(other.first))}`,
      `- restore within 1.5 times restic's: ${seconds(tool.restore).toFixed(2)} s against ${
        seconds(other.restore).toFixed(2)
      } s = ${(seconds(tool.restore) / seconds(other.restore)).toFixed(2)} times: ${
        verdict(seconds(tool.restore) <= 1.5 * seconds(other.restore))
      }`,
    );
  }
  const peak = Math.max(...[...tool.first, ...tool.second, ...tool.restore].map((sample) => sample.peakKiB)) / 1024;
  lines.push(`- peak memory under 256 MiB: at most ${peak.toFixed(1)} MiB in any run: ${verdict(peak < 256)}`);
  return ["Targets (issue 11):", ...lines];
}

function sampleLine(entry: SideResult): string {
  const runs = (samples: Sample[]) =>
    samples.map((sample) => `${sample.seconds.toFixed(2)} s ${(sample.peakKiB / 1024).toFixed(1)} MiB`).join("; ");
  const sizes = entry.stored.map((stored, index) =>
    `${(stored / MiB).toFixed(1)}+${(entry.grown[index] / MiB).toFixed(1)}`
  );
  return `- ${entry.side.label}: first ${runs(entry.first)} | second ${runs(entry.second)} | restore ${
    runs(entry.restore)
  } | MiB ${sizes.join(", ")}${entry.failure ? ` FAILED: ${entry.failure.slice(0, 400)}` : ""}`;
}
