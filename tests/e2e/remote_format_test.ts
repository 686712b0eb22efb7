/**
 * Documents of format 1 (each extent hashed whole, as versions before format 2 pushed them) stay readable: verified,
 * drilled and restored; and a push whose cache holds format-1 extent hashes writes a format-2 document that verifies.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { parseIdentityFile } from "../../src/crypto/age.ts";
import { hashExtent } from "../../src/repo/extent_hash.ts";
import { loadPushCache, savePushCache } from "../../src/repo/push_cache.ts";
import { openBytes } from "../../src/repo/sealing.ts";
import { readAt } from "../../src/fs/read_at.ts";
import { fileByPath } from "../../src/fs/state_folder.ts";
import { runCli } from "../_helpers.ts";
import { entryNames } from "../_faults.ts";
import { updateRows } from "../_repo.ts";
import { assertVerified, createAndPush, forgeDocument, remoteStore } from "../_remote_cli.ts";

/** The SHA-256 of bytes `[at, at + length)` of `path`: an extent's hash in format 1. */
function wholeHash(path: string, at: number, length: number): string {
  using file = Deno.openSync(path, { read: true });
  return hashExtent(readAt(file, at, length) ?? new Uint8Array(0), 0);
}

/** The format of snapshot `name`'s document. */
function formatOf(repoDir: string, keyFile: string, name: string): number {
  const identities = parseIdentityFile(Deno.readTextFileSync(keyFile), keyFile);
  const sealed = Deno.readFileSync(join(repoDir, "snapshots", name));
  const plain = openBytes(`snapshots/${name}`, sealed, identities, { compression: "zstd" });
  return JSON.parse(new TextDecoder().decode(plain)).format;
}

/** Rewrite the push cache of the store's only repository with each extent hashed whole, as a format-1 push left it. */
function cacheAsFormat1(backupDir: string, repoDir: string, snapshotRoot: string): void {
  const [key] = entryNames(join(backupDir, "remotes"));
  const path = join(backupDir, "remotes", key, "push-cache");
  const cache = loadPushCache(path, JSON.parse(Deno.readTextFileSync(join(repoDir, "config"))).id);
  assert.ok(cache && cache !== "unusable", "the push left a cache");
  let multiBlock = 0;
  for (const file of cache.files) {
    const { at, lengths, hashes } = file.extents;
    for (let row = 0; row < at.length; row++) {
      if (lengths[row] > file.block) multiBlock += 1;
      const hash = wholeHash(join(snapshotRoot, file.path), at[row], lengths[row]);
      hashes.set(Buffer.from(hash, "hex"), row * 32);
    }
  }
  assert.ok(multiBlock > 0, "extents of several blocks, whose hash the formats make differently");
  savePushCache(fileByPath(path), cache);
  cache.file.close();
}

Deno.test("remote format: a format-1 document is verified, drilled and restored, and a push after it (its cache of format 1) writes format 2", async () => {
  using r = await remoteStore({ dbMiB: 3, chromaMiB: 1 });
  const first = await createAndPush(r.env);
  const snapshotRoot = join(r.store.backupDir, "snapshots", first.stamp);
  const identities = parseIdentityFile(Deno.readTextFileSync(r.key.keyFile), r.key.keyFile);
  forgeDocument(r.repoDir, identities, r.key.recipient, first.push.snapshot, (document) => {
    document.format = 1;
    for (const file of document.files) {
      for (const extent of file.extents ?? []) {
        extent[4] = wholeHash(join(snapshotRoot, file.path), extent[0], extent[3]);
      }
    }
  });
  cacheAsFormat1(r.store.backupDir, r.repoDir, snapshotRoot);
  assert.equal(formatOf(r.repoDir, r.key.keyFile, first.push.snapshot), 1);
  await assertVerified(r.envWithIdentity, ["--read-data"], "a format-1 document");
  const drill = await runCli(["drill", "--from-remote", first.stamp], { env: r.envWithIdentity });
  assert.equal(drill.code, 0, drill.stdout + drill.stderr);

  updateRows(r.store.db, 0.05); // the Chroma files are unchanged: reused whole, with the cache's extents
  const second = await createAndPush(r.env);
  assert.ok(second.push.bytes_deduplicated > 0);
  assert.equal(formatOf(r.repoDir, r.key.keyFile, second.push.snapshot), 2);
  await assertVerified(r.envWithIdentity, ["--read-data"], "format-2 extents of files reused from a format-1 cache");
  const restored = join(r.work, "restored");
  const run = await runCli(["restore", second.stamp, "--from-remote", "--to", restored], { env: r.envWithIdentity });
  assert.equal(run.code, 0, run.stderr);
  const drillLatest = await runCli(["drill", "--from-remote", "--latest"], { env: r.envWithIdentity });
  assert.equal(drillLatest.code, 0, drillLatest.stdout + drillLatest.stderr);
});
