/**
 * `restore` killed with SIGKILL at seeded random moments over a database of about
 * 200 MiB: the live database always passes its integrity check and holds either the
 * old data or the restored data, never a mix and never nothing; the registry is old
 * or new; the Chroma folder itself stays; the next restore cleans up and succeeds.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  changeMarkerInWal,
  cliProcess,
  createdStamp,
  projectMarker,
  runCli,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { entryNames, faultSeed, killAfter, seededRandom, sqliteIntegrity, treeDigest, trialLabel } from "../_faults.ts";

const TRIALS = 8;
const DB_MIB = 200;

/** Milliseconds from spawn to the end of validation (where the live files start to change), and to the end. */
interface Calibration {
  replaceStartsMs: number;
  endsMs: number;
}

Deno.test("restore killed at random moments leaves the live database old or new, whole, never missing", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed);
  using store = tempStore({ dbMiB: DB_MIB, chromaMiB: 4, segments: 2, seed: 11 });
  using base = tempDir();
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const chromaAtCreate = treeDigest(join(store.backupDir, "snapshots", stamp, "chroma"));
  const newRegistry = Deno.readTextFileSync(store.registry);
  changeMarkerInWal(store.db);
  const oldRegistry = '{"projects": []}\n';
  Deno.writeTextFileSync(store.registry, oldRegistry);
  for (const name of ["atocore.db", "atocore.db-wal"]) {
    Deno.copyFileSync(join(store.dataDir, name), join(base.path, name));
  }
  const chromaInode = Deno.statSync(store.chromaDir).ino;
  const restore = ["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"];

  const calibration = await calibrate(restore, env);
  const outcomes = { old: 0, restored: 0 };
  for (let trial = 0; trial < TRIALS; trial++) {
    resetLiveDatabase(store.dataDir, base.path);
    Deno.writeTextFileSync(store.registry, oldRegistry);
    const delay = Math.round(random() * (calibration.endsMs - calibration.replaceStartsMs));
    const label = trialLabel(seed, trial, `kill ${delay} ms after validation`);
    const killed = await killAfterValidation(restore, env, delay);
    if (killed !== null) assert.equal(killed, 0, `restore ran to its end but failed ${label}`);

    assert.ok(Deno.statSync(store.db).isFile, `live database missing ${label}`);
    assert.equal(await sqliteIntegrity(store.db), "ok", `live database damaged ${label}`);
    const marker = await projectMarker(store.db);
    assert.ok(marker === "changed" || marker === "atlas", `live database holds ${marker} ${label}`);
    outcomes[marker === "atlas" ? "restored" : "old"] += 1;
    assert.ok([oldRegistry, newRegistry].includes(Deno.readTextFileSync(store.registry)), `registry torn ${label}`);
    assert.equal(Deno.statSync(store.chromaDir).ino, chromaInode, `Chroma folder replaced ${label}`);

    const next = await runCli(restore, { env });
    assert.equal(next.code, 0, `the restore after the kill failed ${label}: ${next.stderr}`);
    assert.equal(await projectMarker(store.db), "atlas", label);
    assert.deepEqual(treeDigest(store.chromaDir), chromaAtCreate, `Chroma not restored ${label}`);
    assert.deepEqual(hidden(store.dataDir), [], `temporary files left beside the database ${label}`);
    assert.deepEqual(hidden(store.chromaDir), [], `staging left in the Chroma folder ${label}`);
  }
  console.log(
    `restore: ${TRIALS} kills (seed ${seed}): ${outcomes.old} left the old database, ` +
      `${outcomes.restored} the restored one`,
  );
});

function resetLiveDatabase(dataDir: string, base: string): void {
  for (const name of entryNames(dataDir).filter((name) => name.includes("atocore.db"))) {
    Deno.removeSync(join(dataDir, name));
  }
  for (const name of ["atocore.db", "atocore.db-wal"]) Deno.copyFileSync(join(base, name), join(dataDir, name));
}

function hidden(folder: string): string[] {
  return entryNames(folder).filter((name) => name.startsWith("."));
}

/** Start the CLI with `args`, its stderr read line by line. */
function spawnCli(args: string[], env: Record<string, string>) {
  const child = cliProcess(args, { env, stdout: "null" }).spawn();
  return {
    child,
    lines: child.stderr.pipeThrough(new TextDecoderStream()).pipeThrough(lines())[Symbol.asyncIterator](),
  };
}

const VALIDATED = '"event":"restore_snapshot_validated"';

/**
 * Run the restore once to the end and measure how long it runs after validation, the
 * phase in which the live files change; kill moments are spread over that phase.
 */
async function calibrate(args: string[], env: Record<string, string>): Promise<Calibration> {
  const started = performance.now();
  const { child, lines } = spawnCli(args, env);
  let replaceStartsMs = 0;
  let text = "";
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    text += next.value + "\n";
    if (!replaceStartsMs && next.value.includes(VALIDATED)) replaceStartsMs = performance.now() - started;
  }
  const status = await child.status;
  assert.equal(status.code, 0, text);
  assert.ok(replaceStartsMs > 0, `no restore_snapshot_validated event: ${text}`);
  return { replaceStartsMs, endsMs: performance.now() - started };
}

/**
 * Start the restore, wait for its validation to end, then send SIGKILL after `delayMs`.
 *
 * @returns The exit code when the run ended before the kill, `null` when the kill landed.
 */
async function killAfterValidation(
  args: string[],
  env: Record<string, string>,
  delayMs: number,
): Promise<number | null> {
  const { child, lines } = spawnCli(args, env);
  let text = "";
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    text += next.value + "\n";
    if (next.value.includes(VALIDATED)) break;
  }
  assert.ok(text.includes(VALIDATED), `restore ended before validating: ${text}`);
  const draining = (async () => {
    for (let next = await lines.next(); !next.done; next = await lines.next());
  })();
  const code = await killAfter(child, delayMs);
  await draining;
  return code;
}

function lines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const part of parts) controller.enqueue(part);
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}
