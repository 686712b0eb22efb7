/**
 * Temporary mounts for tests, which need root (or a container that permits `mount`):
 * a tmpfs (a small disk that fills up) and read-only bind mounts (root writes through
 * file modes, so `chmod` proves nothing). Where mounting is not permitted, each helper
 * returns the reason instead, so the test can say why it skips.
 *
 * @module
 */

/** A mount made for a test, unmounted at the end of the `using` scope. */
export interface TestMount extends Disposable {
  /** Where the mount is. */
  path: string;
}

/**
 * Mount a tmpfs of `size` (such as `8m`) on the existing folder `path`.
 *
 * @returns The mount, or the reason mounting is not permitted here (the caller skips).
 */
export function mountTmpfs(path: string, size: string): TestMount | string {
  const failure = run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", path]);
  return failure ? `cannot mount a tmpfs here (${failure})` : unmountOnDispose(path);
}

/**
 * Bind-mount the folder `source` on the existing folder `target`, writable (what an operator's bind mount shows).
 *
 * @returns The mount, or the reason mounting is not permitted here (the caller skips).
 */
export function bindMount(source: string, target: string): TestMount | string {
  const failure = run("mount", ["--bind", source, target]);
  return failure ? `mount --bind not permitted here (${failure})` : unmountOnDispose(target);
}

/**
 * Make the folder `path` read-only for everyone, root included, with a read-only bind mount onto itself.
 *
 * @returns The mount, or the reason mounting is not permitted here (the caller skips).
 */
export function bindReadOnly(path: string): TestMount | string {
  return bindReadOnlyAt(path, path) || unmountOnDispose(path);
}

/**
 * Mount `source` read-only at a new temporary folder (removed with the mount at the end of the `using` scope).
 *
 * @returns The mount, or the reason mounting is not permitted here (the caller skips).
 */
export function readOnlyBindMount(source: string): TestMount | string {
  const path = Deno.makeTempDirSync({ prefix: "atocore-ro-" });
  const failure = bindReadOnlyAt(source, path);
  if (failure) {
    Deno.removeSync(path);
    return failure;
  }
  const mount = unmountOnDispose(path);
  return {
    path,
    [Symbol.dispose]: () => {
      mount[Symbol.dispose]();
      Deno.removeSync(path);
    },
  };
}

/** Bind-mount `source` on `target`, then remount it read-only; `""` when done, else why not (nothing left mounted). */
function bindReadOnlyAt(source: string, target: string): string {
  const bind = run("mount", ["--bind", source, target]);
  if (bind) return `mount --bind not permitted here (${bind})`;
  const remount = run("mount", ["-o", "remount,bind,ro", target]);
  if (!remount) return "";
  run("umount", [target]);
  return `read-only remount not permitted here (${remount})`;
}

function unmountOnDispose(path: string): TestMount {
  return {
    path,
    [Symbol.dispose]: () => {
      const failure = run("umount", [path]);
      if (failure) throw new Error(`umount ${path} failed: ${failure}`);
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
