/**
 * A real S3 server for the tests: Ceph's radosgw over a single-node cluster (one mon, one OSD on a bluestore file, no
 * cephx) in a temporary folder, on 127.0.0.1; started once per test file, stopped by the pids its daemons wrote.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import { skipBecause } from "../_helpers.ts";

/** A running cluster and gateway, and the credentials of its one user. */
export interface Radosgw {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  /** The temporary folder holding every daemon's state, pids, sockets and logs. */
  readonly dir: string;
  /** Make a bucket (a signed PUT as the user). */
  createBucket(name: string): Promise<void>;
  /** Stop the gateway alone (the cluster keeps running); {@linkcode startGateway} brings it back on the same port. */
  stopGateway(): Promise<void>;
  /** Start the gateway and wait until it answers. */
  startGateway(): Promise<void>;
  /** Freeze (`SIGSTOP`) or thaw (`SIGCONT`) the gateway: connections open, nothing answered. */
  freezeGateway(frozen: boolean): void;
  /** Run `radosgw-admin` against the cluster; fails the test unless it exits 0. Returns stdout. */
  admin(args: string[]): Promise<string>;
  /** Stop radosgw, the OSD, then the mon (by pid), and remove the folder. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startRadosgw}. */
export interface RadosgwOptions {
  /** The bluestore file's size in bytes (default 10 GiB, sparse). */
  blockBytes?: number;
  /** Extra `[global]` lines of ceph.conf. */
  extraConf?: string[];
}

const DAEMONS = ["radosgw", "ceph-mon", "ceph-osd", "monmaptool", "radosgw-admin", "ceph"] as const;

/**
 * Whether radosgw can run here for `what`: the Debian packages installed and root. Without them, print the one
 * `SKIPPED:` line; with `CI=true` throw instead (`.ci/run` installs the packages).
 */
export function radosgwFor(what: string): boolean {
  const missing = DAEMONS.filter((name) => !onPath(name));
  let reason = "";
  if (missing.length > 0) {
    reason = `radosgw not found (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd; missing ` +
      `${missing.join(", ")}): ${what}`;
  } else if (Deno.uid() !== 0) {
    reason = `radosgw needs root here (its cluster runs as root in a temporary folder): ${what}`;
  }
  if (reason === "") return true;
  if (Deno.env.get("CI") === "true") throw new Error(`${reason}; CI=true requires it`);
  skipBecause(reason);
  return false;
}

function onPath(name: string): boolean {
  return (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":").some((folder) => {
    try {
      return Deno.statSync(join(folder, name)).isFile;
    } catch {
      return false;
    }
  });
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function cephConf(dir: string, monPort: number, rgwPort: number, options: RadosgwOptions): string {
  return `[global]
fsid = ${crypto.randomUUID()}
mon host = v2:127.0.0.1:${monPort}
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
ms mon client mode = crc secure
ms client mode = crc secure
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
paxos propose interval = 0.05
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
mon data = ${dir}/mon/$name
osd data = ${dir}/osd/$name
osd objectstore = bluestore
bluestore block create = true
bluestore block size = ${options.blockBytes ?? 10737418240}
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mount = false
bluestore fsck on mkfs = false
bluestore fsck on umount = false
bluestore cache size = 134217728
osd memory target = 939524096
rgw gc obj min wait = 0
rgw gc processor period = 15
rgw bucket quota ttl = 0
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
${(options.extraConf ?? []).join("\n")}
`;
}

async function run(program: string, args: string[], what: string): Promise<string> {
  const output = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped", stdin: "null" }).output();
  const text = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, `${what}: ${program} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  return text;
}

async function until(what: string, seconds: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`radosgw harness: ${what} not within ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Whether `pid` is a live (not zombie) process: `/proc/PID/cmdline` is empty for a zombie. */
function alive(pid: number): boolean {
  try {
    return Deno.readFileSync(`/proc/${pid}/cmdline`).length > 0;
  } catch {
    return false;
  }
}

/** Whether `pid` is a live radosgw process (not a stopped one's pid that another process took since). */
function isRadosgw(pid: number): boolean {
  try {
    return new TextDecoder().decode(Deno.readFileSync(`/proc/${pid}/cmdline`)).split("\0")[0].endsWith("radosgw");
  } catch {
    return false;
  }
}

function pidOf(dir: string, name: string): number | null {
  try {
    const pid = Number(Deno.readTextFileSync(join(dir, "run", `${name}.pid`)).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Send SIGTERM to the daemon `name` (by its pid file) and wait for it to end; SIGKILL after `seconds`. */
async function stopDaemon(dir: string, name: string, seconds: number): Promise<void> {
  const pid = pidOf(dir, name);
  if (pid === null || !alive(pid)) return;
  Deno.kill(pid, "SIGTERM");
  const deadline = Date.now() + seconds * 1000;
  while (alive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (alive(pid)) Deno.kill(pid, "SIGKILL");
  while (alive(pid)) await new Promise((resolve) => setTimeout(resolve, 20));
}

async function startCluster(dir: string, conf: string, monPort: number): Promise<void> {
  for (const sub of ["run", "log", "mon/mon.a", "osd/osd.0", "rgw"]) {
    Deno.mkdirSync(join(dir, sub), { recursive: true });
  }
  const fsid = /fsid = (\S+)/.exec(Deno.readTextFileSync(conf))![1];
  const monmap = join(dir, "monmap");
  await run("monmaptool", ["--create", "--fsid", fsid, "--addv", "a", `[v2:127.0.0.1:${monPort}]`, monmap], "monmap");
  await run("ceph-mon", ["-c", conf, "-i", "a", "--mkfs", "--monmap", monmap], "mon mkfs");
  await run("ceph-mon", ["-c", conf, "-i", "a"], "mon start");
  const ceph = (args: string[]) => run("ceph", ["-c", conf, "--connect-timeout", "5", ...args], "ceph");
  await until("the mon answering", 30, async () => (await ceph(["mon", "stat"])).includes("quorum"));
  const uuid = crypto.randomUUID();
  const id = (await ceph(["osd", "new", uuid])).trim();
  assert.equal(id, "0", "the first OSD's id");
  await run("ceph-osd", ["-c", conf, "-i", "0", "--mkfs", "--osd-uuid", uuid], "osd mkfs");
  await run("ceph-osd", ["-c", conf, "-i", "0"], "osd start");
  await until("osd.0 up", 60, async () => /osd\.0 up/.test(await ceph(["osd", "dump"])));
}

/**
 * Start a cluster and radosgw in a new temporary folder, with a user whose keys are returned; `null` (after the
 * `SKIPPED:` line) when radosgw cannot run here. Every daemon is stopped by {@linkcode Radosgw.stop}, and killed at
 * the process's unload if a test left it running.
 */
export async function startRadosgw(what: string, options: RadosgwOptions = {}): Promise<Radosgw | null> {
  if (!radosgwFor(what)) return null;
  const dir = Deno.makeTempDirSync({ prefix: "atocore-radosgw-" });
  const monPort = freePort();
  const rgwPort = freePort();
  const conf = join(dir, "ceph.conf");
  Deno.writeTextFileSync(conf, cephConf(dir, monPort, rgwPort, options));
  globalThis.addEventListener("unload", () => {
    for (const name of ["client.rgw", "osd.0", "mon.a"]) {
      const pid = pidOf(dir, name);
      if (pid !== null && alive(pid)) Deno.kill(pid, "SIGKILL");
    }
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // stopped and removed already
    }
  });
  await startCluster(dir, conf, monPort);
  const server = gateway(dir, conf, rgwPort);
  await server.startGateway();
  return server;
}

function gateway(dir: string, conf: string, port: number): Radosgw {
  const accessKey = `AK${crypto.randomUUID().replaceAll("-", "").slice(0, 18).toUpperCase()}`;
  const secretKey = crypto.randomUUID().replaceAll("-", "") + crypto.randomUUID().replaceAll("-", "").slice(0, 8);
  const endpoint = `http://127.0.0.1:${port}`;
  let userMade = false;
  const admin = (args: string[]) => run("radosgw-admin", ["-c", conf, ...args], "radosgw-admin");
  const client = new AwsClient({ accessKeyId: accessKey, secretAccessKey: secretKey, service: "s3", retries: 0 });
  return {
    endpoint,
    accessKey,
    secretKey,
    dir,
    admin,
    async createBucket(name) {
      const response = await client.fetch(`${endpoint}/${name}`, { method: "PUT" });
      assert.equal(response.status, 200, `create bucket ${name}: ${await response.text()}`);
    },
    stopGateway: () => stopDaemon(dir, "client.rgw", 1),
    async startGateway() {
      const before = pidOf(dir, "client.rgw");
      await run("radosgw", ["-c", conf, "-n", "client.rgw"], "radosgw start");
      await until("radosgw answering", 90, async () => {
        await (await fetch(endpoint)).body?.cancel();
        return true;
      });
      // the pid file is written apart from answering: freezeGateway must not find it missing, or the stopped one's
      await until("radosgw's pid file", 30, () => {
        const pid = pidOf(dir, "client.rgw");
        return Promise.resolve(pid !== null && pid !== before && isRadosgw(pid));
      });
      if (!userMade) {
        await admin([
          "user",
          "create",
          "--uid=ci",
          "--display-name=ci",
          `--access-key=${accessKey}`,
          `--secret-key=${secretKey}`,
        ]);
        userMade = true;
      }
    },
    freezeGateway(frozen) {
      const pid = pidOf(dir, "client.rgw");
      if (pid === null || !isRadosgw(pid)) throw new Error(`radosgw harness: no running radosgw to freeze (${pid})`);
      Deno.kill(pid, frozen ? "SIGSTOP" : "SIGCONT");
    },
    async stop() {
      // radosgw takes 5-10 s to end on SIGTERM; it keeps no state of its own, so it gets 1 s, then SIGKILL
      for (const [name, seconds] of [["client.rgw", 1], ["osd.0", 20], ["mon.a", 10]] as const) {
        await stopDaemon(dir, name, seconds);
      }
      Deno.removeSync(dir, { recursive: true });
    },
  };
}
