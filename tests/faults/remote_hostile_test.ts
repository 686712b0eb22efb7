/**
 * Hostile or broken storage, on every backend that runs here: an object deleted, truncated, replaced by another valid
 * object of the repository, or a snapshot object of another repository copied in. `remote verify --read-data` names the
 * object, restore refuses in one line, nothing live changes. A repository encrypted to another key: one line, nothing
 * written. Objects are written once under names bound to their content or snapshot, so "an older version of an object"
 * is always another object's bytes: the swap cases.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { liveDigest } from "../_faults.ts";
import { ageKeyPair, authKeyEnv, createAndPush, oneErrorLine, remoteStore } from "../_remote_cli.ts";
import { updateRows } from "../_repo.ts";
import { allTargets, backendOf, type RemoteTarget } from "../_targets.ts";
import type { Backend } from "../../src/repo/backend.ts";

/** One damage: what it does through the backend, and the object the errors must name. */
interface Damage {
  name: string;
  apply(backend: Backend): Promise<string>;
}

/** The packs the refs of `snapshot` name (refs are public: no identity needed). */
async function packsOf(backend: Backend, snapshot: string): Promise<string[]> {
  const refs = JSON.parse(new TextDecoder().decode(await backend.read(`refs/${snapshot}`)));
  return refs.packs.map((pack: { id: string }) => `packs/${pack.id.slice(0, 2)}/${pack.id}`);
}

function damages(older: string, newer: string, foreign: { backend: Backend; snapshot: string }): Damage[] {
  const replace = async (backend: Backend, name: string, bytes: Uint8Array) => {
    await backend.write(name, bytes, { exclusive: false });
    return name;
  };
  return [
    { name: "a pack deleted", apply: (b) => remove(b, newer) },
    {
      name: "a pack truncated",
      apply: async (b) => {
        const pack = (await packsOf(b, newer)).at(-1)!;
        return replace(b, pack, (await b.read(pack)).subarray(0, 1000));
      },
    },
    {
      name: "a pack replaced by another pack of the repository",
      apply: async (b) => {
        const mine = await packsOf(b, newer);
        const other = (await packsOf(b, older)).find((name) => !mine.includes(name)) ?? mine[1];
        return replace(b, mine[0], await b.read(other === mine[0] ? mine.at(-1)! : other));
      },
    },
    {
      name: "the snapshot object replaced by the older snapshot's",
      apply: async (b) => replace(b, `snapshots/${newer}`, await b.read(`snapshots/${older}`)),
    },
    {
      name: "the refs replaced by the older snapshot's",
      apply: async (b) => replace(b, `refs/${newer}`, await b.read(`refs/${older}`)),
    },
    {
      name: "a snapshot object of another repository copied in",
      apply: async (b) => replace(b, `snapshots/${newer}`, await foreign.backend.read(`snapshots/${foreign.snapshot}`)),
    },
  ];
}

async function remove(backend: Backend, snapshot: string): Promise<string> {
  const pack = (await packsOf(backend, snapshot))[0];
  await backend.remove(pack);
  return pack;
}

/** Every object's bytes, to undo a damage. */
async function saveAll(backend: Backend): Promise<Map<string, Uint8Array>> {
  const saved = new Map<string, Uint8Array>();
  for (const { name } of await backend.list("")) saved.set(name, await backend.read(name));
  return saved;
}

async function restoreAll(backend: Backend, saved: Map<string, Uint8Array>): Promise<void> {
  for (const [name, bytes] of saved) await backend.write(name, bytes, { exclusive: false });
}

async function hostileCases(target: RemoteTarget): Promise<void> {
  using store = tempStore({ dbMiB: 2, chromaMiB: 1, seed: 53 });
  using keys = tempDir("atocore-keys-");
  const key = ageKeyPair(keys.path, "key.txt");
  const env = { ...storeEnv(store), ...target.fresh("hostile"), ...authKeyEnv(key) };
  const withKey = { ...env, ATOCORE_BACKUP_IDENTITY_FILE: key.keyFile };
  assert.equal((await runCli(["remote", "init", "--recipient", key.recipient], { env })).code, 0);
  const older = (await createAndPush(env)).push.snapshot;
  updateRows(store.db, 0.3);
  const newer = (await createAndPush(env)).push.snapshot;
  using otherStore = tempStore({ dbMiB: 1, chromaMiB: 1, seed: 59 });
  const otherEnv = { ...storeEnv(otherStore), ...target.fresh("other"), ...authKeyEnv(key) };
  assert.equal((await runCli(["remote", "init", "--recipient", key.recipient], { env: otherEnv })).code, 0);
  const foreign = { backend: backendOf(otherEnv), snapshot: (await createAndPush(otherEnv)).push.snapshot };
  const backend = backendOf(env);
  const saved = await saveAll(backend);
  const live = liveDigest(store);
  for (const damage of damages(older, newer, foreign)) {
    const what = `${damage.name} (${target.label})`;
    const object = await damage.apply(backend);
    const verify = await runCli(["remote", "verify", "--read-data"], { env: withKey });
    assert.equal(verify.code, 1, `verify passed ${what}: ${verify.stdout}`);
    assert.ok(verify.stdout.includes(object.split("/").at(-1)!), `verify does not name ${object} ${what}`);
    const restore = await runCli(["restore", newer, "--from-remote", "--confirm-service-stopped"], { env: withKey });
    assert.notEqual(restore.code, 0, `restore accepted ${what}`);
    assert.match(oneErrorLine(restore, what), new RegExp(object.split("/").at(-1)!), `the error names ${object}`);
    assert.deepEqual(liveDigest(store), live, `live data changed ${what}`);
    await restoreAll(backend, saved);
  }
  const stranger = ageKeyPair(keys.path, "stranger.txt");
  const wrong = await runCli(["restore", newer, "--from-remote", "--to", join(keys.path, "to")], {
    env: { ...env, ATOCORE_BACKUP_IDENTITY_FILE: stranger.keyFile },
  });
  assert.equal(wrong.code, 3, wrong.stderr);
  assert.match(oneErrorLine(wrong, "another key"), /identity|decrypt|key/i);
  assert.throws(() => Deno.statSync(join(keys.path, "to")), Deno.errors.NotFound, "nothing written");
  assert.deepEqual(liveDigest(store), live);
}

for (const target of await allTargets("hostile storage")) {
  Deno.test(`hostile storage (${target.label}): each damage named by verify, refused by restore, live untouched`, async () => {
    await using _target = target;
    await hostileCases(target);
  });
}

Deno.test("refs naming 5,000 packs that are not there: verify names 20 and counts the rest, in bounded output", async () => {
  using r = await remoteStore({ dbMiB: 1, chromaMiB: 1 });
  const { push } = await createAndPush(r.env);
  const refsPath = join(r.repoDir, "refs", push.snapshot);
  const refs = JSON.parse(Deno.readTextFileSync(refsPath));
  const forged = Array.from({ length: 5000 }, (_, i) => ({ id: i.toString(16).padStart(64, "0"), size: 1 }));
  Deno.writeTextFileSync(refsPath, JSON.stringify({ ...refs, packs: [...refs.packs, ...forged] }));
  const run = await runCli(["remote", "verify"], { env: r.env });
  assert.equal(run.code, 1, run.stderr);
  const errors = (run.json as { errors: string[] }).errors;
  assert.equal(errors.filter((line) => / missing \(needed by /.test(line)).length, 20, errors.join("\n"));
  assert.ok(errors.includes(`refs/${push.snapshot}: 4980 more of its packs missing or of another size (not named)`));
  assert.ok(errors.length < 30, `${errors.length} lines`);
});
