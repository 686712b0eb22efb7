/**
 * Parallel transfers and sampled reads: a push writes, and a fetch or verify reads, up to `--transfers` packs at once
 * (never more) with the same result as one at a time; `remote verify --read-data-subset N%` reads a random N% of the
 * packs and finds a damaged one exactly when it is in the sample.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Backend } from "../../src/repo/backend.ts";
import { fetchSnapshot } from "../../src/repo/fetch.ts";
import { openFolderBackend } from "../../src/repo/folder.ts";
import { pushSnapshot } from "../../src/repo/push.ts";
import { initRepository } from "../../src/repo/repository.ts";
import { verifyRepository } from "../../src/repo/verify.ts";
import { runCli } from "../_helpers.ts";
import { assertSameTree, objectNames, repoFixture, snapshotOf } from "../_repo.ts";

/**
 * `inner`, counting the reads and the writes of packs in progress at once (the most seen of each). A pack's write waits
 * until another one starts (at most 1 s), like a slow link: a push may start the next while one is in flight, and a
 * busy machine sealing the next pack slowly must not decide whether it did.
 */
function counting(inner: Backend): { backend: Backend; most: { reads: number; writes: number } } {
  const now = { reads: 0, writes: 0 };
  const most = { reads: 0, writes: 0 };
  const started = { reads: 0, writes: 0 };
  const otherStarted = async (kind: "reads" | "writes", wait: number) => {
    const mine = started[kind];
    for (const end = Date.now() + wait; started[kind] === mine && Date.now() < end;) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const track = async <T>(kind: "reads" | "writes", name: string, work: () => Promise<T>): Promise<T> => {
    if (!name.startsWith("packs/")) return await work();
    most[kind] = Math.max(most[kind], ++now[kind]);
    started[kind] += 1;
    try {
      await otherStarted(kind, kind === "writes" ? 1000 : 5); // let the other lanes start
      return await work();
    } finally {
      now[kind] -= 1;
    }
  };
  return {
    most,
    backend: {
      location: inner.location,
      list: (prefix) => inner.list(prefix),
      stat: (name) => inner.stat(name),
      remove: (name) => inner.remove(name),
      read: (name, into, maxBytes) => track("reads", name, () => inner.read(name, into, maxBytes)),
      write: (name, bytes, options) => track("writes", name, () => inner.write(name, bytes, options)),
    },
  };
}

Deno.test("remote transfers: push, fetch and verify move at most N packs at once, with the same result", async () => {
  using f = await repoFixture({ dbMiB: 40, chromaMiB: 2 });
  const { root } = await snapshotOf(f);
  const one = counting(f.backend);
  const pushed = await pushSnapshot(f.config, one.backend, root, { ...f.auth, transfers: 1 });
  assert.ok(pushed.packs_written >= 4, `${pushed.packs_written} packs: too few to overlap`);
  assert.equal(one.most.writes, 1);

  const otherDir = join(f.work, "repo-3");
  const other = counting(openFolderBackend(otherDir));
  await initRepository(other.backend, [f.recipient]);
  const again = await pushSnapshot(f.config, other.backend, root, { ...f.auth, transfers: 3 });
  assert.equal(again.packs_written, pushed.packs_written);
  assert.ok(other.most.writes >= 2 && other.most.writes <= 3, `${other.most.writes} writes at once`);

  for (const [transfers, source, snapshot] of [[1, one, pushed.snapshot], [3, other, again.snapshot]] as const) {
    source.most.reads = 0;
    const into = join(f.work, `fetched-${transfers}`);
    await fetchSnapshot(source.backend, [f.identity], snapshot, into, { transfers });
    assertSameTree(root, into);
    assert.ok(
      source.most.reads <= transfers && source.most.reads >= Math.min(2, transfers),
      `${source.most.reads} reads`,
    );
    source.most.reads = 0;
    const verified = await verifyRepository(source.backend, { identities: [f.identity], readData: true, transfers });
    assert.deepEqual([verified.ok, verified.packs_read], [true, pushed.packs_written]);
    assert.ok(source.most.reads <= transfers, `${source.most.reads} reads at once in verify`);
  }

  const packs = await objectNames(other.backend, "packs/");
  const damaged = packs.slice(1, 3); // two packs flipped: both reported, in pack order, whatever lane read them
  for (const name of damaged) {
    const bytes = Deno.readFileSync(join(otherDir, name));
    bytes[300] ^= 1;
    Deno.writeFileSync(join(otherDir, name), bytes);
  }
  const read = await verifyRepository(other.backend, { identities: [f.identity], readData: true, transfers: 4 });
  assert.deepEqual(read.errors.map((error) => error.split(":")[0]), damaged);
});

Deno.test("remote verify --read-data-subset: a random share of the packs; damage found when sampled", async () => {
  using f = await repoFixture({ dbMiB: 40, chromaMiB: 2 });
  const { root } = await snapshotOf(f);
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  const packs = await objectNames(f.backend, "packs/");
  assert.equal(packs.length, pushed.packs_written);
  const half = await verifyRepository(f.backend, { identities: [f.identity], readData: true, subset: 50 });
  assert.deepEqual([half.ok, half.packs_read], [true, Math.ceil(packs.length / 2)]);
  const bytes = Deno.readFileSync(join(f.repoDir, packs[0]));
  bytes[300] ^= 1;
  Deno.writeFileSync(join(f.repoDir, packs[0]), bytes);
  // The sample is the packs (sorted by id) given the smallest random keys: first only, or every one but the first.
  const firstOnly = (() => {
    let call = 0;
    return () => (call++ === 0 ? 0 : 1);
  })();
  const allButFirst = (() => {
    let call = 0;
    return () => (call++ === 0 ? 1 : 0);
  })();
  const sampled = await verifyRepository(f.backend, {
    identities: [f.identity],
    subset: 1,
    random: firstOnly,
    readData: true,
  });
  assert.deepEqual([sampled.packs_read, sampled.errors.map((error) => error.split(":")[0])], [1, [packs[0]]]);
  const missed = await verifyRepository(f.backend, {
    identities: [f.identity],
    readData: true,
    subset: 100 * (packs.length - 1) / packs.length,
    random: allButFirst,
  });
  assert.deepEqual([missed.ok, missed.packs_read], [true, packs.length - 1]);

  const cli = await runCli(["remote", "verify", "--read-data-subset", "100%", "--transfers", "2", "--json"], {
    env: { ...f.env, ATOCORE_BACKUP_REMOTE: f.repoDir, ATOCORE_BACKUP_IDENTITY_FILE: f.keyFile },
  });
  assert.notEqual(cli.code, 0, cli.stderr);
  const result = cli.json as { packs_read: number; errors: string[] };
  assert.equal(result.packs_read, packs.length);
  assert.match(result.errors.join("\n"), new RegExp(packs[0]));
});
