/**
 * A stop (SIGINT) while the server has stopped answering, through the tests' TCP proxy in front of a real sshd or
 * radosgw, the stall timeout 10 minutes: the request in flight is given up at once (an SFTP connection dropped), not
 * waited for until the stall timeout; exit 130, nothing left where the restore was to go.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { startProxy } from "../_proxy.ts";
import { ageKeyPair, authKeyEnv } from "../_remote_cli.ts";
import { networkTargets } from "../_targets.ts";

/** How long a stopped run may take here before it is killed and the test fails: far less than the stall timeout. */
const BOUND_MS = 60_000;

/** Run `args`, stall every open connection once `event` is told, then SIGINT: the exit status and stderr. */
async function stopWhileStalled(
  args: string[],
  env: Record<string, string>,
  event: string,
  stall: () => void,
): Promise<{ code: number; killed: boolean; stderr: string }> {
  const child = cliProcess(args, { env, stdout: "null" }).spawn();
  let stderr = "";
  let told = () => {};
  const seen = new Promise<void>((resolve) => told = resolve);
  const drained = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      if (stderr.includes(`"event":"${event}"`)) told();
    }
  })();
  const status = child.status;
  await Promise.race([status, seen]);
  stall();
  await new Promise((resolve) => setTimeout(resolve, 500)); // the requests now wait on stalled connections
  const bound = setTimeout(() => child.kill("SIGKILL"), BOUND_MS);
  try {
    child.kill("SIGINT");
  } catch (error) {
    if (!(error instanceof TypeError)) throw error; // it ended first: the assertions below say how
  }
  const end = await status;
  clearTimeout(bound);
  await drained;
  return { code: end.code, killed: end.signal === "SIGKILL", stderr };
}

for (const target of await networkTargets("a stop while the server stalls")) {
  Deno.test(`${target.label}: SIGINT while the server stalls a restore's download stops at once`, async () => {
    await using _target = target;
    using store = tempStore({ dbMiB: 24, chromaMiB: 1, seed: 43 });
    using work = tempDir("atocore-stop-stalled-");
    const key = ageKeyPair(work.path);
    await using proxy = startProxy(target.server!);
    const env = {
      ...storeEnv(store),
      ...target.server!.through(target.fresh("stop-stalled"), proxy.port),
      ...authKeyEnv(key),
      ATOCORE_BACKUP_STALL_TIMEOUT: "10m",
    };
    assert.equal((await runCli(["remote", "init", "--recipient", key.recipient], { env })).code, 0);
    const pushed = await runCli(["create", "--push"], { env });
    assert.equal(pushed.code, 0, pushed.stderr);
    const stamp = (pushed.json as { stamp: string }).stamp;
    const to = join(work.path, "restored");
    const args = ["restore", stamp, "--from-remote", "--to", to, "--transfers", "1"];
    const withKey = { ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile };
    const run = await stopWhileStalled(args, withKey, "remote_fetch_started", () => proxy.stallOpen());
    proxy.cutOpen();
    assert.ok(!run.killed, `killed after ${BOUND_MS / 1000} s: the stop waited on the stalled request: ${run.stderr}`);
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /interrupted by SIGINT: nothing was changed, the scratch copy is removed/);
    const left = [...Deno.readDirSync(work.path)].map((entry) => entry.name).sort();
    assert.deepEqual(left, ["auth.key", "key.txt"], "no scratch copy, nothing restored");
  });
}
