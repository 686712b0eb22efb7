/**
 * A push whose snapshot object was renamed in but whose folder could not be flushed (EIO injected into the repository's
 * `snapshots/` fsync by strace): it is unlisted again, so "nothing of it is listed" is true, and the next push lists it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, runCliInShell, toolFor } from "../_helpers.ts";
import { assertVerified, oneErrorLine, remoteNames, remoteStore } from "../_remote_cli.ts";

Deno.test("a push whose snapshot object's folder flush fails leaves nothing listed, as it says; the next push lists it (needs strace)", async () => {
  if (!toolFor("strace", "a flush failure injected into a push")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 93 });
  const stamp = await createdStamp(r.env);
  const snapshots = join(r.repoDir, "snapshots");
  const failFlush = `exec strace -f -qq -o /dev/null -P '${snapshots}' -e trace=fsync -e inject=fsync:error=EIO "$@"`;
  const failed = await runCliInShell(failFlush, ["push", stamp], r.env);
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(
    oneErrorLine(failed, "push"),
    /snapshots\/.*an I\/O error at \S+\/snapshots \(the storage failed.*; nothing of it is listed; /,
  );
  assert.deepEqual(await remoteNames(r.env), [], "a push that failed lists nothing");
  const again = await runCli(["push", stamp], { env: r.env });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await remoteNames(r.env)).length, 1);
  await assertVerified(r.envWithIdentity, ["--read-data"]);
});
