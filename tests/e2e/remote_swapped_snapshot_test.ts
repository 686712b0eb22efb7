/**
 * A snapshot object swapped by hand for a link, a folder or a FIFO: restore (exit 3, refused as an altered pack is)
 * and drill (exit 1, failed) by its name say the repository was altered, never "no snapshot"; `--latest` (of a
 * `--source` too) passes over it to the newest object with a warning naming it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempDir } from "../_helpers.ts";
import { createAndPush, oneErrorLine, remoteNames, remoteStore } from "../_remote_cli.ts";

const SWAPS: [string, (path: string) => void][] = [
  ["a link", (path) => Deno.symlinkSync("/dev/null", path)],
  ["a folder", (path) => Deno.mkdirSync(path)],
  ["a FIFO", (path) => new Deno.Command("mkfifo", { args: [path] }).outputSync()],
];

Deno.test("a snapshot object swapped for a link, folder or FIFO is named as altered; --latest passes over it, warning", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 0.05 });
  const older = (await createAndPush(r.env)).stamp;
  await new Promise((resolve) => setTimeout(resolve, 1100)); // a stamp a second later
  const newer = (await createAndPush(r.env)).stamp;
  const [olderName, newerName] = await remoteNames(r.env);
  assert.ok(olderName.startsWith(older) && newerName.startsWith(newer), `${olderName} ${newerName}`);
  const listed = await runCli(["remote", "list"], { env: r.env });
  const source = (listed.json as { snapshots: { source: string }[] }).snapshots[0].source;
  const object = join(r.repoDir, "snapshots", newerName);
  for (const [kind, swap] of SWAPS) {
    Deno.removeSync(object, { recursive: true });
    swap(object);
    for (const given of [newerName, newer]) {
      using to = tempDir();
      const restored = await runCli(["restore", "--from-remote", given, "--to", join(to.path, "x")], {
        env: r.envWithIdentity,
      });
      assert.equal(restored.code, 3, `${kind} ${given}: ${restored.stderr}`);
      const line = oneErrorLine(restored, `${kind} ${given}`);
      assert.ok(line.includes(`snapshots/${newerName} in file://${r.repoDir} is a symbolic link, folder or `), line);
      assert.match(line, /made by hand: the repository was altered; nothing was read; /);
      assert.deepEqual([...Deno.readDirSync(to.path)], [], "nothing restored");
    }
    const warning = `"event":"remote_latest_passed_over_altered","location":"file://${r.repoDir}",` +
      `"names":["${newerName}"],"chosen":"${olderName}"`;
    for (const latest of [["--latest"], ["--latest", "--source", source]]) {
      const drilled = await runCli(["drill", "--from-remote", ...latest], { env: r.envWithIdentity });
      assert.equal(drilled.code, 0, `${kind} ${latest}: ${drilled.stderr}`);
      assert.equal((drilled.json as { stamp: string }).stamp, older);
      assert.ok(drilled.stderr.includes(warning), `${kind} ${latest}: ${drilled.stderr}`);
    }
  }
});

Deno.test("swapped objects: the only one is named by --latest; one of the latest second, whatever its push id, is warned of and refuses its stamp", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 0.05 });
  const stamp = (await createAndPush(r.env)).stamp;
  const [name] = await remoteNames(r.env);
  const object = join(r.repoDir, "snapshots", name);
  // a folder at the name of a push of the same second, its id below the real one's (push ids are random)
  const sameSecond = `${stamp}_${"0".repeat(16)}`;
  Deno.mkdirSync(join(r.repoDir, "snapshots", sameSecond));
  // one stamped in the future: --latest passes over such a stamp anyway, so it is no latest it missed (not warned of)
  Deno.mkdirSync(join(r.repoDir, "snapshots", `20991231T000000Z_${"0".repeat(16)}`));
  const drilled = await runCli(["drill", "--from-remote", "--latest"], { env: r.envWithIdentity });
  assert.equal(drilled.code, 0, drilled.stderr);
  assert.ok(drilled.stderr.includes(`"names":["${sameSecond}"],"chosen":"${name}"`), drilled.stderr);
  const byStamp = await runCli(["drill", "--from-remote", stamp], { env: r.envWithIdentity });
  assert.equal(byStamp.code, 1, byStamp.stderr);
  assert.ok(oneErrorLine(byStamp, "by stamp").includes(`snapshots/${sameSecond} in file://${r.repoDir} is a `));
  Deno.removeSync(object);
  Deno.symlinkSync("/dev/null", object); // now no object at all: --latest names what was swapped, not "no snapshots"
  const none = await runCli(["drill", "--from-remote", "--latest"], { env: r.envWithIdentity });
  assert.equal(none.code, 1, none.stderr);
  const line = oneErrorLine(none, "--latest");
  assert.ok(line.includes(`snapshots/${name} in file://${r.repoDir} is a symbolic link, folder or special file`), line);
});
