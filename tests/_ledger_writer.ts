/**
 * A writer that commits to a sample store's ledger as fast as it can until it is
 * killed, as the service would while a backup runs. Run as a script:
 * `deno run --allow-read --allow-write tests/_ledger_writer.ts DB SEED`.
 *
 * Every commit adds one ledger row and the same amount to `ledger_total`, so each
 * committed state has `sum(ledger.amount) = ledger_total.total`. A second connection
 * checkpoints now and then so the WAL stays small.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { openLedgerWriter } from "../scripts/sample_store.ts";
import { seededRandom } from "./_faults.ts";

const COMMITS_PER_CHECKPOINT = 1000;

if (import.meta.main) {
  const [db, seed] = Deno.args;
  const random = seededRandom(Number(seed));
  const writer = openLedgerWriter(db);
  const checkpointer = new DatabaseSync(db, { timeout: 10_000 });
  for (let commits = 1;; commits++) {
    writer.commit(Math.floor(random() * 2001) - 1000);
    if (commits % COMMITS_PER_CHECKPOINT === 0) checkpointer.exec("PRAGMA wal_checkpoint(PASSIVE)");
  }
}
