/**
 * `drill --from-remote --latest --source ID` on a repository two backup folders push to: the CI drill of one host's
 * newest, which notices that host stopped pushing where the newest of any host would not; the id as `remote list`
 * shows it; a source believed only where a MAC by the identity's key covers it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type CliRun,
  printedCommand,
  relocateSnapshot,
  runCli,
  runPrinted,
  storeEnv,
  tempDir,
  tempStore,
} from "../_helpers.ts";
import { ageKeyPair, authKeyEnv, oneErrorLine } from "../_remote_cli.ts";
import { remoteListCommand } from "../../src/cli/remote_list.ts";
import { SILENT } from "../../src/report/reporter.ts";

/** The stamp the host that stopped pushing pushed last: long before the drill's --max-age. */
const OLD = "20260101T010000Z";

/** Two hosts' backup folders pushing to one folder repository, and a CI job's environment that has only it. */
interface TwoHosts extends Disposable {
  repoDir: string;
  /** Each host's environment (its store, the repository, the auth key). */
  stopped: Record<string, string>;
  pushing: Record<string, string>;
  /** The CI job's: the repository and the identity, no store. */
  ci: Record<string, string>;
  work: string;
}

/** The repository, with host `stopped`'s one snapshot stamped OLD and host `pushing`'s made now, both pushed. */
async function twoHosts(): Promise<TwoHosts> {
  const work = tempDir("atocore-drill-source-");
  const stores = [tempStore({ dbMiB: 1, seed: 51 }), tempStore({ dbMiB: 1, seed: 53 })];
  const key = ageKeyPair(work.path);
  const repoDir = join(work.path, "repo");
  const remote = { ATOCORE_BACKUP_REMOTE: `file://${repoDir}` };
  const [stopped, pushing] = stores.map((store) => ({ ...storeEnv(store), ...remote, ...authKeyEnv(key) }));
  const init = await runCli(["remote", "init", "--recipient", key.recipient], { env: stopped });
  assert.equal(init.code, 0, init.stderr);
  const created = await runCli(["create"], { env: stopped });
  assert.equal(created.code, 0, created.stderr);
  const snapshots = join(stores[0].backupDir, "snapshots");
  Deno.renameSync(join(snapshots, (created.json as { stamp: string }).stamp), join(snapshots, OLD));
  relocateSnapshot(join(snapshots, OLD)); // it records the stamp it now has
  for (const [env, args] of [[stopped, ["push", "--latest"]], [pushing, ["create", "--push"]]] as const) {
    const run = await runCli([...args], { env });
    assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
  }
  const ci = { ATOCORE_DATA_DIR: join(work.path, "ci"), ...remote, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile };
  return {
    repoDir,
    stopped,
    pushing,
    ci,
    work: work.path,
    [Symbol.dispose]: () => {
      for (const store of stores) store[Symbol.dispose]();
      work[Symbol.dispose]();
    },
  };
}

/** This backup folder's source as `remote list` names it (JSON `own_source`, and the text's last line). */
async function ownSource(env: Record<string, string>, work: string): Promise<string> {
  const listed = await remoteListCommand.run({}, [], { env, cwd: work, now: new Date(), reporter: SILENT });
  const own = (listed.result as { own_source: string }).own_source;
  assert.match(own, /^[0-9a-f]{16}$/);
  assert.equal(listed.text.split("\n").at(-1), `this backup folder pushes as source ${own}`);
  return own;
}

/** A CI drill of the latest of `source` (none: of any host), held to a day. */
function drill(ci: Record<string, string>, source: string | null, extra: string[] = []): Promise<CliRun> {
  const args = ["drill", "--from-remote", "--latest", "--max-age", "24h", ...extra];
  return runCli(source === null ? args : [...args, "--source", source], { env: ci });
}

/** The drilled snapshot, and the names of its failed checks. */
function verdict(run: CliRun): { stamp: string; failed: string[] } {
  const result = run.json as { stamp: string; checks: { name: string; status: string }[] };
  return { stamp: result.stamp, failed: result.checks.filter((c) => c.status === "failed").map((c) => c.name) };
}

Deno.test("drill --from-remote --latest --source drills that backup folder's newest: a host that stopped pushing fails --max-age", async () => {
  using hosts = await twoHosts();
  const stopped = await ownSource(hosts.stopped, hosts.work);
  const pushing = await ownSource(hosts.pushing, hosts.work);
  assert.notEqual(stopped, pushing);

  const any = await drill(hosts.ci, null);
  assert.equal(any.code, 0, `the newest of any host is the pushing one's: ${any.stderr}`);
  const stoppedRun = await drill(hosts.ci, stopped, ["--junit", join(hosts.work, "drill.xml")]);
  assert.equal(stoppedRun.code, 1, stoppedRun.stderr);
  assert.deepEqual(verdict(stoppedRun), { stamp: OLD, failed: ["recovery_point"] }, "it restores, but is too old");
  assert.match(Deno.readTextFileSync(join(hosts.work, "drill.xml")), /name="recovery_point"[^>]*>\s*<failure/);
  const pushingRun = await drill(hosts.ci, pushing);
  assert.equal(pushingRun.code, 0, pushingRun.stderr);
  assert.equal(verdict(pushingRun).stamp, verdict(any).stamp);

  const unknown = await drill(hosts.ci, "0123456789abcdef", ["--junit", join(hosts.work, "none.xml")]);
  assert.equal(unknown.code, 1, unknown.stderr);
  assert.match(
    oneErrorLine(unknown, "a source without snapshots"),
    new RegExp(
      `no snapshot of source 0123456789abcdef in file://${hosts.repoDir}; has that backup folder stopped pushing\\? ` +
        "check its push timer, and the id against SOURCE in 'atocore-backup remote list'$",
    ),
  );
  assert.match(Deno.readTextFileSync(join(hosts.work, "none.xml")), / tests="1" failures="1"/);
});

Deno.test("drill --from-remote --latest --source: the remote list a source without snapshots prints runs as printed, on the repository given", async () => {
  using hosts = await twoHosts();
  const ci = { ...hosts.ci };
  delete ci.ATOCORE_BACKUP_REMOTE; // given as a flag: a remote list run without it fails
  const unknown = await drill(ci, "0123456789abcdef", ["--remote", hosts.repoDir]);
  assert.equal(unknown.code, 1, unknown.stderr);
  const line = oneErrorLine(unknown, "a source without snapshots");
  const printed = printedCommand(line, "its push timer, and the id against SOURCE in the list of");
  assert.ok(printed !== null, line);
  const listed = await runPrinted(printed, ci); // pasted into a shell as it is
  assert.equal(listed.code, 0, `${printed}: ${listed.stderr}`);
  assert.equal((listed.json as { snapshots: unknown[] }).snapshots.length, 2, printed);
});

Deno.test("drill --source is refused (exit 2) without --from-remote --latest, or for what is no source id", async () => {
  using work = tempDir("atocore-drill-source-");
  const env = { ATOCORE_DATA_DIR: work.path }; // refused before any folder or repository is looked at
  const refusals: [string[], RegExp][] = [
    [["drill", "--latest", "--source", "0123456789abcdef"], /give it with --from-remote --latest$/],
    [["drill", "--from-remote", OLD, "--source", "0123456789abcdef"], /give it with --from-remote --latest$/],
    [["drill", "--from-remote", "--latest", "--source", "host-1"], /is no source id; give the 16 hex digits SOURCE /],
  ];
  for (const [args, message] of refusals) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(oneErrorLine(run, args.join(" ")), message);
  }
});

Deno.test("drill --source believes a refs' source only under a MAC by the identity's key: one a writer edited or stripped is not that source's", async () => {
  using hosts = await twoHosts();
  const stopped = await ownSource(hosts.stopped, hosts.work);
  const names = [...Deno.readDirSync(join(hosts.repoDir, "refs"))].map((entry) => entry.name).sort();
  const newest = join(hosts.repoDir, "refs", names.at(-1)!); // the pushing host's
  const refs = JSON.parse(Deno.readTextFileSync(newest));

  // its source edited to the stopped host's: the MAC over the refs' fields no longer matches
  Deno.writeTextFileSync(newest, JSON.stringify({ ...refs, source: stopped }));
  const edited = await drill(hosts.ci, stopped);
  assert.deepEqual(verdict(edited), { stamp: OLD, failed: ["recovery_point"] }, edited.stderr);
  const warned = edited.stderr.split("\n").find((line) => line.includes("drill_latest_passed_over_forged"));
  assert.ok(warned?.includes(names.at(-1)!), `the newer refs a writer altered is named: ${edited.stderr}`);

  // and with its MACs removed too: no MAC to believe it by, even where unauthenticated snapshots are accepted
  Deno.writeTextFileSync(newest, JSON.stringify({ ...refs, source: stopped, auth: undefined }));
  const stripped = await drill(hosts.ci, stopped, ["--allow-unauthenticated"]);
  assert.deepEqual(verdict(stripped), { stamp: OLD, failed: ["recovery_point"] }, stripped.stderr);
  const unsigned = stripped.stderr.split("\n").find((line) => line.includes("drill_latest_passed_over_unsigned"));
  assert.ok(unsigned?.includes(names.at(-1)!), `the newer refs stripped of its MACs is named: ${stripped.stderr}`);

  // the stopped host's own snapshot gone: none left, and the one that names it without a MAC is counted
  const own = names.find((name) => name.startsWith(`${OLD}_`))!;
  for (const folder of ["refs", "snapshots"]) Deno.removeSync(join(hosts.repoDir, folder, own));
  const none = await drill(hosts.ci, stopped, ["--allow-unauthenticated"]);
  assert.equal(none.code, 1, none.stderr);
  assert.match(
    oneErrorLine(none, "only a stripped refs names the source"),
    new RegExp(`no snapshot of source ${stopped} in \\S+ \\(1 name it in refs no MAC by the identity's key covers: `),
  );
});
