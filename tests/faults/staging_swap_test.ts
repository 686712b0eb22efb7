/**
 * The service's user (`nobody`), owner of the backup folder, swaps `.staging` or the snapshot's folder in it for a link
 * to a root-only folder while a root create builds the snapshot: strace holds create's open of the live database (after
 * the staging folder is made, before the copy is written) while the swap is made, and not a byte goes into the link's
 * target; create refuses (exit 2) naming the folder, and nothing is published.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { storeEnv, tempDir, tempStore, toolFor } from "../_helpers.ts";
import { chownToNobody, entriesBelow, entryNames, runHeld, skipBecause } from "../_faults.ts";

for (const swapped of [".staging", "the snapshot's folder in .staging"]) {
  Deno.test(`${swapped} swapped for a link to a root-only folder during a root create: nothing goes there (needs root, strace)`, async () => {
    if (Deno.uid() !== 0) {
      return skipBecause("not root: create cannot run as root with nobody as the backup folder's owner");
    }
    if (!toolFor("strace", `${swapped} swapped during create`)) return;
    using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
    using victim = tempDir("atocore-root-only-");
    Deno.chmodSync(victim.path, 0o700);
    const staging = join(store.backupDir, ".staging");
    for (const own of ["snapshots", ".staging"]) Deno.mkdirSync(join(store.backupDir, own), { recursive: true });
    chownToNobody(store.backupDir); // the service's user owns the backup folder, as its own runs left it
    Deno.chmodSync(store.dataDir, 0o755); // and reaches it
    let [folder, name] = ["", ""];
    const run = await runHeld(["create", "--chroma"], storeEnv(store), { held: store.db, calls: "openat" }, () => {
      name = entryNames(staging)[0];
      // root's folder happens to hold what the staged paths name below the link (a database copy would go there)
      const below = swapped === ".staging" ? join(victim.path, name) : victim.path;
      for (const part of ["db", "config"]) Deno.mkdirSync(join(below, part), { recursive: true });
      folder = swapped === ".staging" ? staging : join(staging, name);
      asNobody("mv", folder, `${folder}-aside`);
      asNobody("ln", "-s", victim.path, folder);
    });
    const output = new TextDecoder().decode(run.output.stdout) + new TextDecoder().decode(run.output.stderr);
    assert.ok(run.held, `the create ended before it opened ${store.db}: ${output}`);
    const expected = swapped === ".staging" ? ["NAME", "NAME/config", "NAME/db"] : ["config", "db"];
    const listed = entriesBelow(victim.path).map((path) => path.replace(name, "NAME"));
    assert.deepEqual(listed, expected, `written into the link's target: ${output}`);
    assert.equal(run.output.code, 2, output);
    const errors = output.split("\n").filter((line) => line.startsWith("atocore-backup: error:"));
    assert.equal(errors.length, 1, output);
    assert.match(errors[0], new RegExp(`${folder} was moved or swapped for a symbolic link .*nothing was published`));
    assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "a snapshot was published");
    // the staged copy is removed, or emptied where nobody moved it (the link is nobody's, left)
    const left = swapped === ".staging" ? entriesBelow(`${staging}-aside`) : entriesBelow(staging);
    assert.deepEqual(left, swapped === ".staging" ? [] : [name, `${name}-aside`], "the staged copy is left");
  });
}

/** Run `program args` as `nobody` (the backup folder's owner), failing on a non-zero exit. */
function asNobody(program: string, ...args: string[]): void {
  const run = new Deno.Command("setpriv", {
    args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", program, ...args],
    stderr: "piped",
  }).outputSync();
  if (!run.success) throw new Error(`${program} ${args.join(" ")} as nobody: ${new TextDecoder().decode(run.stderr)}`);
}

Deno.test("with the built-in driver, a swap of the snapshot's folder gets no database copy: it is written aside, then through the folder held (needs root, strace)", async () => {
  if (Deno.uid() !== 0) {
    return skipBecause("not root: create cannot run as root with nobody as the backup folder's owner");
  }
  if (!toolFor("strace", "the snapshot's folder swapped during create")) return;
  using store = tempStore({ dbMiB: 0.2, chromaMiB: 0.05, segments: 1 });
  using victim = tempDir("atocore-root-only-");
  Deno.chmodSync(victim.path, 0o700);
  for (const part of ["db", "config", "chroma"]) Deno.mkdirSync(join(victim.path, part));
  const staging = join(store.backupDir, ".staging");
  for (const own of ["snapshots", ".staging"]) Deno.mkdirSync(join(store.backupDir, own), { recursive: true });
  chownToNobody(store.backupDir);
  Deno.chmodSync(store.dataDir, 0o755);
  const args = ["create", "--chroma", "--sqlite-driver", "builtin"];
  let folder = "";
  const run = await runHeld(args, storeEnv(store), { held: store.db, calls: "openat" }, () => {
    folder = join(staging, entryNames(staging)[0]);
    asNobody("mv", folder, `${folder}-aside`);
    asNobody("ln", "-s", victim.path, folder);
  });
  const output = new TextDecoder().decode(run.output.stdout) + new TextDecoder().decode(run.output.stderr);
  assert.ok(run.held, `the create ended before it opened ${store.db}: ${output}`);
  assert.deepEqual(entriesBelow(victim.path), ["chroma", "config", "db"], `written into the link's target: ${output}`);
  assert.equal(run.output.code, 2, output);
  assert.match(
    output,
    new RegExp(`${folder} was moved or swapped for a symbolic link .*nothing was written or removed`),
  );
  assert.deepEqual(entryNames(join(store.backupDir, "snapshots")), [], "a snapshot was published");
  assert.deepEqual(entryNames(join(`${folder}-aside`)), [], "the staged copy is emptied");
});
