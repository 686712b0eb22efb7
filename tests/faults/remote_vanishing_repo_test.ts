/**
 * A folder repository that goes away while a restore fetches from it (its folder moved, as an unmounted disk leaves
 * it): the restore says the repository is no longer reachable and that nothing was changed (exit 1), instead of blaming
 * the snapshot. The run is stopped (SIGSTOP) at the moment chosen, the folder moved, and the run continued.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess } from "../_helpers.ts";
import { entryNames, liveDigest } from "../_faults.ts";
import { createAndPush, oneErrorLine, remoteStore } from "../_remote_cli.ts";

/** Read `child`'s stderr to the end, calling `onLine` with each line as it comes; the whole text. */
async function readLines(child: Deno.ChildProcess, onLine: (line: string) => void): Promise<string> {
  let text = "";
  let rest = "";
  for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    lines.forEach(onLine);
  }
  return text;
}

/** Whether a fetch in `scratch` has made the snapshot's folder (its document read, its packs being fetched). */
function packsBegun(scratch: string): boolean {
  return entryNames(scratch).some((fetch) => entryNames(join(scratch, fetch, "snapshots")).length > 0);
}

for (const moment of ["the fetch starts", "the packs are fetched"]) {
  Deno.test(`a folder repository moved away when ${moment}: no longer reachable, nothing changed, exit 1`, async () => {
    using r = await remoteStore({ dbMiB: 16, chromaMiB: 2, seed: 19 });
    const { stamp } = await createAndPush(r.env);
    const scratch = join(r.work, "scratch");
    Deno.mkdirSync(scratch);
    const live = liveDigest(r.store);
    const local = entryNames(join(r.store.backupDir, "snapshots"));
    const args = ["restore", stamp, "--from-remote", "--confirm-service-stopped", "--scratch-dir", scratch];
    const child = cliProcess(args, { env: r.envWithIdentity, stdout: "null" }).spawn();
    let moved = false;
    const moveAway = () => {
      if (moved) return;
      moved = true;
      Deno.kill(child.pid, "SIGSTOP");
      Deno.renameSync(r.repoDir, `${r.repoDir}-moved`);
      Deno.kill(child.pid, "SIGCONT");
    };
    const watch = moment === "the packs are fetched"
      ? setInterval(() => packsBegun(scratch) && moveAway(), 1)
      : undefined;
    const text = await readLines(child, (line) => {
      if (moment === "the fetch starts" && line.includes(`"event":"remote_fetch_started"`)) moveAway();
    });
    clearInterval(watch);
    const run = { code: (await child.status).code, stdout: "", stderr: text, json: undefined };
    assert.ok(moved, `the fetch ended before the repository was moved: ${text}`);
    assert.equal(run.code, 1, text);
    const line = oneErrorLine(run, "repository gone");
    assert.match(line, new RegExp(`the repository file://${r.repoDir} is no longer reachable \\(its config is gone`));
    assert.match(line, /nothing was changed, the scratch copy is removed; make it reachable again, then run again$/);
    assert.deepEqual(liveDigest(r.store), live, "live data changed");
    assert.deepEqual(entryNames(join(r.store.backupDir, "snapshots")), local, "a pre-restore snapshot was taken");
    assert.deepEqual(entryNames(scratch), [], "the scratch copy is left");
  });
}
