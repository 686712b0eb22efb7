/**
 * A writer of the backup folder who swaps `remotes/<key>` (this host's state about a repository) or `remotes/` for a
 * link while a push runs: strace holds the push's first call on a state file's path while the test swaps, and nothing
 * is then made, replaced or removed in the link's target.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliEnv, runCli, tempDir, toolFor } from "../_helpers.ts";
import { remoteStore } from "../_remote_cli.ts";
import { treeDigest } from "../_faults.ts";

/**
 * Run the CLI with `command` (`create --chroma --push`) with strace holding its first call on the path `held` for 3 s;
 * while held, `swapped` is renamed aside and a link to `victim` put in its place. Whether the swap happened, and how
 * the run ended.
 */
async function runSwapped(
  command: string[],
  env: Record<string, string>,
  held: string,
  swapped: string,
  victim: string,
): Promise<{ swapped: boolean; code: number; stderr: string }> {
  const trace = `${victim}-trace.txt`;
  const calls = "openat,open,statx,newfstatat,lstat,stat,mkdir,mkdirat,unlink,unlinkat,rename,renameat,renameat2";
  const strace = ["-f", "-qq", "-o", trace, "-P", held, "-e", `trace=${calls}`];
  const [program, ...args] = cliCommand(command);
  const child = new Deno.Command("strace", {
    args: [...strace, "-e", `inject=${calls}:delay_enter=3000000:when=1`, program, ...args],
    env: cliEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const ended = child.output().then((output) => ({
    code: output.code,
    stderr: new TextDecoder().decode(output.stderr),
  }));
  let done = false;
  for (; !done;) {
    done = await Promise.race([ended.then(() => true), new Promise<boolean>((wait) => setTimeout(wait, 10, false))]);
    let text = "";
    try {
      text = Deno.readTextFileSync(trace);
    } catch {
      // not written yet
    }
    if (!done && text.includes(`"${held}"`)) {
      Deno.renameSync(swapped, `${swapped}-aside`);
      Deno.symlinkSync(victim, swapped);
      break;
    }
  }
  return { swapped: !done, ...await ended };
}

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

    const run = await runSwapped(
      ["create", "--chroma", "--push"],
      r.env,
      join(state, file),
      level === "remotes" ? remotes : state,
      victimRoot,
    );
    try {
      assert.ok(run.swapped, `the push ended before it read its record: ${run.stderr}`);
      assert.deepEqual(snapshot(), before, `written through the link (exit ${run.code}): ${run.stderr}`);
      // refused, one line naming why: the folder a link when first opened, or the path no longer leading to it
      assert.match(run.stderr, file === "pushed.json" ? /is a symbolic link \(to / : /swapped for a link\?/);
    } finally {
      if (level === "remotes") Deno.removeSync(victimRoot, { recursive: true });
      Deno.removeSync(`${victimRoot}-trace.txt`);
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
  const run = await runSwapped(cleanup, r.env, join(state, "condemned-seen.json"), state, victim.path);
  try {
    assert.ok(run.swapped, `the cleanup ended before it read its sightings: ${run.stderr}`);
    assert.deepEqual(entriesBelow(victim.path), [], `written through the link (exit ${run.code}): ${run.stderr}`);
    assert.match(run.stderr, /condemned-seen\.json not written \([^)]*is a symbolic link \(to /);
  } finally {
    Deno.removeSync(`${victim.path}-trace.txt`);
  }
});

/** Every path below `root`, folders included. */
function entriesBelow(root: string, relative = ""): string[] {
  return [...Deno.readDirSync(join(root, relative))].flatMap((entry) => {
    const path = join(relative, entry.name);
    return entry.isDirectory ? [path, ...entriesBelow(root, path)] : [path];
  }).sort();
}
