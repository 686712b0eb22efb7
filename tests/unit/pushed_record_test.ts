/**
 * The record of the stamps a backup folder pushed to one repository: read back as written, bound to the repository and
 * to the metadata pushed, kept to the snapshots the folder holds; anything unreadable reads as empty.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PushedStamps } from "../../src/repo/pushed_record.ts";
import { fileByPath } from "../../src/fs/state_folder.ts";
import { tempDir } from "../_helpers.ts";

const [OLD, NEW] = ["20261129T010203Z", "20261130T010203Z"];
const SHA = "a".repeat(64);
const REPO = "f".repeat(32);

Deno.test("pushed record: read back for its repository and metadata only; stamps the folder no longer holds go", () => {
  using dir = tempDir();
  const path = join(dir.path, "remotes", "key", "pushed.json");
  assert.equal(PushedStamps.load(fileByPath(path), REPO).pushedAs(OLD, SHA), null, "no record: nothing pushed");
  const record = PushedStamps.load(fileByPath(path), REPO);
  record.add(OLD, { local_sha256: SHA, snapshot: `${OLD}_0123456789abcdef` }, () => true);
  assert.deepEqual(record.problems, []);
  assert.equal(PushedStamps.load(fileByPath(path), REPO).pushedAs(OLD, SHA), `${OLD}_0123456789abcdef`);
  assert.equal(PushedStamps.load(fileByPath(path), REPO).pushedAs(OLD, "b".repeat(64)), null, "other metadata");
  assert.equal(PushedStamps.load(fileByPath(path), "e".repeat(32)).pushedAs(OLD, SHA), null, "another repository");
  PushedStamps.load(fileByPath(path), REPO).add(
    NEW,
    { local_sha256: SHA, snapshot: `${NEW}_0123456789abcdef` },
    (s) => s === NEW,
  );
  assert.deepEqual(Object.keys(JSON.parse(Deno.readTextFileSync(path)).stamps), [NEW], "the removed snapshot's goes");
  for (const damaged of ["{", "[]", `{"repository_id":"${REPO}","stamps":{"${NEW}":{"local_sha256":"x"}}}`]) {
    Deno.writeTextFileSync(path, damaged);
    assert.equal(PushedStamps.load(fileByPath(path), REPO).pushedAs(NEW, SHA), null, damaged);
  }
  Deno.removeSync(path);
  Deno.mkdirSync(path);
  const unreadable = PushedStamps.load(fileByPath(path), REPO);
  assert.equal(unreadable.pushedAs(NEW, SHA), null);
  assert.match(unreadable.problems.join(), /pushed\.json is a folder, where the record of the stamps pushed belongs/);
  Deno.removeSync(path);
  Deno.writeTextFileSync(path, "not JSON");
  assert.match(PushedStamps.load(fileByPath(path), REPO).problems.join(), /pushed\.json unreadable/);
});
