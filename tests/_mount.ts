/**
 * A read-only view of a folder for tests, made with a read-only bind mount
 * (root can write through file modes, so `chmod` proves nothing).
 *
 * @module
 */

/** A read-only bind mount, unmounted (and its mount point removed) at the end of the `using` scope. */
export interface ReadOnlyMount extends Disposable {
  /** Where the read-only view of the folder is. */
  path: string;
}

/**
 * Mount `source` read-only at a new temporary folder, or return the reason it cannot
 * be done here (not root, no mount permission in the container) so the test can say why it skips.
 */
export function readOnlyBindMount(source: string): ReadOnlyMount | { skipped: string } {
  const path = Deno.makeTempDirSync({ prefix: "atocore-ro-" });
  const bind = run("mount", ["--bind", source, path]);
  if (bind) {
    Deno.removeSync(path);
    return { skipped: `mount --bind not permitted here (${bind})` };
  }
  const remount = run("mount", ["-o", "remount,bind,ro", path]);
  if (remount) {
    run("umount", [path]);
    Deno.removeSync(path);
    return { skipped: `read-only remount not permitted here (${remount})` };
  }
  return {
    path,
    [Symbol.dispose]: () => {
      const failure = run("umount", [path]);
      if (failure) throw new Error(`umount ${path} failed: ${failure}`);
      Deno.removeSync(path);
    },
  };
}

/** Run a command; return `""` on success, else its error output. */
function run(program: string, args: string[]): string {
  try {
    const output = new Deno.Command(program, { args, stdout: "null", stderr: "piped" }).outputSync();
    return output.success ? "" : new TextDecoder().decode(output.stderr).trim() || `exit ${output.code}`;
  } catch (error) {
    return (error as Error).message;
  }
}
