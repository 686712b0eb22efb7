/**
 * A realistic sample AtoCore store, shared by tests, drills and benchmarks (built by
 * `src/sample/store.ts`, re-exported here), and a writer that commits to its
 * database while a test backs it up.
 *
 * Run as a script: `deno task sample --dir DIR [--db-mib N] [--chroma-mib N] [--segments N]`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { makeSampleStore } from "../src/sample/store.ts";

export { makeSampleStore, type SampleOptions, type SampleStore, sampleStorePaths } from "../src/sample/store.ts";

/**
 * Open the sample database for writing and add one ledger row per call, keeping
 * `ledger_total.total` equal to the sum of `ledger.amount` in every committed state.
 * The connection checkpoints only when asked, so WAL frames pile up.
 */
export function openLedgerWriter(dbPath: string): { commit(amount: number): void; close(): void } {
  const db = new DatabaseSync(dbPath, { timeout: 10_000 });
  db.exec("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;");
  const insert = db.prepare("INSERT INTO ledger (amount) VALUES (?)");
  const update = db.prepare("UPDATE ledger_total SET total = total + ? WHERE id = 1");
  return {
    commit(amount) {
      db.exec("BEGIN IMMEDIATE");
      insert.run(amount);
      update.run(amount);
      db.exec("COMMIT");
    },
    close: () => db.close(),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      dir: { type: "string" },
      "db-mib": { type: "string", default: "4" },
      "chroma-mib": { type: "string", default: "2" },
      segments: { type: "string", default: "2" },
      seed: { type: "string", default: "1" },
    },
  });
  if (!values.dir) {
    console.error("usage: deno task sample --dir DIR [--db-mib N] [--chroma-mib N] [--segments N] [--seed N]");
    Deno.exit(2);
  }
  const store = makeSampleStore(values.dir, {
    dbMiB: Number(values["db-mib"]),
    chromaMiB: Number(values["chroma-mib"]),
    segments: Number(values.segments),
    seed: Number(values.seed),
  });
  console.log(JSON.stringify(store, null, 2));
}
