/**
 * A realistic, seeded sample AtoCore store (WAL database with tables and blobs, registry, Chroma-like folder
 * with `chroma.sqlite3` and HNSW segment files) for `drill --sample`, tests and benchmarks; its SQL goes through
 * the {@linkcode SqliteDriver}, so every SQLite call of the tool stays under `src/sqlite/`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { openDriver } from "../sqlite/open_driver.ts";
import { CHROMA_DB_FILE } from "../snapshot/chroma.ts";

/** Sizes of a sample store. */
export interface SampleOptions {
  /** Approximate size of the database, in MiB (default 4). */
  dbMiB?: number;
  /** Approximate size of the Chroma segment files, in MiB (default 2). */
  chromaMiB?: number;
  /** Number of Chroma segment folders (default 2). */
  segments?: number;
  /** Seed for the content, so a store can be made again with the same content (default 1). */
  seed?: number;
  /** The SQLite driver that writes the databases (default: FFI where it loads, else built-in). */
  driver?: SqliteDriver;
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
const CHUNKS_PER_TRANSACTION = 256;

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
 * Every connection is closed when it returns.
 *
 * @example
 * ```ts
 * const store = makeSampleStore(Deno.makeTempDirSync(), { dbMiB: 1 });
 * ```
 */
export function makeSampleStore(dataDir: string, options: SampleOptions = {}): SampleStore {
  const store = sampleStorePaths(dataDir);
  const driver = options.driver ?? openDriver("auto");
  const random = seededBytes(options.seed ?? 1);
  Deno.mkdirSync(dataDir, { recursive: true });
  driver.execScript(
    store.db,
    `PRAGMA journal_mode=WAL;
    CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
    CREATE TABLE documents (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id),
      title TEXT NOT NULL, body TEXT NOT NULL);
    CREATE TABLE chunks (id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL REFERENCES documents(id),
      ord INTEGER NOT NULL, content BLOB NOT NULL);
    CREATE INDEX chunks_by_document ON chunks(document_id, ord);
    CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);
    CREATE TABLE ledger_total (id INTEGER PRIMARY KEY CHECK (id = 1), total INTEGER NOT NULL);
    INSERT INTO ledger_total VALUES (1, 0);`,
  );
  const projects = ["atlas", "borealis", "cobalt"];
  let batch = projects.map((name, index) =>
    `INSERT INTO projects VALUES (${index + 1}, ${text(name)}, '2026-01-01T00:00:00Z');`
  );
  const chunkCount = Math.max(1, Math.round(((options.dbMiB ?? 4) * 1024 * 1024) / BLOB_BYTES));
  for (let chunk = 0; chunk < chunkCount; chunk++) {
    const document = Math.floor(chunk / 8) + 1;
    if (chunk % 8 === 0) {
      const body = text("lorem ipsum ".repeat(20));
      batch.push(
        `INSERT INTO documents VALUES (${document}, ${
          (document % projects.length) + 1
        }, 'Document ${document}', ${body});`,
      );
    }
    batch.push(`INSERT INTO chunks VALUES (${chunk + 1}, ${document}, ${chunk % 8}, ${blob(random(BLOB_BYTES))});`);
    if (chunk % CHUNKS_PER_TRANSACTION === CHUNKS_PER_TRANSACTION - 1) {
      driver.execScript(store.db, `BEGIN; ${batch.join("\n")} COMMIT;`);
      batch = [];
    }
  }
  if (batch.length) driver.execScript(store.db, `BEGIN; ${batch.join("\n")} COMMIT;`);
  Deno.writeTextFileSync(
    store.registry,
    JSON.stringify(
      { projects: projects.map((name) => ({ id: name, aliases: [name.toUpperCase()], root: `/srv/${name}` })) },
      null,
      2,
    ) + "\n",
  );
  makeChroma(store.chromaDir, options, driver, random);
  return store;
}

function makeChroma(
  chromaDir: string,
  options: SampleOptions,
  driver: SqliteDriver,
  random: (bytes: number) => Uint8Array,
): void {
  Deno.mkdirSync(chromaDir, { recursive: true });
  const segments = options.segments ?? 2;
  const perSegment = Math.max(4096, Math.round(((options.chromaMiB ?? 2) * 1024 * 1024) / segments));
  const statements = [
    `PRAGMA journal_mode=WAL;
    CREATE TABLE collections (id TEXT PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE segments (id TEXT PRIMARY KEY, collection TEXT NOT NULL, scope TEXT NOT NULL);
    CREATE TABLE embeddings (id INTEGER PRIMARY KEY, segment_id TEXT NOT NULL, embedding_id TEXT NOT NULL);
    BEGIN;
    INSERT INTO collections VALUES ('c0', 'atocore');`,
  ];
  for (let segment = 0; segment < segments; segment++) {
    const id = `${segment.toString(16).padStart(8, "0")}-5e9a-4c1d-8f00-00000000000${segment % 10}`;
    statements.push(`INSERT INTO segments VALUES (${text(id)}, 'c0', 'VECTOR');`);
    for (let row = 0; row < 50; row++) {
      statements.push(`INSERT INTO embeddings (segment_id, embedding_id) VALUES (${text(id)}, 'e${segment}-${row}');`);
    }
    const folder = join(chromaDir, id);
    Deno.mkdirSync(folder);
    Deno.writeFileSync(join(folder, "header.bin"), random(100));
    Deno.writeFileSync(join(folder, "length.bin"), random(4000));
    Deno.writeFileSync(join(folder, "link_lists.bin"), random(Math.round(perSegment / 8)));
    Deno.writeFileSync(join(folder, "index_metadata.pickle"), random(2000));
    writeLarge(join(folder, "data_level0.bin"), perSegment, random);
  }
  statements.push("COMMIT;");
  driver.execScript(join(chromaDir, CHROMA_DB_FILE), statements.join("\n"));
}

function writeLarge(path: string, size: number, random: (bytes: number) => Uint8Array): void {
  using file = Deno.openSync(path, { write: true, create: true, truncate: true });
  for (let written = 0; written < size; written += BLOB_BYTES) {
    const bytes = random(Math.min(BLOB_BYTES, size - written));
    let offset = 0;
    while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
  }
}

/** An SQL string literal. */
function text(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** An SQL blob literal. */
function blob(bytes: Uint8Array): string {
  return `X'${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")}'`;
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
