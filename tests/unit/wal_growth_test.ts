/**
 * `checkpointGrowth`: what a checkpoint may add to a database's files, read from its `-wal`, is never less than
 * what a real checkpoint adds, and is nothing without a WAL SQLite would read.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkpointGrowth } from "../../src/sqlite/wal_growth.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { tempDir } from "../_helpers.ts";

/** Make a WAL database at `db` and leave `rows` commits (each a 3 kB blob) in its `-wal`, with Python's sqlite3. */
function databaseWithWal(db: string, rows: number, extraSql = ""): void {
  const python = new Deno.Command("python3", {
    args: [
      "-c",
      "import os, sqlite3, sys\n" +
      "db = sqlite3.connect(sys.argv[1]); db.execute('PRAGMA journal_mode=WAL')\n" +
      "db.execute('CREATE TABLE t (x BLOB)'); db.commit(); db.execute('PRAGMA wal_checkpoint(TRUNCATE)')\n" +
      "db.execute('PRAGMA wal_autocheckpoint=0')\n" +
      "for i in range(int(sys.argv[2])):\n" +
      "    db.execute('INSERT INTO t VALUES (randomblob(3000))'); db.commit()\n" +
      "db.executescript(sys.argv[3]); db.commit()\n" +
      "os._exit(0)",
      db,
      String(rows),
      extraSql,
    ],
  }).outputSync();
  assert.equal(python.code, 0, new TextDecoder().decode(python.stderr));
}

Deno.test("checkpointGrowth is at least what the checkpoint adds to the database file", () => {
  using dir = tempDir();
  const db = join(dir.path, "growing.db");
  databaseWithWal(db, 300);
  const before = Deno.statSync(db).size;
  const walSize = Deno.statSync(`${db}-wal`).size;
  const growth = checkpointGrowth(db);
  assert.ok(growth.frames >= 300, `frames ${growth.frames}`);
  openDriver("ffi").checkpointTruncate(db);
  const added = Deno.statSync(db).size - before;
  assert.ok(added > 0, "the checkpoint should grow the database");
  assert.ok(growth.bytes >= added, `estimated ${growth.bytes} < added ${added}`);
  assert.ok(growth.bytes < walSize, `estimated ${growth.bytes}, not below the whole -wal (${walSize})`);
});

Deno.test("checkpointGrowth of a -wal that mostly rewrites pages is far less than the -wal", () => {
  using dir = tempDir();
  const db = join(dir.path, "rewriting.db");
  databaseWithWal(db, 0, "INSERT INTO t VALUES (randomblob(200000));");
  openDriver("ffi").checkpointTruncate(db);
  const rewrite = new Deno.Command("python3", {
    args: [
      "-c",
      "import os, sqlite3, sys\ndb = sqlite3.connect(sys.argv[1]); db.execute('PRAGMA wal_autocheckpoint=0')\n" +
      "for i in range(20): db.execute('UPDATE t SET x = randomblob(200000)'); db.commit()\nos._exit(0)",
      db,
    ],
  }).outputSync();
  assert.ok(rewrite.success, new TextDecoder().decode(rewrite.stderr));
  const walSize = Deno.statSync(`${db}-wal`).size;
  const before = Deno.statSync(db).size;
  const growth = checkpointGrowth(db);
  openDriver("ffi").checkpointTruncate(db);
  const added = Deno.statSync(db).size - before;
  assert.ok(walSize > 3_000_000, `the -wal should be large, not ${walSize}`);
  assert.ok(growth.bytes >= added, `estimated ${growth.bytes} < added ${added}`);
  assert.ok(growth.bytes < walSize / 4, `estimated ${growth.bytes} for a -wal of ${walSize}`);
});

Deno.test("checkpointGrowth is nothing without a -wal, or with one SQLite would not read", () => {
  using dir = tempDir();
  const db = join(dir.path, "plain.db");
  databaseWithWal(db, 10);
  Deno.writeFileSync(`${db}-wal`, new Uint8Array(100_000).fill(0x41));
  assert.deepEqual(checkpointGrowth(db), { frames: 0, bytes: 0 });
  Deno.removeSync(`${db}-wal`);
  assert.deepEqual(checkpointGrowth(db), { frames: 0, bytes: 0 });
});
