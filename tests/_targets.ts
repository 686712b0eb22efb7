/**
 * Where the repository tests put a repository: a folder, and (when their servers run here) SFTP and S3. Each target
 * gives the CLI's environment for a fresh repository and a backend to inspect or damage it with, whatever the protocol.
 *
 * @module
 */
import { join } from "node:path";
import type { Backend } from "../src/repo/backend.ts";
import { resolveRemoteSettings } from "../src/config.ts";
import { remoteBackend } from "../src/ops/remote.ts";
import { closeBackends } from "../src/repo/open_backend.ts";
import { NOBODY_GID, NOBODY_UID } from "./_faults.ts";
import { tempDir } from "./_helpers.ts";
import { startRadosgw } from "./_servers/radosgw.ts";
import { startSshd } from "./_servers/sshd.ts";

/** A place for repositories, for one test file. */
export interface RemoteTarget extends AsyncDisposable {
  readonly label: string;
  /** A fresh, empty repository location: the CLI's environment for it (remote, credentials, keys of the protocol). */
  fresh(name: string): Record<string, string>;
}

/** The backend the CLI would use for `env` (to look at or damage objects as someone with storage access would). */
export function backendOf(env: Record<string, string>): Backend {
  return remoteBackend(resolveRemoteSettings({}, env, Deno.cwd()), Deno.cwd(), "test", env);
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

/** Repositories on a real sshd of the test file's own, logged in as `nobody`; `null` when sshd cannot run here. */
export async function sftpTarget(): Promise<RemoteTarget | null> {
  const server = await startSshd();
  if (server === null) return null;
  return {
    label: "sftp",
    fresh: (name) => {
      const folder = join(server.data, name);
      Deno.mkdirSync(folder);
      Deno.chownSync(folder, NOBODY_UID, NOBODY_GID);
      return {
        ATOCORE_BACKUP_REMOTE: server.url(`${folder}/repo`),
        ATOCORE_SSH_KEY_FILE: server.clientKey,
        ATOCORE_SSH_KNOWN_HOSTS: server.knownHosts,
      };
    },
    [Symbol.asyncDispose]: async () => {
      await closeBackends();
      await server[Symbol.asyncDispose]();
    },
  };
}

/**
 * Repositories in a bucket of a real radosgw of the test file's own, one prefix each; `null` when radosgw cannot run
 * here. `fresh` is synchronous, so the bucket is made first.
 */
export async function s3Target(what: string): Promise<RemoteTarget | null> {
  const server = await startRadosgw(what);
  if (server === null) return null;
  const bucket = "targets";
  await server.createBucket(bucket);
  return {
    label: "s3",
    fresh: (name) => ({
      ATOCORE_BACKUP_REMOTE: `s3://${bucket}/${name}`,
      ATOCORE_S3_ENDPOINT: server.endpoint,
      AWS_ACCESS_KEY_ID: server.accessKey,
      AWS_SECRET_ACCESS_KEY: server.secretKey,
    }),
    [Symbol.asyncDispose]: () => server.stop(),
  };
}

/** Every target that can run here (servers that cannot start print their one SKIPPED line and are left out). */
export async function allTargets(what: string): Promise<RemoteTarget[]> {
  const targets: (RemoteTarget | null)[] = [folderTarget(), await sftpTarget(), await s3Target(what)];
  return targets.filter((target) => target !== null);
}
