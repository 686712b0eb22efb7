/**
 * A writer of the backup folder who swaps `remotes/<key>` (this host's state about a repository) or `remotes/` for a
 * link while a push or a remote cleanup runs: strace holds the run's first call on a state file's path while the test
 * swaps, and nothing is then made, replaced or removed in the link's target.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempDir, toolFor } from "../_helpers.ts";
import { remoteStore } from "../_remote_cli.ts";
import { entriesBelow, runSwapped, treeDigest } from "../_faults.ts";

const CALLS = "openat,open,statx,newfstatat,lstat,stat,mkdir,mkdirat,unlink,unlinkat,rename,renameat,renameat2";

const CASES = [
  ["remotes/<key>", "pushed.json", "its record"],
  ["remotes", "pushed.json", "its record"],
  ["remotes/<key>", "push-cache", "its cache (the state folder open)"],
  ["remotes", "push-cache", "its cache (the state folder open)"],
];
for (const [level, file, what] of CASES) {
  Deno.test(`${level} swapped for a link while a push reads ${what}: nothing is written in the link's target (needs strace)`, async () => {
    if (!toolFor("strace", `${level} swapped during a push`)) return;
    using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
    using victim = tempDir("atocore-victim-");
    const first = await runCli(["create", "--chroma", "--push"], { env: r.env });
    assert.equal(first.code, 0, first.stderr);
    const remotes = join(r.store.backupDir, "remotes");
    const [key] = [...Deno.readDirSync(remotes)].map((entry) => entry.name);
    const state = join(remotes, key);
    // the victim holds what the state folder holds, so a write there shows as a change, not as a first file
    new Deno.Command("cp", { args: ["-a", `${state}/.`, victim.path] }).outputSync();
    const snapshot = () => ({ files: treeDigest(victim.path), entries: entriesBelow(victim.path) }); // folders too
    const before = snapshot();
    const victimRoot = level === "remotes" ? `${victim.path}-root` : victim.path;
    if (level === "remotes") {
      Deno.mkdirSync(victimRoot);
      Deno.symlinkSync(victim.path, join(victimRoot, key)); // remotes/ → a folder whose <key> leads to the victim
    }
    try {
      const swap = { held: join(state, file), swapped: level === "remotes" ? remotes : state, victim: victimRoot };
      const run = await runSwapped(["create", "--chroma", "--push"], r.env, { ...swap, calls: CALLS });
      assert.ok(run.swapped, `the push ended before it read ${what}: ${run.output}`);
      assert.deepEqual(snapshot(), before, `written through the link (exit ${run.code}): ${run.output}`);
      // refused, one line naming why: the folder a link when first opened, or the path no longer leading to it
      assert.match(run.output, file === "pushed.json" ? /is a symbolic link \(to / : /swapped for a link\?/);
    } finally {
      if (level === "remotes") Deno.removeSync(victimRoot, { recursive: true });
    }
  });
}

Deno.test("remotes/<key> swapped for a link while a remote cleanup reads its sightings: nothing is written in the link's target (needs strace)", async () => {
  if (!toolFor("strace", "remotes/<key> swapped during a remote cleanup")) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  using victim = tempDir("atocore-victim-");
  const first = await runCli(["create", "--chroma", "--push"], { env: r.env });
  assert.equal(first.code, 0, first.stderr);
  const remotes = join(r.store.backupDir, "remotes");
  const [key] = [...Deno.readDirSync(remotes)].map((entry) => entry.name);
  const state = join(remotes, key);
  const cleanup = ["remote", "cleanup", "--confirm", "--keep-daily", "1"];
  const swap = { held: join(state, "condemned-seen.json"), swapped: state, victim: victim.path, calls: CALLS };
  const run = await runSwapped(cleanup, r.env, swap);
  assert.ok(run.swapped, `the cleanup ended before it read its sightings: ${run.output}`);
  assert.deepEqual(entriesBelow(victim.path), [], `written through the link (exit ${run.code}): ${run.output}`);
  assert.match(run.output, /condemned-seen\.json not written \([^)]*is a symbolic link \(to /);
});
