/**
 * Every way a repository can be wrong gives a one-line error naming the object: another key, a tampered, truncated or
 * swapped pack, a replaced or swapped snapshot object, a snapshot copied from another repository; `remote verify`
 * finds the same without (sizes) and with (content) the identity. And repositories refuse to be misused: init on a
 * non-empty folder, a newer format, a changed id or recipient after the pin.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { ageDecrypt, ageEncrypt, generateIdentity, parseIdentity } from "../../src/crypto/age.ts";
import { remoteCleanupCommand } from "../../src/cli/remote_cleanup.ts";
import { remoteListCommand } from "../../src/cli/remote_list.ts";
import { remoteVerifyCommand } from "../../src/cli/remote_verify.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { readSnapshot } from "../../src/repo/snapshots.ts";
import type { Backend } from "../../src/repo/backend.ts";
import { fetchSnapshot } from "../../src/repo/fetch.ts";
import { openFolderBackend } from "../../src/repo/folder.ts";
import { initRepository, openRepository } from "../../src/repo/repository.ts";
import { type PushResult, pushSnapshot } from "../../src/repo/push.ts";
import { type VerifyOptions, verifyRepository } from "../../src/repo/verify.ts";
import { objectNames, type RepoFixture, repoFixture, snapshotOf, updateRows } from "../_repo.ts";
import { printedCommand, runCli, runPrinted } from "../_helpers.ts";
import { oneErrorLine } from "../_remote_cli.ts";
import { statOrNull } from "../../src/fs/probe.ts";

/** A fixture with one pushed snapshot. */
async function pushedFixture(): Promise<{ f: RepoFixture; pushed: PushResult }> {
  const f = await repoFixture({ dbMiB: 2, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  return { f, pushed: await pushSnapshot(f.config, f.backend, root, f.auth) };
}

/** Fetch `snapshot` into a new folder and return the one-line error it fails with. */
async function fetchError(
  f: RepoFixture,
  snapshot: string,
  identity = f.identity,
  allowUnauthenticated = false,
): Promise<string> {
  const into = join(f.work, `fetch-${crypto.randomUUID()}`);
  try {
    await fetchSnapshot(f.backend, [identity], snapshot, into, { allowUnauthenticated });
  } catch (error) {
    const message = (error as Error).message;
    assert.ok(!message.includes("\n"), `not one line: ${message}`);
    assert.throws(() => Deno.lstatSync(into), Deno.errors.NotFound, "the fetch folder is removed on failure");
    return message;
  }
  throw new Error("the fetch did not fail");
}

Deno.test("remote integrity: another key, tampered, truncated or swapped packs are refused naming the pack", async () => {
  const { f, pushed } = await pushedFixture();
  using _ = f;
  const snapshot = `snapshots/${pushed.snapshot}`;
  const stranger = parseIdentity(generateIdentity().identity);
  assert.match(await fetchError(f, pushed.snapshot, stranger), new RegExp(`^${snapshot}: encrypted to another key`));

  const [first, second] = await objectNames(f.backend, "packs/");
  const path = join(f.repoDir, first);
  const original = Deno.readFileSync(path);
  const flipped = original.slice();
  flipped[flipped.length - 100] ^= 1;
  assert.ok(second, "two packs at least (one zstd, one raw)");
  const swapped = Deno.readFileSync(join(f.repoDir, second));
  for (const bytes of [flipped, original.subarray(0, original.length - 1000), swapped]) {
    Deno.writeFileSync(path, bytes);
    assert.match(await fetchError(f, pushed.snapshot), new RegExp(`^${first}: its bytes do not hash to its name`));
  }
  // a damaged pack of its size is reused by pushes (they cannot read it): verify says what to do with it
  Deno.writeFileSync(path, flipped);
  const damaged = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.ok(damaged.errors.some((line) => line.startsWith(`${first}: its bytes do not hash to its name`)));
  const step = /^a pack whose content is damaged stays reused by every push .*: move it out of the repository/;
  assert.equal(damaged.notes.filter((note) => step.test(note)).length, 1, damaged.notes.join("\n"));
  Deno.writeFileSync(path, original);
  Deno.removeSync(path);
  assert.match(await fetchError(f, pushed.snapshot), new RegExp(`repository object missing: ${first}`));
  const verified = await verifyRepository(f.backend);
  assert.deepEqual(verified.errors, [`${first}: missing (needed by ${pushed.snapshot})`]);
  assert.ok(!verified.notes.some((note) => step.test(note)), "a missing pack is reused by no push");
  const link = join(f.repoDir, "packs", "00", "0".repeat(64));
  Deno.mkdirSync(join(f.repoDir, "packs", "00"), { recursive: true });
  Deno.symlinkSync(second, link); // a link where a pack would be: no pack's content is judged
  const linked = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.ok(linked.errors.some((line) => line.includes("a symbolic link")), linked.errors.join("\n"));
  assert.ok(!linked.notes.some((note) => step.test(note)), linked.notes.join("\n"));
});

Deno.test("remote integrity: a replaced snapshot object, or one whose refs are missing, is refused", async () => {
  const { f, pushed } = await pushedFixture();
  using _ = f;
  const name = `snapshots/${pushed.snapshot}`;
  const path = join(f.repoDir, name);
  const original = Deno.readFileSync(path);
  const tampered = original.slice();
  tampered[tampered.length - 10] ^= 1;
  Deno.writeFileSync(path, tampered);
  assert.match(await fetchError(f, pushed.snapshot), new RegExp(`^${name}: its SHA-256 is not the one refs/`));
  const refs = join(f.repoDir, "refs", pushed.snapshot);
  Deno.removeSync(refs);
  const noMac = new RegExp(
    `^refs/${pushed.snapshot}: missing, so ${name} carries no MAC and may be a writer's forgery`,
  );
  assert.match(await fetchError(f, pushed.snapshot), noMac, "refused unread");
  assert.match(
    await fetchError(f, pushed.snapshot, f.identity, true),
    new RegExp(`^${name}: age payload authentication failed`),
  );
});

Deno.test("remote integrity: a snapshot object swapped under another name, or copied from another repository, is refused", async () => {
  const { f, pushed } = await pushedFixture();
  using _ = f;
  const original = Deno.readFileSync(join(f.repoDir, "snapshots", pushed.snapshot));
  const refsText = Deno.readTextFileSync(join(f.repoDir, "refs", pushed.snapshot));

  // The same snapshot object under another snapshot's name (its refs rewritten to match): its MAC names the first,
  // and without the MAC (allowed unauthenticated) the name inside differs.
  const otherKey = pushed.snapshot.replace(/_.*/, "_00000000000000ff");
  Deno.writeFileSync(join(f.repoDir, "snapshots", otherKey), original);
  const otherRefs = join(f.repoDir, "refs", otherKey);
  Deno.writeTextFileSync(otherRefs, refsText.replace(pushed.snapshot, otherKey));
  const wrongMac = new RegExp(`^refs/${otherKey}: the MAC for ${f.recipient} does not match snapshots/${otherKey}`);
  assert.match(await fetchError(f, otherKey), wrongMac);
  assert.match(await fetchError(f, otherKey, f.identity, true), wrongMac, "a wrong MAC is refused all the same");
  const unsigned = JSON.parse(Deno.readTextFileSync(otherRefs));
  delete unsigned.auth;
  Deno.writeTextFileSync(otherRefs, JSON.stringify(unsigned));
  assert.match(await fetchError(f, otherKey), new RegExp(`^refs/${otherKey}: no MAC for the identity's recipient`));
  assert.match(await fetchError(f, otherKey, f.identity, true), /\(swapped\)/);
  Deno.writeTextFileSync(otherRefs, refsText.replace(pushed.snapshot, otherKey));

  // A snapshot pushed to another repository with the same recipient and key, copied in with its refs and packs: its
  // MAC names the other repository, and without it the document does.
  using g = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  Deno.removeSync(g.repoDir, { recursive: true });
  await initRepository(openFolderBackend(g.repoDir), [f.recipient]);
  const foreign = await pushSnapshot(g.config, openFolderBackend(g.repoDir), (await snapshotOf(g)).root, f.auth);
  for (const object of await objectNames(openFolderBackend(g.repoDir))) {
    if (object.startsWith("leases/")) continue;
    Deno.mkdirSync(join(f.repoDir, object, ".."), { recursive: true });
    Deno.copyFileSync(join(g.repoDir, object), join(f.repoDir, object));
  }
  assert.match(await fetchError(f, foreign.snapshot), new RegExp(`^refs/${foreign.snapshot}: the MAC for `));
  const foreignRefs = join(f.repoDir, "refs", foreign.snapshot);
  const stripped = JSON.parse(Deno.readTextFileSync(foreignRefs));
  delete stripped.auth;
  Deno.writeTextFileSync(foreignRefs, JSON.stringify(stripped));
  assert.match(await fetchError(f, foreign.snapshot, f.identity, true), /belongs to another repository/);
  const verified = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.equal(verified.errors.length, 2, verified.errors.join("\n"));
  assert.match(verified.errors.join("\n"), new RegExp(`refs/${otherKey}: the MAC for`));
  assert.match(verified.errors.join("\n"), new RegExp(`refs/${foreign.snapshot}: no MAC for`));
});

Deno.test("remote verify: sizes without the identity, content with it; a subset reads some packs", async () => {
  const { f, pushed } = await pushedFixture();
  using _ = f;
  const plain = await verifyRepository(f.backend);
  assert.deepEqual([plain.ok, plain.snapshots, plain.packs_read], [true, 1, 0]);
  const full = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.equal(full.ok, true);
  assert.equal(full.packs_read, plain.packs_referenced);
  assert.ok(full.extents_checked > 0);
  const none = await verifyRepository(f.backend, { identities: [f.identity], readData: true, subset: 0 });
  assert.equal(none.packs_read, 0);
  await assert.rejects(verifyRepository(f.backend, { readData: true }), /needs the identity/);

  const [pack] = await objectNames(f.backend, "packs/");
  const bytes = Deno.readFileSync(join(f.repoDir, pack));
  Deno.writeFileSync(join(f.repoDir, pack), bytes.subarray(0, bytes.length - 1));
  const truncated = await verifyRepository(f.backend);
  assert.deepEqual(truncated.errors, [
    `${pack}: ${bytes.length - 1} bytes, refs record ${bytes.length} (truncated; needed by ${pushed.snapshot})`,
  ]);
  const flipped = bytes.slice();
  flipped[200] ^= 1;
  Deno.writeFileSync(join(f.repoDir, pack), flipped);
  assert.equal((await verifyRepository(f.backend)).ok, true, "same size: only reading the data can tell");
  const read = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.deepEqual(read.errors.map((error) => error.split(":")[0]), [pack]);
  void pushed;
});

/**
 * `verify` reads the data of `f` with `extra` options through a backend that counts reads of snapshot objects in
 * `reads.documents` and runs `reads.onRead` before each, and returns the result and the rounds it took.
 */
function countingVerify(f: RepoFixture) {
  const reads = { documents: 0, onRead: (_name: string) => {} };
  const backend: Backend = {
    location: f.backend.location,
    list: (prefix) => f.backend.list(prefix),
    read: (name, into, max) => {
      if (name.startsWith("snapshots/")) {
        reads.documents += 1;
        reads.onRead(name);
      }
      return f.backend.read(name, into, max);
    },
    stat: (name) => f.backend.stat(name),
    write: (name, content, options) => f.backend.write(name, content, options),
    remove: (name) => f.backend.remove(name),
  };
  const verify = async (extra: VerifyOptions) => {
    reads.documents = 0;
    const result = await verifyRepository(backend, { identities: [f.identity], readData: true, ...extra });
    return { result, rounds: reads.documents / 2 - 1 }; // the first pass reads each document twice, a next round once
  };
  return { reads, verify };
}

Deno.test("remote verify: ranges past the budget are read in rounds of packs: each pack once, damage in any named", async () => {
  using f = await repoFixture({ dbMiB: 24, chromaMiB: 1 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  updateRows(f.store.db, 0.05);
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  const packs = (await objectNames(f.backend, "packs/")).sort();
  const places = new Set(packs.map((pack) => pack.slice(9, 17))).size; // a round holds whole places (8 hex digits)
  assert.ok(packs.length >= 3, `${packs.length} packs`);
  const { reads, verify } = countingVerify(f);
  const once = await verify({});
  assert.equal(once.rounds, 1);
  const counts = ({ result }: typeof once) => [result.ok, result.packs_read, result.extents_checked, result.bytes_read];
  const tiny = await verify({ rangeBudget: 1 });
  assert.deepEqual([counts(tiny), tiny.rounds], [counts(once), places], "a round for each place, none empty");
  assert.deepEqual(counts(await verify({ rangeBudget: 65536 })), counts(once));
  for (const pack of [packs[0], packs.at(-1)!]) { // in the first round and in the last
    const bytes = Deno.readFileSync(join(f.repoDir, pack));
    const flipped = bytes.slice();
    flipped[200] ^= 1;
    Deno.writeFileSync(join(f.repoDir, pack), flipped);
    const { result } = await verify({ rangeBudget: 1 });
    assert.deepEqual(result.errors.map((error) => error.split(":")[0]), [pack]);
    Deno.writeFileSync(join(f.repoDir, pack), bytes);
  }
  // a subset is drawn once from every pack, not in each round
  const half = await verify({ rangeBudget: 1, subset: 50 });
  assert.equal(half.result.packs_read, Math.ceil(packs.length / 2));
  // a snapshot removed between rounds (a cleanup) is a note, once, and no error
  const [first] = await objectNames(f.backend, "snapshots/");
  const firstBytes = Deno.readFileSync(join(f.repoDir, first));
  reads.onRead = (name) => {
    if (name === first && reads.documents === 5) Deno.removeSync(join(f.repoDir, first)); // its first re-read
  };
  const gone = await verify({ rangeBudget: 1 });
  reads.onRead = () => {};
  Deno.writeFileSync(join(f.repoDir, first), firstBytes);
  assert.deepEqual(gone.result.errors, []);
  assert.equal(gone.result.notes.filter((note) => note.includes(first)).length, 1, gone.result.notes.join("\n"));
  assert.match(
    gone.result.notes.join("\n"),
    /repository object missing: snapshots\/\S+ .* \(read again for a next round/,
  );
});

Deno.test("remote repository: init refuses a non-empty folder or a second init; open refuses a newer format or no config", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  await assert.rejects(initRepository(f.backend, [f.recipient]), /already a repository; use it as it is/);
  const other = join(f.work, "not-a-repo");
  Deno.mkdirSync(other);
  Deno.writeTextFileSync(join(other, "notes.txt"), "mine");
  await assert.rejects(initRepository(openFolderBackend(other), [f.recipient]), /is not empty and not a repository/);
  assert.deepEqual([...Deno.readDirSync(other)].map((entry) => entry.name), ["notes.txt"]);
  for (
    const [name, make] of [
      ["snapshots", (path: string) => Deno.symlinkSync(f.repoDir, path)], // a link to another repository's folder
      ["config", (path: string) => Deno.symlinkSync("/etc/passwd", path)],
      [".hidden", (path: string) => Deno.writeTextFileSync(path, "mine")],
    ] as const
  ) {
    const place = join(f.work, `only-${name}`);
    Deno.mkdirSync(place);
    make(join(place, name));
    await assert.rejects(
      initRepository(openFolderBackend(place), [f.recipient]),
      new RegExp(`is not empty and not a repository \\(${name.replace(".", "\\.")} …\\)`),
    );
    assert.deepEqual([...Deno.readDirSync(place)].map((entry) => entry.name), [name], "nothing was written");
  }
  await assert.rejects(initRepository(openFolderBackend(join(f.work, "x")), []), /no recipient given/);
  await assert.rejects(initRepository(openFolderBackend(join(f.work, "x")), ["age1nope"]), /not an age X25519/);
  await assert.rejects(
    openRepository(openFolderBackend(join(f.work, "empty"))),
    /no repository at .*; check the location given \(--remote or ATOCORE_BACKUP_REMOTE\) .* 'remote init'$/,
  );
  const config = JSON.parse(Deno.readTextFileSync(join(f.repoDir, "config")));
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  Deno.removeSync(join(f.repoDir, "config")); // a repository that lost its config is not offered 'remote init'
  await assert.rejects(
    openRepository(f.backend),
    /holds 1 snapshot object\(s\) but no config \(removed\?\); nothing was done; put the config back .*pin\.json/,
  );
  Deno.writeTextFileSync(join(f.repoDir, "config"), JSON.stringify({ ...config, version: 2 }));
  await assert.rejects(openRepository(f.backend), /format version 2; this tool reads version 1/);
});

Deno.test("remote pin: a repository re-created or re-keyed after the first push is refused as an attack", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  const intruder = generateIdentity();
  await assert.rejects(
    pushSnapshot(f.config, f.backend, root, { ...f.auth, recipients: [intruder.recipient] }),
    /are not the ones given .* a swapped recipient is an attack/,
  );
  const first = await pushSnapshot(f.config, f.backend, root, { ...f.auth, recipients: [f.recipient] });
  assert.equal(first.pinned, true);
  const configPath = join(f.repoDir, "config");
  const config = JSON.parse(Deno.readTextFileSync(configPath));
  Deno.writeTextFileSync(configPath, JSON.stringify({ ...config, recipients: [intruder.recipient] }));
  const second = await snapshotOf(f);
  await assert.rejects(
    pushSnapshot(f.config, f.backend, second.root, f.auth),
    /the recipients of the repository .* changed/,
  );
  Deno.removeSync(f.repoDir, { recursive: true });
  // re-created between two runs (one run that saw it never takes one made meanwhile: see the unmount test)
  const recreated = openFolderBackend(f.repoDir);
  await initRepository(recreated, [f.recipient]);
  await assert.rejects(
    pushSnapshot(f.config, openFolderBackend(f.repoDir), second.root, f.auth),
    /the id of the repository .* changed since/,
  );
  assert.deepEqual(await objectNames(openFolderBackend(f.repoDir)), [], "nothing was written to a refused repository");
});

Deno.test("remote pin: the same folder spelt another way (trailing or doubled slash, a link to it) is the same pin", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  const first = await pushSnapshot(f.config, f.backend, root, f.auth);
  const link = join(f.work, "offsite-link");
  Deno.symlinkSync(f.repoDir, link);
  const spellings = [`file://${f.repoDir}/`, `file://${f.repoDir.replace("/repo", "//repo")}`, `file://${link}`];
  for (const spelling of spellings) {
    const again = await pushSnapshot(f.config, openFolderBackend(spelling), root, f.auth);
    assert.equal(again.already_pushed, true, `${spelling} pushed the snapshot a second time`);
    assert.equal(again.snapshot, first.snapshot);
  }
  const configPath = join(f.repoDir, "config");
  const config = JSON.parse(Deno.readTextFileSync(configPath));
  Deno.writeTextFileSync(configPath, JSON.stringify({ ...config, recipients: [generateIdentity().recipient] }));
  const second = await snapshotOf(f);
  for (const spelling of spellings) {
    await assert.rejects(
      pushSnapshot(f.config, openFolderBackend(spelling), second.root, f.auth),
      /the recipients of the repository .* changed since this host pinned it/,
      spelling,
    );
    for (const command of [["remote", "list"], ["remote", "cleanup"]]) { // the commands that read are held to it too
      const run = await runCli([...command, "--remote", spelling], { env: f.env });
      assert.equal(run.code, 3, `${command.join(" ")} ${spelling}: ${run.stderr}`);
      assert.match(run.stderr, /changed since this host pinned it/);
    }
  }
});

Deno.test("remote: a snapshot document that decompresses far past its size is refused before it is decompressed", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  await pushSnapshot(f.config, f.backend, root, f.auth);
  const text = `{"format":1,"pad":"${"a".repeat(40 << 20)}"}`; // 40 MiB in about 4 KB: anyone with the recipient can
  const sealed = ageEncrypt(zstdCompressSync(new TextEncoder().encode(text)), [f.recipient]);
  const key = { stamp: "20300101T000000Z", pushId: "00000000deadbeef" };
  const name = `${key.stamp}_${key.pushId}`;
  Deno.writeFileSync(join(f.repoDir, "snapshots", name), sealed);
  const sha256 = createHash("sha256").update(sealed).digest("hex");
  Deno.writeTextFileSync(
    join(f.repoDir, "refs", name),
    JSON.stringify({ snapshot: name, snapshot_sha256: sha256, packs: [] }),
  );
  const repository = await openRepository(f.backend);
  await assert.rejects(readSnapshot(repository, [f.identity], key), /refs\/.*: no MAC for the identity's recipient/);
  await assert.rejects(
    readSnapshot(repository, [f.identity], key, { allowUnauthenticated: true }),
    new RegExp(`snapshots/${name}: decompresses to more than \\d+ bytes, more than this tool writes there`),
  );
});

Deno.test("remote: a pack larger than any pack can be is refused unread by restore and verify", async () => {
  using f = await repoFixture({ dbMiB: 2, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  const pack = (await objectNames(f.backend, "packs/"))[0];
  Deno.writeFileSync(join(f.repoDir, pack), new Uint8Array(12 << 20)); // larger than any pack
  const grown = new RegExp(`${pack} in .* has ${12 << 20} bytes, more than the \\d+ an object of its kind can have`);
  await assert.rejects(fetchSnapshot(f.backend, [f.identity], pushed.snapshot, join(f.work, "fetched")), grown);
  const verified = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.ok(verified.errors.some((error) => grown.test(error)), verified.errors.join("\n"));
  assert.ok(verified.errors.every((error) => !error.includes("remote verify")), "verify tells its reader to verify");
  const other = (await objectNames(f.backend, "packs/")).find((name) => name !== pack)!;
  Deno.removeSync(join(f.repoDir, other));
  Deno.mkdirSync(join(f.repoDir, other)); // a folder where a pack is: "altered by hand"
  const again = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.ok(again.errors.length >= 2, again.errors.join("\n"));
  assert.ok(again.errors.every((error) => !error.includes("remote verify")), again.errors.join("\n"));
});

Deno.test("remote: drill --from-remote --latest passes over a snapshot stamped in the future, with a warning", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root, stamp } = await snapshotOf(f);
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  const future = "20991231T000000Z_0123456789abcdef";
  for (const folder of ["snapshots", "refs"]) {
    const text = Deno.readTextFileSync(join(f.repoDir, folder, pushed.snapshot)); // refs name their snapshot: renamed
    Deno.writeTextFileSync(
      join(f.repoDir, folder, future),
      folder === "refs" ? text.replaceAll(pushed.snapshot, future) : text,
    );
  }
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}`, ATOCORE_BACKUP_IDENTITY_FILE: f.keyFile };
  const drilled = await runCli(["drill", "--from-remote", "--latest"], { env });
  assert.equal(drilled.code, 0, drilled.stderr);
  assert.equal((drilled.json as { stamp: string }).stamp, stamp);
  assert.match(drilled.stderr, /"event":"drill_latest_skipped_future","stamps":\["20991231T000000Z"\]/);
  for (const folder of ["snapshots", "refs"]) Deno.removeSync(join(f.repoDir, folder, pushed.snapshot));
  const none = await runCli(["drill", "--from-remote", "--latest"], { env });
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /error: every snapshot in .* is stamped in the future \(newest 20991231T000000Z\)/);
  const { ATOCORE_BACKUP_REMOTE: _given, ...flagged } = env; // the repository as a flag: the list printed carries it
  const named = await runCli(["drill", "--from-remote", "--latest", "--remote", f.repoDir], { env: flagged });
  assert.equal(named.code, 1, named.stderr);
  const printed = printedCommand(oneErrorLine(named, "only future"), "give one by its name; see them with");
  assert.ok(printed !== null, named.stderr);
  const listed = await runPrinted(printed, flagged); // pasted into a shell as it is
  // it lists the repository given (exit 1 for the renamed refs, whose MAC no longer matches)
  assert.equal(listed.code, 1, `${printed}: ${listed.stderr}`);
  assert.deepEqual((listed.json as { snapshots: { snapshot: string }[] }).snapshots.map((one) => one.snapshot), [
    future,
  ]);
});

Deno.test("remote verify and list: an object replaced by a symbolic link, a FIFO or a folder is named, not silently omitted", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  const object = join(f.repoDir, "snapshots", pushed.snapshot);
  Deno.renameSync(object, join(f.work, "elsewhere"));
  Deno.symlinkSync(join(f.work, "elsewhere"), object);
  const verified = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.deepEqual(verified.errors, [
    `snapshots/${pushed.snapshot}: a symbolic link, folder or special file where objects are, made by hand; put the object back from a copy of the repository, or remove it`,
  ]);
  assert.equal(verified.ok, false);
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}` };
  const listed = await runCli(["remote", "list"], { env }); // not listed, but named: never silently passed over
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual((listed.json as { not_objects: string[] }).not_objects, [`snapshots/${pushed.snapshot}`]);
  assert.match(listed.stderr, /"event":"remote_snapshot_not_an_object".*"name":"snapshots\//);
  const named = await runCli(["remote", "list", "--remote", f.repoDir], { env: f.env }); // the verify it prints runs
  const event = named.stderr.split("\n").find((line) => line.includes("remote_snapshot_not_an_object")) ?? "";
  const printed = printedCommand(JSON.parse(event).next_step ?? "", "check the repository with");
  assert.ok(printed !== null, event);
  const verify = await runPrinted(printed, f.env); // pasted into a shell as it is: the repository given, its finding
  assert.equal(verify.code, 1, `${printed}: ${verify.stderr}`);
  assert.match(verify.stderr, /a symbolic link, folder or special file where objects are/, printed);
  const pack = (await objectNames(f.backend, "packs/"))[0];
  Deno.removeSync(join(f.repoDir, pack));
  assert.equal(new Deno.Command("mkfifo", { args: [join(f.repoDir, pack)] }).outputSync().code, 0);
  const fifo = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.ok(
    fifo.errors.includes(
      `${pack}: a symbolic link, folder or special file where objects are, made by hand; put the object back from a copy of the repository, or remove it`,
    ),
    fifo.errors.join("\n"),
  );
  Deno.removeSync(object);
  Deno.mkdirSync(object); // a folder: the snapshot gone from every listing, unsaid
  for (const kind of ["leases", "condemned"]) {
    Deno.mkdirSync(join(f.repoDir, kind, "0123456789abcdef"), { recursive: true });
  }
  const folder = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  for (const name of [`snapshots/${pushed.snapshot}`, "leases/0123456789abcdef", "condemned/0123456789abcdef"]) {
    const error =
      `${name}: a symbolic link, folder or special file where objects are, made by hand; put the object back from a copy of the repository, or remove it`;
    assert.ok(folder.errors.includes(error), folder.errors.join("\n"));
  }
});

Deno.test("remote: a socket in place of a pack is named as the repository's alteration: restore refuses (exit 3), verify says so", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  const pushed = await pushSnapshot(f.config, f.backend, root, f.auth);
  const pack = (await objectNames(f.backend, "packs/"))[0];
  Deno.removeSync(join(f.repoDir, pack));
  const short = join(f.work, "s"); // a socket's path has at most 107 bytes: made there, then moved in place
  using _socket = Deno.listen({ transport: "unix", path: short }); // open to the end: closing it removes its file
  Deno.renameSync(short, join(f.repoDir, pack));
  const altered = `${join(f.repoDir, pack)} is a socket or a device; the repository folder was altered by hand`;
  const verified = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.ok(verified.errors.includes(altered), verified.errors.join("\n"));
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}`, ATOCORE_BACKUP_IDENTITY_FILE: f.keyFile };
  const to = join(f.work, "restored");
  const run = await runCli(["restore", pushed.snapshot, "--from-remote", "--to", to], { env });
  assert.equal(run.code, 3, run.stderr);
  const line = run.stderr.trim().split("\n").filter((text) => text.includes("error:"));
  assert.equal(line.length, 1, run.stderr);
  assert.ok(line[0].includes(altered), line[0]);
  assert.doesNotMatch(line[0], /scratch-dir|ENXIO/, "the repository is at fault, not the scratch folder");
  assert.equal(statOrNull(to), null, "nothing restored");
});

Deno.test("remote: a .tmp that is a link fails a push with a next step of its own; verify, which never reads it, is clean", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  await pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth);
  Deno.removeSync(join(f.repoDir, ".tmp"), { recursive: true });
  Deno.mkdirSync(join(f.work, "elsewhere"));
  Deno.symlinkSync(join(f.work, "elsewhere"), join(f.repoDir, ".tmp"));
  updateRows(f.store.db, 0.05);
  await assert.rejects(
    pushSnapshot(f.config, f.backend, (await snapshotOf(f)).root, f.auth),
    /\.tmp is not a folder \(a link\?\): writes are staged there and no object lives in it; remove it, then run again/,
  );
  assert.deepEqual([...Deno.readDirSync(join(f.work, "elsewhere"))], [], "a write went through the link");
});

Deno.test("remote: a drill whose fetch fails still reports its --max-age check", async () => {
  using f = await repoFixture({ dbMiB: 1, chromaMiB: 1 });
  const { root } = await snapshotOf(f);
  await pushSnapshot(f.config, f.backend, root, f.auth);
  for (const pack of await objectNames(f.backend, "packs/")) {
    const path = join(f.repoDir, pack);
    Deno.writeFileSync(path, new Uint8Array(Deno.statSync(path).size)); // same size, not a pack
  }
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}`, ATOCORE_BACKUP_IDENTITY_FILE: f.keyFile };
  const drilled = await runCli(["drill", "--from-remote", "--latest", "--max-age", "1h"], { env });
  assert.equal(drilled.code, 1, drilled.stderr);
  const checks = (drilled.json as { checks: { name: string; status: string }[] }).checks;
  assert.deepEqual(checks.find((check) => check.name === "recovery_point")?.status, "passed");
});

Deno.test("remote list, verify and cleanup show a writer's control characters escaped: no ESC reaches the terminal, no forged row", async () => {
  const { f, pushed } = await pushedFixture();
  using _ = f;
  const hostile = "vm\u001b[2J\nFAKE-ROW";
  const name = `snapshots/${pushed.snapshot}`;
  const plain = zstdDecompressSync(ageDecrypt(Deno.readFileSync(join(f.repoDir, name)), [f.identity]));
  const document = JSON.parse(new TextDecoder().decode(plain));
  const text = JSON.stringify({ ...document, host: hostile, pushed_at: `${document.pushed_at}\u001b[1A` });
  const sealed = ageEncrypt(zstdCompressSync(new TextEncoder().encode(text)), [f.recipient]);
  Deno.writeFileSync(join(f.repoDir, name), sealed); // sealed to the public recipient: any writer can; no MAC
  const refsPath = join(f.repoDir, "refs", pushed.snapshot);
  const { auth: _mac, ...refs } = JSON.parse(Deno.readTextFileSync(refsPath));
  const sha256 = createHash("sha256").update(sealed).digest("hex");
  Deno.writeTextFileSync(refsPath, JSON.stringify({ ...refs, snapshot_sha256: sha256 }));
  Deno.writeTextFileSync(join(f.repoDir, "packs", `junk${hostile}`), "not a pack");
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}`, ATOCORE_BACKUP_IDENTITY_FILE: f.keyFile };
  const context = { env, cwd: f.work, now: new Date(), reporter: SILENT };
  const listed = await remoteListCommand.run({}, [], context);
  assert.equal((listed.result as { snapshots: { host: string }[] }).snapshots[0].host, hostile, "JSON keeps it");
  const verified = await remoteVerifyCommand.run({}, [], context);
  for (const [what, outcome, lines] of [["list", listed, 4], ["verify", verified, 3]] as const) {
    assert.ok(!outcome.text.includes("\u001b"), `${what}: a raw ESC: ${JSON.stringify(outcome.text)}`);
    assert.equal(outcome.text.split("\n").length, lines, `${what}: ${outcome.text}`);
    assert.match(outcome.text, /vm\\x1b\[2J\\nFAKE-ROW/, what);
  }
  assert.match(
    listed.text,
    /\nthis backup folder pushes as source [0-9a-f]{16}$/,
    "the list's last line: its own source",
  );
  const fifo = join(f.repoDir, `fifo${hostile}`); // named in cleanup's ERROR line
  assert.equal(new Deno.Command("mkfifo", { args: [fifo] }).outputSync().code, 0);
  const cleaned = await remoteCleanupCommand.run({}, [], context);
  assert.ok(!cleaned.text.includes("\u001b"), `cleanup: a raw ESC: ${JSON.stringify(cleaned.text)}`);
  assert.match(cleaned.text, /ERROR fifovm\\x1b\[2J\\nFAKE-ROW/);
});

Deno.test("remote list: refs that exist but cannot be read (not JSON, malformed, too large) are said so, exit 1, not 'missing'", async () => {
  const { f, pushed } = await pushedFixture();
  using _ = f;
  const refsPath = join(f.repoDir, "refs", pushed.snapshot);
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}` };
  const context = { env, cwd: f.work, now: new Date(), reporter: SILENT };
  const cases: [string, string | Uint8Array, RegExp][] = [
    ["not JSON", "{{{", /is not JSON; the repository was altered/],
    ["malformed", JSON.stringify({ snapshot: "another" }), /is malformed or names another snapshot/],
    ["too large", new Uint8Array(9 << 20).fill(32), /refs\/\S+/],
  ];
  for (const [what, bytes, reason] of cases) {
    if (typeof bytes === "string") Deno.writeTextFileSync(refsPath, bytes);
    else Deno.writeFileSync(refsPath, bytes);
    const listed = await remoteListCommand.run({}, [], context);
    assert.equal(listed.exitCode, 1, `${what}: ${listed.text}`);
    assert.match(listed.text, /\(refs unreadable: /, what);
    assert.doesNotMatch(listed.text, /refs missing/, what);
    const entry = (listed.result as { snapshots: { refs: boolean; refs_error?: string }[] }).snapshots[0];
    assert.equal(entry.refs, false, what);
    assert.match(entry.refs_error ?? "", reason, what);
  }
  Deno.removeSync(refsPath);
  const missing = await remoteListCommand.run({}, [], context);
  assert.equal(missing.exitCode, 0, "refs that do not exist are listed as missing, as before (verify reports them)");
  assert.match(missing.text, /\(refs missing\)/);
});

Deno.test("remote: a writer's folders nested past the path limit under packs/ are one name ignored: verify, cleanup and push go on", async () => {
  const { f, pushed } = await pushedFixture();
  using _ = f;
  const deep = ["packs", "ab", ...Array.from({ length: 1100 }, () => "aaaa")];
  const cwd = Deno.cwd();
  try {
    for (const segment of deep) { // each mkdir relative to the last: the whole path is past PATH_MAX (4,095)
      Deno.mkdirSync(segment === "packs" ? join(f.repoDir, segment) : segment, { recursive: true });
      Deno.chdir(segment === "packs" ? join(f.repoDir, segment) : segment);
    }
    Deno.writeFileSync("x", new Uint8Array(1));
  } finally {
    Deno.chdir(cwd);
  }
  const env = { ...f.env, ATOCORE_BACKUP_REMOTE: `file://${f.repoDir}`, ATOCORE_BACKUP_IDENTITY_FILE: f.keyFile };
  const context = { env, cwd: f.work, now: new Date(), reporter: SILENT };
  const verified = await verifyRepository(f.backend, { identities: [f.identity], readData: true });
  assert.deepEqual([verified.ok, verified.notes], [true, ["packs/ab/aaaa/: not an object of this format; ignored"]]);
  const cleaned = await remoteCleanupCommand.run({ confirm: true }, [], context);
  assert.equal(cleaned.exitCode, 0, cleaned.text);
  updateRows(f.store.db, 0.05);
  const { root } = await snapshotOf(f);
  const second = await pushSnapshot(f.config, f.backend, root, f.auth);
  assert.notEqual(second.snapshot, pushed.snapshot);
  assert.ok(Deno.statSync(join(f.repoDir, "packs", "ab", "aaaa")).isDirectory, "never deleted: not the format's");
});

Deno.test("remote verify: a writer's many names that are not objects, or links, are told 20 by name and the rest counted", async () => {
  const { f } = await pushedFixture();
  using _ = f;
  Deno.mkdirSync(join(f.repoDir, "packs", "ab"), { recursive: true });
  for (let i = 0; i < 30; i++) {
    Deno.writeFileSync(join(f.repoDir, i % 2 ? "snapshots" : "packs/ab", `junk${i}`), new Uint8Array(1));
    Deno.symlinkSync("/etc/passwd", join(f.repoDir, "refs", `link${i}`));
  }
  const verified = await verifyRepository(f.backend);
  assert.equal(verified.notes.length, 21, verified.notes.join("\n"));
  assert.equal(verified.notes.at(-1), "10 more names not objects of this format; ignored (not named)");
  assert.equal(verified.errors.length, 21, verified.errors.join("\n"));
  assert.equal(
    verified.errors.at(-1),
    "10 more symbolic links, folders or special files where objects are (not named)",
  );
});
