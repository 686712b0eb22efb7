/**
 * A folder whose listing fails part way (EIO injected by strace into `getdents64` on that folder, as a bad sector or a
 * network filesystem gives it): the listing is an error, never a shorter folder taken for the whole one. A rename that
 * fails the same way leaves no copy behind; a flush that fails names its file; a database read that fails is the
 * storage's failure, not damage.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, runCliInShell, storeEnv, tempDir, tempStore, toolFor } from "../_helpers.ts";
import { entryNames, treeDigest } from "../_faults.ts";
import { assertVerified, createAndPush, oneErrorLine, remoteStore } from "../_remote_cli.ts";

/** A shell script running the CLI with every listing of `folder` failing. */
function failingListing(folder: string): string {
  return `exec strace -f -qq -o /dev/null -P '${folder}' -e trace=getdents64 -e inject=getdents64:error=EIO "$@"`;
}

Deno.test("create: a Chroma segment folder that cannot be listed is never copied short (needs strace)", async () => {
  if (!toolFor("strace", "a listing failure injected into create")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 2, seed: 92 });
  const env = storeEnv(store);
  const segment = entryNames(store.chromaDir).find((name) => !name.endsWith(".sqlite3"))!;
  const run = await runCliInShell(failingListing(join(store.chromaDir, segment)), ["create", "--chroma"], env);
  assert.notEqual(run.code, 0, run.stderr);
  assert.match(run.stderr, /an I\/O error at \S+\/chroma\/[0-9a-f-]+ \(the storage failed/, run.stderr);
  const live = treeDigest(store.chromaDir);
  for (const stamp of entryNames(join(store.backupDir, "snapshots"))) {
    const chroma = join(store.backupDir, "snapshots", stamp, "chroma");
    if (entryNames(join(store.backupDir, "snapshots", stamp)).includes("chroma")) {
      assert.deepEqual(treeDigest(chroma), live, `${stamp} holds a Chroma copied short`);
    }
  }
  const all = await runCli(["validate", "--all"], { env });
  assert.equal(all.code, 0, all.stdout + all.stderr);
});

Deno.test("list and restore --to: a folder that cannot be listed is an error, not an empty one (needs strace)", async () => {
  if (!toolFor("strace", "a listing failure injected into list and restore")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 93 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const listed = await runCliInShell(failingListing(join(store.backupDir, "snapshots")), ["list"], env);
  assert.equal(listed.code, 1, listed.stdout + listed.stderr);
  assert.match(
    listed.stderr,
    /^atocore-backup: error: .*Input\/output error.*snapshots.*: the storage failed .* and run again$/m,
  );

  using to = tempDir("atocore-to-");
  Deno.writeTextFileSync(join(to.path, "atocore.db"), "the operator's own file");
  const restore = await runCliInShell(failingListing(to.path), ["restore", stamp, "--to", to.path], env);
  assert.notEqual(restore.code, 0, restore.stderr);
  assert.equal(Deno.readTextFileSync(join(to.path, "atocore.db")), "the operator's own file");
});

Deno.test("restore whose database rename fails (EIO) leaves no copy beside the live database (needs strace)", async () => {
  if (!toolFor("strace", "a rename failure injected into restore")) return;
  using store = tempStore({ dbMiB: 2, chromaMiB: 1, segments: 1, seed: 94 });
  using traced = tempDir("atocore-trace-");
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const args = ["restore", stamp, "--confirm-service-stopped", "--no-pre-snapshot", "--no-chroma"];
  const trace = join(traced.path, "renames");
  const seen = await runCliInShell(`exec strace -f -qq -o '${trace}' -e trace=rename "$@"`, args, env);
  assert.equal(seen.code, 0, seen.stderr);
  const renames = Deno.readTextFileSync(trace).split("\n").filter((line) => line.includes("rename("));
  const nth = renames.findIndex((line) => line.includes(`, "${store.db}")`)) + 1; // strace does not match it by -P
  assert.ok(nth > 0, renames.join("\n"));
  const before = Deno.readFileSync(store.db);
  const run = await runCliInShell(
    `exec strace -f -qq -o /dev/null -e inject=rename:error=EIO:when=${nth} "$@"`,
    args,
    env,
  );
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /were not changed/, run.stderr);
  assert.deepEqual(Deno.readFileSync(store.db), before);
  const copies = entryNames(store.dataDir).filter((name) => name.includes(".tmp-"));
  assert.deepEqual(copies, [], "a database-sized copy is left beside the live database");
});

Deno.test("create whose flush of the backup folder fails (EIO) names it and says to check the storage (needs strace)", async () => {
  if (!toolFor("strace", "an fsync failure injected into create")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 95 });
  const env = storeEnv(store);
  // the backup folder's flushes only: the runtime's own caches flush too, and their failures are the runtime's
  const failFlush =
    `exec strace -f -qq -o /dev/null -P '${store.backupDir}' -e trace=fsync -e inject=fsync:error=EIO "$@"`;
  const run = await runCliInShell(failFlush, ["create"], env);
  assert.equal(run.code, 1, run.stderr);
  const line = oneLine(run.stderr);
  assert.ok(line.startsWith("atocore-backup: error: ") && line.includes(`'${store.backupDir}'`), line);
  assert.match(line, /: the storage failed to read or write there: check it .* and run again$/);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), []);
});

Deno.test("create whose reads of the live database fail (EIO) says the storage failed, with either driver (needs strace)", async () => {
  if (!toolFor("strace", "a read failure injected into create")) return;
  using store = tempStore({ dbMiB: 1, chromaMiB: 0, segments: 0, seed: 97 });
  for (const driver of ["ffi", "builtin"]) {
    // from the fifth read: SQLite's own, which it reports as "disk I/O error" (node:sqlite's backup with no code)
    const failing = `exec strace -f -qq -o /dev/null -P '${store.db}' -e trace=pread64 ` +
      `-e inject=pread64:error=EIO:when=5+ "$@"`;
    const run = await runCliInShell(failing, ["create", "--sqlite-driver", driver], storeEnv(store));
    assert.equal(run.code, 1, run.stderr);
    const line = oneLine(run.stderr);
    assert.ok(line.includes(`copying the database ${store.db}`), `${driver}: ${line}`);
    assert.match(line, /the storage failed: check it, dmesg/, driver);
    assert.doesNotMatch(line, /readable by this user/, driver);
  }
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), []);
});

/**
 * Run `validate` of a new snapshot of a store of `dbMiB` under strace failing (EIO) its database's reads (`syscalls`)
 * from the one `when` says, for each `[when, driver]` of `runs`, and assert the storage is blamed, not the bytes;
 * return each run's error that blames it.
 */
async function validateFailingReads(dbMiB: number, syscalls: string, runs: [string, string][]): Promise<string[]> {
  const blamed: string[] = [];
  using store = tempStore({ dbMiB, chromaMiB: 0, segments: 0, seed: 96 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const db = join(store.backupDir, "snapshots", stamp, "db", "atocore.db");
  for (const [when, driver] of runs) {
    const failing = `exec strace -f -qq -o /dev/null -P '${db}' -e trace=${syscalls} ` +
      `-e inject=${syscalls}:error=EIO:when=${when} "$@"`;
    const run = await runCliInShell(failing, ["validate", stamp, "--sqlite-driver", driver], env);
    assert.equal(run.code, 1, run.stderr);
    const errors: string[] = JSON.parse(run.stdout).errors;
    const unreadable = `db_unreadable: an I/O error at ${db} (the storage failed: check it, dmesg)`;
    const blaming = errors.find((error) => error === unreadable || error.startsWith(`${unreadable}; SQLite said: `));
    assert.ok(blaming, `reads ${when}, ${driver}: ${run.stdout}`);
    assert.ok(!errors.some((error) => /^db_(integrity_check|open)_failed/.test(error)), `${driver}: ${run.stdout}`);
    blamed.push(blaming);
  }
  return blamed;
}

Deno.test("validate of a snapshot whose database cannot be read (EIO) blames the storage, not the bytes (needs strace)", async () => {
  if (!toolFor("strace", "a read failure injected into validate")) return;
  // the first read (the header, read before SQLite opens it), the third (the check fails part way) or the eighth (a
  // page of a chain: "failed to get page"), for each driver
  await validateFailingReads(1, "pread64", [["1", "ffi"], ["3", "ffi"], ["8", "ffi"], ["1", "builtin"], [
    "3",
    "builtin",
  ]]);
});

Deno.test("validate of a snapshot database whose every read fails from the fifth: the storage is blamed, whatever the driver calls it (needs strace)", async () => {
  if (!toolFor("strace", "a failing disk injected into validate")) return;
  // large enough that hashing it takes more than four reads: its hash fails too, as on a failing disk (node:sqlite
  // says "database disk image is malformed")
  const [builtin] = await validateFailingReads(48, "pread64,read", [["5+", "builtin"], ["5+", "ffi"]]);
  assert.match(builtin, /; SQLite said: .*malformed/, "SQLite's own answer is kept beside the storage's blame");
});

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((line) => !line.startsWith("{"));
  assert.equal(lines.length, 1, stderr);
  return lines[0];
}

Deno.test("a folder repository that fails to read (EIO): the pack or folder is named, the storage blamed (needs strace)", async () => {
  if (!toolFor("strace", "read and listing failures injected into a repository")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { push } = await createAndPush(r.env);
  const packs = join(r.repoDir, "packs");
  const pack = join(packs, entryNames(packs)[0], entryNames(join(packs, entryNames(packs)[0]))[0]);
  const failingRead = `exec strace -f -qq -o /dev/null -P '${pack}' -e trace=read,pread64 ` +
    `-e inject=read,pread64:error=EIO "$@"`;
  const storage = (path: string, doing: string) =>
    `an I/O error ${doing} ${path}: the repository's storage failed; check it (dmesg, the disk's health), then run again`;
  const to = join(r.work, "to");
  const fetched = await runCliInShell(
    failingRead,
    ["restore", push.snapshot, "--from-remote", "--to", to],
    r.envWithIdentity,
  );
  assert.equal(fetched.code, 1, fetched.stderr);
  assert.ok(oneErrorLine(fetched, "fetch").includes(`stopped: ${storage(pack, "reading")}; nothing was changed`));
  assert.doesNotMatch(fetched.stderr, /--scratch-dir/);
  const verified = await runCliInShell(failingRead, ["remote", "verify", "--read-data"], r.envWithIdentity);
  assert.equal(verified.code, 1, verified.stderr);
  assert.deepEqual((verified.json as { errors: string[] }).errors, [storage(pack, "reading")]);
  for (const args of [["remote", "verify"], ["remote", "cleanup", "--confirm"], ["push", "--all"]]) {
    await runCli(["create"], { env: r.env });
    const run = await runCliInShell(failingListing(packs), args, r.env);
    assert.equal(run.code, 1, run.stderr);
    assert.ok(oneErrorLine(run, args.join(" ")).includes(storage(packs, "listing")), run.stderr);
  }
  await assertVerified(r.envWithIdentity, ["--read-data"], "the repository, read again whole");
});

Deno.test("a push whose lease cannot be removed (EIO) says so in a warning: the lease stays until it expires (needs strace)", async () => {
  if (!toolFor("strace", "an unlink failure injected into a push's lease removal")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  await runCli(["create"], { env: r.env });
  const leases = join(r.repoDir, "leases");
  Deno.mkdirSync(leases, { recursive: true });
  const failingUnlink = `exec strace -f -qq -o /dev/null -P '${leases}' -e trace=unlink,unlinkat ` +
    `-e inject=unlink,unlinkat:error=EIO "$@"`;
  const pushed = await runCliInShell(failingUnlink, ["push", "--latest"], r.env);
  assert.equal(pushed.code, 0, pushed.stderr);
  const [lease] = entryNames(leases);
  assert.ok(lease, "the lease stays");
  const warned = new RegExp(
    `the lease leases/${lease} could not be removed \\(an I/O error[^)]*\\)\\); it keeps the packs it names from ` +
      "cleanup until it expires \\(\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\), when 'remote cleanup' removes it",
  );
  assert.match(pushed.stdout + pushed.stderr, warned);
});

Deno.test("restore --from-remote whose fetch's folders fail to be made (EIO) says to check the storage, not to find room (needs strace)", async () => {
  if (!toolFor("strace", "a folder failure injected into a fetch")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 0.05 });
  const { push } = await createAndPush(r.env);
  using to = tempDir();
  let fetches = 0;
  for (const when of [3, 4, 5, 6]) { // past the lock's and --to's own: folders the fetch makes in its scratch folder
    const failing =
      `exec strace -f -qq -o /dev/null -e trace=mkdir,mkdirat -e inject=mkdir,mkdirat:error=EIO:when=${when} "$@"`;
    const args = ["restore", "--from-remote", push.snapshot, "--to", join(to.path, `x${when}`)];
    const run = await runCliInShell(failing, args, r.envWithIdentity);
    assert.equal(run.code, 1, run.stderr);
    const line = oneErrorLine(run, `mkdir ${when}`);
    if (!line.includes("into the scratch folder")) continue;
    fetches++;
    assert.match(line, /\(the storage failed: check it, dmesg\)\); nothing was changed; check that disk's storage/);
  }
  assert.ok(fetches > 0, "no fetch met the failure");
});
