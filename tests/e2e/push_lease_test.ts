/**
 * A push paused past its lease while it publishes (a suspended host, a stopped process): cleanups on other hosts take
 * it for a dead one meanwhile, so it must not list a snapshot whose refs or packs they removed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileByPath } from "../../src/fs/state_folder.ts";
import type { Backend } from "../../src/repo/backend.ts";
import { openFolderBackend } from "../../src/repo/folder.ts";
import { cleanupRemote, type RemoteCleanupResult } from "../../src/repo/prune.ts";
import { pushSnapshot } from "../../src/repo/push.ts";
import { verifyRepository } from "../../src/repo/verify.ts";
import { objectNames, type RepoFixture, repoFixture, snapshotOf } from "../_repo.ts";
import { join } from "node:path";

const HOUR = 3600_000;

/**
 * A backend that passes everything to `inner`, but runs `pause` once when a write of a name `at` picks begins (`before`)
 * or has ended: where a push stopped by SIGSTOP, or on a suspended host, would wait.
 */
function pausingAt(
  inner: Backend,
  at: (name: string) => boolean,
  when: "before" | "after",
  pause: () => Promise<void>,
) {
  let paused = false;
  const once = async (name: string) => {
    if (paused || !at(name)) return;
    paused = true;
    await pause();
  };
  return {
    location: inner.location,
    list: (prefix) => inner.list(prefix),
    read: (name, into, maxBytes) => inner.read(name, into, maxBytes),
    stat: (name) => inner.stat(name),
    write: async (name, bytes, options) => {
      if (when === "before") await once(name);
      await inner.write(name, bytes, options);
      if (when === "after") await once(name);
    },
    remove: (name) => inner.remove(name),
    unlisted: (prefix) => inner.unlisted!(prefix),
  } satisfies Backend;
}

/**
 * The cleanups of other hosts during a pause of `hours` (each with the default grace, 24 h): the expired lease goes,
 * then the refs without a snapshot object once seen so for the grace, then their packs a grace after being condemned.
 */
async function cleanupsDuring(f: RepoFixture, hours: number): Promise<RemoteCleanupResult[]> {
  const runs: RemoteCleanupResult[] = [];
  for (const at of [7, 32, 57].filter((at) => at < hours)) {
    runs.push(
      await cleanupRemote(openFolderBackend(f.repoDir), {
        sightingsFile: fileByPath(join(f.work, "other-host-seen.json")),
        policy: { daily: 7, weekly: 0, monthly: 0 },
        confirm: true,
        clock: () => new Date(Date.now() + at * HOUR),
      }),
    );
  }
  return runs;
}

const PAUSES = [
  ["after its refs are written", (name: string) => name.startsWith("refs/"), "after"],
  ["as its snapshot object is written", (name: string) => name.startsWith("snapshots/"), "before"],
] as const;

for (const [where, at, when] of PAUSES) {
  Deno.test(`a push paused past its lease ${where} while cleanups delete its refs and packs lists nothing`, async () => {
    using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
    const { root } = await snapshotOf(f);
    let ahead = 0;
    const now = () => new Date(Date.now() + ahead);
    let runs: RemoteCleanupResult[] = [];
    const paused = pausingAt(f.backend, at, when, async () => {
      runs = await cleanupsDuring(f, 58);
      ahead = 58 * HOUR; // the wall clock went on during the pause; the monotonic one, suspended, did not
    });
    await assert.rejects(
      pushSnapshot(f.config, paused, root, { ...f.auth, now }),
      when === "after"
        ? /^OperationError: push of \S+ ran into the end of its lease \(until \S+\); nothing of it is listed/
        : /^OperationError: push of \S+: its lease ran out \(until \S+\) before its snapshot object was listed .*; the snapshot was removed again: nothing is listed: push again/,
    );
    assert.equal(runs.length, 3);
    assert.equal(runs[0].leases_removed.length, 1, "the first cleanup did not remove the expired lease");
    assert.equal(runs[1].refs_removed.length, 1, "the second cleanup did not remove the refs");
    assert.ok(runs[2].packs_deleted > 0, "the third cleanup deleted no pack");
    assert.deepEqual(await objectNames(f.backend, "snapshots/"), [], "a snapshot without refs or packs was listed");
    assert.deepEqual(await objectNames(f.backend, "refs/"), []);
    assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
    const again = await pushSnapshot(f.config, f.backend, root, f.auth);
    assert.equal(again.already_pushed, false);
    assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
  });
}

Deno.test("a push paused past its lease as its snapshot object is written, with nothing removed yet, lists nothing", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  let ahead = 0;
  const now = () => new Date(Date.now() + ahead);
  const paused = pausingAt(f.backend, (name) => name.startsWith("snapshots/"), "before", async () => {
    const runs = await cleanupsDuring(f, 8); // the lease goes; the refs stay, seen without a snapshot for 1 h
    assert.deepEqual(runs.map((run) => [run.leases_removed.length, run.refs_removed.length]), [[1, 0]]);
    ahead = 8 * HOUR;
  });
  await assert.rejects(pushSnapshot(f.config, paused, root, { ...f.auth, now }), /nothing is listed: push again/);
  assert.deepEqual(await objectNames(f.backend, "snapshots/"), []);
  const again = await pushSnapshot(f.config, f.backend, root, f.auth);
  assert.equal(again.already_pushed, false);
  assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
});

/** A backend that passes everything to `inner`, but holds its first removal until `release` resolves. */
function holdingRemovals(inner: Backend, release: Promise<void>, onHeld: () => void): Backend {
  let held = false;
  return {
    ...pausingAt(inner, () => false, "before", () => Promise.resolve()),
    remove: async (name) => {
      if (!held) {
        held = true;
        onHeld();
        await release;
      }
      await inner.remove(name);
    },
  };
}

Deno.test("a push paused past its lease while a cleanup that has decided to remove its refs is paused too lists nothing", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  let ahead = 0;
  const now = () => new Date(Date.now() + ahead);
  let release = () => {};
  const released = new Promise<void>((done) => release = done);
  let cleanup: Promise<RemoteCleanupResult> | null = null;
  const paused = pausingAt(f.backend, (name) => name.startsWith("snapshots/"), "before", async () => {
    await cleanupsDuring(f, 8); // the lease goes; the refs are first seen without a snapshot at +7 h
    let decided = () => {};
    const holding = new Promise<void>((done) => decided = done);
    // at +32 h a cleanup lists the refs as a dead push's, decides, and is paused before its first removal
    cleanup = cleanupRemote(holdingRemovals(openFolderBackend(f.repoDir), released, decided), {
      sightingsFile: fileByPath(join(f.work, "other-host-seen.json")),
      policy: { daily: 7, weekly: 0, monthly: 0 },
      confirm: true,
      clock: () => new Date(Date.now() + 32 * HOUR),
    });
    await holding;
    ahead = 32 * HOUR;
  });
  const pushed = await pushSnapshot(f.config, paused, root, { ...f.auth, now }).then(() => true, () => false);
  release();
  const run = await cleanup!;
  assert.equal(run.refs_removed.length, 1, "the paused cleanup did not remove the refs it decided on");
  assert.equal(pushed, false, "the push succeeded although a cleanup was removing its refs");
  assert.deepEqual(await objectNames(f.backend, "snapshots/"), [], "a snapshot without its refs is listed");
  assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
});
