/**
 * Restore refuses while a real SQLite process holds the live database however it reached it: through a bind mount of
 * the data folder (as a container sees its volume), a hard link, its own mount namespace, or only a memory map of the
 * `-shm` inherited over a fork. The bind mount and the namespace need root; without it they skip with one line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cliProcess,
  type CliRun,
  createdStamp,
  runCli,
  runCliInShell,
  storeEnv,
  tempDir,
  tempStore,
  toolFor,
} from "../_helpers.ts";
import { chownToNobody, entryNames, liveDigest, skipBecause, unprivilegedCli } from "../_faults.ts";

/**
 * A writer as the service is: commits rows to a table of its own, then keeps a read transaction open (so it stays a
 * live connection without changing anything more). With `fork-map`, it forks a child that closes every descriptor,
 * keeping only the inherited map of `-shm`, and exits once the child is ready, without closing SQLite (so `-shm`
 * stays): the child is then the only holder. The holder writes its pid into `CONTROL/ready` and leaves when `CONTROL/stop` appears.
 */
const HOLDER = `
import os, sqlite3, sys, time
db, control, mode = sys.argv[1:4]
connection = sqlite3.connect(db, isolation_level=None)
connection.execute("CREATE TABLE IF NOT EXISTS guard_probe (n INTEGER)")
for n in range(20):
    connection.execute("INSERT INTO guard_probe VALUES (?)", (n,))
connection.execute("BEGIN")
connection.execute("SELECT count(*) FROM guard_probe").fetchone()
if mode == "fork-map":
    child = os.fork()
    while child and not os.path.exists(os.path.join(control, "ready")):
        if os.waitpid(child, os.WNOHANG)[0]:
            os._exit(1)
        time.sleep(0.01)
    if child:
        os._exit(0)
    os.closerange(3, 65536)
with open(os.path.join(control, "ready.tmp"), "w") as ready:
    ready.write(str(os.getpid()))
os.rename(os.path.join(control, "ready.tmp"), os.path.join(control, "ready"))
while not os.path.exists(os.path.join(control, "stop")):
    time.sleep(0.01)
os._exit(0)
`;

/** A holder process: its pid, and how to make it leave (waiting until it has). */
interface Holder extends AsyncDisposable {
  pid: number;
}

/**
 * Start `HOLDER` on `db` (through `prefix`, a command that ends by running its arguments), and return once the holder
 * has written its pid (and, with `fork-map`, its parent has exited); `null` when it failed first.
 */
async function startHolder(db: string, mode: "hold" | "fork-map", prefix: string[] = []): Promise<Holder | null> {
  const control = Deno.makeTempDirSync({ prefix: "atocore-holder-" });
  const argv = [...prefix, "python3", "-c", HOLDER, db, control, mode];
  const child = new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null", stdout: "null", stderr: "inherit" })
    .spawn();
  // The status, not the output: a forked holder keeps the inherited stdio open after its parent exits.
  const status = child.status;
  const ready = join(control, "ready");
  let ended = false;
  status.then(() => ended = true);
  while (!exists(ready) && !ended) await new Promise((resolve) => setTimeout(resolve, 10));
  if (mode === "fork-map" && !(await status).success || !exists(ready)) {
    Deno.removeSync(control, { recursive: true });
    return null;
  }
  const pid = Number(Deno.readTextFileSync(ready));
  return {
    pid,
    [Symbol.asyncDispose]: async () => {
      Deno.writeTextFileSync(join(control, "stop"), "");
      if (mode === "hold") await status;
      while (exists(`/proc/${pid}`) && !zombie(pid)) await new Promise((resolve) => setTimeout(resolve, 10));
      await status;
      Deno.removeSync(control, { recursive: true });
    },
  };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `pid` has exited and waits for its parent to reap it. */
function zombie(pid: number): boolean {
  try {
    return /\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** Run a command; `""` on success, else why not. */
function run(program: string, args: string[]): string {
  try {
    const output = new Deno.Command(program, { args, stdout: "null", stderr: "piped" }).outputSync();
    return output.success ? "" : new TextDecoder().decode(output.stderr).trim() || `exit ${output.code}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/** A store with one snapshot, its live data then changed (so a restore that went ahead would show). */
async function storeWithSnapshot() {
  const store = tempStore({ dbMiB: 1 });
  const stamp = await createdStamp(storeEnv(store));
  Deno.writeTextFileSync(store.registry, '{"projects": []}\n');
  return { store, stamp };
}

/** Restore must refuse (exit 3), name `pid` and `file` and how it is held, and leave the live store as it was. */
async function assertRefused(
  store: ReturnType<typeof tempStore>,
  stamp: string,
  pid: number,
  file: string,
  how: RegExp,
  restore: () => Promise<CliRun> = () =>
    runCli(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store) }),
): Promise<void> {
  const before = liveDigest(store);
  const refused = await restore();
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, new RegExp(`process ${pid} still holds the live store: `));
  const described = refused.stderr.split("still holds the live store: ")[1] ?? "";
  assert.ok(described.startsWith(`${file} (`) || described.includes(`, ${file} (`), refused.stderr);
  assert.match(described, how, refused.stderr);
  assert.match(refused.stderr, /nothing was changed/);
  assert.deepEqual(liveDigest(store), before);
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp]);
}

Deno.test("restore refuses a writer that holds the database through a bind mount of the data folder", async () => {
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  using mountPoint = tempDir("atocore-bind-");
  const failure = run("mount", ["--bind", store.dataDir, mountPoint.path]);
  if (failure) return skipBecause(`mount --bind not permitted here (${failure})`);
  try {
    await using holder = await startHolder(join(mountPoint.path, "atocore.db"), "hold");
    assert.ok(holder, "the writer did not start");
    await assertRefused(store, stamp, holder.pid, store.db, /open as .*atocore-bind-.*locked/);
  } finally {
    assert.equal(run("umount", [mountPoint.path]), "");
  }
});

Deno.test("restore refuses a writer that holds the database through a hard link", async () => {
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  using elsewhere = tempDir("atocore-link-");
  const link = join(elsewhere.path, "service.db");
  Deno.linkSync(store.db, link);
  await using holder = await startHolder(link, "hold");
  assert.ok(holder, "the writer did not start");
  await assertRefused(store, stamp, holder.pid, store.db, /open as .*service\.db, locked/);
});

Deno.test("restore refuses a writer in another mount namespace with its own mount of the data folder", async () => {
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  using mountPoint = tempDir("atocore-ns-");
  const failure = run("unshare", ["-m", "sh", "-c", `mount --bind "$1" "$2"`, "sh", store.dataDir, mountPoint.path]);
  if (failure) return skipBecause(`unshare -m with a bind mount not permitted here (${failure})`);
  const inside = ["unshare", "-m", "sh", "-c", `mount --bind "$1" "$2" && shift 2 && exec "$@"`, "sh"];
  const db = join(mountPoint.path, "atocore.db");
  await using holder = await startHolder(db, "hold", [...inside, store.dataDir, mountPoint.path]);
  assert.ok(holder, "the writer did not start in its namespace");
  assert.notEqual(Deno.readLinkSync(`/proc/${holder.pid}/ns/mnt`), Deno.readLinkSync("/proc/self/ns/mnt"));
  assert.deepEqual(entryNames(mountPoint.path), [], "the namespace's mount leaked out");
  await assertRefused(store, stamp, holder.pid, store.db, /open as .*atocore-ns-.*locked/);
});

Deno.test("restore refuses a process that holds only a memory map of the database's -shm", async () => {
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  await using holder = await startHolder(store.db, "fork-map");
  assert.ok(holder, "the holder did not start");
  const fds = [...Deno.readDirSync(`/proc/${holder.pid}/fd`)].map((entry) =>
    Deno.readLinkSync(`/proc/${holder.pid}/fd/${entry.name}`)
  );
  assert.ok(!fds.some((target) => target.startsWith(store.dataDir)), `the holder still has descriptors: ${fds}`);
  await assertRefused(store, stamp, holder.pid, `${store.db}-shm`, /^[^;]*-shm \(mapped\)/);
});

Deno.test("restore refuses a process holding the registry open, and one holding Chroma's database through a hard link", async () => {
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  await whileHeldOpen(store.registry, async (pid) => {
    await assertRefused(store, stamp, pid, store.registry, /^[^;]*project-registry\.json \(open\)/);
  });

  using elsewhere = tempDir("atocore-link-");
  const link = join(elsewhere.path, "chroma.sqlite3");
  Deno.linkSync(join(store.chromaDir, "chroma.sqlite3"), link);
  await using holder = await startHolder(link, "hold");
  assert.ok(holder, "the writer did not start");
  await assertRefused(store, stamp, holder.pid, join(store.chromaDir, "chroma.sqlite3"), /open as .*, locked/);
  const withoutChroma = await runCli(["restore", stamp, "--confirm-service-stopped", "--no-chroma"], {
    env: storeEnv(store),
  });
  assert.equal(
    withoutChroma.code,
    0,
    `--no-chroma leaves Chroma alone, so its holder does not matter: ${withoutChroma.stderr}`,
  );
});

Deno.test("the lock table names a holder whose descriptors the operator may not read", async () => {
  const cli = unprivilegedCli();
  if (typeof cli === "string") return skipBecause(cli);
  using _cli = cli;
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  chownToNobody(store.dataDir);
  await using holder = await startHolder(store.db, "hold");
  assert.ok(holder, "the writer did not start");
  let events = "";
  await assertRefused(store, stamp, holder.pid, store.db, /^[^,;]*atocore\.db \(locked\)/, async () => {
    const run = await cli.run(["restore", stamp, "--confirm-service-stopped"], storeEnv(store));
    events = run.stderr;
    return run;
  });
  assert.match(events, /open_files_unreadable_processes/);
});

Deno.test("restore looks again before its first live change: a writer that starts during validation is refused", async () => {
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  const restore = cliProcess(["restore", stamp, "--confirm-service-stopped"], { env: storeEnv(store), stdout: "null" })
    .spawn();
  const lines = restore.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  while (!stderr.includes('"restore_snapshot_validated"')) {
    const { value, done } = await lines.read();
    if (done) break;
    stderr += value;
  }
  // Paused past the first look; the service starts meanwhile.
  Deno.kill(restore.pid, "SIGSTOP");
  await using holder = await startHolder(store.db, "hold");
  assert.ok(holder, "the writer did not start");
  const before = liveDigest(store);
  Deno.kill(restore.pid, "SIGCONT");
  for (let read = await lines.read(); !read.done; read = await lines.read()) stderr += read.value;
  assert.equal((await restore.status).code, 3, stderr);
  const preStamp = entryNames(join(store.backupDir, "snapshots")).find((name) => name !== stamp);
  assert.ok(preStamp, `no pre-restore snapshot: ${stderr}`);
  assert.match(stderr, new RegExp(`process ${holder.pid} still holds the live store: ${store.db} \\(open, locked\\)`));
  assert.match(
    stderr,
    new RegExp(`the live store was not changed \\(only the pre-restore snapshot ${preStamp} was taken\\)`),
  );
  assert.deepEqual(liveDigest(store), before);
});

Deno.test("a listing of a holder's descriptors that fails part way stops the restore, never a shorter list (needs strace)", async () => {
  if (!toolFor("strace", "a readdir failure injected into the open-file guard")) return;
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  await whileHeldOpen(store.db, async (pid) => {
    const before = liveDigest(store);
    // every getdents64 of the reader's descriptors fails (EIO), as readdir part way through a folder may: the reader
    // holds the database by its descriptor alone (no lock, no map), so only that listing can find it
    const fds = `/proc/${pid}/fd`;
    const inject = `exec strace -f -qq -o /dev/null -P ${fds} -e trace=getdents64 -e inject=getdents64:error=EIO "$@"`;
    const run = await runCliInShell(inject, ["restore", stamp, "--confirm-service-stopped"], storeEnv(store));
    assert.equal(run.code, 1, run.stderr);
    assert.equal(
      run.stderr.trim().split("\n").at(-1),
      `atocore-backup: error: cannot tell which processes hold the live store: listing ${fds} failed part way ` +
        "(Input/output error (os error 5)); nothing was changed; run the restore again, or pass " +
        "--ignore-open-files once you are sure the service is stopped",
    );
    assert.deepEqual(liveDigest(store), before);
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [stamp]);
  });
});

Deno.test("a look after the replacement whose listing of /proc fails part way ends the restore with exit 1, saying so (needs strace)", async () => {
  if (!toolFor("strace", "a readdir failure injected into the open-file guard")) return;
  const { store, stamp } = await storeWithSnapshot();
  using _store = store;
  // each look lists /proc in two getdents64 (its entries, then the end): the first two looks pass, the third fails
  const inject =
    'exec strace -f -qq -o /dev/null -P /proc -e trace=getdents64 -e inject=getdents64:error=EIO:when=5+ "$@"';
  const run = await runCliInShell(inject, ["restore", stamp, "--confirm-service-stopped"], storeEnv(store));
  assert.equal(run.code, 1, run.stderr);
  const event = run.stderr.split("\n").find((line) => line.includes('"restore_store_opened_during_restore"'));
  assert.ok(event, run.stderr);
  assert.equal(
    JSON.parse(event).holders,
    "which processes hold the replaced database cannot be told (listing /proc failed part way (Input/output error " +
      "(os error 5)))",
  );
  assert.notEqual(Deno.readTextFileSync(store.registry), '{"projects": []}\n', "the store was not replaced");
});

/** Run `body` while a Python process holds `path` open by its descriptor alone (no lock, no map), given its pid. */
async function whileHeldOpen(path: string, body: (pid: number) => Promise<void>): Promise<void> {
  const holder = new Deno.Command("python3", {
    args: ["-c", "import sys, time; handle = open(sys.argv[1]); print('ready', flush=True); time.sleep(3600)", path],
    stdin: "null",
    stdout: "piped",
  }).spawn();
  try {
    const lines = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await lines.read()).value?.trim(), "ready");
    await body(holder.pid);
  } finally {
    holder.kill("SIGKILL");
    await holder.status;
  }
}
