/**
 * Where the benchmark's network section puts repositories: a folder, a real sshd and a real radosgw on 127.0.0.1
 * (the tests' own servers), each giving this tool and restic a fresh repository on the same server.
 *
 * @module
 */
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import { removeQuietly } from "../src/fs/durable.ts";
import { isFile } from "../src/fs/probe.ts";
import { NOBODY_GID, NOBODY_UID } from "../tests/_faults.ts";
import { type Radosgw, startRadosgw } from "../tests/_servers/radosgw.ts";
import { SSH_USER, type Sshd, startSshd } from "../tests/_servers/sshd.ts";
import { log, treeBytes } from "./bench_run.ts";

/** The backends, in the order the section runs them. */
export const BACKENDS = ["folder", "sftp", "s3"] as const;

/** One backend's name. */
export type BackendName = typeof BACKENDS[number];

/** One fresh repository location, as each program names it. */
export interface Location {
  /** This tool's `--remote` and the environment it needs (keys, endpoint, credentials). */
  toolRemote: string;
  toolEnv: Record<string, string>;
  /** restic's `--repo`, its extra options (`-o ...`) and environment. */
  resticRepo: string;
  resticArgs: string[];
  resticEnv: Record<string, string>;
  /** Bytes stored at the location now (files, or objects in the bucket). */
  bytes(): Promise<number>;
  /** Remove everything stored at the location. */
  remove(): Promise<void>;
}

/** A running backend: fresh locations on it, and a way to stop it. */
export interface BenchBackend extends AsyncDisposable {
  name: BackendName;
  /** What the repositories are on, for the report. */
  text: string;
  fresh(slug: string): Promise<Location>;
}

/** Start `name`, or log one `SKIPPED:` line and return null when its server cannot run here. */
export async function startBackend(name: BackendName, work: string): Promise<BenchBackend | null> {
  if (name === "folder") return folderBackend(join(work, "net-repos"));
  if (Deno.uid() !== 0) {
    log(`SKIPPED: the ${name} rows: its server (${name === "s3" ? "radosgw" : "sshd"}) needs root here`);
    return null;
  }
  if (name === "sftp") {
    if (!isFile("/usr/sbin/sshd")) return skipped("sftp", "/usr/sbin/sshd not found (apt-get install openssh-server)");
    return sftpBackend(await startSshd());
  }
  const missing = ["radosgw", "ceph-mon", "ceph-osd"].filter((program) => !onPath(program));
  if (missing.length > 0) {
    return skipped("s3", `${missing.join(", ")} not found (apt-get install radosgw ceph-mon ceph-osd)`);
  }
  // 40 GiB sparse: both programs' repositories of one repetition fit, whatever the store's size
  return s3Backend(await startRadosgw("the benchmark's S3 rows", { blockBytes: 40 * 1024 ** 3 }));
}

function skipped(name: BackendName, why: string): null {
  log(`SKIPPED: the ${name} rows: ${why}`);
  return null;
}

function onPath(program: string): boolean {
  return (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":").some((folder) => isFile(join(folder, program)));
}

function folderBackend(root: string): BenchBackend {
  Deno.mkdirSync(root, { recursive: true });
  return {
    name: "folder",
    text: "folders on this disk",
    fresh: (slug) => {
      const dir = join(root, slug);
      removeQuietly(dir);
      return Promise.resolve(filesLocation(dir, dir, dir, [], {}));
    },
    [Symbol.asyncDispose]: () => Promise.resolve(removeQuietly(root)),
  };
}

/** A location whose bytes are the files under `dir` on this machine. */
function filesLocation(
  dir: string,
  toolRemote: string,
  resticRepo: string,
  resticArgs: string[],
  toolEnv: Record<string, string>,
): Location {
  return {
    toolRemote,
    toolEnv,
    resticRepo,
    resticArgs,
    resticEnv: {},
    bytes: () => Promise.resolve(treeBytes(dir)),
    remove: () => Promise.resolve(removeQuietly(dir)),
  };
}

/** Repositories below a folder `nobody` owns on the sshd; restic reaches it through `ssh` with the same key. */
function sftpBackend(server: Sshd | null): BenchBackend | null {
  if (server === null) return null;
  const ssh = [
    "ssh",
    "-i",
    server.clientKey,
    "-p",
    String(server.port),
    "-o",
    `UserKnownHostsFile=${server.knownHosts}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    `${SSH_USER}@127.0.0.1`,
    "-s",
    "sftp",
  ].join(" ");
  return {
    name: "sftp",
    text: `OpenSSH sshd (internal-sftp) on 127.0.0.1, logged in as ${SSH_USER}`,
    fresh: (slug) => {
      const dir = join(server.data, slug);
      removeQuietly(dir);
      Deno.mkdirSync(dir);
      Deno.chownSync(dir, NOBODY_UID, NOBODY_GID);
      const repo = `${dir}/repo`;
      const env = { ATOCORE_SSH_KEY_FILE: server.clientKey, ATOCORE_SSH_KNOWN_HOSTS: server.knownHosts };
      return Promise.resolve(
        filesLocation(dir, server.url(repo), `sftp:${SSH_USER}@127.0.0.1:${repo}`, ["-o", `sftp.command=${ssh}`], env),
      );
    },
    [Symbol.asyncDispose]: () => server[Symbol.asyncDispose](),
  };
}

/** One bucket per repository on the radosgw, path-style; its bytes are the sizes its listing gives. */
function s3Backend(server: Radosgw | null): BenchBackend | null {
  if (server === null) return null;
  const credentials = { AWS_ACCESS_KEY_ID: server.accessKey, AWS_SECRET_ACCESS_KEY: server.secretKey };
  const client = new AwsClient({
    accessKeyId: server.accessKey,
    secretAccessKey: server.secretKey,
    service: "s3",
    retries: 0,
  });
  return {
    name: "s3",
    text: "Ceph radosgw (16.2, bluestore on a sparse file) on 127.0.0.1, one bucket per repository",
    fresh: async (slug) => {
      const bucket = slug.toLowerCase().replaceAll(/[^a-z0-9-]/g, "-");
      await server.createBucket(bucket);
      return {
        toolRemote: `s3://${bucket}/repo`,
        toolEnv: { ...credentials, ATOCORE_S3_ENDPOINT: server.endpoint },
        resticRepo: `s3:${server.endpoint}/${bucket}/repo`,
        resticArgs: ["-o", "s3.bucket-lookup=path"],
        resticEnv: credentials,
        bytes: () => bucketBytes(client, `${server.endpoint}/${bucket}`),
        remove: async () => void await server.admin(["bucket", "rm", `--bucket=${bucket}`, "--purge-objects"]),
      };
    },
    [Symbol.asyncDispose]: () => server.stop(),
  };
}

/** The sum of the sizes of every object in the bucket at `url` (ListObjectsV2, page by page). */
async function bucketBytes(client: AwsClient, url: string): Promise<number> {
  let total = 0;
  let token = "";
  for (;;) {
    const query = `?list-type=2&max-keys=1000${token ? `&continuation-token=${encodeURIComponent(token)}` : ""}`;
    const response = await client.fetch(url + query);
    const text = await response.text();
    if (response.status !== 200) throw new Error(`listing ${url}: HTTP ${response.status}: ${text.slice(0, 200)}`);
    for (const match of text.matchAll(/<Size>(\d+)<\/Size>/g)) total += Number(match[1]);
    token = /<IsTruncated>true<\/IsTruncated>/.test(text)
      ? text.match(/<NextContinuationToken>([^<]+)<\/NextContinuationToken>/)?.[1] ?? ""
      : "";
    if (!token) return total;
  }
}
