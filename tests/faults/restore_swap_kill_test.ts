/**
 * `restore` killed with SIGKILL at seeded moments during the Chroma swap (a Chroma folder of 100 entries, so the
 * swap lasts): the next `create --chroma` refuses (exit 3) the half-restored store, or publishes a Chroma that is
 * wholly old or wholly new, never a mixture; then each way out that create prints, or another restore, brings the
 * store exactly to the state asked for, and create works again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, createdStamp, printedCommand, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { removeQuietly } from "../../src/fs/durable.ts";
import { entryNames, faultSeed, ledgerState, runAndKill, seededRandom, treeDigest, trialLabel } from "../_faults.ts";

const TRIALS = 12;
const PADDING_ENTRIES = 100;
const INTENT = ".atocore.db.restore-intent.json";

/** What follows the kill, in turn: the two ways out create prints, another snapshot, another one without Chroma. */
const NEXT = ["finish", "go back", "another snapshot", "another snapshot --no-chroma"] as const;

interface State {
  ledger: { rows: number; sum: number; total: number };
  registry: string;
  chroma: Record<string, string>;
}

type Store = { dataDir: string; db: string; registry: string; chromaDir: string; backupDir: string };

async function stateOf(store: Store, chroma = treeDigest(store.chromaDir)): Promise<State> {
  return { ledger: await ledgerState(store.db), registry: Deno.readTextFileSync(store.registry), chroma };
}

/** Change the live store: ledger rows, the registry, a Chroma file, and a new segment. */
async function changeLive(store: Store): Promise<void> {
  const output = await new Deno.Command("sqlite3", {
    args: [store.db, "INSERT INTO ledger (amount) VALUES (5); UPDATE ledger_total SET total = total + 5;"],
  }).output();
  assert.equal(output.code, 0);
  Deno.writeTextFileSync(store.registry, JSON.stringify({ projects: [{ id: "changed-after-the-snapshot" }] }));
  Deno.writeTextFileSync(join(store.chromaDir, "pad-0000.bin"), "changed after the snapshot");
  Deno.mkdirSync(join(store.chromaDir, "ffffffff-new-segment"));
  Deno.writeTextFileSync(join(store.chromaDir, "ffffffff-new-segment", "data_level0.bin"), "new segment");
}

/** Put the saved live store back (Chroma's folder itself kept), with no record of a restore. */
function putBack(saved: string, store: Store): void {
  for (const name of entryNames(store.dataDir)) {
    if (name !== "backups" && name !== "chroma") removeQuietly(join(store.dataDir, name));
  }
  for (const name of entryNames(store.chromaDir)) removeQuietly(join(store.chromaDir, name));
  const copy = new Deno.Command("cp", {
    args: ["-a", join(saved, "atocore.db"), join(saved, "project-registry.json"), store.dataDir],
  }).outputSync();
  assert.equal(copy.code, 0);
  assert.equal(
    new Deno.Command("cp", { args: ["-a", `${join(saved, "chroma")}/.`, store.chromaDir] }).outputSync().code,
    0,
  );
}

/** Milliseconds between two events on a run's stderr, as the kill harness sees them, to spread kill moments over. */
async function timeBetween(args: string[], env: Record<string, string>, first: string, last: string) {
  const child = cliProcess(args, { env, stdout: "null" }).spawn();
  const seen: Record<string, number> = {};
  let text = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    for (const event of [first, last]) {
      if (!seen[event] && text.includes(`"event":"${event}"`)) seen[event] = performance.now();
    }
  }
  assert.equal((await child.status).code, 0);
  assert.ok(seen[first] && seen[last], `${first} or ${last} not logged`);
  return seen[last] - seen[first];
}

/** What differs between two states, shortly, for a failure's message. */
function differences(expected: State, actual: State): string {
  const chroma = [...new Set([...Object.keys(expected.chroma), ...Object.keys(actual.chroma)])]
    .filter((path) => expected.chroma[path] !== actual.chroma[path]);
  return JSON.stringify({
    ledger: JSON.stringify(expected.ledger) === JSON.stringify(actual.ledger)
      ? "same"
      : [expected.ledger, actual.ledger],
    registry: expected.registry === actual.registry ? "same" : "differs",
    chroma: chroma.slice(0, 5).map((path) => `${path}: ${expected.chroma[path]} / ${actual.chroma[path]}`),
  });
}

/** The command printed after `words` in a message, as CLI arguments (its paths plain: no quotes). */
function printedArgs(message: string, words: string): string[] | null {
  return printedCommand(message, words)?.split(" ").slice(1) ?? null;
}

/**
 * A restore without Chroma while the killed one (with Chroma) is recorded: refused, nothing changed, naming the command
 * that finishes the killed one; that command is run.
 */
async function finishFirst(args: string[], env: Record<string, string>, label: string): Promise<void> {
  const refused = await runCli(args, { env });
  assert.equal(refused.code, 3, `${args.join(" ")} was not refused ${label}: ${refused.stderr}`);
  assert.match(refused.stderr, /was restoring Chroma too; this run leaves Chroma alone/, label);
  const finish = printedArgs(refused.stderr, "finish it with");
  assert.ok(finish, `no command to finish it ${label}: ${refused.stderr}`);
  const finished = await runCli(finish, { env });
  assert.equal(finished.code, 0, `${finish.join(" ")} failed ${label}: ${finished.stderr}`);
}

/**
 * Where the killed restore stood, from its record: for the log, and to know a swap was hit. A swap names the folder it
 * works in (device and inode), which settling it checks.
 */
function recordedPhase(store: Store): string {
  let intent;
  try {
    intent = JSON.parse(Deno.readTextFileSync(join(store.dataDir, INTENT)));
  } catch {
    return "no record";
  }
  if (intent.swap === null) return "recorded, no swap";
  const { dev, ino } = Deno.statSync(store.chromaDir);
  assert.deepEqual(intent.swap.folder, { dev, ino }, "the swap recorded another folder, or none");
  return intent.swap.phase;
}

/** The states a trial can end in, and the snapshots it restores. */
interface Fixture {
  stamp: string;
  other: string;
  snapshots: string;
  /** The live store before the restore. */
  live: State;
  /** `stamp` restored. */
  restored: State;
  /** `other` restored. */
  otherState: State;
}

/**
 * Run `create --chroma` after a kill: it refuses (exit 3) naming the unfinished restore, or publishes a Chroma that
 * is wholly old or wholly new. Returns create's message when it refused, else the stamp it published.
 */
async function createAfterKill(env: Record<string, string>, fixture: Fixture, label: string) {
  const create = await runCli(["create", "--chroma"], { env });
  if (create.code === 0) {
    const published = (create.json as { stamp: string }).stamp;
    const chroma = JSON.stringify(treeDigest(join(fixture.snapshots, published, "chroma")));
    const whole = [fixture.restored.chroma, fixture.live.chroma].some((state) => JSON.stringify(state) === chroma);
    assert.ok(whole, `create published a Chroma neither old nor new ${label}`);
    return { message: "", published };
  }
  assert.equal(create.code, 3, `create after the kill: exit ${create.code} ${label}: ${create.stderr}`);
  const message = create.stderr.trim().split("\n").filter((line) => !line.startsWith("{")).join(" ");
  assert.match(message, /did not finish/, label);
  return { message, published: "" };
}

/** The command a trial runs after the kill, and the states it may end in. */
function wayOut(next: (typeof NEXT)[number], fixture: Fixture, created: { message: string; published: string }) {
  const { stamp, other, snapshots, live, restored, otherState } = fixture;
  const restore = ["restore", stamp, "--confirm-service-stopped"];
  switch (next) {
    case "finish":
      return { args: printedArgs(created.message, "finish it with") ?? restore, expected: [restored] };
    case "go back": {
      // The way back create printed; when create had nothing to refuse, the pre-restore snapshot the run made.
      const pre = printedArgs(created.message, "go back to the pre-restore snapshot with")?.[1] ??
        entryNames(snapshots).find((name) => ![stamp, other, created.published].includes(name))!;
      const chroma = treeDigest(join(snapshots, pre, "chroma"));
      return { args: ["restore", pre, "--confirm-service-stopped"], expected: [{ ...live, chroma }] };
    }
    case "another snapshot":
      return { args: ["restore", other, "--confirm-service-stopped"], expected: [otherState] };
    // Chroma whole: put back as it was, or wholly swapped before the kill; with a record, refused until it is finished
    case "another snapshot --no-chroma":
      return {
        args: ["restore", other, "--confirm-service-stopped", "--no-chroma"],
        expected: [{ ...otherState, chroma: live.chroma }, { ...otherState, chroma: restored.chroma }],
      };
  }
}

/** A store whose Chroma folder has many entries, a snapshot of it, changes, a second snapshot, and a saved copy. */
async function makeFixture(store: Store, saved: string): Promise<Fixture> {
  for (let index = 0; index < PADDING_ENTRIES; index++) {
    Deno.writeTextFileSync(join(store.chromaDir, `pad-${String(index).padStart(4, "0")}.bin`), `pad ${index}`);
  }
  const env = storeEnv(store);
  const snapshots = join(store.backupDir, "snapshots");
  const stamp = await createdStamp(env);
  const restored = await stateOf(store, treeDigest(join(snapshots, stamp, "chroma")));
  await changeLive(store);
  const other = await createdStamp(env);
  const otherState = await stateOf(store, treeDigest(join(snapshots, other, "chroma")));
  const live = await stateOf(store);
  const copy = new Deno.Command("cp", { args: ["-a", store.db, store.registry, store.chromaDir, saved] });
  assert.equal(copy.outputSync().code, 0);
  return { stamp, other, snapshots, live, restored, otherState };
}

Deno.test("restore killed during the Chroma swap: create refuses the mixture, and every way out restores exactly", async () => {
  const seed = faultSeed();
  const random = seededRandom(seed + 7);
  using store = tempStore({ dbMiB: 2, chromaMiB: 1, segments: 3, seed: 41 });
  using saved = tempDir("atocore-saved-");
  const env = storeEnv(store);
  const fixture = await makeFixture(store, saved.path);
  const { stamp, other, snapshots } = fixture;
  const restore = ["restore", stamp, "--confirm-service-stopped"];
  // The swap's length, and a little more so that some kills land after it: a kill may land anywhere.
  const window = 1.2 * await timeBetween(restore, env, "restore_chroma_swapping", "restore_chroma_swapped");
  const phases: string[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    for (const name of entryNames(snapshots)) {
      if (name !== stamp && name !== other) removeQuietly(join(snapshots, name));
    }
    putBack(saved.path, store);
    const next = NEXT[trial % NEXT.length];
    const args = next === "another snapshot" ? [...restore, "--no-pre-snapshot"] : restore;
    const delay = Math.round(random() * window);
    const label = trialLabel(seed, trial, `kill ${delay} ms into the swap; then ${next}`);
    const killed = await runAndKill(args, env, delay, "restore_chroma_swapping");
    if (killed.code !== null) assert.equal(killed.code, 0, `restore ran to its end but failed ${label}`);
    phases.push(recordedPhase(store));
    const created = await createAfterKill(env, fixture, label);
    const way = wayOut(next, fixture, created);
    if (next === "another snapshot --no-chroma" && created.message !== "") await finishFirst(way.args, env, label);
    const after = await runCli(way.args, { env });
    assert.equal(after.code, 0, `${way.args.join(" ")} failed ${label}: ${after.stderr}`);
    const state = await stateOf(store);
    assert.ok(
      way.expected.some((expected) => JSON.stringify(expected) === JSON.stringify(state)),
      `${way.args.join(" ")} did not give the state asked for ${label}: ${differences(way.expected[0], state)}`,
    );
    assert.deepEqual(entryNames(store.chromaDir).filter((name) => name.startsWith(".")), [], `leftovers ${label}`);
    const again = await runCli(["create", "--chroma"], { env });
    assert.equal(again.code, 0, `create after ${next} ${label}: ${again.stderr}`);
  }
  const counts = Object.entries(Object.groupBy(phases, (phase) => phase)).map(([key, list]) =>
    `${list!.length} ${key}`
  );
  console.log(`restore killed during the swap: ${TRIALS} trials (seed ${seed}); records found: ${counts.join(", ")}`);
});
