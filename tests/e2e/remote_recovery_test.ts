/**
 * The format is recoverable without this tool: with only the `age` and `zstd` command-line tools and the short Python
 * script printed in the README ("Recovery by hand"), a pushed snapshot is rebuilt byte for byte.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pushSnapshot } from "../../src/repo/push.ts";
import { assertSameTree, repoFixture, snapshotOf, updateRows } from "../_repo.ts";
import { runCli, toolFor } from "../_helpers.ts";
import { treeDigest } from "../_faults.ts";
import { createAndPush, remoteStore, snapshotAsStore } from "../_remote_cli.ts";

/** The recovery script of the README, verbatim: `recover.py REPO KEY SNAPSHOT OUT`. */
const RECOVER_PY = `
import hashlib, json, os, subprocess, sys

repo, key, name, out = sys.argv[1:5]

def age(path):  # decrypt one object with the age tool
    return subprocess.run(["age", "-d", "-i", key, path], check=True, capture_output=True).stdout

def unzstd(data):
    return subprocess.run(["zstd", "-d", "-c"], input=data, check=True, capture_output=True).stdout

doc = json.loads(unzstd(age(os.path.join(repo, "snapshots", name))))
packs = {}
for index, pack in enumerate(doc["packs"]):
    data = age(os.path.join(repo, "packs", pack["id"][:2], pack["id"]))
    packs[index] = unzstd(data) if pack["compression"] == "zstd" else data

def extent_hash(piece, block):  # format 2: an extent of several blocks hashes as its blocks' SHA-256s
    if doc["format"] == 1 or len(piece) <= block:
        return hashlib.sha256(piece).hexdigest()
    blocks = (piece[at:at + block] for at in range(0, len(piece), block))
    return hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).hexdigest()

for entry in doc["files"]:
    path = os.path.join(out, entry["path"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if "link" in entry:
        continue
    with open(path, "wb") as f:
        for file_offset, pack, pack_offset, length, sha in entry["extents"]:
            piece = packs[pack][pack_offset:pack_offset + length]
            assert extent_hash(piece, entry["block"]) == sha, entry["path"]
            f.seek(file_offset)
            f.write(piece)
        f.truncate(entry["size"])
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == entry["sha256"], entry["path"]

for entry in doc["files"]:
    if "link" in entry:
        os.symlink(entry["link"], os.path.join(out, entry["path"]))
`;

Deno.test("remote recovery: age, zstd and a short Python script rebuild a snapshot byte for byte", async () => {
  const what = "recovery by hand with age, zstd and Python";
  if (!toolFor("age", what) || !toolFor("zstd", what)) return;
  using f = await repoFixture({ dbMiB: 12, chromaMiB: 2 });
  Deno.symlinkSync("chroma.sqlite3", join(f.store.chromaDir, "link"));
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  updateRows(f.store.db, 0.05);
  const { root } = await snapshotOf(f);
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth); // extents into packs of both pushes
  assert.ok(pushed.packs_reused > 0);
  const script = join(f.work, "recover.py");
  Deno.writeTextFileSync(script, RECOVER_PY);
  const out = join(f.work, "recovered");
  const run = await new Deno.Command("python3", {
    args: [script, f.repoDir, f.keyFile, pushed.snapshot, out],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  assertSameTree(root, out);
});

Deno.test("remote recovery: Chroma files named with a backslash, a newline or a leading dash are pushed by create --push, restored --from-remote and rebuilt by the script byte for byte", async () => {
  const what = "recovery by hand with age, zstd and Python";
  if (!toolFor("age", what) || !toolFor("zstd", what)) return;
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const names = ["a\\b", "new\nline", "-dash", "\\"];
  for (const name of names) Deno.writeTextFileSync(join(r.store.chromaDir, name), `bytes of ${JSON.stringify(name)}`);
  const { stamp, push } = await createAndPush(r.env);
  const root = join(r.store.backupDir, "snapshots", stamp);
  const again = await runCli(["push", stamp], { env: r.env });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.json as { pushed: { already_pushed: boolean }[] }).pushed[0].already_pushed, true, "push STAMP");

  const to = join(r.work, "rebuilt");
  const restored = await runCli(["restore", stamp, "--from-remote", "--to", to], { env: r.envWithIdentity });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(treeDigest(to), snapshotAsStore(root));
  for (const name of names) {
    assert.equal(Deno.readTextFileSync(join(to, "chroma", name)), `bytes of ${JSON.stringify(name)}`);
  }

  const script = join(r.work, "recover.py");
  Deno.writeTextFileSync(script, RECOVER_PY);
  const out = join(r.work, "recovered");
  const run = await new Deno.Command("python3", {
    args: [script, r.repoDir, r.key.keyFile, push.snapshot, out],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  assertSameTree(root, out);
});
