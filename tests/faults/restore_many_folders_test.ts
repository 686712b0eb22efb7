/**
 * A Chroma folder with more folders than the process may hold descriptors: the restore's copy inside held folders keeps
 * only a chain of them open, so it restores under a low open-file limit; a chain deeper than the limit stops it, saying
 * so. A fetch from a repository flushes its files a few at a time, never all at once. Whatever the limit, a command
 * that meets it says so in one line, with the next step.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, runCliInShell, storeEnv, tempStore } from "../_helpers.ts";
import { liveDigest, treeDigest } from "../_faults.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";

Deno.test("a Chroma folder of 400 folders restores with at most 256 open files", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 73 });
  for (let i = 0; i < 400; i++) {
    Deno.mkdirSync(join(store.chromaDir, "many", `folder-${i}`), { recursive: true });
    Deno.writeTextFileSync(join(store.chromaDir, "many", `folder-${i}`, "data"), `${i}`);
  }
  const stamp = await createdStamp(storeEnv(store));
  const snapshot = treeDigest(join(store.backupDir, "snapshots", stamp, "chroma"));
  Deno.removeSync(join(store.chromaDir, "many"), { recursive: true });
  const run = await runCliInShell('ulimit -n 256 && exec "$@"', ["restore", stamp, "--confirm-service-stopped"], {
    ...storeEnv(store),
  });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(treeDigest(store.chromaDir), snapshot);
});

Deno.test("a Chroma tree 100 folders deep under 64 open files: one line names the limit, nothing live changes", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 74 });
  const deep = join(store.chromaDir, "deep", ...Array.from({ length: 100 }, (_, i) => `d${i}`));
  Deno.mkdirSync(deep, { recursive: true });
  Deno.writeTextFileSync(join(deep, "data"), "bottom");
  const stamp = await createdStamp(storeEnv(store));
  const live = () =>
    Object.entries(liveDigest(store)).filter(([path]) => !path.includes("/.atocore-restore-")).sort().join("\n");
  const before = live();
  const restore = ["restore", stamp, "--confirm-service-stopped"];
  const undo = await runCliInShell('ulimit -n 64 && exec "$@"', restore, { ...storeEnv(store) });
  assert.equal(undo.code, 1, undo.stderr); // the pre-restore snapshot's copy of the same tree meets the limit first
  assert.match(
    undo.stderr.trim().split("\n").at(-1)!,
    /^atocore-backup: error: pre-restore snapshot failed, so nothing was restored or changed: the open-file limit was reached at \/\S+\/deep\/d0\/d1\/\S*: raise it \(ulimit -n\)$/,
  );
  assert.equal(live(), before);
  const run = await runCliInShell('ulimit -n 64 && exec "$@"', [...restore, "--no-pre-snapshot"], {
    ...storeEnv(store),
  });
  assert.equal(run.code, 1, run.stderr);
  const error = run.stderr.trim().split("\n").at(-1)!;
  assert.match(error, /^atocore-backup: error: restore failed while staging the Chroma copy in /, run.stderr);
  assert.match(
    error,
    /the open-file limit was reached at \/\S+\/\.atocore-restore-[^ ]*\/deep\/d0\/d1\/\S*: raise it \(ulimit -n\)\)/,
  );
  assert.match(error, /were not changed/);
  assert.equal(live(), before);
});

Deno.test("a Chroma folder of 400 files restores from a repository with at most 256 open files (--to and live)", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1, segments: 1, seed: 75 });
  for (let i = 0; i < 400; i++) Deno.writeTextFileSync(join(r.store.chromaDir, `file-${i}`), `${i}`);
  const { stamp, push } = await createAndPush(r.env);
  const snapshot = treeDigest(join(r.store.backupDir, "snapshots", stamp, "chroma"));
  const to = join(r.work, "to");
  const limited = 'ulimit -n 256 && exec "$@"';
  const copy = await runCliInShell(limited, ["restore", push.snapshot, "--from-remote", "--to", to], r.envWithIdentity);
  assert.equal(copy.code, 0, copy.stderr);
  assert.deepEqual(treeDigest(join(to, "chroma")), snapshot);
  Deno.removeSync(join(r.store.chromaDir, "file-7"));
  const restore = ["restore", push.snapshot, "--from-remote", "--confirm-service-stopped"];
  const run = await runCliInShell(limited, restore, r.envWithIdentity);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(treeDigest(r.store.chromaDir), snapshot);
});

Deno.test("create under open-file limits of 21 to 40: a failure names the limit in one line, all listed is valid", async () => {
  using store = tempStore({ dbMiB: 4, chromaMiB: 2, segments: 2, seed: 76 }); // 4 MiB: create starts workers
  await createdStamp(storeEnv(store));
  let failures = 0;
  for (let limit = 21; limit <= 40; limit++) {
    const run = await runCliInShell(`ulimit -n ${limit} && exec "$@"`, ["create", "--chroma"], storeEnv(store));
    const lines = run.stderr.trim().split("\n");
    if (run.code === 0 || !lines.some((line) => /^(atocore-backup: |\{)/.test(line))) continue; // or no runtime
    failures += 1;
    const errors = lines.filter((line) => !line.startsWith("{"));
    assert.ok(errors.length <= 1, `limit ${limit}: ${run.stderr}`);
    assert.match(errors[0] ?? "", /^(atocore-backup: error: .*ulimit -n\).*|)$/, `limit ${limit}: ${run.stderr}`);
    assert.match(run.stderr, /the open-file limit was reached.*: raise it \(ulimit -n\)/, `limit ${limit}`);
  }
  assert.ok(failures > 0, "no limit from 21 to 40 made create fail");
  const all = await runCli(["validate", "--all"], { env: storeEnv(store) }); // a snapshot listed is whole
  assert.equal(all.code, 0, all.stdout + all.stderr);
});
