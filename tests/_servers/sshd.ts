/**
 * A real OpenSSH server for the SFTP tests: `sshd -D -e` (not a daemon) on 127.0.0.1 and a free port, its host key,
 * configuration, client key and known_hosts in one temporary folder; logins as the unprivileged `nobody`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { NOBODY_GID, NOBODY_UID } from "../_faults.ts";
import { skipBecause } from "../_helpers.ts";

const SSHD = "/usr/sbin/sshd";

/** The user the tests log in as: without root's power, so that file modes hold. */
export const SSH_USER = "nobody";

/** A running sshd and what a client needs to reach it; stopped and removed at the end of the `await using` scope. */
export interface Sshd extends AsyncDisposable {
  /** The temporary folder holding everything (readable by `nobody`). */
  dir: string;
  port: number;
  /** The client's private key (OpenSSH format, no passphrase) whose public half is authorized. */
  clientKey: string;
  /** A known_hosts file holding the server's host key as `[127.0.0.1]:PORT`. */
  knownHosts: string;
  /** The server's host key's public line (`ssh-ed25519 AAAA…`). */
  hostKeyLine: string;
  /** A folder `nobody` owns, for repositories. */
  data: string;
  /** `sftp://nobody@127.0.0.1:PORT/` + the absolute `path` (a `//` after the port: absolute). */
  url(path: string): string;
  /** Stop the server and every session it forked (as a network outage would), by their pids. */
  stop(): Promise<void>;
  /** Start it again on the same port with the same keys. */
  start(): Promise<void>;
  /** Restart it with `lines` added to its configuration (none: as it first started). */
  restartWith(lines: string[]): Promise<void>;
  /** The pids of the session processes sshd forked (one or two per connection), to stall or kill one. */
  sessions(): number[];
}

/**
 * Start an sshd for a test file, or return `null` after printing the one SKIPPED line when sshd is not installed or
 * this is not root (with `CI=true` that throws: `.ci/run` installs openssh-server).
 */
export async function startSshd(): Promise<Sshd | null> {
  const missing = !isFile(SSHD)
    ? `${SSHD} not found (apt-get install openssh-server)`
    : Deno.uid() !== 0
    ? "sshd runs as root to log in as another user; not root here"
    : null;
  if (missing !== null) {
    const reason = `${missing}: the SFTP tests against a real OpenSSH server`;
    if (Deno.env.get("CI") === "true") throw new Error(`${reason}; CI=true requires it`);
    skipBecause(reason);
    return null;
  }
  const dir = Deno.makeTempDirSync({ prefix: "atocore-sshd-" });
  Deno.chmodSync(dir, 0o755);
  const port = freePort();
  const keys = makeKeys(dir, port);
  const data = join(dir, "data");
  Deno.mkdirSync(data);
  Deno.chownSync(data, NOBODY_UID, NOBODY_GID);
  Deno.writeTextFileSync(join(dir, "sshd_config"), sshdConfig(dir, port));
  let child: Deno.ChildProcess | null = await launch(dir, port);
  // A run that filters out the test that stops it (deno test --filter) must not leave it or its folder behind.
  globalThis.addEventListener("unload", () => {
    if (!existsSync(dir)) return;
    if (child !== null) killTree(child.pid);
    Deno.removeSync(dir, { recursive: true });
  });
  const server: Sshd = {
    dir,
    port,
    ...keys,
    data,
    url: (path) => `sftp://${SSH_USER}@127.0.0.1:${port}/${path}`,
    stop: async () => {
      if (child !== null) await stopTree(child);
      child = null;
    },
    start: async () => {
      if (child === null) child = await launch(dir, port);
    },
    restartWith: async (lines) => {
      await server.stop();
      Deno.writeTextFileSync(
        join(dir, "sshd_config"),
        sshdConfig(dir, port) + lines.map((line) => `${line}\n`).join(""),
      );
      await server.start();
    },
    sessions: () => child === null ? [] : sessionsOf(child.pid),
    [Symbol.asyncDispose]: async () => {
      await server.stop();
      Deno.removeSync(dir, { recursive: true });
    },
  };
  return server;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** A port nothing listens on now (the kernel's choice, released at once). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function run(program: string, args: string[]): string {
  const output = new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const decoder = new TextDecoder();
  assert.equal(output.code, 0, `${program} ${args.join(" ")}: ${decoder.decode(output.stderr)}`);
  return decoder.decode(output.stdout);
}

/** The host key, the client key authorized for `nobody`, and a known_hosts that trusts the host key on `port`. */
function makeKeys(dir: string, port: number): Pick<Sshd, "clientKey" | "knownHosts" | "hostKeyLine"> {
  const hostKey = join(dir, "host_ed25519");
  const clientKey = join(dir, "client_ed25519");
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", hostKey]);
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "atocore-test", "-f", clientKey]);
  Deno.copyFileSync(`${clientKey}.pub`, join(dir, "authorized_keys"));
  Deno.chmodSync(join(dir, "authorized_keys"), 0o644);
  const hostKeyLine = Deno.readTextFileSync(`${hostKey}.pub`).trim().split(" ").slice(0, 2).join(" ");
  const knownHosts = join(dir, "known_hosts");
  Deno.writeTextFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKeyLine}\n`);
  return { clientKey, knownHosts, hostKeyLine };
}

function sshdConfig(dir: string, port: number): string {
  return [
    "ListenAddress 127.0.0.1",
    `Port ${port}`,
    `HostKey ${join(dir, "host_ed25519")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "StrictModes no", // the key files sit under /tmp, which everyone may write
    "UsePAM no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    `AllowUsers ${SSH_USER}`,
    "Subsystem sftp internal-sftp",
    "ForceCommand internal-sftp",
    "LogLevel ERROR",
    "",
  ].join("\n");
}

/** Start `sshd -D -e` and wait until it accepts connections. */
async function launch(dir: string, port: number): Promise<Deno.ChildProcess> {
  Deno.mkdirSync("/run/sshd", { recursive: true }); // its privilege-separation folder
  const child = new Deno.Command(SSHD, {
    args: ["-D", "-e", "-f", join(dir, "sshd_config")],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let tries = 0; tries < 200; tries++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return child;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  await stopTree(child);
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within 5 s; run '${SSHD} -D -e -f ${dir}/sshd_config'`);
}

/** The pids of `pid`'s children (sshd forks one per session), from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (parent === pid) found.push(Number(entry.name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The session processes of the sshd `pid`: its children and theirs. */
function sessionsOf(pid: number): number[] {
  return childrenOf(pid).flatMap((child) => [child, ...childrenOf(child)]);
}

/** Kill sshd's session processes (and theirs) and sshd itself, by pid. */
function killTree(pid: number): void {
  for (const each of [pid, ...sessionsOf(pid)]) {
    try {
      Deno.kill(each, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Kill sshd and its sessions and wait for sshd to end. */
async function stopTree(child: Deno.ChildProcess): Promise<void> {
  killTree(child.pid);
  await child.status;
}
