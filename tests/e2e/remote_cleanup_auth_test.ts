/**
 * `remote cleanup` with the pushing hosts' authentication key: a writer of the repository who edits a refs' list of
 * packs, or adds a snapshot under this host's source, cannot make the cleanup delete what a snapshot needs.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers.ts";
import { createAndPush, remoteStore, snapshotSeries } from "../_remote_cli.ts";

interface CleanupJson {
  kept: string[];
  deleted: string[];
  packs_condemned: number;
  errors: string[];
  warnings: string[];
}

/** Rewrite the refs of `name` in the folder repository at `repoDir` with `change`. */
function editRefs(repoDir: string, name: string, change: (refs: Record<string, unknown>) => void): void {
  const path = join(repoDir, "refs", name);
  const refs = JSON.parse(Deno.readTextFileSync(path));
  change(refs);
  Deno.writeTextFileSync(path, JSON.stringify(refs));
}

Deno.test("remote cleanup with the auth key: a refs whose list of packs was cut condemns nothing; restore refuses it", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const name = (await createAndPush(r.env)).push.snapshot;
  editRefs(r.repoDir, name, (refs) => refs.packs = (refs.packs as unknown[]).slice(0, 1));
  const run = await runCli(["remote", "cleanup", "--confirm"], { env: r.env });
  assert.equal(run.code, 1, run.stderr);
  const result = run.json as CleanupJson;
  assert.equal(result.packs_condemned, 0, "no pack of the snapshot condemned");
  assert.match(result.errors.join("\n"), new RegExp(`^refs/${name}: a MAC there does not match its snapshot or the`));
  assert.deepEqual(result.deleted, []);
  const restore = await runCli(["restore", name, "--from-remote", "--to", join(r.work, "out")], {
    env: r.envWithIdentity,
  });
  assert.equal(restore.code, 3, restore.stderr);
  assert.match(
    restore.stderr,
    new RegExp(`refs/${name}: the MAC for age1\\S+ does not match snapshots/${name} or the`),
  );

  const { ATOCORE_BACKUP_AUTH_KEY_FILE: _, ...noKey } = r.env; // without the key the list is believed (README)
  const blind = await runCli(["remote", "cleanup"], { env: noKey });
  assert.equal(blind.code, 0, blind.stderr);
  assert.ok((blind.json as CleanupJson).packs_condemned > 0, "the cut-out pack would be condemned");
});

Deno.test("remote cleanup with the auth key: a snapshot added under this host's source is not counted", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const genuine = (await createAndPush(r.env)).push.snapshot;
  const stamp = genuine.slice(0, 16);
  const later = new Date(
    Date.parse(stamp.replace(/(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z/, "$1-$2-$3T$4:$5:$6Z")) + 1000,
  );
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, later.getTime() - Date.now() + 1100)));
  const forged = `${later.toISOString().replace(/[-:]|\.\d+/g, "")}_00000000deadbeef`;
  Deno.writeTextFileSync(join(r.repoDir, "snapshots", forged), "junk");
  const source = JSON.parse(Deno.readTextFileSync(join(r.repoDir, "refs", genuine))).source;
  const junkSha = "3a9bbe1b1d2dd3b6f5bd0d8ddbc54e1aa2fb3fcb6e0f1bbd9bd8e2fa49f5c43d";
  Deno.writeTextFileSync(
    join(r.repoDir, "refs", forged),
    JSON.stringify({ snapshot: forged, snapshot_sha256: junkSha, source, sequence: 99, packs: [] }), // last published
  );
  const run = await runCli(["remote", "cleanup", "--confirm"], { env: r.env });
  const result = run.json as CleanupJson;
  assert.deepEqual(result.deleted, [], `the genuine snapshot stays: ${run.stdout}`);
  assert.ok(result.kept.includes(genuine) && result.kept.includes(forged));
  assert.equal(run.code, 1, run.stderr);
  assert.match(result.errors.join("\n"), new RegExp(`refs/${forged} holds no MAC of this host's authentication key`));

  const { ATOCORE_BACKUP_AUTH_KEY_FILE: _, ...noKey } = r.env; // without the key the forged one counts (README)
  const blind = await runCli(["remote", "cleanup"], { env: noKey });
  assert.deepEqual((blind.json as { would_delete: string[] }).would_delete, [genuine], blind.stdout);
});

Deno.test("remote cleanup with the auth key: refs whose fields no MAC covers are not trusted unless told", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  await snapshotSeries(r, 2);
  const pushed = await runCli(["push", "--all"], { env: r.env });
  assert.equal(pushed.code, 0, pushed.stderr);
  const names = [...Deno.readDirSync(join(r.repoDir, "refs"))].map((entry) => entry.name).sort();
  const stray = "ff".repeat(32); // a pack no refs lists: what a cleanup condemns
  Deno.mkdirSync(join(r.repoDir, "packs", "ff"), { recursive: true });
  Deno.writeTextFileSync(join(r.repoDir, "packs", "ff", stray), "stray");
  editRefs(r.repoDir, names[1], (refs) => {
    for (const entry of refs.auth as { refs_mac?: string }[]) delete entry.refs_mac; // as pushed before it existed
  });
  const keep = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  const run = await runCli(["remote", "cleanup", "--confirm", ...keep], { env: r.env });
  assert.equal(run.code, 1, run.stderr);
  const result = run.json as CleanupJson;
  assert.deepEqual(result.deleted, [], "the other snapshot stays its source's newest: this one is not counted");
  assert.equal(result.packs_condemned, 0);
  assert.match(result.errors.join("\n"), new RegExp(`refs/${names[1]} holds no MAC over its source and list of packs`));
  // the verify a careful operator runs first names them, though it cannot tell whether their fields were edited
  const verified = await runCli(["remote", "verify"], { env: r.envWithIdentity });
  assert.equal(verified.code, 0, verified.stderr);
  const notes = (verified.json as { notes: string[] }).notes;
  assert.deepEqual(notes.filter((note) => note.includes("no MAC covers the refs' source")).length, 1, notes.join("\n"));
  assert.ok(notes.some((note) => note.startsWith(`refs/${names[1]}: its snapshot's MAC verifies`)), notes.join("\n"));
  const trusted = await runCli(["remote", "cleanup", "--confirm", ...keep, "--allow-unauthenticated"], { env: r.env });
  assert.equal(trusted.code, 0, trusted.stderr);
  assert.deepEqual((trusted.json as CleanupJson).deleted, [names[0]], trusted.stdout);
  assert.ok((trusted.json as CleanupJson).packs_condemned >= 1, trusted.stdout);
});

Deno.test("remote cleanup with the auth key: a source copied into a genuine refs, or a forged unfinished push's refs, stops every deletion", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  await snapshotSeries(r, 2);
  assert.equal((await runCli(["push", "--all"], { env: r.env })).code, 0);
  const names = [...Deno.readDirSync(join(r.repoDir, "refs"))].map((entry) => entry.name).sort();
  const keep = ["--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0"];
  editRefs(
    r.repoDir,
    names[0],
    (refs) => refs.source = (refs.source as string).replace(/^./, (c) => c === "a" ? "b" : "a"),
  ); // another host's group
  const moved = await runCli(["remote", "cleanup", "--confirm", ...keep], { env: r.env });
  assert.equal(moved.code, 1, moved.stderr);
  assert.deepEqual((moved.json as CleanupJson).deleted, []);
  assert.match(
    (moved.json as CleanupJson).errors.join("\n"),
    new RegExp(`refs/${names[0]}: a MAC there does not match`),
  );
  editRefs(
    r.repoDir,
    names[0],
    (refs) => refs.source = JSON.parse(Deno.readTextFileSync(join(r.repoDir, "refs", names[1]))).source,
  );
  const orphan = "20260103T010000Z_0123456789abcdef"; // a genuine refs replayed as an unfinished push's
  Deno.writeTextFileSync(
    join(r.repoDir, "refs", orphan),
    Deno.readTextFileSync(join(r.repoDir, "refs", names[1])).replace(names[1], orphan),
  );
  const replayed = await runCli(["remote", "cleanup", "--confirm", ...keep], { env: r.env });
  assert.equal(replayed.code, 1, replayed.stderr);
  assert.deepEqual((replayed.json as CleanupJson).deleted, [], "no retention deletion either");
  assert.match(
    (replayed.json as CleanupJson).errors.join("\n"),
    new RegExp(`refs/${orphan}: a MAC there does not match`),
  );
});
