/**
 * `checkManifest` with hashes a fetch proved: the entries are compared with them as text (no file read), and one that
 * differs is a mismatch even though the file on disk matches the manifest.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256File } from "../../src/fs/hash.ts";
import { checkManifest } from "../../src/snapshot/manifest.ts";
import { tempDir } from "../_helpers.ts";

Deno.test("checkManifest: proven hashes are compared as text, not read again; a different one is a mismatch", () => {
  using root = tempDir();
  Deno.mkdirSync(join(root.path, "db"));
  Deno.writeTextFileSync(join(root.path, "db", "a.db"), "rows");
  Deno.writeTextFileSync(join(root.path, "registry.json"), "{}");
  const manifest = ["db/a.db", "registry.json"].map((path) => ({
    path,
    size: Deno.statSync(join(root.path, path)).size,
    sha256: sha256File(join(root.path, path)),
  }));
  const proven = new Map(manifest.map((entry) => [entry.path, entry.sha256]));
  const matching = checkManifest(root.path, manifest, { quick: false, verified: proven });
  assert.deepEqual(matching, { errors: [], filesChecked: 2, bytesHashed: 0, storageFailed: [] });
  const other = new Map(proven).set("db/a.db", "0".repeat(64));
  const differing = checkManifest(root.path, manifest, { quick: false, verified: other });
  assert.deepEqual(differing.errors, ["manifest_sha256_mismatch: db/a.db"]);
  assert.equal(differing.bytesHashed, 0);
  const partly = checkManifest(root.path, manifest, {
    quick: false,
    verified: new Map([["db/a.db", proven.get("db/a.db")!]]),
  });
  assert.equal(partly.bytesHashed, 2, "a file not proven is hashed");
});
