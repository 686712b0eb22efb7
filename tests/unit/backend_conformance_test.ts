/**
 * What every backend must do, as one function over a backend factory (SFTP and S3 run it later), run here against the
 * folder backend; then what only the folder backend promises (temporary files hidden, symbolic links never followed).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Backend, ObjectExistsError, ObjectNotFoundError } from "../../src/repo/backend.ts";
import { openFolderBackend } from "../../src/repo/folder.ts";
import { skipBecause, tempDir } from "../_helpers.ts";
import { bindMount } from "../_mount.ts";
import { startSwapper } from "../_swapper.ts";

/** A fresh, empty backend for one test, disposed of at its end. */
export type BackendFactory = () => Promise<{ backend: Backend } & AsyncDisposable>;

const bytes = (text: string) => new TextEncoder().encode(text);

/** A conformance test: its name and its body, run on a new backend. */
type ConformanceTest = (name: string, body: (backend: Backend) => Promise<void>) => void;

/** Register the conformance tests of a backend kind under `label`. */
export function backendConformance(label: string, make: BackendFactory): void {
  const test: ConformanceTest = (name, body) =>
    Deno.test(`backend conformance (${label}): ${name}`, async () => {
      await using made = await make();
      await body(made.backend);
    });
  writesAndLists(test);
  refusalsAndAbsence(test);
}

/** Writing, reading and listing, exclusive writes included. */
function writesAndLists(test: ConformanceTest): void {
  test("write then read gives the same bytes, empty and large objects included", async (backend) => {
    const large = new Uint8Array(3_000_001).map((_, index) => index * 7);
    await backend.write("packs/ab/one", large, { exclusive: true });
    await backend.write("config", new Uint8Array(0), { exclusive: true });
    assert.deepEqual(await backend.read("packs/ab/one"), large);
    assert.equal((await backend.read("config")).length, 0);
    assert.deepEqual(await backend.stat("packs/ab/one"), { name: "packs/ab/one", size: 3_000_001 });
    const into = new Uint8Array(3_000_010);
    const view = await backend.read("packs/ab/one", into);
    assert.deepEqual(view, large, "read into a buffer that fits");
    assert.equal(view.buffer, into.buffer, "a view of the buffer given");
    assert.deepEqual(await backend.read("packs/ab/one", new Uint8Array(10)), large, "a buffer too small is not used");
  });

  test("list: every object under a prefix, recursive, sorted, with sizes; a missing prefix is empty", async (b) => {
    for (const name of ["refs/b", "packs/cd/2", "packs/ab/1", "refs/a", "config"]) {
      await b.write(name, bytes(name), { exclusive: true });
    }
    assert.deepEqual(await b.list("packs/"), [{ name: "packs/ab/1", size: 10 }, { name: "packs/cd/2", size: 10 }]);
    assert.deepEqual((await b.list("refs/")).map((info) => info.name), ["refs/a", "refs/b"]);
    assert.deepEqual((await b.list("")).map((info) => info.name), [
      "config",
      "packs/ab/1",
      "packs/cd/2",
      "refs/a",
      "refs/b",
    ]);
    assert.deepEqual(await b.list("leases/"), []);
  });

  test("an exclusive write over an existing object is refused and changes nothing", async (backend) => {
    await backend.write("snapshots/s", bytes("first"), { exclusive: true });
    await assert.rejects(backend.write("snapshots/s", bytes("second"), { exclusive: true }), ObjectExistsError);
    assert.equal(new TextDecoder().decode(await backend.read("snapshots/s")), "first");
    await backend.write("snapshots/s", bytes("third"), { exclusive: false });
    assert.equal(new TextDecoder().decode(await backend.read("snapshots/s")), "third");
  });

  test("of concurrent exclusive writes of one name exactly one wins", async (backend) => {
    const writes = Array.from(
      { length: 8 },
      (_, index) => backend.write("leases/x", bytes(`writer ${index}`), { exclusive: true }),
    );
    const outcomes = await Promise.allSettled(writes);
    assert.equal(outcomes.filter((outcome) => outcome.status === "fulfilled").length, 1);
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") assert.ok(outcome.reason instanceof ObjectExistsError);
    }
    assert.match(new TextDecoder().decode(await backend.read("leases/x")), /^writer \d$/);
  });
}

/** What is missing, and names that are not plain. */
function refusalsAndAbsence(test: ConformanceTest): void {
  test("missing objects: read fails naming the object, stat is null, remove is a no-op", async (backend) => {
    await assert.rejects(backend.read("refs/none"), (error: Error) => {
      assert.ok(error instanceof ObjectNotFoundError);
      assert.match(error.message, /refs\/none/);
      return true;
    });
    assert.equal(await backend.stat("refs/none"), null);
    await backend.remove("refs/none");
    await backend.write("refs/one", bytes("1"), { exclusive: true });
    await backend.remove("refs/one");
    assert.equal(await backend.stat("refs/one"), null);
    assert.deepEqual(await backend.list("refs/"), []);
  });

  test("names that are not plain are refused before anything is touched", async (backend) => {
    for (const name of ["../x", "/etc/passwd", "a//b", ".tmp/x", "a/./b", "a/../b", "", "a/", "a\0b", "a\\b", "~"]) {
      await assert.rejects(backend.write(name, bytes("x"), { exclusive: false }), RangeError, name);
      await assert.rejects(backend.read(name), RangeError, name);
      await assert.rejects(backend.remove(name), RangeError, name);
    }
    await assert.rejects(backend.list("packs"), RangeError);
    await assert.rejects(backend.list("../"), RangeError);
    assert.deepEqual(await backend.list(""), []);
  });
}

backendConformance("folder", () => {
  const dir = tempDir("atocore-repo-");
  return Promise.resolve({
    backend: openFolderBackend(join(dir.path, "repo")),
    [Symbol.asyncDispose]: () => Promise.resolve(dir[Symbol.dispose]()),
  });
});

Deno.test("folder backend: file:// URLs and plain paths; another scheme is refused", () => {
  assert.equal(openFolderBackend("file:///mnt/off%20site/a").location, "file:///mnt/off site/a");
  assert.equal(openFolderBackend("rel/repo", "/srv").location, "file:///srv/rel/repo");
  assert.throws(() => openFolderBackend("s3://bucket/x"), /not supported/);
  assert.throws(() => openFolderBackend("file://host/x"), /not a local file URL/);
  assert.equal(openFolderBackend("file:/mnt/offsite", "/srv").location, "file:///mnt/offsite"); // one slash: a URL
  assert.throws(() => openFolderBackend("file:offsite", "/srv"), /not a local file URL: "file:offsite"/);
  assert.throws(() => openFolderBackend(""), /empty/);
  for (const spec of ["file:///mnt/offsite?x=1", "file:///mnt/offsite#a", "file:///mnt/offsite?"]) {
    assert.throws(() => openFolderBackend(spec), /has a query or fragment \(\? or #\).*%3F/, spec);
  }
  assert.equal(openFolderBackend("file:///mnt/off%3Fsite").location, "file:///mnt/off?site");
  for (const spec of ["file://", "file://localhost", "file:///mnt/off%00site"]) { // the root folder; a NUL byte
    assert.throws(
      () => openFolderBackend(spec),
      /^UsageError: not a folder's file URL: ".*"; give file:\/\/\/absolute/,
      spec,
    );
  }
  assert.equal(openFolderBackend("/mnt/off?site").location, "file:///mnt/off?site"); // a plain path is no URL
});

Deno.test("folder backend: temporary files are never listed; a write leaves none behind", async () => {
  using dir = tempDir();
  const backend = openFolderBackend(dir.path);
  await backend.write("packs/ab/x", bytes("x"), { exclusive: true });
  await assert.rejects(backend.write("packs/ab/x", bytes("y"), { exclusive: true }), ObjectExistsError);
  assert.deepEqual([...Deno.readDirSync(join(dir.path, ".tmp"))], []);
  Deno.writeTextFileSync(join(dir.path, ".tmp", "left-by-a-crash"), "partial");
  assert.deepEqual((await backend.list("")).map((info) => info.name), ["packs/ab/x"]);
});

Deno.test("folder backend: symbolic links in the repository are never followed", async () => {
  using dir = tempDir();
  const outside = join(dir.path, "outside");
  Deno.mkdirSync(outside);
  Deno.writeTextFileSync(join(outside, "victim"), "keep me");
  const root = join(dir.path, "repo");
  const backend = openFolderBackend(root);
  await backend.write("config", bytes("{}"), { exclusive: true });
  Deno.symlinkSync(outside, join(root, "packs"));
  Deno.symlinkSync(join(outside, "victim"), join(root, "refs-link"));
  assert.deepEqual((await backend.list("")).map((info) => info.name), ["config"]);
  await assert.rejects(backend.remove("packs/victim"), /not a folder/);
  await assert.rejects(backend.read("packs/victim"), /not a folder/);
  await assert.rejects(backend.write("packs/new", bytes("x"), { exclusive: true }), /not a folder/);
  await assert.rejects(backend.read("refs-link"), /refs-link is a symbolic link; the repository folder was altered/);
  await backend.remove("refs-link");
  assert.equal(Deno.readTextFileSync(join(outside, "victim")), "keep me");
  assert.deepEqual([...Deno.readDirSync(outside)].map((entry) => entry.name), ["victim"]);
});

Deno.test("folder backend: an object is opened without following a link or waiting on a FIFO, then checked open", async () => {
  using dir = tempDir();
  const backend = openFolderBackend(dir.path);
  await backend.write("refs/x", bytes("{}"), { exclusive: true });
  Deno.removeSync(join(dir.path, "refs", "x"));
  const made = new Deno.Command("mkfifo", { args: [join(dir.path, "refs", "x")] }).outputSync();
  assert.equal(made.code, 0);
  await assert.rejects(backend.read("refs/x"), /refs\/x is not a regular file; the repository folder was altered/);
  Deno.removeSync(join(dir.path, "refs", "x"));
  Deno.writeTextFileSync(join(dir.path, "secret"), "not an object");
  Deno.symlinkSync(join(dir.path, "secret"), join(dir.path, "refs", "x")); // swapped in after a listing
  await assert.rejects(backend.read("refs/x"), /refs\/x is a symbolic link/);
  await assert.rejects(backend.read("refs/gone"), ObjectNotFoundError);
});

Deno.test("folder backend: staged writes left by killed writers are cleared once older than the age given", async () => {
  using dir = tempDir();
  const backend = openFolderBackend(dir.path);
  await backend.write("packs/ab/x", bytes("x"), { exclusive: true });
  const staging = join(dir.path, ".tmp");
  const day = 24 * 3600_000;
  const old = new Date(Date.now() - 2 * day);
  for (const name of ["old-1", "old-2", "fresh"]) Deno.writeTextFileSync(join(staging, name), "partial");
  for (const name of ["old-1", "old-2"]) Deno.utimeSync(join(staging, name), old, old);
  Deno.mkdirSync(join(staging, "a-folder"));
  Deno.utimeSync(join(staging, "a-folder"), old, old);
  Deno.symlinkSync(join(dir.path, "packs", "ab", "x"), join(staging, "a-link"));
  assert.deepEqual(await backend.clearStaging!(day, true), [".tmp/old-1", ".tmp/old-2"]);
  assert.equal([...Deno.readDirSync(staging)].length, 5, "a dry run removes nothing");
  assert.deepEqual(await backend.clearStaging!(day, false), [".tmp/old-1", ".tmp/old-2"]);
  assert.deepEqual([...Deno.readDirSync(staging)].map((entry) => entry.name).sort(), ["a-folder", "a-link", "fresh"]);
  assert.deepEqual(await backend.read("packs/ab/x"), bytes("x"), "the link's target is untouched");
});

Deno.test("folder backend: clearing staged writes while a writer swaps .tmp for a link never reaches the link's target", async () => {
  using dir = tempDir();
  const repo = join(dir.path, "repo");
  const victim = join(dir.path, "victim");
  const backend = openFolderBackend(repo);
  await backend.write("packs/ab/x", bytes("x"), { exclusive: true });
  Deno.mkdirSync(victim);
  const old = new Date(Date.now() - 3 * 24 * 3600_000);
  for (const name of ["a", "b"]) {
    Deno.writeTextFileSync(join(victim, name), "not the repository's");
    Deno.utimeSync(join(victim, name), old, old);
  }
  // a writer of the repository swapping .tmp for a link to another folder and back, every few milliseconds
  {
    await using _swapper = startSwapper(victim, [join(repo, ".tmp")]);
    for (let run = 0; run < 400; run++) {
      await backend.clearStaging!(24 * 3600_000, false).catch(() => {}); // refusing to act is an answer too
    }
  }
  assert.deepEqual([...Deno.readDirSync(victim)].map((entry) => entry.name).sort(), ["a", "b"]);
});

Deno.test("folder backend: writes while a writer swaps their folders for links never land in the links' target", async () => {
  using dir = tempDir();
  const repo = join(dir.path, "repo");
  const victim = join(dir.path, "victim");
  Deno.mkdirSync(victim);
  const backend = openFolderBackend(repo);
  await backend.write("packs/ab/first", bytes("x"), { exclusive: true }); // makes packs/ab and .tmp
  let written = 0;
  {
    await using _swapper = startSwapper(victim, [join(repo, "packs", "ab"), join(repo, ".tmp"), join(repo, "packs")]);
    const until = Date.now() + 1500; // the swapper started meanwhile
    for (let run = 0; run < 300 || Date.now() < until; run++) {
      const exclusive = run % 2 === 0;
      await backend.write(`packs/ab/${run}`, bytes(`object ${run}`), { exclusive }).then(() => written++, () => {});
    }
  }
  assert.deepEqual([...Deno.readDirSync(victim)].map((entry) => entry.name), [], "nothing written through a link");
  assert.ok(written > 0, "some writes found their folders in place");
});

Deno.test("folder backend: a folder mounted on .tmp is refused by the staging cleanup, its files left alone", async () => {
  using dir = tempDir();
  const backend = openFolderBackend(join(dir.path, "repo"));
  await backend.write("packs/ab/x", bytes("x"), { exclusive: true }); // makes .tmp
  const other = join(dir.path, "other");
  Deno.mkdirSync(other);
  const old = new Date(Date.now() - 3 * 24 * 3600_000);
  Deno.writeTextFileSync(join(other, "precious"), "another folder's");
  Deno.utimeSync(join(other, "precious"), old, old);
  const mount = bindMount(other, join(dir.path, "repo", ".tmp"));
  if (typeof mount === "string") return skipBecause(mount);
  using _mount = mount;
  await assert.rejects(backend.clearStaging!(24 * 3600_000, false), /\.tmp is a mount point/);
  assert.deepEqual([...Deno.readDirSync(other)].map((entry) => entry.name), ["precious"]);
});

Deno.test("folder backend: removing an object another process removes at the same moment is done, never a failure", async () => {
  using dir = tempDir();
  const backend = openFolderBackend(join(dir.path, "repo"));
  await backend.write("packs/ab/x", bytes("x"), { exclusive: true });
  // another cleanup removing the same name; it puts it back each time, so that both keep meeting it
  const other = new Deno.Command("python3", {
    args: ["-c", FLICKER, join(dir.path, "repo", "packs", "ab", "x")],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const failures: string[] = [];
  try {
    for (let run = 0; run < 4000; run++) {
      await backend.remove("packs/ab/x").catch((error) => failures.push(String(error)));
    }
  } finally {
    other.kill("SIGKILL");
    await other.status;
  }
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} removals failed`);
});

/** Create the file `<path>` and remove it again, for ever (the test kills it). */
const FLICKER = `
import os, sys
path = sys.argv[1]
while True:
    try:
        open(path, "w").close(); os.unlink(path)
    except OSError:
        pass
`;
