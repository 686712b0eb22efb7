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
  /** The server behind a network target (none for a folder). */
  readonly server?: TargetServer;
}

/** A target's server: where it listens, how to reach it through a proxy, and how to restart it. */
export interface TargetServer {
  readonly hostname: string;
  readonly port: number;
  /** `env` (from {@linkcode RemoteTarget.fresh}) changed to reach the server through `port` on 127.0.0.1 instead. */
  through(env: Record<string, string>, port: number): Record<string, string>;
  /** Stop the server (SFTP: sshd and its sessions; S3: the gateway), then {@linkcode start} it on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
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
    server: {
      hostname: "127.0.0.1",
      port: server.port,
      through: (env, port) => {
        // the host key is checked against the name the client connects to: [127.0.0.1]:PORT
        const knownHosts = join(server.dir, `known_hosts_${port}`);
        Deno.writeTextFileSync(knownHosts, `[127.0.0.1]:${port} ${server.hostKeyLine}\n`);
        const remote = env.ATOCORE_BACKUP_REMOTE.replace(`@127.0.0.1:${server.port}/`, `@127.0.0.1:${port}/`);
        return { ...env, ATOCORE_BACKUP_REMOTE: remote, ATOCORE_SSH_KNOWN_HOSTS: knownHosts };
      },
      stop: () => server.stop(),
      start: () => server.start(),
    },
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
  const port = Number(new URL(server.endpoint).port);
  return {
    label: "s3",
    server: {
      hostname: "127.0.0.1",
      port,
      through: (env, proxyPort) => ({ ...env, ATOCORE_S3_ENDPOINT: `http://127.0.0.1:${proxyPort}` }),
      stop: () => server.stopGateway(),
      start: () => server.startGateway(),
    },
    fresh: (name) => ({
      ATOCORE_BACKUP_REMOTE: `s3://${bucket}/${name}`,
      ATOCORE_S3_ENDPOINT: server.endpoint,
      AWS_ACCESS_KEY_ID: server.accessKey,
      AWS_SECRET_ACCESS_KEY: server.secretKey,
    }),
    [Symbol.asyncDispose]: () => server.stop(),
  };
}

/** The network targets that can run here (SFTP, S3), for the faults a folder cannot have. */
export async function networkTargets(what: string): Promise<RemoteTarget[]> {
  const targets: (RemoteTarget | null)[] = [await sftpTarget(), await s3Target(what)];
  return targets.filter((target) => target !== null);
}

/** Every target that can run here (servers that cannot start print their one SKIPPED line and are left out). */
export async function allTargets(what: string): Promise<RemoteTarget[]> {
  const targets: (RemoteTarget | null)[] = [folderTarget(), await sftpTarget(), await s3Target(what)];
  return targets.filter((target) => target !== null);
}

/** Every object of a repository with its bytes, to put it back as it was ({@linkcode resetObjects}). */
export async function saveObjects(backend: Backend): Promise<Map<string, Uint8Array>> {
  const saved = new Map<string, Uint8Array>();
  for (const { name } of await backend.list("")) saved.set(name, await backend.read(name));
  return saved;
}

/**
 * Make the repository hold exactly `saved`: objects it lacks written, others removed. Objects are never changed in
 * place (names are bound to content or written once), so one of the same name and size is taken as the same.
 */
export async function resetObjects(backend: Backend, saved: Map<string, Uint8Array>): Promise<void> {
  const present = new Map((await backend.list("")).map((info) => [info.name, info.size]));
  for (const name of present.keys()) if (!saved.has(name)) await backend.remove(name);
  for (const [name, bytes] of saved) {
    if (present.get(name) !== bytes.length) await backend.write(name, bytes, { exclusive: false });
  }
}

/** Move the creation time of every condemned marker of the repository `hours` back; how many there were. */
export async function ageMarkersOf(backend: Backend, hours: number): Promise<number> {
  const markers = await backend.list("condemned/");
  for (const { name } of markers) {
    const marker = JSON.parse(new TextDecoder().decode(await backend.read(name)));
    marker.created_at = new Date(Date.parse(marker.created_at) - hours * 3600_000).toISOString();
    await backend.write(name, new TextEncoder().encode(JSON.stringify(marker) + "\n"), { exclusive: false });
  }
  return markers.length;
}
