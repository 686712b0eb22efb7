/**
 * Reads of files that whoever may write their folder can swap for a FIFO (a snapshot's, the live store's) refuse one
 * at once, and SQLite's open of a database it only reads is given up when it does not end.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../_helpers.ts";
import { copyHashed } from "../../src/fs/hash.ts";
import { syncDir, syncFile, syncFileLater } from "../../src/fs/durable.ts";
import { entriesOrNone } from "../../src/fs/probe.ts";
import { SCRATCH_COPY_PREFIX, scratchCopy, temporaryFolders } from "../../src/fs/scratch_copy.ts";
import { readJournalMode } from "../../src/sqlite/journal_header.ts";
import { lookAtDatabase, openedInTime, READ_OPEN_MS } from "../../src/sqlite/read_open.ts";
import { SqliteError } from "../../src/sqlite/driver.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";

/** How long a writer started beside the test waits before it opens the FIFO, ending a read that waits on it. */
const RESCUE_S = 5;

/** A FIFO at `path`, and a process that opens it for writing after `seconds` should anything wait on it. */
function fifoWithRescue(path: string, seconds = RESCUE_S): AsyncDisposable & { rescued: Promise<unknown> } {
  new Deno.Command("mkfifo", { args: [path] }).outputSync();
  const rescue = new Deno.Command("sh", {
    args: ["-c", `sleep ${seconds}; exec 3<>"$0"`, path],
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    rescued: rescue.status,
    async [Symbol.asyncDispose]() {
      rescue.kill("SIGKILL");
      await rescue.status;
    },
  };
}

/** Run `read` and tell what it threw, failing the test when it took until the rescue. */
function thrownAtOnce(read: () => unknown): unknown {
  const started = Date.now();
  try {
    read();
  } catch (error) {
    assert.ok(Date.now() - started < RESCUE_S * 1000, "it waited on the FIFO until a writer opened it");
    return error;
  }
  assert.fail("read a FIFO as a file");
}

Deno.test("copyHashed, scratchCopy and readJournalMode refuse a FIFO at once, and copy nothing", async () => {
  using dir = tempDir();
  const fifo = join(dir.path, "atocore.db");
  await using _rescue = fifoWithRescue(fifo);
  const copied = thrownAtOnce(() => copyHashed(fifo, join(dir.path, "copy")));
  assert.match(String(copied), /not a regular file \(FIFO\)/);
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((entry) => entry.name), ["atocore.db"]);
  const before = new Set(temporaryFolders().flatMap((folder) => entriesOrNone(folder).map((entry) => entry.name)));
  assert.match(String(thrownAtOnce(() => scratchCopy(fifo, "copy.db"))), /not a regular file \(FIFO\)/);
  const made = temporaryFolders().flatMap((folder) => entriesOrNone(folder).map((entry) => entry.name))
    .filter((name) => name.startsWith(SCRATCH_COPY_PREFIX) && !before.has(name));
  assert.deepEqual(made, [], "no scratch folder made for it");
  assert.match(String(thrownAtOnce(() => readJournalMode(fifo))), /not a regular file \(FIFO\)/);
});

Deno.test("syncFile, syncFileLater and syncDir fail on a FIFO at once, and flush a file and a folder", async () => {
  using dir = tempDir();
  const fifo = join(dir.path, "atocore.db");
  await using _rescue = fifoWithRescue(fifo);
  assert.ok(thrownAtOnce(() => syncDir(fifo)) instanceof Deno.errors.NotADirectory);
  syncDir(dir.path);
  assert.match(String(thrownAtOnce(() => syncFile(fifo))), /EINVAL|Invalid argument/);
  const started = Date.now();
  await assert.rejects(syncFileLater(fifo)(), /EINVAL|Invalid argument/);
  assert.ok(Date.now() - started < RESCUE_S * 1000, "it waited on the FIFO until a writer opened it");
  const file = join(dir.path, "file");
  Deno.writeTextFileSync(file, "x");
  syncFile(file);
  await syncFileLater(file)();
  assert.throws(() => syncFile(join(dir.path, "missing")), Deno.errors.NotFound);
});

Deno.test("scratchCopy copies a regular file whole, through a link", () => {
  using dir = tempDir();
  const file = join(dir.path, "atocore.db");
  const bytes = crypto.getRandomValues(new Uint8Array(65536)).map((byte, index) => byte ^ index);
  const big = new Uint8Array((3 << 20) + 5);
  for (let at = 0; at < big.length; at += bytes.length) big.set(bytes.subarray(0, big.length - at), at);
  Deno.writeFileSync(file, big);
  Deno.symlinkSync(file, join(dir.path, "link.db"));
  using copy = scratchCopy(join(dir.path, "link.db"), "copy.db");
  assert.deepEqual(Deno.readFileSync(copy.file), big);
});

Deno.test("lookAtDatabase: a FIFO is refused at once, naming it; a link is followed, as SQLite follows it", async () => {
  using dir = tempDir();
  const fifo = join(dir.path, "fifo.db");
  await using _rescue = fifoWithRescue(fifo);
  const error = thrownAtOnce(() => lookAtDatabase(fifo));
  assert.ok(error instanceof SqliteError && error.code === "SQLITE_CANTOPEN", String(error));
  assert.match(error.message, new RegExp(`^unable to open database file ${fifo} \\(not a regular file \\(FIFO\\)\\)$`));
  const file = join(dir.path, "file.db");
  Deno.writeFileSync(file, new Uint8Array(10));
  Deno.symlinkSync(file, join(dir.path, "link.db"));
  const { dev, ino } = Deno.statSync(file);
  assert.deepEqual(lookAtDatabase(join(dir.path, "link.db")), { dev, ino });
  assert.throws(() => lookAtDatabase(join(dir.path, "missing.db")), /unable to open database file .*missing\.db/);
});

Deno.test("openedInTime gives up an open that does not end, naming the file, and hands on what it gives later", async () => {
  let open!: (value: number) => void;
  const opening = new Promise<number>((resolve) => open = resolve);
  const late: number[] = [];
  const started = Date.now();
  await assert.rejects(
    openedInTime(opening, "/snapshots/db/atocore.db", (value) => late.push(value)),
    (error: Error) => {
      assert.ok(error instanceof SqliteError && error.code === "SQLITE_CANTOPEN");
      assert.match(
        error.message,
        /^SQLite's open of \/snapshots\/db\/atocore\.db did not end within 10 s .*run again$/,
      );
      return true;
    },
  );
  assert.ok(Date.now() - started >= READ_OPEN_MS - 50, "it waited for the open first");
  open(7);
  await opening;
  await Promise.resolve();
  assert.deepEqual(late, [7], "what the open gave at last is handed on, to be closed");
  assert.equal(await openedInTime(Promise.resolve(3), "/x", () => assert.fail("not late")), 3);
});

Deno.test("the built-in driver gives up a read whose -journal is a FIFO (SQLite opens it to see if it is hot); the FFI driver's immutable open never looks", async () => {
  using dir = tempDir();
  const db = join(dir.path, "atocore.db");
  openDriver("builtin").execScript(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);");
  const rescue = READ_OPEN_MS / 1000 + 5;
  const journal = fifoWithRescue(`${db}-journal`, rescue);
  assert.deepEqual(await openDriver("ffi").tableRowCounts(db), { t: 2 });
  const started = Date.now();
  await assert.rejects(
    openDriver("builtin").tableRowCounts(db),
    new RegExp(`^SqliteError: SQLite's open of ${db} did not end within 10 s .*-journal`),
  );
  assert.ok(Date.now() - started < rescue * 1000, "it waited on the FIFO until a writer opened it");
  await journal.rescued; // the worker given up on ends once the FIFO is opened
});
