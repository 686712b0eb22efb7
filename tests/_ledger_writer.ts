/**
 * A writer that commits to a sample store's ledger as fast as it can until it is
 * killed, as the service would while a backup runs. Run as a script:
 * `deno run --allow-read --allow-write tests/_ledger_writer.ts DB SEED [MODE]`.
 *
 * Every commit adds one ledger row and the same amount to `ledger_total`, so each
 * committed state has `sum(ledger.amount) = ledger_total.total`. MODE `wal` (the default): one connection, and a
 * second that checkpoints now and then so the WAL stays small; `reconnecting`: a connection closed and opened again
 * every 20 commits (the last one to close checkpoints and resets the WAL); `rollback`: one connection, the database
 * in rollback-journal mode, a millisecond's pause after each commit.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { openLedgerWriter } from "../scripts/sample_store.ts";
import { seededRandom } from "./_faults.ts";

/** How the writer connects and journals (see the module's text). */
export type LedgerWriterMode = "wal" | "reconnecting" | "rollback";

const COMMITS_PER_CHECKPOINT = 1000;
const COMMITS_PER_CONNECTION = 20;
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

if (import.meta.main) {
  const [db, seed, mode = "wal"] = Deno.args as [string, string, LedgerWriterMode?];
  const random = seededRandom(Number(seed));
  const journal = mode === "rollback" ? "rollback" : "wal";
  let writer = openLedgerWriter(db, journal);
  const checkpointer = mode === "wal" ? new DatabaseSync(db, { timeout: 10_000 }) : null;
  for (let commits = 1;; commits++) {
    writer.commit(Math.floor(random() * 2001) - 1000);
    // a rollback-journal writer that never pauses starves every reader (the test's own, and the backup's) of the lock
    if (mode === "rollback") Atomics.wait(PAUSE, 0, 0, 1);
    if (commits % COMMITS_PER_CHECKPOINT === 0) checkpointer?.exec("PRAGMA wal_checkpoint(PASSIVE)");
    if (mode === "reconnecting" && commits % COMMITS_PER_CONNECTION === 0) {
      writer.close();
      writer = openLedgerWriter(db, journal);
    }
  }
}
