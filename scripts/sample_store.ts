/**
 * A realistic sample AtoCore store, shared by tests, drills and benchmarks:
 * a WAL database with several tables and blobs (optionally with frames not yet
 * checkpointed), a project registry, and a Chroma-like folder with
 * `chroma.sqlite3` and segment folders of HNSW files.
 *
 * Run as a script: `deno task sample --dir DIR [--db-mib N] [--chroma-mib N] [--segments N]`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { parseArgs } from "node:util";

/** Sizes of a sample store. */
export interface SampleOptions {
  /** Approximate size of the database, in MiB (default 4). */
  dbMiB?: number;
  /** Approximate size of the Chroma segment files, in MiB (default 2). */
  chromaMiB?: number;
  /** Number of Chroma segment folders (default 2). */
  segments?: number;
  /** Seed for the content, so a store can be made again byte for byte (default 1). */
  seed?: number;
}

/** The paths of a sample store. */
export interface SampleStore {
  dataDir: string;
  db: string;
  registry: string;
  chromaDir: string;
  backupDir: string;
}

const BLOB_BYTES = 64 * 1024;

/** The paths a sample store in `dataDir` has, matching the tool's defaults under `ATOCORE_DATA_DIR`. */
export function sampleStorePaths(dataDir: string): SampleStore {
  return {
    dataDir,
    db: join(dataDir, "atocore.db"),
    registry: join(dataDir, "project-registry.json"),
    chromaDir: join(dataDir, "chroma"),
    backupDir: join(dataDir, "backups"),
  };
}

/**
 * Make a sample store in `dataDir` (created if missing) and return its paths.
 * The database is closed cleanly; see {@linkcode openLedgerWriter} for live writes.
 */
export function makeSampleStore(dataDir: string, options: SampleOptions = {}): SampleStore {
  const store = sampleStorePaths(dataDir);
  const random = seededBytes(options.seed ?? 1);
  Deno.mkdirSync(dataDir, { recursive: true });
  const db = new DatabaseSync(store.db);
  db.exec(`PRAGMA journal_mode=WAL;
    CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
    CREATE TABLE documents (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id),
      title TEXT NOT NULL, body TEXT NOT NULL);
    CREATE TABLE chunks (id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL REFERENCES documents(id),
      ord INTEGER NOT NULL, content BLOB NOT NULL);
    CREATE INDEX chunks_by_document ON chunks(document_id, ord);
    CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);
    CREATE TABLE ledger_total (id INTEGER PRIMARY KEY CHECK (id = 1), total INTEGER NOT NULL);
    INSERT INTO ledger_total VALUES (1, 0);`);
  const projects = ["atlas", "borealis", "cobalt"];
  db.exec("BEGIN");
  projects.forEach((name, index) =>
    db.prepare("INSERT INTO projects VALUES (?, ?, ?)").run(index + 1, name, "2026-01-01T00:00:00Z")
  );
  const chunkCount = Math.max(1, Math.round(((options.dbMiB ?? 4) * 1024 * 1024) / BLOB_BYTES));
  const insertDocument = db.prepare("INSERT INTO documents VALUES (?, ?, ?, ?)");
  const insertChunk = db.prepare("INSERT INTO chunks VALUES (?, ?, ?, ?)");
  for (let chunk = 0; chunk < chunkCount; chunk++) {
    const document = Math.floor(chunk / 8) + 1;
    if (chunk % 8 === 0) {
      insertDocument.run(document, (document % projects.length) + 1, `Document ${document}`, "lorem ipsum ".repeat(20));
    }
    insertChunk.run(chunk + 1, document, chunk % 8, random(BLOB_BYTES));
    if (chunk % 256 === 255) {
      db.exec("COMMIT");
      db.exec("BEGIN");
    }
  }
  db.exec("COMMIT");
  db.close();
  Deno.writeTextFileSync(
    store.registry,
    JSON.stringify(
      { projects: projects.map((name) => ({ id: name, aliases: [name.toUpperCase()], root: `/srv/${name}` })) },
      null,
      2,
    ) +
      "\n",
  );
  makeChroma(store.chromaDir, options, random);
  return store;
}

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

function makeChroma(chromaDir: string, options: SampleOptions, random: (bytes: number) => Uint8Array) {
  Deno.mkdirSync(chromaDir, { recursive: true });
  const db = new DatabaseSync(join(chromaDir, "chroma.sqlite3"));
  db.exec(`PRAGMA journal_mode=WAL;
    CREATE TABLE collections (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE segments (id TEXT PRIMARY KEY, collection TEXT NOT NULL, scope TEXT NOT NULL);
    CREATE TABLE embeddings (id INTEGER PRIMARY KEY, segment_id TEXT NOT NULL, embedding_id TEXT NOT NULL);`);
  const segments = options.segments ?? 2;
  const perSegment = Math.max(4096, Math.round(((options.chromaMiB ?? 2) * 1024 * 1024) / segments));
  db.exec("BEGIN");
  db.prepare("INSERT INTO collections VALUES (?, ?)").run("c0", "atocore");
  for (let segment = 0; segment < segments; segment++) {
    const id = `${segment.toString(16).padStart(8, "0")}-5e9a-4c1d-8f00-00000000000${segment % 10}`;
    db.prepare("INSERT INTO segments VALUES (?, ?, ?)").run(id, "c0", "VECTOR");
    for (let row = 0; row < 50; row++) {
      db.prepare("INSERT INTO embeddings (segment_id, embedding_id) VALUES (?, ?)").run(id, `e${segment}-${row}`);
    }
    const folder = join(chromaDir, id);
    Deno.mkdirSync(folder);
    Deno.writeFileSync(join(folder, "header.bin"), random(100));
    Deno.writeFileSync(join(folder, "length.bin"), random(4000));
    Deno.writeFileSync(join(folder, "link_lists.bin"), random(Math.round(perSegment / 8)));
    Deno.writeFileSync(join(folder, "index_metadata.pickle"), random(2000));
    writeLarge(join(folder, "data_level0.bin"), perSegment, random);
  }
  db.exec("COMMIT");
  db.close();
}

function writeLarge(path: string, size: number, random: (bytes: number) => Uint8Array) {
  using file = Deno.openSync(path, { write: true, create: true, truncate: true });
  for (let written = 0; written < size; written += BLOB_BYTES) {
    const bytes = random(Math.min(BLOB_BYTES, size - written));
    let offset = 0;
    while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
  }
}

/** A fast deterministic byte generator (xorshift32), so a seed gives the same store. */
function seededBytes(seed: number): (bytes: number) => Uint8Array {
  let state = (seed * 2654435761) >>> 0 || 1;
  return (count) => {
    const words = new Uint32Array(Math.ceil(count / 4));
    for (let index = 0; index < words.length; index++) {
      state ^= state << 13;
      state >>>= 0;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      words[index] = state;
    }
    return new Uint8Array(words.buffer, 0, count);
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
