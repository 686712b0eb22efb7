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

/** A connection committing to the ledger: each commit one row and the same amount added to the running total. */
export interface LedgerWriter {
  commit(amount: number): void;
  close(): void;
}

/**
 * Open the sample database for writing and add one ledger row per call, keeping
 * `ledger_total.total` equal to the sum of `ledger.amount` in every committed state.
 * In WAL mode the connection checkpoints only when asked, so WAL frames pile up; `rollback` puts the database back in
 * rollback-journal mode.
 */
export function openLedgerWriter(dbPath: string, journal: "wal" | "rollback" = "wal"): LedgerWriter {
  const db = new DatabaseSync(dbPath, { timeout: 10_000 });
  db.exec(journal === "wal" ? "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;" : "PRAGMA journal_mode=DELETE;");
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

/** How many rows {@linkcode changeSampleRows} updated and added. */
export interface RowChanges {
  updated: number;
  added: number;
}

/**
 * A day's changes to the sample database: `updateFraction` of the rows of `documents` and `chunks` given new values
 * (a new body, new random content of the same size) and `addFraction` more rows added, the rows chosen by `seed`;
 * one transaction, as a live service would write it.
 */
export function changeSampleRows(dbPath: string, updateFraction: number, addFraction: number, seed = 7): RowChanges {
  const db = new DatabaseSync(dbPath, { timeout: 10_000 });
  const next = seededInts(seed);
  const changes: RowChanges = { updated: 0, added: 0 };
  try {
    db.exec("BEGIN IMMEDIATE");
    const count = (table: string) => (db.prepare(`SELECT max(id) AS n FROM ${table}`).get() as { n: number }).n;
    const documents = count("documents");
    const chunks = count("chunks");
    const pick = (total: number, fraction: number) => {
      const ids = new Set<number>();
      while (ids.size < Math.min(total, Math.max(1, Math.round(total * fraction)))) ids.add(1 + next() % total);
      return [...ids];
    };
    const updateDocument = db.prepare("UPDATE documents SET body = ? WHERE id = ?");
    for (const id of pick(documents, updateFraction)) {
      changes.updated += Number(updateDocument.run(`revised ${id} `.padEnd(240, "x"), id).changes);
    }
    const updateChunk = db.prepare("UPDATE chunks SET content = randomblob(length(content)) WHERE id = ?");
    for (const id of pick(chunks, updateFraction)) changes.updated += Number(updateChunk.run(id).changes);
    const addDocument = db.prepare("INSERT INTO documents (project_id, title, body) VALUES (?, ?, ?)");
    for (let index = 0; index < Math.max(1, Math.round(documents * addFraction)); index++) {
      changes.added += Number(addDocument.run(1 + index % 3, `Added ${index}`, "new ".repeat(60)).changes);
    }
    const addChunk = db.prepare("INSERT INTO chunks (document_id, ord, content) VALUES (?, ?, randomblob(65536))");
    for (let index = 0; index < Math.max(1, Math.round(chunks * addFraction)); index++) {
      changes.added += Number(addChunk.run(1 + next() % documents, 8 + index).changes);
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
  return changes;
}

/** Deterministic non-negative integers (xorshift32) for choosing rows; the benchmarks draw from it too. */
export function seededInts(seed: number): () => number {
  let state = (seed * 2654435761) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

const USAGE = "usage: deno task sample --dir DIR [--db-mib N] [--chroma-mib N] [--segments N] [--seed N]";

/** The script's flags, or its usage printed and the process ended (2 on a mistake, 0 for --help). */
function sampleFlags() {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        dir: { type: "string" },
        "db-mib": { type: "string", default: "4" },
        "chroma-mib": { type: "string", default: "2" },
        segments: { type: "string", default: "2" },
        seed: { type: "string", default: "1" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (values.dir) return { ...values, dir: values.dir };
  } catch (error) {
    console.error(`sample: ${(error as Error).message}`);
  }
  console.error(USAGE);
  Deno.exit(2);
}

if (import.meta.main) {
  const values = sampleFlags();
  const store = makeSampleStore(values.dir, {
    dbMiB: Number(values["db-mib"]),
    chromaMiB: Number(values["chroma-mib"]),
    segments: Number(values.segments),
    seed: Number(values.seed),
  });
  console.log(JSON.stringify(store, null, 2));
}
