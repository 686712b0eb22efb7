/**
 * A refs' source believed only under the MAC of the refs' fields: a writer of a repository two backup folders share
 * who edits one folder's refs to name the other's source cannot make the other's push skip its snapshot of that
 * second, nor its live restore take the first folder's store for its own.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { relocateSnapshot, runCli, storeEnv, tempStore } from "../_helpers.ts";
import { createAndPush, oneErrorLine, remoteStore } from "../_remote_cli.ts";

/** Create a snapshot in the store of `env` and give it `stamp`: two folders then hold a snapshot of the same second. */
async function createdAs(env: Record<string, string>, backupDir: string, stamp: string): Promise<void> {
  const created = await runCli(["create"], { env });
  assert.equal(created.code, 0, created.stderr);
  const snapshots = join(backupDir, "snapshots");
  Deno.renameSync(join(snapshots, (created.json as { stamp: string }).stamp), join(snapshots, stamp));
  relocateSnapshot(join(snapshots, stamp));
}

/** Push `stamp` from `env`: the snapshot listed, whether it was there already, and the run's stderr. */
async function pushed(env: Record<string, string>, stamp: string) {
  const run = await runCli(["push", stamp], { env });
  assert.equal(run.code, 0, run.stderr);
  const result = (run.json as { pushed: { snapshot: string; already_pushed: boolean }[] }).pushed[0];
  return { ...result, stderr: run.stderr };
}

Deno.test("a push is not skipped for another folder's snapshot of its second whose refs a writer edited to name its source", async () => {
  using r = await remoteStore({ dbMiB: 0.5 });
  using other = tempStore({ dbMiB: 0.5, seed: 17 });
  const theirEnv = { ...r.env, ...storeEnv(other) };
  await createAndPush(r.env); // this folder pins the repository: its source
  await createAndPush(theirEnv);
  const listed = await runCli(["remote", "list"], { env: r.env });
  const own = (listed.json as { own_source: string }).own_source;

  for (const [stamp, edit] of [["20260301T010000Z", "forged"], ["20260302T010000Z", "stripped"]] as const) {
    await createdAs(r.env, r.store.backupDir, stamp);
    await createdAs(theirEnv, other.backupDir, stamp);
    const theirs = await pushed(theirEnv, stamp);
    const refsPath = join(r.repoDir, "refs", theirs.snapshot);
    const refs = JSON.parse(Deno.readTextFileSync(refsPath));
    delete refs.local_sha256;
    if (edit === "stripped") { for (const entry of refs.auth) delete entry.refs_mac; }
    Deno.writeTextFileSync(refsPath, JSON.stringify({ ...refs, source: own }));

    const mine = await pushed(r.env, stamp);
    assert.equal(mine.already_pushed, false, `${edit}: ${mine.stderr}`);
    assert.notEqual(mine.snapshot, theirs.snapshot);
    const warned = mine.stderr.includes(`${theirs.snapshot} names this backup folder's source, but the MAC`);
    assert.equal(warned, edit === "forged", `${edit}: the forged refs is named: ${mine.stderr}`);
  }
});

Deno.test("a live restore of refs without a MAC over their fields is refused unless this folder's record names the snapshot", async () => {
  using r = await remoteStore({ dbMiB: 0.5 });
  using other = tempStore({ dbMiB: 0.5, seed: 19 });
  const env = r.envWithIdentity;
  const mine = await createAndPush(r.env);
  const theirs = await createAndPush({ ...r.env, ...storeEnv(other) });
  const listed = await runCli(["remote", "list"], { env: r.env });
  const own = (listed.json as { own_source: string }).own_source;
  const strip = (name: string, fields: Record<string, unknown>) => {
    const path = join(r.repoDir, "refs", name);
    const refs = JSON.parse(Deno.readTextFileSync(path));
    for (const entry of refs.auth) delete entry.refs_mac;
    Deno.writeTextFileSync(path, JSON.stringify({ ...refs, ...fields }));
  };
  const restore = (name: string, extra: string[] = []) =>
    runCli(["restore", name, "--from-remote", "--confirm-service-stopped", ...extra], { env });

  // the other folder's refs edited to name this one's source, or none, and stripped of the MAC that covered it
  for (const fields of [{ source: own }, { source: undefined }]) {
    strip(theirs.push.snapshot, fields);
    const refused = await restore(theirs.push.snapshot);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(
      oneErrorLine(refused, "a source no MAC covers"),
      new RegExp(
        `${theirs.push.snapshot} in \\S+ carries no MAC over its refs' source .* nothing was changed; .*--other-source`,
      ),
    );
  }
  // this folder's own push stripped the same way (as pushed before the MAC existed): its record names it
  strip(mine.push.snapshot, {});
  const own_ = await restore(mine.push.snapshot);
  assert.equal(own_.code, 0, own_.stderr);
  const allowed = await restore(theirs.push.snapshot, ["--other-source", "--no-pre-snapshot"]);
  assert.equal(allowed.code, 0, allowed.stderr);
});

Deno.test("a live restore of a snapshot pushed without an auth key, taken with --allow-unauthenticated, is refused unless this folder's record names it", async () => {
  using r = await remoteStore({ dbMiB: 0.5 });
  using other = tempStore({ dbMiB: 0.5, seed: 23 });
  const { ATOCORE_BACKUP_AUTH_KEY_FILE: _pushedWithout, ...unauthenticated } = r.env;
  const mine = await createAndPush(unauthenticated, ["--allow-unauthenticated"]);
  const theirs = await createAndPush({ ...unauthenticated, ...storeEnv(other) }, ["--allow-unauthenticated"]);
  const restore = (name: string) =>
    runCli(["restore", name, "--from-remote", "--confirm-service-stopped", "--allow-unauthenticated"], {
      env: r.envWithIdentity,
    });
  const refused = await restore(theirs.push.snapshot);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(oneErrorLine(refused, "unsigned refs"), /carries no MAC over its refs' source .*--other-source/);
  const own = await restore(mine.push.snapshot);
  assert.equal(own.code, 0, own.stderr);
});
