/**
 * A writer of the backup folder who swaps `.staging` or `.trash` for a link while a root run clears leftovers there: made
 * deterministic by strace holding the run's first call on the leftover's path for seconds while the test swaps.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliEnv, skipBecause, tempDir, toolFor } from "../_helpers.ts";
import { entryNames } from "../_faults.ts";

/**
 * Run `cleanup --confirm` on `backupDir` with strace holding its first unlink, rmdir or open of `leftover` (by that
 * path) for 3 s; while held, `folder` (`.staging` or `.trash`) is swapped for a link to `victim`. Whether it was held.
 */
async function cleanupSwapped(backupDir: string, folder: string, leftover: string, victim: string): Promise<boolean> {
  const trace = join(backupDir, "..", `${folder}-trace.txt`);
  const calls = "unlink,unlinkat,rmdir,openat";
  const strace = ["-f", "-qq", "-o", trace, "-P", leftover, "-e", `trace=${calls}`];
  const [program, ...args] = cliCommand(["cleanup", "--confirm"]);
  const child = new Deno.Command("strace", {
    args: [...strace, "-e", `inject=${calls}:delay_enter=3000000:when=1`, program, ...args],
    env: cliEnv({ ATOCORE_BACKUP_DIR: backupDir }),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const ended = child.output().then((output) => new TextDecoder().decode(output.stderr));
  let held = false;
  for (let done = false; !done;) {
    done = await Promise.race([ended.then(() => true), new Promise<boolean>((wait) => setTimeout(wait, 10, false))]);
    const text = (() => {
      try {
        return Deno.readTextFileSync(trace);
      } catch {
        return "";
      }
    })();
    if (!done && text.includes(`"${leftover}"`)) {
      const path = join(backupDir, folder);
      Deno.renameSync(path, `${path}-aside`);
      Deno.symlinkSync(victim, path);
      held = true;
      break;
    }
  }
  await ended;
  return held;
}

for (const [folder, kind] of [[".staging", "file"], [".trash", "folder"]]) {
  Deno.test(`a ${folder} swapped for a link while its leftover ${kind} is removed: nothing goes in the link's target (needs strace)`, async () => {
    if (!toolFor("strace", `a ${folder} swapped while cleared`)) return;
    using dir = tempDir();
    const backupDir = join(dir.path, "backup");
    const victim = join(dir.path, "victim");
    const name = kind === "file" ? "passwd" : "20260101T000000Z.dead";
    for (const root of [join(backupDir, folder), victim]) {
      Deno.mkdirSync(root, { recursive: true });
      if (kind === "file") Deno.writeTextFileSync(join(root, name), "root's own");
      else {
        Deno.mkdirSync(join(root, name, "db"), { recursive: true });
        Deno.writeTextFileSync(join(root, name, "db", "keep.txt"), "root's own");
      }
    }
    const before = entryNames(join(victim, name === "passwd" ? "." : join(name, "db")));

    const held = await cleanupSwapped(backupDir, folder, join(backupDir, folder, name), victim);
    const after = entryNames(join(victim, name === "passwd" ? "." : join(name, "db")));
    assert.deepEqual(after, before, `removed in the link's target (held by strace: ${held})`);
    assert.deepEqual(entryNames(join(backupDir, held ? `${folder}-aside` : folder)), [], "the leftover is still there");
  });
}

Deno.test("without the FFI permission, a root run keeps the leftovers of a backup folder another user owns, named", async () => {
  using dir = tempDir();
  const leftover = join(dir.path, ".staging", "20260101T000000Z.dead");
  Deno.mkdirSync(leftover, { recursive: true });
  const noFfi = (args: string[]) => cliCommand(args).filter((flag) => flag !== "--allow-ffi");
  const cleanup = async () => {
    const [program, ...args] = noFfi(["cleanup", "--confirm"]);
    const env = cliEnv({ ATOCORE_BACKUP_DIR: dir.path });
    const run = await new Deno.Command(program, { args, env, clearEnv: true, stdout: "null", stderr: "piped" })
      .output();
    assert.equal(run.code, 0);
    return new TextDecoder().decode(run.stderr);
  };
  try {
    Deno.chownSync(dir.path, 65534, 65534);
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) return skipBecause("not root: cannot give the folder away");
    throw error;
  }
  assert.match(await cleanup(), /"event":"stale_leftover_kept".*another user may write.*"next":"run with --allow-ffi/);
  assert.deepEqual(entryNames(join(dir.path, ".staging")), ["20260101T000000Z.dead"]);

  Deno.chownSync(dir.path, 0, 0); // this run's own folder: no one else can swap .staging, so by path is safe
  assert.match(await cleanup(), /"event":"stale_leftover_removed"/);
  assert.deepEqual(entryNames(join(dir.path, ".staging")), []);
});
