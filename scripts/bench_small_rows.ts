/**
 * A store shaped like AtoCore's own for the benchmark's `remote-small` section: small text rows (memories and chunks
 * of about 1 KiB, indexed by project and time) instead of the sample store's 64 KiB blobs, with the sample's Chroma
 * (embeddings); and a day's changes to it. On such rows a 1% update touches pages all over the file.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { removeQuietly } from "../src/fs/durable.ts";
import { makeSampleStore, type RowChanges, type SampleStore, seededInts } from "./sample_store.ts";

const WORDS = ("memory project decision note context chunk vector model backup restore service deploy schedule " +
  "meeting design review risk owner status summary customer release incident metric budget roadmap query answer " +
  "source document section heading paragraph reference link tag priority follow up done open blocked").split(" ");
const ROW_BYTES = 1024;
const ROWS_PER_TRANSACTION = 20_000;

/** Deterministic words of about `bytes` characters (text that compresses like notes do). */
function words(next: () => number, bytes: number): string {
  let text = "";
  while (text.length < bytes) text += WORDS[next() % WORDS.length] + (next() % 9 === 0 ? ". " : " ");
  return text.slice(0, bytes);
}

/**
 * Make the store: the sample's registry and Chroma, and a database of `dbMiB` of memories (one in four) and chunks,
 * each about 1 KiB of text, with an index on (project, updated_at) and on the chunk's memory.
 */
export function makeSmallRowStore(dataDir: string, dbMiB: number, chromaMiB: number): SampleStore {
  const store = makeSampleStore(dataDir, { dbMiB: 0.1, chromaMiB });
  for (const suffix of ["", "-wal", "-shm"]) removeQuietly(store.db + suffix);
  const db = new DatabaseSync(store.db);
  db.exec(`PRAGMA journal_mode=WAL;
    CREATE TABLE memories (id INTEGER PRIMARY KEY, project TEXT NOT NULL, kind TEXT NOT NULL, content TEXT NOT NULL,
      updated_at TEXT NOT NULL);
    CREATE INDEX memories_by_project ON memories(project, updated_at);
    CREATE TABLE chunks (id INTEGER PRIMARY KEY, memory_id INTEGER NOT NULL, ord INTEGER NOT NULL, content TEXT NOT NULL);
    CREATE INDEX chunks_by_memory ON chunks(memory_id, ord);`);
  const next = seededInts(11);
  const memory = db.prepare("INSERT INTO memories VALUES (?, ?, ?, ?, ?)");
  const chunk = db.prepare("INSERT INTO chunks VALUES (?, ?, ?, ?)");
  const rows = Math.round(dbMiB * 1048576 / (ROW_BYTES + 120));
  db.exec("BEGIN");
  for (let row = 0; row < rows; row++) {
    const id = Math.floor(row / 4) + 1;
    if (row % 4 === 0) {
      memory.run(id, `project-${next() % 40}`, "note", words(next, ROW_BYTES), stampOf(next() % 1e8));
    } else chunk.run(row, id, row % 4, words(next, ROW_BYTES));
    if (row % ROWS_PER_TRANSACTION === ROWS_PER_TRANSACTION - 1) db.exec("COMMIT; BEGIN");
  }
  db.exec("COMMIT; PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return store;
}

function stampOf(seconds: number): string {
  return new Date(Date.UTC(2025, 0, 1) + seconds * 1000).toISOString();
}

/**
 * A day's changes: `updateFraction` of the memories and chunks get new text (and a new time), `addFraction` more;
 * `seed` picks the rows.
 */
export function changeSmallRows(dbPath: string, updateFraction: number, addFraction: number, seed = 7): RowChanges {
  const db = new DatabaseSync(dbPath, { timeout: 10_000 });
  const next = seededInts(seed);
  const changes: RowChanges = { updated: 0, added: 0 };
  try {
    db.exec("BEGIN IMMEDIATE");
    for (const table of ["memories", "chunks"]) {
      const max = (db.prepare(`SELECT max(id) AS n FROM ${table}`).get() as { n: number }).n;
      const count = (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      const update = table === "memories"
        ? db.prepare("UPDATE memories SET content = ?, updated_at = ? WHERE id = ?")
        : db.prepare("UPDATE chunks SET content = ? WHERE id = ?");
      for (let done = 0; done < Math.round(count * updateFraction);) {
        const id = 1 + next() % max;
        const args = table === "memories"
          ? [words(next, ROW_BYTES), stampOf(1e8 + done), id]
          : [words(next, ROW_BYTES), id];
        const changed = Number(update.run(...args).changes);
        done += changed;
        changes.updated += changed;
      }
      const add = table === "memories"
        ? db.prepare("INSERT INTO memories (project, kind, content, updated_at) VALUES (?, 'note', ?, ?)")
        : db.prepare("INSERT INTO chunks (memory_id, ord, content) VALUES (?, 1, ?)");
      for (let index = 0; index < Math.round(count * addFraction); index++) {
        const args = table === "memories"
          ? [`project-${next() % 40}`, words(next, ROW_BYTES), stampOf(2e8 + index)]
          : [1 + next() % max, words(next, ROW_BYTES)];
        changes.added += Number(add.run(...args).changes);
      }
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
  return changes;
}
