/**
 * The refusals that exist only at the command line of the repository commands, one step each: no repository, no
 * recipient, conflicting or out-of-range flags, key files that cannot be used. Each is one line, exit 2, and says
 * what to give instead; none of them needs a repository to exist.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, tempDir } from "../_helpers.ts";
import { ageKeyPair, authKeyFileFor, oneErrorLine } from "../_remote_cli.ts";

/** A data folder, a repository address where none exists, and a notes file that holds no key: the refusals' inputs. */
function refusalPlaces(dir: string) {
  const data = join(dir, "data");
  Deno.mkdirSync(data);
  const repo = join(dir, "repo");
  const garbage = join(dir, "notes.txt");
  Deno.writeTextFileSync(garbage, "# my notes\nhello\n");
  const env = { ATOCORE_DATA_DIR: data, ATOCORE_BACKUP_REMOTE: repo };
  return { data, repo, garbage, env };
}

/** A step per case: the command exits 2 with one line matching its pattern; no repository was made at `repo`. */
async function assertRefusals(
  t: Deno.TestContext,
  repo: string,
  cases: [string, string[], Record<string, string>, RegExp][],
): Promise<void> {
  for (const [label, args, caseEnv, pattern] of cases) {
    await t.step(label, async () => {
      const run = await runCli(args, { env: caseEnv });
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(oneErrorLine(run, label), pattern);
    });
  }
  assert.throws(() => Deno.lstatSync(repo), Deno.errors.NotFound, "no repository was made by a refused command");
}

Deno.test("remote CLI refusals: no repository, no recipients, conflicting or out-of-range flags: one line each, exit 2", async (t) => {
  using dir = tempDir("atocore-remote-refusals-");
  const { data, repo, env } = refusalPlaces(dir.path);
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    [
      "no repository given",
      ["remote", "list"],
      { ATOCORE_DATA_DIR: data },
      /remote list needs a repository: give --remote file:\/\/\/path \(or a folder path, sftp:\/\/USER@HOST\/PATH or s3:\/\/BUCKET\/PREFIX\), or set ATOCORE_BACKUP_REMOTE$/,
    ],
    [
      "init without recipients",
      ["remote", "init"],
      env,
      /remote init needs the recipients to encrypt to: --recipient age1\.\.\. \(from age-keygen\) or --recipients-file$/,
    ],
    [
      "both depths of verify",
      ["remote", "verify", "--read-data", "--read-data-subset", "10%"],
      env,
      /remote verify: --read-data and --read-data-subset cannot be used together; pick one$/,
    ],
    [
      "--transfers 0",
      ["remote", "verify", "--transfers", "0"],
      env,
      /--transfers must be a whole number from 1 to \d+, not "0"$/,
    ],
    [
      "ATOCORE_BACKUP_TRANSFERS not a number",
      ["push", "--latest"],
      { ...env, ATOCORE_BACKUP_TRANSFERS: "many", ATOCORE_BACKUP_AUTH_KEY_FILE: authKeyFileFor(ageKeyPair(dir.path)) },
      /ATOCORE_BACKUP_TRANSFERS must be a whole number from 1 to \d+, not "many"$/,
    ],
    [
      "ATOCORE_BACKUP_TRANSFERS set but empty",
      ["remote", "verify"],
      { ...env, ATOCORE_BACKUP_TRANSFERS: "" },
      /ATOCORE_BACKUP_TRANSFERS must be a whole number from 1 to \d+, not ""$/,
    ],
  ];
  await assertRefusals(t, repo, cases);
});

Deno.test("remote CLI refusals: key files that cannot be used: one line each, exit 2, naming what to give", async (t) => {
  using dir = tempDir("atocore-remote-refusals-");
  const { data, repo, garbage, env } = refusalPlaces(dir.path);
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    [
      "an identity file that holds no identity",
      ["remote", "verify", "--read-data", "--identity", garbage],
      env,
      new RegExp(`${garbage}:2: not an age X25519 identity .*; check --identity or ATOCORE_BACKUP_IDENTITY_FILE$`),
    ],
    [
      "a recipients file that holds no recipient",
      ["remote", "init", "--recipients-file", garbage],
      env,
      new RegExp(`${garbage}:2: not an age X25519 recipient .*; check --recipients-file$`),
    ],
    [
      "an identity file that is a folder",
      ["remote", "verify", "--read-data"],
      { ...env, ATOCORE_BACKUP_IDENTITY_FILE: data },
      new RegExp(
        `cannot read the identity file \\(ATOCORE_BACKUP_IDENTITY_FILE\\) ${data} \\([^)]+\\); give a readable key file$`,
      ),
    ],
  ];
  await assertRefusals(t, repo, cases);
});

Deno.test("remote CLI refusals: another tool's network address (scp's user@host:path, restic's sftp: and s3:) is no folder: refused, not echoed, nothing made", async (t) => {
  using dir = tempDir("atocore-lookalike-");
  const { env } = refusalPlaces(dir.path);
  const { recipient } = ageKeyPair(dir.path);
  const named = /--remote names no folder but another tool's network address .*give sftp:\/\/USER@HOST\/\/PATH/;
  const addresses = [
    "backup@nas.example:atocore",
    "nas:atocore",
    "sftp:backup@nas.example:/srv/atocore",
    "s3:bucket/x",
  ];
  const cases: [string, string[], Record<string, string>, RegExp][] = addresses.map((address) => [
    address,
    ["remote", "init", "--remote", address, "--recipient", recipient],
    env,
    named,
  ]);
  const secret = "backup:hunter2secret@nas.example:atocore"; // a password in it is not shown
  cases.push(["with a password", ["config", "--remote", secret], env, named]);
  const cwd = Deno.cwd();
  await assertRefusals(t, join(dir.path, "repo"), cases);
  const shown = await runCli(["config", "--remote", secret], { env });
  assert.ok(!(shown.stdout + shown.stderr).includes("hunter2"), "the password is not echoed");
  for (const address of addresses) {
    assert.throws(() => Deno.lstatSync(join(cwd, address)), Deno.errors.NotFound, `${address} made here`);
  }
  const asFolder = join(dir.path, "backup@nas:atocore"); // a folder of that name, as a file:// URL or ./NAME
  const made = await runCli(["remote", "init", "--remote", `file://${asFolder}`, "--recipient", recipient], { env });
  assert.equal(made.code, 0, made.stderr);
  const dotted = await runCli(["remote", "init", "--remote", "./nas:other", "--recipient", recipient], {
    env,
    cwd: dir.path,
  });
  assert.equal(dotted.code, 0, dotted.stderr);
  assert.ok(Deno.statSync(join(dir.path, "nas:other")).isDirectory);
});
