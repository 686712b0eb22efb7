/**
 * Where the repository tests put a repository: a folder, and (when their servers run here) SFTP and S3. Each target
 * gives the CLI's environment for a fresh repository and a backend to inspect or damage it with, whatever the protocol.
 *
 * @module
 */
import { join } from "node:path";
import type { Backend } from "../src/repo/backend.ts";
import { openBackend } from "../src/repo/open_backend.ts";
import { tempDir } from "./_helpers.ts";

/** A place for repositories, for one test file. */
export interface RemoteTarget extends AsyncDisposable {
  readonly label: string;
  /** A fresh, empty repository location: the CLI's environment for it (remote, credentials, keys of the protocol). */
  fresh(name: string): Record<string, string>;
}

/** The backend the CLI would use for `env` (to look at or damage objects as someone with storage access would). */
export function backendOf(env: Record<string, string>): Backend {
  return openBackend(env.ATOCORE_BACKUP_REMOTE, { cwd: Deno.cwd(), env });
}

/** Repositories in folders of a temporary folder. */
export function folderTarget(): RemoteTarget {
  const dir = tempDir("atocore-target-");
  return {
    label: "folder",
    fresh: (name) => ({ ATOCORE_BACKUP_REMOTE: `file://${join(dir.path, name)}` }),
    [Symbol.asyncDispose]: () => Promise.resolve(dir[Symbol.dispose]()),
  };
}

/** Every target that can run here (servers that cannot start print their one SKIPPED line and are left out). */
export function allTargets(): Promise<RemoteTarget[]> {
  return Promise.resolve([folderTarget()]);
}
