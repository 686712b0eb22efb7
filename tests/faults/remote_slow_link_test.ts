/**
 * A slow SFTP link is not a dead server, a trickling one is, and a server gone away stops `remote verify --read-data`
 * at once: through the tests' TCP proxy (`tests/_proxy.ts`) in front of a real sshd, with a short stall timeout so
 * that each run is seconds.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { ledgerState, treeDigest } from "../_faults.ts";
import { afterBytes, retries, runUntil } from "../_network.ts";
import { type FaultProxy, startProxy } from "../_proxy.ts";
import { ageKeyPair, assertVerified, authKeyEnv, oneErrorLine, remoteNames } from "../_remote_cli.ts";
import { sftpTarget } from "../_targets.ts";

/**
 * The link's speed and the stall timeout: one request's answer (the server's largest chunk, 255 KiB) comes well within
 * the timeout, the 16 a transfer keeps in flight (about 4 MiB) do not.
 */
const SLOW = { bytesPerSecond: 1024 * 1024, stall: "2s" };
/** The most a run may take here; a run killed at it fails the test. */
const BOUND_MS = 120_000;

/** Run the CLI through the proxy slowed to {@linkcode SLOW}, killed at the bound (asserted not to have been needed). */
async function slowRun(proxy: FaultProxy, args: string[], env: Record<string, string>) {
  proxy.setFault({ kind: "throttle", bytesPerSecond: SLOW.bytesPerSecond });
  const slowEnv = { ...env, ATOCORE_BACKUP_STALL_TIMEOUT: SLOW.stall };
  const { run, killed } = await runUntil(args, slowEnv, () => false, () => {}, BOUND_MS);
  proxy.setFault({ kind: "pass" });
  assert.ok(!killed, `${args.join(" ")} still running after ${BOUND_MS / 1000} s`);
  return run;
}

/** Add `count` rows of 64 KiB of random bytes to the database `db` (blocks no snapshot holds yet). */
async function addRows(db: string, count: number): Promise<void> {
  const sql =
    "CREATE TABLE IF NOT EXISTS filler (bytes BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 " +
    `FROM n WHERE i < ${count}) INSERT INTO filler SELECT randomblob(65536) FROM n;`;
  const output = await new Deno.Command("sqlite3", { args: [db, sql] }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
}

/**
 * Every connection trickling 1 MiB in (past its login and the documents): 4800 bytes each way every 100 ms. The client
 * decrypts whole SSH packets (32 KiB of an answer each), so one comes about every 0.7 s: never silent for the 1 s stall
 * timeout, but less than 64 KiB in it, and no whole answer (255 KiB) either.
 */
const TRICKLE = { kind: "trickle", afterBytes: 1 << 20, bytes: 4800, everyMs: 100 } as const;

/**
 * `remote verify --read-data --transfers 1` from a server that trickles ({@linkcode TRICKLE}): each connection is
 * dropped after the stall timeout, and the verify fails after its attempts in one line naming the pack, what little
 * came, and --stall-timeout as a next step.
 */
async function verifyTrickled(proxy: FaultProxy, env: Record<string, string>): Promise<void> {
  proxy.setFault(TRICKLE);
  const trickleEnv = { ...env, ATOCORE_BACKUP_STALL_TIMEOUT: "1s" };
  const args = ["remote", "verify", "--read-data", "--transfers", "1"];
  const { run, killed } = await runUntil(args, trickleEnv, () => false, () => {}, BOUND_MS);
  proxy.setFault({ kind: "pass" });
  proxy.cutOpen();
  assert.ok(!killed, `a trickling server held remote verify for ${BOUND_MS / 1000} s: ${run.stderr}`);
  assert.ok(retries(run).length > 0, `no connection dropped for trickling: ${run.stdout}${run.stderr}`);
  assert.equal(run.code, 1, `${run.stdout}${run.stderr}`);
  const line = oneErrorLine(run, "verify from a trickling server");
  assert.match(line, /reading packs\/[0-9a-f]{2}\/[0-9a-f]+ in sftp:\/\/\S+ failed after 6 attempts: /);
  assert.match(line, /the SFTP server sent only \d+ bytes in 1 s \(less than 64 KiB, and no whole answer\) while/);
  assert.match(line, /give a slow link more time \(--stall-timeout\)/);
  console.log(`sftp verify from a trickling server: ${line}`);
}

/**
 * Two more snapshots pushed (1.5 MiB of new rows each: three packs, none under 1 MiB), then every connection cut 1 MiB
 * into `remote verify --read-data --transfers 1` (past the documents, in the first pack): the verify fails in one line
 * naming that pack after its retries, without going on to the other packs and their retries.
 */
async function verifyServerGone(
  proxy: FaultProxy,
  store: { db: string },
  env: Record<string, string>,
  withKey: Record<string, string>,
): Promise<void> {
  for (let more = 0; more < 2; more++) {
    await addRows(store.db, 24);
    const next = await runCli(["create", "--chroma"], { env });
    assert.equal(next.code, 0, next.stderr);
    const pushed = await runCli(["push", (next.json as { stamp: string }).stamp], { env });
    assert.equal(pushed.code, 0, pushed.stderr);
  }
  await assertVerified(withKey, ["--read-data"], "before the server went away");
  const args = ["remote", "verify", "--read-data", "--transfers", "1"];
  const goneEnv = { ...withKey, ATOCORE_BACKUP_STALL_TIMEOUT: SLOW.stall };
  const { run, acted, killed } = await runUntil(args, goneEnv, afterBytes(proxy, 1 << 20), () => {
    proxy.setFault({ kind: "cut", afterBytes: 0 });
    proxy.cutOpen();
  }, BOUND_MS);
  proxy.setFault({ kind: "pass" });
  assert.ok(acted && !killed, `acted ${acted}, killed ${killed}: ${run.stderr}`);
  assert.equal(run.code, 1, `${run.stdout}${run.stderr}`);
  const line = oneErrorLine(run, "verify with the server gone");
  assert.match(line, /reading packs\/[0-9a-f]{2}\/[0-9a-f]+ in sftp:\/\/\S+ failed after 6 attempts: /);
  assert.match(line, /check that the server is up and reachable/);
  const warned = retries(run);
  assert.ok(warned.length <= 5, `went on to the next packs (${warned.length} retries):\n${run.stderr}`);
}

/**
 * Every connection stalled 32 KiB in (past its login) during a push: the push fails after its attempts in one line that
 * names one object, says the connection was dropped for the stall, and gives --stall-timeout as a next step.
 */
async function pushStalled(
  proxy: FaultProxy,
  stamp: string,
  recipient: string,
  env: Record<string, string>,
): Promise<void> {
  const init = await runCli(["remote", "init", "--recipient", recipient], { env });
  assert.equal(init.code, 0, init.stderr);
  proxy.setFault({ kind: "stall", afterBytes: 32 * 1024 });
  const stallEnv = { ...env, ATOCORE_BACKUP_STALL_TIMEOUT: "1s" };
  const { run, killed } = await runUntil(["push", stamp], stallEnv, () => false, () => {}, BOUND_MS);
  proxy.setFault({ kind: "pass" });
  proxy.cutOpen(); // the stalled connections, which the CLI abandoned
  assert.ok(!killed, run.stderr);
  assert.equal(run.code, 1, run.stderr);
  const line = oneErrorLine(run, "a push whose connections all stall");
  assert.match(line, /failed after 6 attempts: the SFTP server sent nothing for 1 s while \d+ requests? waited/);
  assert.match(line, /give a slow link more time \(--stall-timeout\)/);
  const objects = line.match(/(packs|snapshots|refs|leases|locks)\/\S+/g) ?? [];
  assert.ok(new Set(objects).size <= 1, `more than one object named: ${line}`);
  console.log(`sftp push, every connection stalled: ${line}`);
}

const target = await sftpTarget();
if (target !== null) {
  Deno.test("a slow SFTP link: push and restore complete; verify stops at the first pack it cannot reach", async (t) => {
    await using _target = target;
    using store = tempStore({ dbMiB: 4, chromaMiB: 1, segments: 1, seed: 53 });
    using keys = tempDir("atocore-keys-");
    using work = tempDir("atocore-to-");
    const key = ageKeyPair(keys.path);
    await using proxy = startProxy(target.server!);
    const env = { ...storeEnv(store), ...target.server!.through(target.fresh("slow"), proxy.port), ...authKeyEnv(key) };
    const withKey = { ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile };
    assert.equal((await runCli(["remote", "init", "--recipient", key.recipient], { env })).code, 0);
    const created = await runCli(["create", "--chroma"], { env });
    assert.equal(created.code, 0, created.stderr);
    const stamp = (created.json as { stamp: string }).stamp;

    await t.step("a push at 1 MiB/s with a 2 s stall timeout: no timeout, no retry", async () => {
      const run = await slowRun(proxy, ["push", stamp], env);
      assert.equal(run.code, 0, `push over a slow link: ${run.stderr}`);
      assert.deepEqual(retries(run), [], "a slow link taken for a stalled one");
    });

    await t.step("restore --from-remote --to at 1 MiB/s with a 2 s stall timeout: restored, no retry", async () => {
      if ((await remoteNames(env)).length === 0) { // the slow push failed: pushed at full speed, to test this alone
        assert.equal((await runCli(["push", stamp], { env })).code, 0);
      }
      const to = join(work.path, "restored");
      const run = await slowRun(proxy, ["restore", stamp, "--from-remote", "--to", to], withKey);
      assert.equal(run.code, 0, `restore over a slow link: ${run.stderr}`);
      assert.deepEqual(retries(run), [], "a slow link taken for a stalled one");
      const snapshot = join(store.backupDir, "snapshots", stamp);
      const fromSnapshot = await ledgerState(join(snapshot, "db", "atocore.db"), { immutable: true });
      assert.deepEqual(await ledgerState(join(to, "atocore.db")), fromSnapshot);
      assert.deepEqual(treeDigest(join(to, "chroma")), treeDigest(join(snapshot, "chroma")));
    });

    await t.step(
      "every connection stalled during a push: one line, one object, --stall-timeout",
      () =>
        pushStalled(proxy, stamp, key.recipient, {
          ...env,
          ...target.server!.through(target.fresh("stalled"), proxy.port),
        }),
    );

    await t.step(
      "a server trickling under 64 KiB per stall timeout during verify --read-data: dropped, one line",
      () => verifyTrickled(proxy, withKey),
    );

    await t.step(
      "the server gone during verify --read-data: one line naming the pack, one pack's retries",
      () => verifyServerGone(proxy, store, env, withKey),
    );
  });
}
