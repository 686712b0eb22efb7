/**
 * The CI drill of `scripts/deploy/ci/drill-from-remote.sh`, run as a CI job would run it, against a folder and a local
 * S3 server (radosgw): the binary downloaded and checked against its SHA-256, the identity given as the content of a
 * secret, the JUnit report left behind; with SOURCE_ID, that host's newest.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { COMPILE_PERMISSIONS, ROOT, runCli, tempDir } from "../_helpers.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";
import { folderTarget, type RemoteTarget, s3Target } from "../_targets.ts";

const SCRIPT = join(ROOT, "scripts", "deploy", "ci", "drill-from-remote.sh");

/** A stand-in for the released binary (which `deno compile` cannot build here): the program under its permissions. */
function fakeRelease(dir: string): { url: string; sha256: string } {
  const path = join(dir, "atocore-backup-release");
  const text = `#!/bin/sh\nexec '${Deno.execPath()}' run ${COMPILE_PERMISSIONS.join(" ")} '${
    join(ROOT, "main.ts")
  }' "$@"\n`;
  Deno.writeTextFileSync(path, text);
  return { url: `file://${path}`, sha256: createHash("sha256").update(text).digest("hex") };
}

/** Run the script with exactly `env` (plus PATH and a HOME and TMPDIR of the test's own). */
async function runScript(env: Record<string, string>, home: string) {
  const output = await new Deno.Command("bash", {
    args: [SCRIPT],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin", HOME: home, TMPDIR: home, DENO_DIR: denoDir(), ...env },
    clearEnv: true,
    cwd: home,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

/** The Deno cache the test runs with, so that the stand-in binary finds its npm packages without a download. */
function denoDir(): string {
  const info = new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" }).outputSync();
  return JSON.parse(new TextDecoder().decode(info.stdout)).denoDir;
}

/** The script run as a CI job would run it against a repository on `target`, with the identity as a secret's value. */
async function ciDrill(target: RemoteTarget): Promise<void> {
  const remote = target.fresh("ci-drill");
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 }, remote);
  using runner = tempDir("atocore-ci-runner-");
  await createAndPush(r.env);
  const release = fakeRelease(r.work);
  const secret = Deno.readTextFileSync(r.key.keyFile);
  const env = {
    ATOCORE_S3_ENDPOINT: "", // as a CI system passes settings it does not have
    AWS_REGION: "",
    ...remote,
    ATOCORE_BACKUP_IDENTITY: secret,
    ATOCORE_BACKUP_BIN_URL: release.url,
    ATOCORE_BACKUP_BIN_SHA256: release.sha256,
    MAX_AGE: "1h",
    JUNIT: join(runner.path, "drill.xml"),
  };
  const passed = await runScript(env, runner.path);
  assert.equal(passed.code, 0, passed.stderr);
  const junit = Deno.readTextFileSync(env.JUNIT);
  assert.match(junit, /<testcase [^>]*name="recovery_point"[^>]*>\s*<system-out>the snapshot is \d+ s old/);
  assert.match(junit, / failures="0"/);
  assert.deepEqual([...Deno.readDirSync(runner.path)].map((entry) => entry.name), ["drill.xml"], "nothing else left");
  assert.ok(!passed.stderr.includes("AGE-SECRET-KEY"), "the secret is never printed");
  const listed = await runCli(["remote", "list"], { env: r.env });
  const own = (listed.json as { own_source: string }).own_source; // the host's id, as 'remote list' there names it
  const ofHost = await runScript({ ...env, SOURCE_ID: own }, runner.path);
  assert.equal(ofHost.code, 0, ofHost.stderr);
  const otherHost = await runScript({ ...env, SOURCE_ID: "0123456789abcdef" }, runner.path); // one that never pushed
  assert.equal(otherHost.code, 1, otherHost.stderr);
  assert.match(otherHost.stderr, /no snapshot of source 0123456789abcdef in /);
  assert.match(Deno.readTextFileSync(env.JUNIT), / tests="1" failures="1"/);

  await new Promise((resolve) => setTimeout(resolve, 2100));
  const old = await runScript({ ...env, MAX_AGE: "1s" }, runner.path);
  assert.equal(old.code, 1, old.stderr);
  assert.match(Deno.readTextFileSync(env.JUNIT), /<testcase [^>]*name="recovery_point"[^>]*>\s*<failure/);

  const tampered = await runScript({ ...env, ATOCORE_BACKUP_BIN_SHA256: "0".repeat(64) }, runner.path);
  assert.equal(tampered.code, 2);
  assert.match(tampered.stderr, /does not have the SHA-256 given; it was not run/);
  assert.equal(existsSync(env.JUNIT), false, "the earlier run's report is not left to pass for this one's");
  Deno.writeTextFileSync(env.JUNIT, "<testsuite/>"); // an earlier run's report
  const unset = await runScript({ ...env, ATOCORE_BACKUP_IDENTITY: "" }, runner.path);
  assert.equal(unset.code, 2, unset.stderr);
  assert.equal(existsSync(env.JUNIT), false, "no report is left to pass for a run that did not drill");
  assert.match(unset.stderr, /^drill-from-remote: set ATOCORE_BACKUP_IDENTITY from the secret store/m);
  const path = await runScript({ ...env, ATOCORE_BACKUP_IDENTITY: r.key.keyFile }, runner.path); // a path, not the key
  assert.equal(path.code, 2, path.stderr);
  assert.match(
    path.stderr,
    /^drill-from-remote: ATOCORE_BACKUP_IDENTITY holds no AGE-SECRET-KEY-1\.\.\. line; store the whole key file/m,
  );
  assert.ok(!path.stderr.includes(r.key.keyFile), "the secret's value is not printed");
}

for (const target of [folderTarget(), await s3Target("the CI drill script against a local S3 server")]) {
  if (target === null) continue;
  Deno.test(`CI drill script (${target.label}): downloads and checks the binary, drills the newest pushed snapshot, writes JUnit, keeps no secret`, async () => {
    await using _target = target;
    await ciDrill(target);
  });
}
