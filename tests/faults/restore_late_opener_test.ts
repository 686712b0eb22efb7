/**
 * A process that opens the live database after restore's last look (a supervisor starting the service again while the
 * database is copied) never gets its old database's WAL applied to the restored one, and the restore says so (exit 1).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliEnv, createdStamp, storeEnv, tempStore } from "../_helpers.ts";
import { entryNames, ledgerState, sqliteIntegrity } from "../_faults.ts";

/** A writer that waits for `event` in the log `log`, then opens `db`, commits `rows` ledger rows and holds it open. */
function lateWriter(log: string, event: string, db: string, rows: number): Deno.ChildProcess {
  const script = "import os, sqlite3, sys, time\n" +
    "log, event, db, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])\n" +
    "deadline = time.time() + 120\n" +
    "while time.time() < deadline and event not in (open(log).read() if os.path.exists(log) else ''):\n" +
    "    time.sleep(0.001)\n" +
    "c = sqlite3.connect(db, isolation_level=None)\n" +
    "for _ in range(rows): c.execute('INSERT INTO ledger (amount) VALUES (1)')\n" +
    "time.sleep(3); c.close()";
  return new Deno.Command("python3", { args: ["-c", script, log, event, db, String(rows)], stderr: "null" }).spawn();
}

Deno.test("restore: a writer that opens the old database during the replacement: its WAL kept aside, exit 1", async () => {
  using store = tempStore({ dbMiB: 96, chromaMiB: 1 }); // its copy takes long enough for the writer to come in
  const env = storeEnv(store);
  const stamp = await createdStamp(env, []);
  const snapshotRows = (await ledgerState(store.db)).rows;
  const python = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n" +
    "c.executemany('INSERT INTO ledger (amount) VALUES (?)', [(2,)] * 300); c.commit()\n" +
    "c.execute('DELETE FROM chunks WHERE id % 3 = 0'); c.commit(); c.execute('VACUUM'); c.close()";
  assert.equal((await new Deno.Command("python3", { args: ["-c", python, store.db] }).output()).code, 0);
  const log = join(store.dataDir, "restore.log");
  const writer = lateWriter(log, "restore_db_replacing", store.db, 20);
  const restore = await new Deno.Command("bash", {
    args: ["-c", `exec "$@" 2>"${log}"`, "bash", ...cliCommand(["restore", stamp, "--confirm-service-stopped"])],
    env: cliEnv(env),
    clearEnv: true,
    stdout: "piped",
  }).output();
  await writer.status;
  const stderr = Deno.readTextFileSync(log);
  assert.equal(await sqliteIntegrity(store.db), "ok", "never the old database's WAL applied to the restored one");
  const rows = (await ledgerState(store.db)).rows;
  if (rows === snapshotRows + 20) { // the writer came in after the replacement: the restored database took its rows
    assert.equal(restore.code, 0, stderr);
  } else { // it held the old database: its rows went there, and the restore says so
    assert.equal(rows, snapshotRows, "the snapshot's rows, never the old ones mixed in");
    assert.equal(restore.code, 1, stderr);
    assert.match(
      stderr,
      /"event":"restore_store_opened_during_restore","holders":"process \d+ still holds the replaced/,
    );
    assert.ok(entryNames(store.dataDir).some((name) => name.endsWith("-wal") && name.includes(".kept-")), "kept aside");
  }
});
