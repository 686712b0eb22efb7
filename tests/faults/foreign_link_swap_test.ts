/**
 * The service's user swaps a live file for a link to a root-only file after a root create checked the links and before
 * it opens that file: made deterministic by strace holding the run's first open of a path for seconds while the test
 * swaps. What the link leads to never reaches the snapshot the user is given.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, type CliRun, cliRunOf, createdStamp, storeEnv, tempDir, tempStore, toolFor } from "../_helpers.ts";
import {
  chownToNobody,
  entryNames,
  NOBODY_UID,
  nobodysLink,
  restoreStoppedAt,
  rootOnlyDatabase,
  runHeld,
  skipBecause,
} from "../_faults.ts";
import { sha256Hex } from "../../src/repo/sealing.ts";
import { restoreIntentPath, restoreNeedsPath } from "../../src/snapshot/layout.ts";

/** {@linkcode runHeld} on its first open (by default) of `held`: the run, and whether it was held. */
async function runHeldAt(
  args: string[],
  env: Record<string, string>,
  held: string,
  swap: () => void,
  calls = "openat,open",
): Promise<{ run: CliRun; held: boolean }> {
  const run = await runHeld(args, env, { held, calls }, swap);
  return { run: cliRunOf(run.output), held: run.held };
}

/** Whether any file under `root` holds `text`. */
function holds(root: string, text: string): boolean {
  const found = new Deno.Command("grep", { args: ["-r", "-l", "-a", "-F", text, root] }).outputSync();
  return found.code === 0;
}

Deno.test("a registry swapped for the user's link to a root-only file after a root create's check is not copied (needs strace)", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  if (!toolFor("strace", "a registry swapped after the check")) return;
  using store = tempStore({ dbMiB: 1 });
  using outside = tempDir("atocore-root-only-"); // root's, as /root is
  const env = storeEnv(store);
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "secret.json");
  Deno.writeTextFileSync(secret, '{"root":"only-secret-8d1f"}', { mode: 0o600 });
  const snapshots = entryNames(join(store.backupDir, "snapshots"));

  // held at the database's open, after the check and the registry's parse, before the registry is copied
  const { run, held } = await runHeldAt(["create"], env, store.db, () => nobodysLink(secret, store.registry));
  assert.ok(held, "strace did not hold the database's open");
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    run.stderr.trim(),
    new RegExp(
      `^atocore-backup: error: create refused: ${store.registry} leads through the symbolic link ${store.registry}, ` +
        `owned by uid ${NOBODY_UID}, to ${secret}, owned by uid 0; .*nothing was published; [^\\n]*$`,
    ),
  );
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots, "a snapshot was made");
  assert.ok(!holds(store.backupDir, "only-secret-8d1f"), "the root-only file was copied into the backup folder");
});

Deno.test("a database's folder swapped for the user's link to a root-only folder as SQLite opens it: refused, nothing copied (needs strace)", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  if (!toolFor("strace", "a database's folder swapped as SQLite opens it")) return;
  using store = tempStore({ dbMiB: 1 });
  using outside = tempDir("atocore-root-only-");
  const folder = join(store.dataDir, "db"); // SQLite opens the database's own name never through a link, not its folders
  Deno.mkdirSync(folder);
  const db = join(folder, "atocore.db");
  Deno.renameSync(store.db, db);
  const env = { ...storeEnv(store), ATOCORE_DB_PATH: db };
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "atocore.db");
  const before = rootOnlyDatabase(secret, "only-secret-db-77");
  const snapshots = entryNames(join(store.backupDir, "snapshots"));

  // held at SQLite's open of the database, after every check of its links
  const { run, held } = await runHeldAt(["create"], env, db, () => nobodysLink(outside.path, folder));
  assert.ok(held, "strace did not hold the database's open");
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    run.stderr.trim(),
    new RegExp(
      `^atocore-backup: error: refused to copy the database ${db}: SQLite opened another file .*` +
        "nothing was published; [^\\n]*$",
    ),
  );
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), snapshots, "a snapshot was made");
  assert.ok(!holds(store.backupDir, "only-secret-db-77"), "the root-only database was copied into the backup folder");
  assert.equal(sha256Hex(Deno.readFileSync(secret)), before, "the root-only database was written");
  assert.deepEqual(entryNames(outside.path), ["atocore.db"], "SQLite left files beside the root-only database");
});

/** The last line of a restore stopped at the replacement of `part` at `path`, refused for the user's link to `secret`. */
function restoreRefusal(part: string, path: string, secret: string): RegExp {
  return new RegExp(
    `\\natocore-backup: error: restore failed while replacing the ${part} ${path} \\(restore refused: ${path} leads ` +
      `through the symbolic link ${path}, owned by uid ${NOBODY_UID}, to ${secret}, owned by uid 0; .*${path} was not ` +
      "replaced; [^\\n]*\\n$",
  );
}

Deno.test("a registry swapped for the user's link to a root-only file as a root restore replaces the database: not written (needs strace)", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  if (!toolFor("strace", "a registry swapped during a restore")) return;
  using store = tempStore({ dbMiB: 1 });
  using outside = tempDir("atocore-root-only-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "secret.json");
  Deno.writeTextFileSync(secret, '{"root":"only"}', { mode: 0o600 });

  // held at the hard link kept of the old database, after every check, before the registry's turn
  const args = ["restore", stamp, "--confirm-service-stopped"];
  const swap = () => nobodysLink(secret, store.registry);
  const { run, held } = await runHeldAt(args, env, store.db, swap, "link,linkat");
  assert.ok(held, "strace did not hold the old database's link");
  assert.equal(Deno.readTextFileSync(secret), '{"root":"only"}', "the root-only file was written through the link");
  assert.deepEqual(entryNames(outside.path), ["secret.json"]);
  assert.equal(run.code, 1, run.stderr); // a restore stopped part way: what it changed is named
  assert.match(run.stderr, restoreRefusal("registry", store.registry, secret));
});

Deno.test("a database swapped for the user's link to a root-only database just before a root restore replaces it: not written (needs strace)", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  if (!toolFor("strace", "a database swapped during a restore")) return;
  using store = tempStore({ dbMiB: 1 });
  using outside = tempDir("atocore-root-only-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "secret.db");
  const before = rootOnlyDatabase(secret, "only-secret-db-77");

  // held at the hard link kept of the old database, just before the restored one is put in its place
  const args = ["restore", stamp, "--confirm-service-stopped"];
  const { run, held } = await runHeldAt(args, env, store.db, () => nobodysLink(secret, store.db), "link,linkat");
  assert.ok(held, "strace did not hold the old database's link");
  assert.equal(sha256Hex(Deno.readFileSync(secret)), before, "the root-only database was written through the link");
  assert.deepEqual(entryNames(outside.path), ["secret.db"]);
  assert.equal(run.code, 1, run.stderr); // a restore stopped part way: what it changed is named
  assert.match(run.stderr, restoreRefusal("database", store.db, secret));
  assert.doesNotMatch(run.stderr, /changed so far: replaced the database/);
});

Deno.test("a restore's records swapped for the user's link to a root-only file once looked at: never read through it (needs strace)", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  if (!toolFor("strace", "a restore's record swapped after its look")) return;
  using store = tempStore({ dbMiB: 1 });
  using outside = tempDir("atocore-root-only-");
  const env = storeEnv(store);
  await createdStamp(env);
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "secret.txt");
  Deno.writeTextFileSync(secret, "root-only-secret-5c2e", { mode: 0o600 }); // not JSON: a parse error would quote it
  const records: [string[], string][] = [
    [["create"], restoreIntentPath(store.db)], // the record beside the database, read by create
    [["cleanup", "--confirm"], restoreNeedsPath(store.backupDir, store.db)], // the backup folder's, read by cleanup
  ];
  for (const [args, record] of records) {
    Deno.writeTextFileSync(record, "{}");
    chownToNobody(record);
    // held once its lstat has looked: a regular file, small
    const swap = () => nobodysLink(secret, record);
    const { output, held } = await runHeld(args, env, { held: record, calls: "statx,newfstatat", after: true }, swap);
    const run = cliRunOf(output);
    assert.ok(held, `strace did not hold ${args[0]}'s look at ${record}`);
    assert.equal(run.code, 3, run.stderr);
    // refused where it is read, or at the record's own look when strace held an earlier look at the same path (seen
    // once in a loaded run, for cleanup's record): never read through the link either way
    const refused = `(cannot be read \\(not a regular file|is not a small regular file)`;
    assert.match(run.stderr, new RegExp(`error: the record of .*${record} ${refused}`));
    assert.doesNotMatch(run.stderr, /root-only/, "the root-only file was read through the link");
    Deno.removeSync(record);
    Deno.removeSync(`${record}.moved`);
  }
});

/** Swap the first root-owned `<prefix>*` that appears in `folder` for a link, owned by nobody, to `victim`; print it. */
const TEMPORARY_SWAPPER = `
import os, sys
folder, prefix, victim, uid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
while True:
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            if not name.startswith(prefix) or name.endswith("-aside") or os.lstat(path).st_uid != 0: continue
            os.rename(path, path + "-aside"); os.symlink(victim, path); os.lchown(path, uid, uid)
            print(name, flush=True); sys.exit(0)
        except OSError:
            pass
`;

Deno.test("a root restore's copy swapped for the user's link to a root-only file while it is written: the file's mode and owner are not changed through it", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  if (!toolFor("python3", "a restore's copy swapped while written")) return;
  using store = tempStore({ dbMiB: 32 }); // a copy long enough for the swapper to find it being written
  using outside = tempDir("atocore-root-only-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "secret.txt");
  Deno.writeTextFileSync(secret, "root-only", { mode: 0o600 });
  const swapper = new Deno.Command("python3", {
    args: ["-c", TEMPORARY_SWAPPER, store.dataDir, ".atocore.db.tmp-", secret, String(NOBODY_UID)],
    stdout: "piped",
  }).spawn();
  const run = cliRunOf(
    await cliProcess(["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot"], { env }).output(),
  );
  try {
    swapper.kill("SIGKILL"); // still looking: it found nothing
  } catch {
    // it ended, having swapped
  }
  const swapped = new TextDecoder().decode((await swapper.output()).stdout).trim();
  assert.ok(swapped !== "", `the swapper found no copy being written: ${run.stderr}`);
  const info = Deno.statSync(secret);
  assert.equal(info.mode! & 0o7777, 0o600, "the root-only file's mode was changed through the link");
  assert.equal(info.uid, 0, "the root-only file was given away through the link");
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /error: restore failed while replacing the database .*replaced since it was made/);
  assert.ok(Deno.lstatSync(store.db).isFile, "the link took the live database's place");
});

Deno.test("a restored database swapped for the user's link to a root-only database before its WAL mode is set back: root's is not written", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  using store = tempStore({ dbMiB: 32 }); // an integrity check long enough for the stop to come before the header's write
  using outside = tempDir("atocore-root-only-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  chownToNobody(store.dataDir);
  const secret = join(outside.path, "secret.db");
  const before = rootOnlyDatabase(secret, "only-secret-db-91"); // rollback-journal mode: setting WAL writes its header
  const args = [stamp, "--confirm-service-stopped", "--no-pre-snapshot"];
  const run = await restoreStoppedAt(store, args, "restore_db_replaced", () => nobodysLink(secret, store.db));
  assert.equal(sha256Hex(Deno.readFileSync(secret)), before, "the root-only database was written through the link");
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /error: restored, but could not set .*atocore\.db back to WAL mode \(not a regular file/);
});

Deno.test("a Chroma folder a root restore made, swapped for the user's link to a root-only folder once made: nothing is put there (needs strace)", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: the links' owners cannot be set");
  if (!toolFor("strace", "a Chroma folder swapped once made")) return;
  using store = tempStore({ dbMiB: 1 });
  using outside = tempDir("atocore-root-only-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  Deno.removeSync(store.chromaDir, { recursive: true }); // none when the restore looks: it makes one
  chownToNobody(store.dataDir);
  Deno.writeTextFileSync(join(outside.path, "keep.txt"), "root's");

  // held once the restore made the Chroma folder, before it opens it
  const args = ["restore", stamp, "--confirm-service-stopped"];
  const swap = () => nobodysLink(outside.path, store.chromaDir);
  const held = { held: store.chromaDir, calls: "mkdir,mkdirat", after: true };
  const { output, held: wasHeld } = await runHeld(args, env, held, swap);
  const run = cliRunOf(output);
  assert.ok(wasHeld, "strace did not hold the Chroma folder's making");
  assert.deepEqual(entryNames(outside.path), ["keep.txt"], "the restore put entries in the root-only folder");
  assert.notEqual(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`the Chroma folder ${store.chromaDir} is no longer the folder this restore`));
});
