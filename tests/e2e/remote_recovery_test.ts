/**
 * The format is recoverable without this tool: with only the `age` and `zstd` command-line tools and the short Python
 * script printed in FORMAT.md ("Recovery by hand"), a pushed snapshot is rebuilt byte for byte.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pushSnapshot } from "../../src/repo/push.ts";
import { assertSameTree, repoFixture, snapshotOf, updateRows } from "../_repo.ts";
import { toolFor } from "../_helpers.ts";

/** The recovery script of FORMAT.md, verbatim: `recover.py REPO KEY SNAPSHOT OUT`. */
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

for entry in doc["files"]:
    path = os.path.join(out, entry["path"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if "link" in entry:
        continue
    with open(path, "wb") as f:
        for file_offset, pack, pack_offset, length, sha in entry["extents"]:
            piece = packs[pack][pack_offset:pack_offset + length]
            assert hashlib.sha256(piece).hexdigest() == sha, entry["path"]
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
