/**
 * The push's host state under an unlucky operator or a local writer: a push cache that cannot be replaced, leftovers of
 * a killed save, a journal line that claims an impossible file. Each costs at most a fuller push, says so truthfully,
 * and leaves nothing behind.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { runCli, skipOutsideCi } from "../_helpers.ts";
import { entryNames } from "../_faults.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";
import { updateRows } from "../_repo.ts";

/** The folder of this host's state about the repository (there is one). */
function stateDir(backupDir: string): string {
  const remotes = join(backupDir, "remotes");
  return join(remotes, entryNames(remotes)[0]);
}

Deno.test("push cache: one that cannot be replaced is named, no temporary is left, and a killed save's is removed", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  await createAndPush(r.env);
  const state = stateDir(r.store.backupDir);
  const cache = join(state, "push-cache");
  const set = new Deno.Command("chattr", { args: ["+i", cache], stderr: "piped" }).outputSync();
  if (!set.success) {
    skipOutsideCi(`chattr +i is not possible here: ${new TextDecoder().decode(set.stderr).trim()}`);
  } else {
    try {
      updateRows(r.store.db, 0.1, 3);
      const run = await runCli(["create", "--chroma", "--push"], { env: r.env });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, new RegExp(`push cache ${cache.replaceAll(".", "\\.")} not saved \\(`));
      assert.doesNotMatch(run.stderr, /re-reads every file/);
    } finally {
      new Deno.Command("chattr", { args: ["-i", cache] }).outputSync();
    }
    assert.deepEqual(entryNames(state).filter((name) => name.includes(".tmp-")), [], "no temporary left");
  }
  Deno.writeTextFileSync(join(state, ".push-cache.tmp-1-deadbeef"), "a save killed half way");
  updateRows(r.store.db, 0.1, 4);
  const next = await runCli(["create", "--chroma", "--push"], { env: r.env });
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(entryNames(state).filter((name) => name.includes(".tmp-")), [], "a killed save's temporary removed");
});

Deno.test("push journal: a line claiming a file no filesystem holds is skipped, the push goes on", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  await createAndPush(r.env);
  const state = stateDir(r.store.backupDir);
  const repositoryId = JSON.parse(Deno.readTextFileSync(join(state, "pin.json"))).repository_id;
  const json = JSON.stringify({
    repository_id: repositoryId,
    pack: { id: "0".repeat(64), size: 1, compression: "none" },
    files: [{ path: "db/atocore.db", block: 4096, size: 10 ** 15, blocks: [[10 ** 11, 0, "00".repeat(32)]] }],
  });
  Deno.mkdirSync(join(state, "journal"), { recursive: true });
  Deno.writeTextFileSync(
    join(state, "journal", "0123456789abcdef"),
    `${json} ${createHash("sha256").update(json).digest("hex")}\n`,
  );
  updateRows(r.store.db, 0.1, 5);
  const run = await runCli(["create", "--chroma", "--push"], { env: r.env });
  assert.equal(run.code, 0, run.stderr);
  const check = await runCli(["remote", "verify", "--read-data"], { env: r.envWithIdentity });
  assert.equal(check.code, 0, check.stdout);
});
