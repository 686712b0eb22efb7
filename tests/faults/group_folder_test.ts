/**
 * A folder its group may write is another user's to rename entries of only where that group holds another user: a
 * per-user group (Debian's, with umask 002) is the owner's alone. The account files are bound over `/etc`'s in a
 * mount namespace of the run's own (`unshare -m`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, runCliInShell, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { entriesBelow, skipBecause } from "../_faults.ts";

const GID = 4242;

/** The CLI's `args` run with `/etc/group` holding `groupLine` and `/etc/passwd` ending in `passwdLine`. */
function runWithAccounts(
  folder: string,
  lines: { group: string; passwd?: string },
  args: string[],
  env: Record<string, string>,
) {
  const group = join(folder, "group");
  const passwd = join(folder, "passwd");
  Deno.writeTextFileSync(group, `${Deno.readTextFileSync("/etc/group")}${lines.group}\n`);
  Deno.writeTextFileSync(passwd, `${Deno.readTextFileSync("/etc/passwd")}${lines.passwd ?? ""}`);
  const script = `exec unshare -m sh -c 'mount --bind ${group} /etc/group && mount --bind ${passwd} /etc/passwd && ` +
    `exec "$@"' sh "$@"`;
  return runCliInShell(script, args, env);
}

Deno.test("a root drill --scratch-dir and restore --to in a folder its group may write: taken where the group holds only its owner, refused where it may hold another user", async () => {
  if (Deno.uid() !== 0) return skipBecause("not root: a mount namespace cannot be made");
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1 });
  using accounts = tempDir("atocore-accounts-");
  using shared = tempDir("atocore-group-"); // root's, 0775, group 4242
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  Deno.chownSync(shared.path, 0, GID);
  Deno.chmodSync(shared.path, 0o775);
  const drill = ["drill", "--latest", "--scratch-dir", shared.path];
  const restore = (name: string) => ["restore", stamp, "--to", join(shared.path, name)];
  for (const args of [drill, restore("own")]) {
    const run = await runWithAccounts(accounts.path, { group: `solo:x:${GID}:root` }, args, env);
    assert.equal(run.code, 0, `${args[0]} with a group of root's alone: ${run.stderr}`);
  }
  const others = [
    { group: `crew:x:${GID}:root,nobody` },
    { group: `crew:x:${GID}:`, passwd: `crewman:x:4243:${GID}::/nonexistent:/usr/sbin/nologin\n` },
    { group: `solo:x:${GID}:root\ncrew:x:${GID}:nobody` }, // a second name of the same group
    { group: `solo:x:${GID}:root\n+:::` }, // nsswitch's compat mode: groups kept elsewhere too
    { group: "" }, // a group the files do not list
  ];
  const why = `may be written by its group ${GID}, which may hold other users (mode 775)`;
  for (const [at, lines] of others.entries()) {
    const run = await runWithAccounts(accounts.path, lines, drill, env);
    assert.equal(run.code, 3, `drill, case ${at}: ${run.stderr}`);
    assert.ok(
      run.stderr.includes(`--scratch-dir ${shared.path} is no place for a scratch copy: it ${why},`),
      run.stderr,
    );
    const to = await runWithAccounts(accounts.path, lines, restore(`other-${at}`), env);
    assert.equal(to.code, 3, `restore --to, case ${at}: ${to.stderr}`);
    assert.ok(to.stderr.includes(`(the folder it is in, ${shared.path}: it ${why}),`), to.stderr);
  }
  assert.deepEqual(
    entriesBelow(shared.path).filter((name) => !name.startsWith("own")),
    [],
    "a refused run made a folder",
  );
  assert.equal((await runCli(["validate", stamp], { env })).code, 0);
});
