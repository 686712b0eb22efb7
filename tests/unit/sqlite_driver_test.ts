/**
 * One conformance suite, run against both SQLite drivers (FFI and built-in).
 *
 * Writers live in another process (see `_writer_process.ts`): the FFI driver's
 * libsqlite3 and `node:sqlite` must not share a database inside one process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isReadFailure, type SqliteDriver, SqliteError } from "../../src/sqlite/driver.ts";
import { offersFollowedBackup } from "../../src/sqlite/followed_backup.ts";
import { readJournalMode, setJournalMode, withJournalMode } from "../../src/sqlite/journal_header.ts";
import {
  FALLBACK_TEMPORARY_FOLDERS,
  lockedScratchFolder,
  SCRATCH_COPY_PREFIX,
  scratchCopy,
  temporaryFolders,
} from "../../src/fs/scratch_copy.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { runCli, tempDir, tempStore } from "../_helpers.ts";
import { startWriterProcess } from "../_writer_process.ts";
import { ledgerState } from "../_faults.ts";
import { mountTmpfs, readOnlyBindMount } from "../_mount.ts";

const DRIVERS = ["ffi", "builtin"] as const;
/** The sum of the amounts the ledger writer commits in its first `rows` rows. */
function amountsOf(rows: number): number {
  let sum = 0;
  for (let row = 0; row < rows; row++) sum += (row % 7) + 1;
  return sum;
}

function names(path: string): string[] {
  return [...Deno.readDirSync(path)].map((entry) => entry.name).sort();
}

function sizeOrNull(path: string): number | null {
  try {
    return Deno.statSync(path).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

for (const name of DRIVERS) {
  const driver: SqliteDriver = openDriver(name);

  Deno.test(`${name}: reports its name and a SQLite version`, () => {
    assert.equal(driver.name, name);
    assert.match(driver.version, /^3\.\d+\.\d+$/);
  });

  Deno.test(`${name}: offers a followed backup only as the FFI driver`, () => {
    assert.equal(offersFollowedBackup(driver), name === "ffi");
  });

  Deno.test(`${name}: backup copies WAL frames not yet checkpointed, with page progress`, async () => {
    using store = tempStore({ dbMiB: 1, chromaMiB: 0.01, segments: 1 });
    await using writer = await startWriterProcess(store.db, "hold", 25);
    assert.ok((sizeOrNull(`${store.db}-wal`) ?? 0) > 0, "the live database has WAL frames");
    using out = tempDir();
    const copy = join(out.path, "copy.db");
    const progress: { remaining: number; total: number }[] = [];
    await driver.backup(store.db, copy, (step) => progress.push(step));
    assert.deepEqual(await ledgerState(copy, { immutable: true }), {
      rows: 25,
      sum: amountsOf(25),
      total: amountsOf(25),
    });
    assert.ok(progress.length > 0 && progress.at(-1)!.remaining === 0 && progress.at(-1)!.total > 0);
    assert.equal(sizeOrNull(`${copy}-wal`), null, "the copy has no -wal sidecar");
    assert.deepEqual([...Deno.readFileSync(copy).subarray(18, 20)], [2, 2], "the copy keeps the source's WAL mode");
    assert.equal(await driver.integrityCheck(copy), "ok");
    await writer.stop();
  });

  Deno.test(`${name}: integrityCheck immutable works on a read-only folder and adds no sidecars`, async (t) => {
    using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.01, segments: 1 });
    using out = tempDir();
    await driver.backup(store.db, join(out.path, "copy.db"));
    Deno.copyFileSync(store.db, join(out.path, "wal-mode.db"));
    const mount = readOnlyBindMount(out.path);
    if (typeof mount === "string") {
      console.log(`skipped: ${mount}`);
      await t.step({ name: "read-only mount", ignore: true, fn: () => {} });
      return;
    }
    using _mount = mount;
    for (const file of ["copy.db", "wal-mode.db"]) {
      const path = join(mount.path, file);
      assert.equal(await driver.integrityCheck(path), "ok");
      assert.equal((await driver.tableRowCounts(path)).projects, 3);
    }
    assert.deepEqual(names(out.path), ["copy.db", "wal-mode.db"]);
  });

  Deno.test(`${name}: checkpointTruncate empties the -wal of a database another process has open`, async () => {
    using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.01, segments: 1 });
    await using writer = await startWriterProcess(store.db, "hold", 30);
    assert.ok((sizeOrNull(`${store.db}-wal`) ?? 0) > 0);
    driver.checkpointTruncate(store.db);
    assert.equal(sizeOrNull(`${store.db}-wal`), 0);
    assert.equal(
      (await ledgerState(store.db, { immutable: true })).rows,
      30,
      "the checkpointed rows are in the main file",
    );
    await writer.stop();
  });

  Deno.test(`${name}: tableRowCounts counts the rows of every table`, async () => {
    using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.01, segments: 1 });
    assert.deepEqual(await driver.tableRowCounts(store.db), {
      chunks: 8,
      documents: 1,
      ledger: 0,
      ledger_total: 1,
      projects: 3,
    });
  });

  Deno.test(`${name}: a missing source is an error and creates no file`, async () => {
    using out = tempDir();
    const missing = join(out.path, "missing.db");
    const copy = join(out.path, "copy.db");
    await assert.rejects(driver.backup(missing, copy));
    await assert.rejects(driver.integrityCheck(missing), SqliteError);
    assert.throws(() => driver.checkpointTruncate(missing));
    await assert.rejects(driver.tableRowCounts(missing), SqliteError);
    assert.deepEqual([...Deno.readDirSync(out.path)], []);
  });

  Deno.test(`${name}: a corrupted database gives a non-ok integrity answer or an SqliteError`, async () => {
    using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.01, segments: 1 });
    using out = tempDir();
    const copy = join(out.path, "copy.db");
    await driver.backup(store.db, copy);
    const bytes = Deno.readFileSync(copy);
    const pageSize = (bytes[16] << 8) | bytes[17];
    bytes.fill(0xa5, pageSize + 8, pageSize * 3); // the cell areas of pages 2 and 3
    Deno.writeFileSync(copy, bytes);
    const answer = await driver.integrityCheck(copy).catch((error) => {
      assert.ok(error instanceof SqliteError, `not an SqliteError: ${error}`);
      return error.code;
    });
    assert.notEqual(answer, "ok");
    assert.doesNotMatch(answer, /\n/, "one line");

    Deno.writeFileSync(copy, new TextEncoder().encode("not a database ".repeat(400)));
    await assert.rejects(driver.integrityCheck(copy), SqliteError);
  });

  Deno.test(`${name}: a damaged database whose index names read as a failed read's words is damage, not a failed read`, async () => {
    using out = tempDir();
    const path = join(out.path, "named.db");
    const indexes =
      `CREATE INDEX "failed to get page 2" ON t(a); CREATE INDEX "x 3: unable to get the page. error code=10" ON u(a);`;
    // the indexes' root pages swapped (writable_schema): each tree is whole, and the check names each index
    const made = new Deno.Command("sqlite3", {
      args: [
        path,
        `CREATE TABLE t(a); CREATE TABLE u(a); ${indexes} INSERT INTO t VALUES (1), (2), (3); ` +
        "PRAGMA writable_schema=ON; " +
        "UPDATE sqlite_schema SET rootpage = 9 - rootpage WHERE type = 'index';", // pages 4 and 5 swapped
      ],
    }).outputSync();
    assert.ok(made.success, new TextDecoder().decode(made.stderr));
    const answer = await driver.integrityCheck(path);
    assert.match(answer, /^(wrong # of entries|row \d+ missing from) in index (failed to get page 2|x 3: unable)/);
    assert.equal(isReadFailure(answer), false, answer);
    assert.equal(isReadFailure("*** in database main *** On tree page 154 cell 7: failed to get page 254"), true);
    assert.equal(isReadFailure("*** in database main *** Page 5: unable to get the page. error code=8458"), true);
    for (const freelist of ["Main freelist", "Freelist"]) { // libsqlite3's words, node:sqlite's
      assert.equal(isReadFailure(`*** in database main *** ${freelist}: failed to get page 5`), true, freelist);
    }
  });

  Deno.test(`${name}: integrityCheck of the live database is ok, and a missing file is an error`, async () => {
    using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.01, segments: 1 });
    assert.equal(await driver.integrityCheck(store.db), "ok");
    await assert.rejects(driver.integrityCheck(join(store.dataDir, "missing.db")), SqliteError);
  });

  Deno.test(`${name}: backups taken while another process commits are each one consistent state`, async () => {
    using store = tempStore({ dbMiB: 6, chromaMiB: 0.01, segments: 1 });
    using out = tempDir();
    const writer = await startWriterProcess(store.db, "busy", 10);
    const seen: number[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        const copy = join(out.path, `copy-${round}.db`);
        await driver.backup(store.db, copy);
        const state = await ledgerState(copy, { immutable: true });
        assert.equal(state.sum, state.total, `copy ${round}: ledger sum equals ledger_total`);
        assert.equal(await driver.integrityCheck(copy), "ok");
        seen.push(state.rows);
      }
    } finally {
      const committed = await writer.stop();
      assert.ok(committed > seen[0], `the writer kept committing during the backups (${committed} rows)`);
    }
    assert.ok(seen.every((rows) => rows >= 10), `every copy holds the rows committed before it: ${seen}`);
  });
}

Deno.test("auto falls back to builtin, with a warning naming it, when ATOCORE_SQLITE_LIB is not a library; ffi is then a usage error", async () => {
  using dir = tempDir();
  const notLibrary = join(dir.path, "not-a-library.so");
  Deno.writeTextFileSync(notLibrary, "not ELF\n");
  for (const lib of ["/nonexistent/lib.so", notLibrary]) {
    const env = { ATOCORE_SQLITE_LIB: lib, ATOCORE_DATA_DIR: dir.path };
    const auto = await runCli(["config", "--json", "--sqlite-driver", "auto"], { env });
    assert.equal(auto.code, 0, auto.stderr);
    assert.equal((auto.json as { sqlite: { driver: string } }).sqlite.driver, "builtin");
    const warning = JSON.parse(auto.stderr.trim());
    assert.equal(warning.event, "sqlite_library_not_loaded", auto.stderr);
    assert.equal(warning.path, lib);
    assert.ok(typeof warning.error === "string" && warning.error.length > 0, "the warning says why");
    const ffi = await runCli(["config", "--json", "--sqlite-driver", "ffi"], { env });
    assert.equal(ffi.code, 2);
    assert.match(ffi.stderr, /--sqlite-driver ffi: .*ATOCORE_SQLITE_LIB/);
    assert.ok(ffi.stderr.includes(lib), "the error names the library tried");
  }
  const fine = await runCli(["config", "--json"], { env: { ATOCORE_DATA_DIR: dir.path } });
  assert.equal((fine.json as { sqlite: { driver: string } }).sqlite.driver, "ffi");
  assert.equal(fine.stderr, "", "no warning when no library is named");
});

Deno.test("journal header: a WAL-mode copy is marked rollback-journal and back, and reads the same either way", async () => {
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.01, segments: 1 });
  using out = tempDir();
  const copy = join(out.path, "copy.db");
  const ffi = openDriver("ffi");
  await ffi.backup(store.db, copy);
  assert.equal(readJournalMode(copy), "wal");
  const counts = await ffi.tableRowCounts(copy);
  assert.equal(setJournalMode(copy, "rollback"), "wal", "the mode it was in");
  assert.deepEqual([...Deno.readFileSync(copy).subarray(18, 20)], [1, 1]);
  assert.equal(await ffi.integrityCheck(copy), "ok");
  assert.deepEqual(await ffi.tableRowCounts(copy), counts);
  assert.equal(setJournalMode(copy, "wal"), "rollback");
  assert.deepEqual([...Deno.readFileSync(copy).subarray(18, 20)], [2, 2]);
  assert.equal(await ffi.integrityCheck(copy), "ok");
  const notDb = join(out.path, "registry.json");
  Deno.writeTextFileSync(notDb, JSON.stringify({ padding: "x".repeat(40) }));
  assert.equal(setJournalMode(notDb, "rollback"), null, "not a database: nothing written");
  assert.equal(Deno.readTextFileSync(notDb), JSON.stringify({ padding: "x".repeat(40) }));
  const page = Deno.readFileSync(copy).subarray(0, 100);
  assert.deepEqual([...withJournalMode(page, "rollback").subarray(18, 20)], [1, 1]);
  assert.deepEqual([...page.subarray(18, 20)], [2, 2], "the page given is not changed");
});

Deno.test("scratch copy: copies killed runs left are removed; one a run holds, a young unlocked one, a link are left", () => {
  using out = tempDir();
  const file = join(out.path, "db.bin");
  Deno.writeFileSync(file, new Uint8Array(4096).fill(3));
  const temp = join(out.path, "temp");
  const elsewhere = join(out.path, "elsewhere");
  for (const folder of [temp, elsewhere]) Deno.mkdirSync(folder);
  Deno.writeFileSync(join(elsewhere, "keep.db"), new Uint8Array(10));
  const made = (name: string) => {
    Deno.mkdirSync(join(temp, name));
    Deno.writeFileSync(join(temp, name, "copy.db"), new Uint8Array(4096));
    return join(temp, name);
  };
  made(`${SCRATCH_COPY_PREFIX}killed`);
  const old = made(`${SCRATCH_COPY_PREFIX}new-old`);
  Deno.utimeSync(old, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
  const ahead = made(`${SCRATCH_COPY_PREFIX}new-ahead`); // the clock was set back since it was made
  Deno.utimeSync(ahead, new Date(Date.now() + 120_000), new Date(Date.now() + 120_000));
  made(`${SCRATCH_COPY_PREFIX}new-young`);
  using holder = Deno.openSync(made(`${SCRATCH_COPY_PREFIX}held`), { read: true });
  holder.lockSync(true);
  Deno.symlinkSync(elsewhere, join(temp, `${SCRATCH_COPY_PREFIX}link`));
  made("other-tool");
  const previous = Deno.env.get("TMPDIR");
  try {
    Deno.env.set("TMPDIR", temp);
    using copy = scratchCopy(file, "copy.db");
    const own = copy.folder.slice(temp.length + 1);
    assert.deepEqual(
      names(temp),
      [`${SCRATCH_COPY_PREFIX}held`, `${SCRATCH_COPY_PREFIX}link`, `${SCRATCH_COPY_PREFIX}new-young`, own, "other-tool"]
        .sort(),
    );
    assert.ok(own.startsWith(SCRATCH_COPY_PREFIX) && !own.startsWith(`${SCRATCH_COPY_PREFIX}new-`), own);
    assert.deepEqual(names(elsewhere), ["keep.db"], "a link is never followed");
    using probe = Deno.openSync(copy.folder, { read: true });
    assert.equal(probe.tryLockSync(true), false, "the copy's folder is locked while it lives");
    using again = scratchCopy(file, "copy.db");
    assert.ok(names(temp).includes(own), "a second run leaves the first one's copy");
    assert.notEqual(again.folder, copy.folder);
  } finally {
    if (previous === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", previous);
  }
});

Deno.test("scratch folder of other names: the one a killed run left is removed, another name's and a held one stay", () => {
  using out = tempDir();
  const kind = { prefix: "atocore-backup-copy-", unlockedPrefix: "atocore-backup-copy-new-" };
  for (const name of ["atocore-backup-copy-killed", "atocore-backup-copy-held", `${SCRATCH_COPY_PREFIX}killed`]) {
    Deno.mkdirSync(join(out.path, name));
  }
  using holder = Deno.openSync(join(out.path, "atocore-backup-copy-held"), { read: true });
  holder.lockSync(true);
  using made = lockedScratchFolder(out.path, kind);
  assert.deepEqual(
    names(out.path),
    ["atocore-backup-copy-held", made.path.slice(out.path.length + 1), `${SCRATCH_COPY_PREFIX}killed`].sort(),
  );
});

Deno.test("scratch copy: the first temporary folder that takes the file, after $TMPDIR missing or full", () => {
  using out = tempDir();
  const file = join(out.path, "big.bin");
  Deno.writeFileSync(file, new Uint8Array(64 * 1024).fill(7));
  const previous = Deno.env.get("TMPDIR");
  try {
    Deno.env.set("TMPDIR", join(out.path, "missing"));
    assert.deepEqual(temporaryFolders(), [join(out.path, "missing"), ...FALLBACK_TEMPORARY_FOLDERS]);
    const copy = scratchCopy(file, "copy.bin");
    assert.ok(copy.folder.startsWith(`${FALLBACK_TEMPORARY_FOLDERS[0]}/`), copy.folder);
    assert.deepEqual(Deno.readFileSync(copy.file), Deno.readFileSync(file));
    copy[Symbol.dispose]();
    const made = copy.folder;
    assert.throws(() => Deno.statSync(made), Deno.errors.NotFound, "removed when disposed of");
    const tiny = join(out.path, "tiny");
    Deno.mkdirSync(tiny);
    const mount = mountTmpfs(tiny, "16k");
    if (typeof mount !== "string") {
      using _ = mount;
      Deno.env.set("TMPDIR", tiny);
      using past = scratchCopy(file, "copy.bin");
      assert.ok(past.folder.startsWith(`${FALLBACK_TEMPORARY_FOLDERS[0]}/`), "a full TMPDIR is passed over");
      assert.deepEqual(names(tiny), [], "the partial copy in the full folder is removed");
    }
    Deno.env.set("TMPDIR", out.path);
    using here = scratchCopy(file, "copy.bin");
    assert.ok(here.folder.startsWith(`${out.path}/`), "TMPDIR first when it takes the copy");
  } finally {
    if (previous === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", previous);
  }
});
