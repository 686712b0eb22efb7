/**
 * Remote cleanup: retention over the repository's snapshots (the newest always kept), dry run changing nothing, packs
 * deleted only a grace period after they were condemned and only if nothing (refs, unexpired lease) needs them then;
 * a push never reuses a condemned pack; leftovers of a killed push go once its lease expired.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileByPath } from "../../src/fs/state_folder.ts";
import { join } from "node:path";
import { resolveConfig } from "../../src/config.ts";
import type { Backend } from "../../src/repo/backend.ts";
import { Boundary } from "../../src/repo/boundary.ts";
import { fetchSnapshot } from "../../src/repo/fetch.ts";
import { openFolderBackend } from "../../src/repo/folder.ts";
import { condemnedName, leaseName } from "../../src/repo/layout.ts";
import { cleanupRemote } from "../../src/repo/prune.ts";
import { pushSnapshot } from "../../src/repo/push.ts";
import { verifyRepository } from "../../src/repo/verify.ts";
import { pushCachePath } from "../../src/snapshot/layout.ts";
import { remoteCleanupCommand } from "../../src/cli/remote_cleanup.ts";
import { remoteListCommand } from "../../src/cli/remote_list.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { relocateSnapshot } from "../_helpers.ts";
import {
  assertSameTree,
  dyingAt,
  objectNames,
  type RepoFixture,
  repoFixture,
  snapshotOf,
  updateRows,
} from "../_repo.ts";

const HOUR = 3600_000;

const DAILY = { daily: 7, weekly: 0, monthly: 0 };

/** Where this test's cleanups keep their sightings of condemned markers. */
function seenFile(f: RepoFixture): string {
  return join(f.work, "condemned-seen.json");
}
const KEEP_NEWEST = { daily: 1, weekly: 0, monthly: 0 };

/** The reason a source's newest snapshot is kept whatever the policy. */
const NEWEST = { rule: "newest", bucket: "by stamp, of its source" };

/** The reason the snapshot a source published last (by its refs' sequence) is kept whatever the policy. */
const LAST_PUBLISHED = { rule: "last-published", bucket: "by sequence, of its source" };

/** A cleanup of `f` keeping the newest snapshot, with its sightings in `seenFile`, confirmed or not, at `at`. */
function keepNewest(f: RepoFixture, confirm: boolean, at?: Date) {
  return cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: KEEP_NEWEST,
    confirm,
    clock: at ? () => at : undefined,
  });
}

Deno.test("remote cleanup: retention, dry run, condemn then delete after the grace, leases protect", async () => {
  using f = await repoFixture({ dbMiB: 10, chromaMiB: 1 });
  const first = await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  updateRows(f.store.db, 0.5);
  Deno.removeSync(pushCachePath(f.store.backupDir, f.backend.location)); // no cache: nothing of the first reused
  const newest = await snapshotOf(f);
  const second = await pushSnapshot(f.config, f.backend, newest.root, f.auth);
  Deno.mkdirSync(join(f.repoDir, "packs", "zz"));
  Deno.writeTextFileSync(join(f.repoDir, "packs", "zz", "not-a-pack"), "someone else's file");
  const before = await objectNames(f.backend);

  const dry = await keepNewest(f, false);
  assert.deepEqual([dry.dry_run, dry.deleted, dry.kept], [true, [first.snapshot], [second.snapshot]]);
  assert.ok(dry.packs_condemned >= 2);
  assert.deepEqual(await objectNames(f.backend), before, "a dry run changes nothing");

  const t0 = new Date();
  const run1 = await keepNewest(f, true, t0);
  assert.deepEqual([run1.deleted, run1.packs_deleted, run1.packs_condemned], [
    [first.snapshot],
    0,
    dry.packs_condemned,
  ]);
  const [marker] = await objectNames(f.backend, "condemned/");
  const condemned: string[] = JSON.parse(Deno.readTextFileSync(join(f.repoDir, marker))).packs;
  const run2 = await keepNewest(f, true, new Date(t0.getTime() + HOUR));
  assert.deepEqual([run2.packs_deleted, run2.packs_condemned], [0, 0], "within the grace nothing is deleted");

  const leased = condemned[0];
  const lease = { created_at: t0.toISOString(), expires_at: new Date(t0.getTime() + 30 * HOUR).toISOString() };
  await new Boundary(f.backend, [f.recipient]).putPublic(leaseName("00000000000000aa"), { ...lease, packs: [leased] });
  const run3 = await keepNewest(f, true, new Date(t0.getTime() + 25 * HOUR));
  assert.equal(run3.packs_deleted, condemned.length - 1);
  assert.deepEqual(run3.markers_removed, [marker]);
  const packs = await objectNames(f.backend, "packs/");
  assert.ok(packs.includes(`packs/${leased.slice(0, 2)}/${leased}`), "a pack an unexpired lease names is kept");
  assert.ok(packs.includes("packs/zz/not-a-pack"), "a name that is not the format's is never deleted");
  for (const id of condemned.slice(1)) assert.ok(!packs.includes(`packs/${id.slice(0, 2)}/${id}`));

  const run4 = await keepNewest(f, true, new Date(t0.getTime() + 31 * HOUR));
  assert.deepEqual([run4.leases_removed, run4.packs_condemned], [[leaseName("00000000000000aa")], 1]);
  const into = join(f.work, "fetched");
  await fetchSnapshot(f.backend, [f.identity], second.snapshot, into);
  assertSameTree(newest.root, into);
  assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
});

Deno.test("remote cleanup: the newest snapshot is always kept; a policy keeping nothing is refused", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const pushed = await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const monthly = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: { daily: 0, weekly: 0, monthly: 1 },
    confirm: true,
  });
  assert.deepEqual([monthly.kept, monthly.deleted], [[pushed.snapshot], []]);
  await assert.rejects(
    cleanupRemote(f.backend, {
      sightingsFile: fileByPath(seenFile(f)),
      policy: { daily: 0, weekly: 0, monthly: 0 },
      confirm: true,
    }),
    /keeps nothing is refused/,
  );
});

Deno.test("remote cleanup: a push never reuses a condemned pack; a killed push's lease goes after expiry, its refs after the grace", async () => {
  using f = await repoFixture({ dbMiB: 2, chromaMiB: 1 });
  const first = await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const ids = (await objectNames(f.backend, "packs/")).map((name) => name.split("/")[2]);
  const marker = { created_at: new Date().toISOString(), packs: ids };
  await new Boundary(f.backend, [f.recipient]).putPublic(condemnedName("00000000000000bb"), marker);
  const next = await snapshotOf(f);
  const second = await pushSnapshot(f.config, f.backend, next.root, f.auth);
  assert.deepEqual([second.packs_reused, second.bytes_deduplicated], [0, 0]);
  assert.ok(second.bytes_sent > first.bytes_sent * 0.9);

  const third = await snapshotOf(f);
  await assert.rejects(
    pushSnapshot(f.config, dyingAt(f.backend, (name) => name.startsWith("snapshots/")), third.root, f.auth),
  );
  const soon = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: { daily: 7, weekly: 0, monthly: 0 },
    confirm: true,
  });
  assert.deepEqual([soon.refs_removed, soon.leases_removed], [[], []], "a live lease protects its refs");
  const later = new Date(Date.now() + 7 * HOUR);
  const after = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: { daily: 7, weekly: 0, monthly: 0 },
    confirm: true,
    clock: () => later,
  });
  assert.equal(after.leases_removed.length, 1);
  assert.deepEqual(await objectNames(f.backend, "leases/"), []);
  assert.deepEqual(after.refs_removed, [], "refs without their snapshot wait a grace from when this host saw them");
  const final = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: { daily: 7, weekly: 0, monthly: 0 },
    confirm: true,
    clock: () => new Date(Date.now() + 25 * HOUR),
  });
  assert.equal(final.refs_removed.length, 1);
  const keys = async (prefix: string) => (await objectNames(f.backend, prefix)).map((name) => name.split("/")[1]);
  assert.deepEqual(await keys("refs/"), await keys("snapshots/"), "only refs of listed snapshots remain");
  assert.deepEqual(await keys("snapshots/"), [second.snapshot], "one a day: the newest");
  assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
});

Deno.test("remote cleanup: a link or FIFO where a condemned marker would be makes a push reuse no pack", async () => {
  using f = await repoFixture({ dbMiB: 2, chromaMiB: 1 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const folder = join(f.repoDir, "condemned");
  Deno.mkdirSync(folder, { recursive: true });
  for (const make of ["fifo", "link"]) {
    const path = join(folder, make === "fifo" ? "00000000000000d1" : "00000000000000d2");
    if (make === "fifo") assert.ok(new Deno.Command("mkfifo", { args: [path] }).outputSync().success);
    else Deno.symlinkSync("/dev/null", path);
    const next = await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
    assert.equal(next.packs_reused, 0, `${make}: the packs it may condemn were reused`);
    const cleaned = await cleanupRemote(f.backend, {
      sightingsFile: fileByPath(seenFile(f)),
      policy: DAILY,
      confirm: true,
    });
    assert.equal(cleaned.errors.length, 1, `${make}: named once: ${cleaned.errors.join(" | ")}`);
    assert.match(cleaned.errors[0], /a symbolic link, folder or special file where objects are/);
    Deno.removeSync(path);
  }
});

Deno.test("remote cleanup: 20,000 links where markers would be: 20 named, the rest counted, in seconds; nothing deleted", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 0 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const folder = join(f.repoDir, "condemned");
  Deno.mkdirSync(folder, { recursive: true });
  for (let i = 0; i < 20_000; i++) Deno.symlinkSync("/dev/null", join(folder, i.toString(16).padStart(16, "0")));
  const begun = performance.now();
  const cleaned = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: DAILY,
    confirm: true,
  });
  assert.ok(performance.now() - begun < 60_000, "each link was looked for among the others: 100,000 took hours");
  assert.equal(cleaned.errors.length, 21, cleaned.errors.slice(0, 3).join(" | "));
  assert.match(
    cleaned.errors[0],
    /^condemned\/0000000000000000: a symbolic link, folder or special file where objects are/,
  );
  assert.equal(
    cleaned.errors.at(-1),
    "19980 more symbolic links, folders or special files where objects are; nothing deleted this run (not named)",
  );
  assert.deepEqual([cleaned.packs_condemned, cleaned.packs_deleted], [0, 0]);
});

Deno.test("remote cleanup: a lease expiring years ahead is kept (its push may run) and named in a warning", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const forged = { created_at: new Date().toISOString(), expires_at: "9999-01-01T00:00:00.000Z", packs: [] };
  await new Boundary(f.backend, [f.recipient]).putPublic(leaseName("00000000000000ee"), forged);
  const run = await cleanupRemote(f.backend, { sightingsFile: fileByPath(seenFile(f)), policy: DAILY, confirm: true });
  assert.deepEqual(run.leases_removed, []);
  assert.equal(run.warnings.length, 1, JSON.stringify(run.warnings));
  assert.match(run.warnings[0], /^leases\/00000000000000ee: a lease expiring more than a day from now .*remove it$/);
  const soon = { ...forged, expires_at: new Date(Date.now() + 3 * HOUR).toISOString() }; // a push's own: no word
  await new Boundary(f.backend, [f.recipient]).putPublic(leaseName("00000000000000ef"), soon);
  await f.backend.remove(leaseName("00000000000000ee"));
  const again = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: DAILY,
    confirm: true,
  });
  assert.deepEqual(again.warnings, []);
});

Deno.test("remote cleanup: a marker's own date is not trusted alone (the host that wrote it had a clock behind or ahead)", async () => {
  using f = await repoFixture({ dbMiB: 2, chromaMiB: 1 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  updateRows(f.store.db, 0.5);
  Deno.removeSync(pushCachePath(f.store.backupDir, f.backend.location)); // no cache: nothing of the first reused
  const second = await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const t0 = new Date();
  const run0 = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: KEEP_NEWEST,
    confirm: true,
    clock: () => t0,
  });
  const [own] = await objectNames(f.backend, "condemned/");
  const packs: string[] = JSON.parse(Deno.readTextFileSync(join(f.repoDir, own))).packs;
  assert.ok(run0.packs_condemned >= 2 && packs.length === run0.packs_condemned);
  Deno.removeSync(join(f.repoDir, own)); // in its place, markers of two hosts with wrong clocks
  const half = Math.floor(packs.length / 2);
  const io = new Boundary(f.backend, [f.recipient]);
  const behind = { created_at: new Date(t0.getTime() - 48 * HOUR).toISOString(), packs: packs.slice(0, half) };
  const ahead = { created_at: new Date(t0.getTime() + 30 * 24 * HOUR).toISOString(), packs: packs.slice(half) };
  await io.putPublic(condemnedName("00000000000000c1"), behind);
  await io.putPublic(condemnedName("00000000000000c2"), ahead);
  const at = (hours: number) => ({
    sightingsFile: fileByPath(seenFile(f)),
    policy: KEEP_NEWEST,
    confirm: true,
    clock: () => new Date(t0.getTime() + hours * HOUR),
  });

  const first = await cleanupRemote(f.backend, at(1));
  assert.equal(first.packs_deleted, 0, "a marker dated 48 h back but first seen now keeps its packs");
  assert.ok(
    first.warnings.some((note) => /condemned\/00000000000000c2 is dated .* ahead of this host's clock/.test(note)),
  );
  const early = await cleanupRemote(f.backend, {
    ...at(20),
    sightingsFile: fileByPath(join(f.work, "elsewhere.json")),
  });
  assert.equal(early.packs_deleted, 0, "a host that never saw the markers deletes nothing");
  const later = await cleanupRemote(f.backend, at(26));
  assert.equal(later.packs_deleted, packs.length, "a grace after this host first saw them, both markers' packs go");
  assert.deepEqual(await objectNames(f.backend, "condemned/"), []);
  assert.deepEqual(
    (await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors,
    [],
    `${second.snapshot} is whole`,
  );
});

Deno.test("remote cleanup: this host's clock set back since it saw a marker only delays the deletion", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  Deno.removeSync(pushCachePath(f.store.backupDir, f.backend.location)); // no cache: nothing of the first reused
  updateRows(f.store.db, 0.5);
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const t0 = new Date();
  const options = { sightingsFile: fileByPath(seenFile(f)), policy: KEEP_NEWEST, confirm: true };
  const run0 = await cleanupRemote(f.backend, { ...options, clock: () => t0 });
  assert.ok(run0.packs_condemned > 0);
  const back = await cleanupRemote(f.backend, { ...options, clock: () => new Date(t0.getTime() - 5 * 24 * HOUR) });
  assert.equal(back.packs_deleted, 0, "seen in this host's future: counted again from now");
  const seen = JSON.parse(Deno.readTextFileSync(seenFile(f))).markers;
  assert.deepEqual(Object.values(seen), [new Date(t0.getTime() - 5 * 24 * HOUR).toISOString()]);
  const next = await cleanupRemote(f.backend, { ...options, clock: () => new Date(t0.getTime() + 25 * HOUR) });
  assert.equal(next.packs_deleted, run0.packs_condemned, "a grace by this host's clock since it saw it again");
});

Deno.test("remote cleanup: staged writes a killed push left in .tmp/ go once older than the grace", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const staging = join(f.repoDir, ".tmp");
  Deno.writeTextFileSync(join(staging, "packs_ab_cd.left-by-a-kill"), "partial");
  Deno.writeTextFileSync(join(staging, "packs_ab_ef.being-written"), "partial");
  const options = { sightingsFile: fileByPath(seenFile(f)), policy: KEEP_NEWEST };
  const within = await cleanupRemote(f.backend, {
    ...options,
    confirm: true,
    clock: () => new Date(Date.now() + HOUR),
  });
  assert.deepEqual(within.staging_removed, [], "within the grace a staged write may belong to a running push");
  const ahead = await cleanupRemote(f.backend, {
    ...options,
    confirm: true,
    clock: () => new Date(Date.now() + 72 * HOUR),
  });
  assert.deepEqual(ahead.staging_removed, [], "a cleaning host's clock days ahead: the storage's clock decides");
  const old = new Date(Date.now() - 30 * HOUR);
  Deno.utimeSync(join(staging, "packs_ab_cd.left-by-a-kill"), old, old);
  const dry = await cleanupRemote(f.backend, { ...options, confirm: false });
  assert.deepEqual(dry.staging_removed, [".tmp/packs_ab_cd.left-by-a-kill"]);
  assert.equal([...Deno.readDirSync(staging)].length, 2, "a dry run removes nothing");
  const run = await cleanupRemote(f.backend, { ...options, confirm: true });
  assert.deepEqual(run.staging_removed, [".tmp/packs_ab_cd.left-by-a-kill"]);
  assert.deepEqual([...Deno.readDirSync(staging)].map((entry) => entry.name), ["packs_ab_ef.being-written"]);
});

Deno.test("remote cleanup: refs that cannot be read keep every snapshot this run (a host's only one could be among them)", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const roots: string[] = [];
  for (let at = 0; at < 3; at++) {
    if (at) await new Promise((resolve) => setTimeout(resolve, 1100)); // one stamp a second
    roots.push((await snapshotOf(f)).root);
  }
  const other = resolveConfig({ backupDir: join(f.work, "other-host") }, f.env, "/"); // a second source
  const onlyOfFirst = await pushSnapshot(f.config, f.backend, roots[0], f.auth);
  await pushSnapshot(other, f.backend, roots[1], f.auth);
  const newestOfOther = await pushSnapshot(other, f.backend, roots[2], f.auth);
  for (const pushed of [onlyOfFirst, newestOfOther]) {
    Deno.writeTextFileSync(join(f.repoDir, "refs", pushed.snapshot), "{");
  }
  const run = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: KEEP_NEWEST,
    confirm: true,
  });
  assert.deepEqual(run.deleted, []);
  assert.equal(run.kept.length, 3);
  assert.ok(
    run.errors.some((error) => error.startsWith(`refs/${onlyOfFirst.snapshot}: unreadable or missing`)),
    run.errors.join("\n"),
  );
  const wayOut = new RegExp(`no pack deleted or condemned this run: restore it from a copy, .*remove refs/.* by hand$`);
  assert.ok(run.errors.some((error) => wayOut.test(error)), run.errors.join("\n"));
  assert.equal((await objectNames(f.backend, "snapshots/")).length, 3);
});

Deno.test("remote cleanup: a snapshot whose refs are gone: nothing deleted, and the way out names only what is left", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const pushed = await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  Deno.removeSync(join(f.repoDir, "refs", pushed.snapshot));
  const run = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: KEEP_NEWEST,
    confirm: true,
  });
  assert.deepEqual(run.deleted, []);
  const error = run.errors.find((line) => line.startsWith(`refs/${pushed.snapshot}: missing`));
  assert.ok(error, run.errors.join("\n"));
  assert.ok(error.endsWith(`remove snapshots/${pushed.snapshot} by hand`), error);
});

Deno.test("remote cleanup: a snapshot stamped in the future is kept and takes no day: the host's real newest stays", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const today = await snapshotOf(f);
  const copies = ["20261101T010000Z", "20261102T010000Z", "20990101T000000Z"]; // the last: a clock that was ahead
  const pushed: string[] = [];
  for (const stamp of copies) {
    const root = join(f.store.backupDir, "snapshots", stamp);
    assert.equal(new Deno.Command("cp", { args: ["-a", today.root, root] }).outputSync().code, 0);
    pushed.push((await pushSnapshot(f.config, f.backend, root, f.auth)).snapshot);
  }
  pushed.push((await pushSnapshot(f.config, f.backend, today.root, f.auth)).snapshot);
  const run = await cleanupRemote(f.backend, {
    sightingsFile: fileByPath(seenFile(f)),
    policy: KEEP_NEWEST,
    confirm: true,
  });
  assert.deepEqual(run.errors, []);
  assert.deepEqual(run.kept.sort(), [pushed[2], pushed[3]].sort(), "the future one and today's");
  assert.deepEqual(run.deleted.sort(), [pushed[0], pushed[1]]);
  assert.equal(run.reasons[pushed[2]][0].rule, "future");
  assert.deepEqual(run.reasons[pushed[3]], [
    { rule: "daily", bucket: today.stamp.replace(/^(\d{4})(\d\d)(\d\d).*/, "$1-$2-$3") },
    NEWEST,
    LAST_PUBLISHED, // the copies under other stamps vouch for no sequence
  ]);
});

Deno.test("remote cleanup: after a clock set back, the snapshot published last is kept though a newer stamp shares its day", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const made = await snapshotOf(f);
  // published in this order: 03:00, 05:00 while the clock ran ahead, 04:00 once it was set back (the newest data)
  const order = [["20261110T030000Z", 1], ["20261110T050000Z", 2], ["20261110T040000Z", 3]] as const;
  const pushed: string[] = [];
  for (const [stamp, sequence] of order) {
    const root = join(f.store.backupDir, "snapshots", stamp);
    assert.equal(new Deno.Command("cp", { args: ["-a", made.root, root] }).outputSync().code, 0);
    relocateSnapshot(root, { sequence }); // bound again, as if create had made it there
    pushed.push((await pushSnapshot(f.config, f.backend, root, f.auth)).snapshot);
  }
  Deno.removeSync(made.root, { recursive: true }); // pushed never: these three are the source's snapshots
  const options = { sightingsFile: fileByPath(seenFile(f)), policy: KEEP_NEWEST, ...f.auth };
  const run = await cleanupRemote(f.backend, { ...options, confirm: true });
  assert.deepEqual(run.errors, []);
  assert.deepEqual(run.deleted, [pushed[0]]);
  assert.deepEqual(run.kept.sort(), [pushed[1], pushed[2]].sort(), "the day's newest stamp and the last published");
  assert.deepEqual(run.reasons[pushed[2]], [LAST_PUBLISHED]);
  assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
  // the refs' MAC covers the sequence: a writer's edit of it (here to one above the last published) is a forgery
  const edited = join(f.repoDir, "refs", pushed[1]);
  Deno.writeTextFileSync(edited, JSON.stringify({ ...JSON.parse(Deno.readTextFileSync(edited)), sequence: 9 }));
  const dry = await cleanupRemote(f.backend, { ...options, confirm: false });
  assert.deepEqual(dry.deleted, [], "nothing deleted while a refs is forged");
  assert.match(dry.errors.join("\n"), new RegExp(`refs/${pushed[1]}: a MAC there does not match`));
});

Deno.test("remote cleanup --forget of a source's newest: the rules keep the rest as if it had never been pushed", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const today = await snapshotOf(f);
  const pushed: string[] = [];
  for (const stamp of ["20260101T010000Z", "20260101T020000Z"]) { // one day: its later one stands for it
    const root = join(f.store.backupDir, "snapshots", stamp);
    assert.equal(new Deno.Command("cp", { args: ["-a", today.root, root] }).outputSync().code, 0);
    pushed.push((await pushSnapshot(f.config, f.backend, root, f.auth)).snapshot);
  }
  const options = { sightingsFile: fileByPath(seenFile(f)), policy: KEEP_NEWEST, forget: [pushed[1]] };
  const dry = await cleanupRemote(f.backend, { ...options, confirm: false });
  assert.deepEqual([dry.deleted, dry.kept], [[pushed[1]], [pushed[0]]], "the day's other one stands for it now");
  const run = await cleanupRemote(f.backend, { ...options, confirm: true });
  assert.deepEqual([run.deleted, run.kept, run.errors], [[pushed[1]], [pushed[0]], []]);
  assert.deepEqual(run.reasons[pushed[0]].at(-1), NEWEST);
});

Deno.test("remote cleanup --forget: a snapshot stamped in the future goes, named; one not listed is refused first", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const today = await snapshotOf(f);
  const ahead = join(f.store.backupDir, "snapshots", "20990101T000000Z"); // a clock that was ahead
  assert.equal(new Deno.Command("cp", { args: ["-a", today.root, ahead] }).outputSync().code, 0);
  const future = (await pushSnapshot(f.config, f.backend, ahead, f.auth)).snapshot;
  const real = (await pushSnapshot(f.config, f.backend, today.root, f.auth)).snapshot;
  const options = { sightingsFile: fileByPath(seenFile(f)), policy: DAILY };
  const kept = await cleanupRemote(f.backend, { ...options, confirm: true });
  assert.deepEqual(kept.kept.sort(), [future, real].sort(), "without --forget the rules keep it");
  const before = await objectNames(f.backend);
  await assert.rejects(
    cleanupRemote(f.backend, { ...options, confirm: true, forget: [future, "20990101T000000Z_0000000000000000"] }),
    /--forget: "20990101T000000Z_0000000000000000" not among the snapshots of .*nothing was changed/,
  );
  assert.deepEqual(await objectNames(f.backend), before, "a refused --forget changes nothing");
  const dry = await cleanupRemote(f.backend, { ...options, confirm: false, forget: [future] });
  assert.deepEqual([dry.deleted, dry.kept], [[future], [real]]);
  assert.deepEqual(await objectNames(f.backend), before, "a dry run changes nothing");
  const run = await cleanupRemote(f.backend, { ...options, confirm: true, forget: [future] });
  assert.deepEqual([run.deleted, run.kept, run.errors], [[future], [real], []]);
  assert.equal(run.reasons[future], undefined);
  const listed = await remoteListCommand.run({}, [], {
    env: { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}` },
    cwd: f.work,
    now: new Date(),
    reporter: SILENT,
  });
  assert.deepEqual((listed.result as { snapshots: { snapshot: string }[] }).snapshots.map((s) => s.snapshot), [real]);
  assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
});

Deno.test("remote cleanup: a snapshot kept only as its source's newest says so (newest), in JSON and text", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const made = await snapshotOf(f);
  const pushed: string[] = [];
  for (const stamp of ["20261104T010000Z", "20261105T010000Z"]) { // no 1st of the month: no monthly bucket
    const root = join(f.store.backupDir, "snapshots", stamp);
    assert.equal(new Deno.Command("cp", { args: ["-a", made.root, root] }).outputSync().code, 0);
    pushed.push((await pushSnapshot(f.config, f.backend, root, f.auth)).snapshot);
  }
  Deno.removeSync(made.root, { recursive: true });
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}` };
  const context = { env, cwd: f.work, now: new Date("2026-11-30T12:00:00Z"), reporter: SILENT };
  const policy = { "keep-daily": "0", "keep-weekly": "0", "keep-monthly": "1" };
  const cleaned = await remoteCleanupCommand.run(policy, [], context);
  const result = cleaned.result as { kept: string[]; would_delete: string[]; reasons: Record<string, unknown> };
  assert.deepEqual([result.kept, result.would_delete], [[pushed[1]], [pushed[0]]]);
  assert.deepEqual(result.reasons, { [pushed[1]]: [NEWEST] });
  assert.match(cleaned.text, new RegExp(`^  ${pushed[1]}  source \\w+  newest by stamp, of its source$`, "m"));
});

Deno.test("remote cleanup and remote list: two sources' snapshots of the same second each keep their own reasons and show their source", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const today = await snapshotOf(f);
  const other = resolveConfig({ backupDir: join(f.work, "other-host") }, f.env, "/"); // a second source
  const names = [
    (await pushSnapshot(f.config, f.backend, today.root, f.auth)).snapshot,
    (await pushSnapshot(other, f.backend, today.root, f.auth)).snapshot,
  ];
  const sources = names.map((name) => JSON.parse(Deno.readTextFileSync(join(f.repoDir, "refs", name))).source);
  assert.notEqual(sources[0], sources[1]);
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}` };
  const context = { env, cwd: f.work, now: new Date(), reporter: SILENT };
  const dailyOnly = { "keep-weekly": "0", "keep-monthly": "0" }; // a Sunday or a 1st would add a rule's reason
  const cleaned = await remoteCleanupCommand.run(dailyOnly, [], context);
  const result = cleaned.result as { reasons: Record<string, { rule: string }[]>; sources: Record<string, string> };
  const day = today.stamp.replace(/^(\d{4})(\d\d)(\d\d).*/, "$1-$2-$3");
  for (const [at, name] of names.entries()) {
    const reasons = [{ rule: "daily", bucket: day }, NEWEST, LAST_PUBLISHED];
    assert.deepEqual(result.reasons[name], reasons, `keyed by ${name}, not its stamp`);
    assert.equal(result.sources[name], sources[at]);
    assert.match(cleaned.text, new RegExp(`^  ${name}  source ${sources[at]}  daily ${day}, newest by stamp`, "m"));
  }
  const listed = await remoteListCommand.run({}, [], context);
  for (const [at, name] of names.entries()) assert.match(listed.text, new RegExp(`^${name} +${sources[at]} +`, "m"));
});

/** A backend that passes everything to `inner`, and runs `before` (awaited) just before the `nth` read of `name`. */
function pausingBefore(inner: Backend, name: string, nth: number, before: () => Promise<void>): Backend {
  let reads = 0;
  return {
    location: inner.location,
    list: (prefix) => inner.list(prefix),
    read: async (read, into, maxBytes) => {
      if (read === name && ++reads === nth) await before();
      return inner.read(read, into, maxBytes);
    },
    stat: (stat) => inner.stat(stat),
    write: (write, bytes, options) => inner.write(write, bytes, options),
    remove: (remove) => inner.remove(remove),
    unlisted: (prefix) => inner.unlisted!(prefix),
  };
}

/** When the other cleanup runs: before this one reads the snapshot's refs for its source, or later for its packs. */
const WINDOWS = [[1, "before this one read its refs"], [2, "after this one read its refs"]] as const;

for (const [read, when] of WINDOWS) {
  Deno.test(`remote cleanup: a snapshot another cleanup removes whole ${when} is passed over, with a warning`, async () => {
    using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
    const today = await snapshotOf(f);
    const older = join(f.store.backupDir, "snapshots", "20261101T010000Z");
    assert.equal(new Deno.Command("cp", { args: ["-a", today.root, older] }).outputSync().code, 0);
    const gone = (await pushSnapshot(f.config, f.backend, older, f.auth)).snapshot;
    const newest = (await pushSnapshot(f.config, f.backend, today.root, f.auth)).snapshot;
    let other: Awaited<ReturnType<typeof cleanupRemote>> | undefined;
    const racing = pausingBefore(f.backend, `refs/${gone}`, read, async () => { // the other keeps only the newest
      const seen = join(f.work, "other-seen.json");
      other = await cleanupRemote(openFolderBackend(f.repoDir), {
        sightingsFile: fileByPath(seen),
        policy: KEEP_NEWEST,
        confirm: true,
      });
    });
    const run = await cleanupRemote(racing, { sightingsFile: fileByPath(seenFile(f)), policy: DAILY, confirm: true });
    assert.deepEqual(other?.deleted, [gone], "the other run did not remove it in between");
    assert.deepEqual(run.errors, [], "an error makes 'remote cleanup' exit 1");
    assert.deepEqual(run.warnings, [`snapshots/${gone}: removed by another run since this one listed it`]);
    assert.deepEqual(run.kept.sort(), (read === 1 ? [newest] : [gone, newest]).sort());
    assert.deepEqual(await objectNames(f.backend, "snapshots/"), [`snapshots/${newest}`]);
    assert.deepEqual((await verifyRepository(f.backend, { identities: [f.identity], readData: true })).errors, []);
  });
}

Deno.test("remote cleanup: a run paused before it lists the packs dates its marker when it listed them: a push's new packs keep their grace", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  updateRows(f.store.db, 0.5);
  const next = await snapshotOf(f);
  const grace = 7 * HOUR; // above the push's lease of 6 h
  const t0 = Date.now();
  let now = t0;
  let pushed = false;
  const before = new Set(await objectNames(f.backend, "packs/"));
  // the run pauses 2 h after its start; meanwhile a push starts, sends its new packs and is still to write its refs
  const paused: Backend = {
    location: f.backend.location,
    read: (name, into, maxBytes) => f.backend.read(name, into, maxBytes),
    stat: (name) => f.backend.stat(name),
    write: (name, bytes, options) => f.backend.write(name, bytes, options),
    remove: (name) => f.backend.remove(name),
    unlisted: (prefix) => f.backend.unlisted!(prefix),
    list: async (prefix) => {
      if (prefix === "packs/" && !pushed) {
        pushed = true;
        now += 2 * HOUR;
        const cut = dyingAt(f.backend, (name) => name.startsWith("refs/")); // as far as this run can tell, running
        await assert.rejects(pushSnapshot(f.config, cut, next.root, { ...f.auth, now: () => new Date(now) }));
      }
      return await f.backend.list(prefix);
    },
  };
  const options = { sightingsFile: fileByPath(seenFile(f)), policy: DAILY, confirm: true, graceMs: grace };
  const first = await cleanupRemote(paused, { ...options, clock: () => new Date(now) });
  const sent = (await objectNames(f.backend, "packs/")).filter((name) => !before.has(name));
  assert.ok(sent.length > 0 && first.packs_condemned === sent.length, "the push's new packs are condemned");
  // 5 h into the push (inside its lease), 7 h after the paused run started
  const later = await cleanupRemote(f.backend, { ...options, clock: () => new Date(t0 + 7 * HOUR) });
  assert.equal(later.packs_deleted, 0, "a pack sent 5 h ago was deleted: its marker was dated before it existed");
  assert.deepEqual((await objectNames(f.backend, "packs/")).filter((name) => !before.has(name)), sent);
});
