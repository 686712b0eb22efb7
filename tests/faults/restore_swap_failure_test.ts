/**
 * A Chroma swap that fails half way (a segment folder of the live Chroma folder that is immutable, `chattr +i`: its
 * rename fails with EPERM; a mount point there is refused before anything changes) is undone: the entries moved aside come back, the staged copy goes, the message says that the
 * database and registry are already the snapshot's, create refuses the mixed store, and the printed ways out work,
 * pasted into a shell as printed (paths with a space and a quote too).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createdStamp,
  printedCommand,
  runCli,
  runPrinted,
  skipOutsideCi,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { makeSampleStore, type SampleStore } from "../../scripts/sample_store.ts";
import { entryNames, ledgerState, treeDigest } from "../_faults.ts";

/** Sorted last, so every other entry has been moved aside when its rename fails. */
const STUCK = "zzzz-immutable-segment";

/** Make `path` immutable until disposed, or say why it cannot be here (a filesystem without the attribute). */
function immutable(path: string): Disposable | string {
  const set = new Deno.Command("chattr", { args: ["+i", path], stderr: "piped" }).outputSync();
  if (!set.success) return `chattr +i is not possible here: ${new TextDecoder().decode(set.stderr).trim()}`;
  return { [Symbol.dispose]: () => void new Deno.Command("chattr", { args: ["-i", path] }).outputSync() };
}

/** Change the live store after the snapshot: ledger rows, the registry, one Chroma file, and extra Chroma entries. */
async function changeLive(store: { db: string; registry: string; chromaDir: string }): Promise<void> {
  const output = await new Deno.Command("sqlite3", {
    args: [store.db, "INSERT INTO ledger (amount) VALUES (7); UPDATE ledger_total SET total = total + 7;"],
  }).output();
  assert.equal(output.code, 0);
  Deno.writeTextFileSync(store.registry, JSON.stringify({ projects: [{ id: "changed-after-the-snapshot" }] }));
  for (let index = 0; index < 20; index++) {
    Deno.writeTextFileSync(join(store.chromaDir, `added-${index}.bin`), `entry ${index} added after the snapshot`);
  }
  Deno.mkdirSync(join(store.chromaDir, STUCK));
  Deno.writeTextFileSync(join(store.chromaDir, STUCK, "header.bin"), "in a folder that cannot be moved");
}

/** The one line of a failed run that is not a JSON event. */
function errorLine(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(lines.length, 1, `not one line: ${stderr}`);
  return lines[0];
}

/**
 * A sample store as the test runs the CLI on it: `plain`, through the environment; else in a folder of that name (a
 * space, a quote), through path flags (`flags`), which the printed commands carry.
 */
function storeNamed(name: string): { store: SampleStore; env: Record<string, string>; flags: string[] } & Disposable {
  const options = { dbMiB: 1, chromaMiB: 1, segments: 3, seed: 31 };
  if (name === "plain") {
    const store = tempStore(options);
    return { store, env: storeEnv(store), flags: [], [Symbol.dispose]: () => store[Symbol.dispose]() };
  }
  const work = tempDir("atocore-swap-failure-");
  const store = makeSampleStore(join(work.path, name), options);
  const flags = ["--db", store.db, "--backup-dir", store.backupDir, "--registry", store.registry];
  return {
    store,
    env: {},
    flags: [...flags, "--chroma-dir", store.chromaDir],
    [Symbol.dispose]: () => work[Symbol.dispose](),
  };
}

const WAYS = ["finish it with", "or go back to the pre-restore snapshot with"];
const PATHS = ["plain", "with spaces, and a quote's"];
for (const [way, paths] of WAYS.flatMap((way) => PATHS.map((paths) => [way, paths]))) {
  Deno.test(`a Chroma swap stopped by an entry that cannot move is undone and says so; '${way}' then works as printed (${paths} paths)`, async () => {
    using named = storeNamed(paths);
    const { store, env, flags } = named;
    const stamp = await createdStamp(env, ["--chroma", ...flags]);
    const after = { ledger: await ledgerState(store.db), registry: Deno.readTextFileSync(store.registry) };
    const snapshotChroma = treeDigest(join(store.backupDir, "snapshots", stamp, "chroma"));
    await changeLive(store);
    const stuck = immutable(join(store.chromaDir, STUCK));
    if (typeof stuck === "string") return skipOutsideCi(stuck);
    let message: string;
    let pre: string;
    const before = { ledger: await ledgerState(store.db), registry: Deno.readTextFileSync(store.registry) };
    {
      using _stuck = stuck;
      const chromaBefore = treeDigest(store.chromaDir);
      const run = await runCli(["restore", stamp, "--confirm-service-stopped", ...flags], { env });
      assert.equal(run.code, 1, `exit ${run.code}: ${run.stderr}`);
      message = errorLine(run.stderr);
      pre = entryNames(join(store.backupDir, "snapshots")).find((name) => name !== stamp)!;
      assert.ok(message.includes(join(store.chromaDir, STUCK)), `the entry that failed is not named: ${message}`);
      assert.match(message, /permission denied moving .*zzzz-immutable-segment/);
      assert.match(message, /Chroma was put back as it was \(2\d entries moved back, the staged copy removed\)/);
      assert.match(message, new RegExp(`the database and the registry are already those of snapshot ${stamp}`));
      assert.deepEqual(treeDigest(store.chromaDir), chromaBefore, "Chroma is not as it was");
      assert.deepEqual(entryNames(store.chromaDir).filter((name) => name.startsWith(".")), [], "hidden folders left");
      assert.deepEqual(await ledgerState(store.db), after.ledger, "the database is not the snapshot's, as said");
      assert.equal(Deno.readTextFileSync(store.registry), after.registry, "the registry is not the snapshot's");
      const create = await runCli(["create", "--chroma", ...flags], { env });
      assert.equal(create.code, 3, `create backed up the mixed store: ${create.stderr}`);
      assert.match(errorLine(create.stderr), new RegExp(`restore of snapshot ${stamp} .*did not finish`));
    }
    const printed = printedCommand(message, way) ?? "";
    assert.ok(printed.startsWith("atocore-backup restore "), `no command after "${way}": ${message}`);
    const next = await runPrinted(printed, env); // pasted into a shell as it is
    assert.equal(next.code, 0, `${printed}: ${next.stderr}`);
    const expected = way.startsWith("finish")
      ? { ...after, chroma: snapshotChroma }
      : { ...before, chroma: treeDigest(join(store.backupDir, "snapshots", pre, "chroma")) };
    assert.deepEqual(await ledgerState(store.db), expected.ledger);
    assert.equal(Deno.readTextFileSync(store.registry), expected.registry);
    assert.deepEqual(treeDigest(store.chromaDir), expected.chroma);
    const create = await runCli(["create", "--chroma", ...flags], { env });
    assert.equal(create.code, 0, create.stderr);
    console.log(message);
  });
}
