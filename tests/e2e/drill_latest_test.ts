/**
 * `drill --from-remote --latest` on one host's repository: the newest snapshot the identity's key vouches for, a
 * writer's copy under a newer name passed over, and of its source the one published last where a clock set back
 * misordered the stamps; the refs' MAC covers the sequence that order is read from.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { relocateSnapshot, runCli } from "../_helpers.ts";
import { remoteStore } from "../_remote_cli.ts";
import { formatStamp } from "../../src/snapshot/stamp.ts";

/** The stamp `hours` before now. */
function hoursAgo(hours: number): string {
  return formatStamp(new Date(Date.now() - hours * 3600_000));
}

/** Create a snapshot, give it `stamp` (as if made then) and push it; its name in the repository. */
async function pushedAs(env: Record<string, string>, backupDir: string, stamp: string): Promise<string> {
  const created = await runCli(["create"], { env });
  assert.equal(created.code, 0, created.stderr);
  const snapshots = join(backupDir, "snapshots");
  Deno.renameSync(join(snapshots, (created.json as { stamp: string }).stamp), join(snapshots, stamp));
  relocateSnapshot(join(snapshots, stamp)); // it records the stamp it now has
  const pushed = await runCli(["push", stamp], { env });
  assert.equal(pushed.code, 0, pushed.stderr);
  return (pushed.json as { pushed: { snapshot: string }[] }).pushed[0].snapshot;
}

/** A CI drill of the latest, held to a day: the snapshot drilled and the run. */
async function drillLatest(env: Record<string, string>): Promise<{ name: string; code: number; stderr: string }> {
  const run = await runCli(["drill", "--from-remote", "--latest", "--max-age", "24h"], { env });
  const snapshotPath = String((run.json as { snapshot_path?: string } | null)?.snapshot_path ?? "");
  return { name: snapshotPath.split("/").at(-1)!, code: run.code, stderr: run.stderr };
}

/** The one warning event `event` the run printed, parsed. */
function warning(stderr: string, event: string): Record<string, unknown> | undefined {
  const line = stderr.split("\n").find((text) => text.includes(`"event":"${event}"`));
  return line === undefined ? undefined : JSON.parse(line.slice(line.indexOf("{")));
}

Deno.test("drill --from-remote --latest passes over a writer's copy of a snapshot under a newer name, drilling the genuine one", async () => {
  using r = await remoteStore({ dbMiB: 0.5 });
  const genuine = await pushedAs(r.env, r.store.backupDir, hoursAgo(2));
  const copy = `${hoursAgo(1)}_${"f".repeat(16)}`;
  const refs = JSON.parse(Deno.readTextFileSync(join(r.repoDir, "refs", genuine)));
  Deno.copyFileSync(join(r.repoDir, "snapshots", genuine), join(r.repoDir, "snapshots", copy));
  Deno.writeTextFileSync(join(r.repoDir, "refs", copy), JSON.stringify({ ...refs, snapshot: copy }));

  const drilled = await drillLatest(r.envWithIdentity);
  assert.equal(drilled.code, 0, drilled.stderr);
  assert.equal(drilled.name, genuine);
  assert.deepEqual(warning(drilled.stderr, "drill_latest_passed_over_forged")?.snapshots, [copy], drilled.stderr);

  // by its name, the copy is still refused: passing it over hides nothing
  const named = await runCli(["drill", "--from-remote", copy], { env: r.envWithIdentity });
  assert.equal(named.code, 1, named.stderr);
  assert.match(named.stderr, /does not match/);
});

Deno.test("drill --from-remote --latest takes its source's snapshot published last where a clock set back stamped it earlier", async () => {
  using r = await remoteStore({ dbMiB: 0.5 });
  const first = await pushedAs(r.env, r.store.backupDir, hoursAgo(1)); // the clock was ahead
  const last = await pushedAs(r.env, r.store.backupDir, hoursAgo(2)); // set back: the newer data stamped earlier

  const drilled = await drillLatest(r.envWithIdentity);
  assert.equal(drilled.code, 0, drilled.stderr);
  assert.equal(drilled.name, last);
  const warned = warning(drilled.stderr, "drill_latest_by_sequence");
  assert.equal(warned?.newest_stamp, first, drilled.stderr);
  assert.equal(warned?.chosen, last);

  // a writer who raises the older-stamped one's sequence breaks its refs' MAC: passed over, never steering the drill
  const refsPath = join(r.repoDir, "refs", first);
  const refs = JSON.parse(Deno.readTextFileSync(refsPath));
  Deno.writeTextFileSync(refsPath, JSON.stringify({ ...refs, sequence: refs.sequence + 10 }));
  const steered = await drillLatest(r.envWithIdentity);
  assert.equal(steered.code, 0, steered.stderr);
  assert.equal(steered.name, last);
  assert.deepEqual(warning(steered.stderr, "drill_latest_passed_over_forged")?.snapshots, [first], steered.stderr);
});

Deno.test("drill --from-remote --latest, with --source or without, passes over newer refs stripped of their fields' MAC or emptied, naming them", async () => {
  using r = await remoteStore({ dbMiB: 0.5 });
  const older = await pushedAs(r.env, r.store.backupDir, hoursAgo(2));
  const newest = await pushedAs(r.env, r.store.backupDir, hoursAgo(1));
  const listed = await runCli(["remote", "list"], { env: r.env });
  const own = (listed.json as { own_source: string }).own_source;
  const refsPath = join(r.repoDir, "refs", newest);
  const refs = JSON.parse(Deno.readTextFileSync(refsPath));
  for (const entry of refs.auth) delete entry.refs_mac;
  const edits: [string, string, string][] = [
    ["stripped", JSON.stringify(refs), "drill_latest_passed_over_unsigned"],
    ["emptied", "{}", "drill_latest_passed_over_forged"],
  ];
  for (const [what, text, event] of edits) {
    Deno.writeTextFileSync(refsPath, text);
    for (const source of [[], ["--source", own]]) {
      const run = await runCli(["drill", "--from-remote", "--latest", "--max-age", "24h", ...source], {
        env: r.envWithIdentity,
      });
      const label = `${what} ${source.join(" ")}`;
      assert.equal(run.code, 0, `${label}: ${run.stderr}`);
      assert.equal(String((run.json as { snapshot_path: string }).snapshot_path).split("/").at(-1), older, label);
      assert.deepEqual(warning(run.stderr, event)?.snapshots, [newest], `${label}: ${run.stderr}`);
    }
  }
});
