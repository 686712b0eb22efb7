/**
 * A writer of the backup folder who swaps `.trash` or `snapshots` for a link while cleanup moves old snapshots into
 * the trash: strace holds the run's look at the second snapshot it removes while the test swaps, and nothing is then
 * moved into, out of or removed in the link's target.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliEnv, placeValidSnapshot, tempDir, toolFor } from "../_helpers.ts";

const [OLDEST, OLDER, NEWEST] = ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"];

/**
 * Run `cleanup --confirm` keeping one daily snapshot, with strace holding its first `statx` of `held` for 3 s; while
 * held, `swapped` is renamed aside and a link to `victim` put in its place. Whether the swap happened, and its output.
 */
async function cleanupSwapped(
  backupDir: string,
  held: string,
  swapped: string,
  victim: string,
): Promise<{ swapped: boolean; output: string }> {
  const trace = `${victim}-trace.txt`;
  const strace = ["-f", "-qq", "-o", trace, "-P", held, "-e", "trace=statx,newfstatat,stat,lstat"];
  const keep = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const [program, ...args] = cliCommand(["cleanup", "--confirm", ...keep]);
  const child = new Deno.Command("strace", {
    args: [...strace, "-e", "inject=statx,newfstatat,stat,lstat:delay_enter=3000000:when=1", program, ...args],
    env: cliEnv({ ATOCORE_BACKUP_DIR: backupDir }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  const ended = child.output().then((output) => decoder.decode(output.stdout) + decoder.decode(output.stderr));
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
  return { swapped: !done, output: await ended };
}

for (const folder of [".trash", "snapshots"]) {
  Deno.test(`${folder} swapped for a link while cleanup moves snapshots into the trash: the link's target untouched (needs strace)`, async () => {
    if (!toolFor("strace", `${folder} swapped during cleanup`)) return;
    using dir = tempDir();
    const backupDir = join(dir.path, "backup");
    const victim = join(dir.path, "victim");
    for (const stamp of [OLDEST, OLDER, NEWEST]) placeValidSnapshot(backupDir, stamp);
    Deno.mkdirSync(join(backupDir, ".trash"));
    // what the victim holds: a folder of the second stamp's name, which a move out of `snapshots` would take
    Deno.mkdirSync(join(victim, OLDEST), { recursive: true });
    Deno.writeTextFileSync(join(victim, OLDEST, "keep.txt"), "root's own");
    const before = entriesBelow(victim);

    const run = await cleanupSwapped(backupDir, join(backupDir, "snapshots", OLDEST), join(backupDir, folder), victim);
    try {
      assert.ok(run.swapped, `the cleanup ended before it removed ${OLDEST}: ${run.output}`);
      assert.deepEqual(entriesBelow(victim), before, `moved or removed in the link's target: ${run.output}`);
      const refusal = `${OLDEST}: could not move .* out of snapshots/: .*${folder} is a symbolic link or not a folder`;
      assert.match(run.output, new RegExp(refusal));
    } finally {
      Deno.removeSync(`${victim}-trace.txt`);
    }
  });
}

/** Every path below `root`, folders included. */
function entriesBelow(root: string, relative = ""): string[] {
  return [...Deno.readDirSync(join(root, relative))].flatMap((entry) => {
    const path = join(relative, entry.name);
    return entry.isDirectory ? [path, ...entriesBelow(root, path)] : [path];
  }).sort();
}
