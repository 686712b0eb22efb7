/**
 * A command killed while the built-in SQLite driver checks a database through its private copy (see
 * `fs/scratch_copy.ts`) leaves that copy, a database's size, in the temporary folder; the next command that makes a
 * copy there removes it, and leaves the copy a run still holds.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliProcess, createdStamp, runCli, storeEnv, tempDir, tempStore } from "../_helpers.ts";
import { SCRATCH_COPY_PREFIX } from "../../src/fs/scratch_copy.ts";
import { lstatOrNull } from "../../src/fs/probe.ts";

/** The locked copies' folders in `temp` (not those still being made). */
function copies(temp: string): string[] {
  return [...Deno.readDirSync(temp)].map((entry) => entry.name)
    .filter((name) => name.startsWith(SCRATCH_COPY_PREFIX) && !name.startsWith(`${SCRATCH_COPY_PREFIX}new-`)).sort();
}

/** Start `args` and kill it (SIGKILL) once its copy of the database is in `temp`; the copy's folder. */
async function killWhileCopied(args: string[], env: Record<string, string>, temp: string): Promise<string> {
  const child = cliProcess(args, { env, stdout: "null" }).spawn();
  const deadline = Date.now() + 60_000;
  let seen: string | undefined;
  while (seen === undefined && Date.now() < deadline) {
    seen = copies(temp).find((name) => lstatOrNull(join(temp, name, "copy.db"))?.isFile);
    if (seen === undefined) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  child.kill("SIGKILL");
  const status = await child.status;
  await child.stderr.cancel();
  assert.ok(seen !== undefined, "the copy was never seen whole");
  assert.equal(status.signal, "SIGKILL", "killed while its copy was checked");
  return seen;
}

Deno.test("a built-in check killed with its private copy leaves it; the next run's copy there removes it, not a held one", async () => {
  using store = tempStore({ dbMiB: 48, chromaMiB: 1 });
  using out = tempDir();
  const temp = join(out.path, "temp");
  Deno.mkdirSync(temp);
  const env = { ...storeEnv(store), TMPDIR: temp };
  const stamp = await createdStamp(env);
  // a drill checks the restored (WAL-mode) database, which the built-in driver reads through a copy
  const drill = (scratch: string) => {
    Deno.mkdirSync(join(out.path, scratch));
    return ["drill", stamp, "--scratch-dir", join(out.path, scratch), "--sqlite-driver", "builtin"];
  };
  const left = await killWhileCopied(drill("first"), env, temp);
  assert.deepEqual(copies(temp), [left], "the kill left the copy");
  const held = join(temp, `${SCRATCH_COPY_PREFIX}held`);
  Deno.mkdirSync(held);
  using holder = Deno.openSync(held, { read: true });
  holder.lockSync(true);
  const next = await runCli(drill("second"), { env });
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(copies(temp), [`${SCRATCH_COPY_PREFIX}held`], "the killed run's copy removed, the held one left");
});
