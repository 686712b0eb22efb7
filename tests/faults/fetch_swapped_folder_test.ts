/**
 * A writer who swaps a fetch's folder for a link once its files are made (at the first pack read), to a folder holding
 * files of the same names: the fetch writes none of their bytes, and stops naming the file; and a live restore does not
 * fetch into a folder such a writer owns (nor removes another user's folder in a shared temporary folder); one that
 * cannot be made beside `--to` goes to the temporary folder, saying why.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import type { Backend } from "../../src/repo/backend.ts";
import { fetchSnapshot } from "../../src/repo/fetch.ts";
import { pushSnapshot } from "../../src/repo/push.ts";
import { runCli, skipOutsideCi, tempDir } from "../_helpers.ts";
import { existsSync } from "node:fs";
import { entryNames } from "../_faults.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";
import { repoFixture, snapshotOf } from "../_repo.ts";

/** Every regular file below `root`, by relative path. */
function filesBelow(root: string, relative = ""): string[] {
  return [...Deno.readDirSync(join(root, relative))].flatMap((entry) => {
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    return entry.isDirectory ? filesBelow(root, path) : entry.isFile ? [path] : [];
  });
}

/** `inner`, but running `swap` once, before the first pack is read. */
function swappingAtFirstPack(inner: Backend, swap: () => void): Backend {
  let swapped = false;
  return {
    location: inner.location,
    list: (prefix) => inner.list(prefix),
    read: (name, into, maxBytes) => {
      if (!swapped && name.startsWith("packs/")) {
        swapped = true;
        swap();
      }
      return inner.read(name, into, maxBytes);
    },
    stat: (name) => inner.stat(name),
    write: (name, bytes, options) => inner.write(name, bytes, options),
    remove: (name) => inner.remove(name),
    unlisted: (prefix) => inner.unlisted!(prefix),
  };
}

Deno.test("a fetch's folder swapped for a link to files of the same names: none of their bytes is written", async () => {
  using f = await repoFixture({ dbMiB: 4, chromaMiB: 1 });
  using outside = tempDir();
  const { root } = await snapshotOf(f);
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  const into = join(f.work, "into");
  const victim = join(outside.path, "victim");
  const backend = swappingAtFirstPack(f.backend, () => {
    for (const path of filesBelow(into)) {
      Deno.mkdirSync(dirname(join(victim, path)), { recursive: true });
      Deno.writeTextFileSync(join(victim, path), "someone else's");
    }
    Deno.renameSync(into, `${into}-aside`);
    Deno.symlinkSync(victim, into);
  });
  await assert.rejects(
    fetchSnapshot(backend, [f.identity], pushed.snapshot, into),
    /is no longer the file this fetch made there .*: nothing was written to it/,
  );
  const files = filesBelow(victim);
  assert.ok(files.length > 0);
  for (const path of files) assert.equal(Deno.readTextFileSync(join(victim, path)), "someone else's", path);
});

Deno.test("a live restore from a repository does not fetch into a database folder another user owns", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  using temp = tempDir();
  Deno.chownSync(r.store.dataDir, 65534, 65534); // the service's user owns the data folder; root restores
  const others = join(temp.path, ".atocore-fetch-of-another-user"); // a shared temporary folder: not this run's
  Deno.mkdirSync(others);
  Deno.chownSync(others, 65534, 65534);
  const run = await runCli(["restore", stamp, "--from-remote", "--confirm-service-stopped"], {
    env: { ...r.envWithIdentity, TMPDIR: temp.path },
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /"event":"remote_scratch_elsewhere".*"why":"it belongs to user 65534"/);
  assert.ok(
    !entryNames(r.store.dataDir).some((name) => name.startsWith(".atocore-fetch")),
    "a scratch copy was made there",
  );
  assert.deepEqual(entryNames(temp.path), [".atocore-fetch-of-another-user"], "another user's folder was removed");

  Deno.chownSync(temp.path, 65534, 65534); // a temporary folder of that user's too: no place left to fetch into
  using out = tempDir();
  Deno.chownSync(out.path, 65534, 65534);
  const refused = await runCli(["restore", stamp, "--from-remote", "--to", join(out.path, "restored")], {
    env: { ...r.envWithIdentity, TMPDIR: temp.path },
  });
  // the folder --to is made in is that user's: refused before any fetch (restore --to's own check)
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(
    refused.stderr,
    /--to \S+restored is no place for a restore \(the folder it is in, \S+: it belongs to user 65534\)/,
  );
  assert.doesNotMatch(refused.stderr, /remote_fetch_started/);
});

Deno.test("a fetch that cannot make its scratch copy beside --to says why and where it went instead", async () => {
  using r = await remoteStore({ dbMiB: 2, chromaMiB: 1 });
  const { stamp } = await createAndPush(r.env);
  using temp = tempDir();
  using out = tempDir();
  const to = join(out.path, "restored");
  Deno.mkdirSync(to); // an empty folder to restore into, in a folder where nothing may be made (immutable)
  const frozen = new Deno.Command("chattr", { args: ["+i", out.path], stderr: "piped" }).outputSync();
  if (!frozen.success) return skipOutsideCi(`chattr +i: ${new TextDecoder().decode(frozen.stderr).trim()}`);
  try {
    const run = await runCli(["restore", stamp, "--from-remote", "--to", to], {
      env: { ...r.envWithIdentity, TMPDIR: temp.path },
    });
    assert.equal(run.code, 0, run.stderr);
    const warned = run.stderr.split("\n").find((line) => line.includes('"event":"remote_scratch_not_made"'));
    assert.ok(warned, `no warning that the scratch copy went elsewhere: ${run.stderr}`);
    const fields = JSON.parse(warned);
    assert.deepEqual([fields.folder, fields.error, fields.used], [out.path, "permission denied", temp.path]);
    assert.ok(existsSync(join(to, "atocore.db")), "not restored");
  } finally {
    new Deno.Command("chattr", { args: ["-i", out.path] }).outputSync();
  }
});
