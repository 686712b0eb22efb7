/**
 * An SSH server that logs in and answers keepalives but never starts its SFTP subsystem (a hung `sftp-server`; here
 * ssh2's own server, which never answers the request): a command fails within its attempts in one line, never waits
 * for ever.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import ssh2 from "ssh2";
import { tempDir } from "../_helpers.ts";
import { runUntil } from "../_network.ts";
import { oneErrorLine } from "../_remote_cli.ts";

/** ssh2's server side, as far as this test uses it (the package ships no types). */
interface ServerClient {
  on(event: "authentication", listener: (context: { accept(): void }) => void): void;
  on(event: "ready" | "error", listener: () => void): void;
  on(event: "session", listener: (accept: () => { on(event: "subsystem", listener: () => void): void }) => void): void;
}

/** An SSH server on 127.0.0.1 that accepts any key and never answers a subsystem request; its port. */
async function silentSftpServer(hostKey: string): Promise<{ port: number } & AsyncDisposable> {
  const server = new ssh2.Server({ hostKeys: [Deno.readTextFileSync(hostKey)] }, (client: ServerClient) => {
    client.on("authentication", (context) => context.accept());
    client.on("ready", () => client.on("session", (accept) => accept().on("subsystem", () => {})));
    client.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return { port, [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function keygen(path: string): void {
  const run = new Deno.Command("ssh-keygen", { args: ["-q", "-t", "ed25519", "-N", "", "-f", path] }).outputSync();
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
}

Deno.test("an SFTP subsystem that never starts: remote list fails in one line within its attempts", async () => {
  using dir = tempDir();
  const [hostKey, clientKey] = [join(dir.path, "host"), join(dir.path, "client")];
  keygen(hostKey);
  keygen(clientKey);
  await using server = await silentSftpServer(hostKey);
  const hostLine = Deno.readTextFileSync(`${hostKey}.pub`).trim().split(" ").slice(0, 2).join(" ");
  Deno.writeTextFileSync(join(dir.path, "known_hosts"), `[127.0.0.1]:${server.port} ${hostLine}\n`);
  const env = {
    ATOCORE_BACKUP_REMOTE: `sftp://someone@127.0.0.1:${server.port}//srv/repo`,
    ATOCORE_SSH_KEY_FILE: clientKey,
    ATOCORE_SSH_KNOWN_HOSTS: join(dir.path, "known_hosts"),
    ATOCORE_BACKUP_STALL_TIMEOUT: "1s",
  };
  const { run, killed } = await runUntil(["remote", "list"], env, () => false, () => {}, 60_000);
  assert.ok(!killed, "remote list still waiting after 60 s");
  assert.equal(run.code, 1, run.stderr);
  assert.match(oneErrorLine(run, "remote list"), /did not start SFTP within 1 s/);
});
