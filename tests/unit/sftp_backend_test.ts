/**
 * The SFTP backend against a real OpenSSH sshd (started once for this file): the backend conformance suite, then
 * what SFTP adds: host keys checked, a wrong key or a denied folder refused at once, reconnecting after a stall or an
 * outage, a full disk named.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { RefusedError, UsageError } from "../../src/errors.ts";
import type { RetryPolicy } from "../../src/repo/retry.ts";
import { type ClosableBackend, openSftpBackend, type SftpOptions } from "../../src/repo/sftp/backend.ts";
import { NOBODY_GID, NOBODY_UID } from "../_faults.ts";
import { mountTmpfs } from "../_mount.ts";
import { type Sshd, startSshd } from "../_servers/sshd.ts";
import { backendConformance } from "./backend_conformance_test.ts";

const sshd = await startSshd();
const FAST_RETRY: RetryPolicy = { attempts: 3, baseMs: 10, maxMs: 50 };
let serial = 0;

/** A new folder `nobody` owns under the server's data folder. */
function freshFolder(server: Sshd): string {
  const path = join(server.data, `t${++serial}`);
  Deno.mkdirSync(path);
  Deno.chownSync(path, NOBODY_UID, NOBODY_GID);
  return path;
}

function backendAt(server: Sshd, path: string, options: Partial<SftpOptions> = {}): ClosableBackend {
  return openSftpBackend(server.url(path), {
    keyFile: server.clientKey,
    knownHostsFile: server.knownHosts,
    ...options,
  });
}

const bytes = (text: string) => new TextEncoder().encode(text);

if (sshd !== null) {
  const server = sshd;
  backendConformance("sftp", () => {
    const backend = backendAt(server, `${freshFolder(server)}/repo`);
    return Promise.resolve({ backend, [Symbol.asyncDispose]: () => backend.close() });
  });

  /** A test with a backend on a fresh folder, closed at its end. */
  const sftpTest = (name: string, body: (backend: ClosableBackend, folder: string) => Promise<void>) =>
    Deno.test(`sftp backend: ${name}`, async () => {
      const folder = freshFolder(server);
      const backend = backendAt(server, `${folder}/repo`, { retry: FAST_RETRY });
      try {
        await body(backend, folder);
      } finally {
        await backend.close();
      }
    });

  sftpTest("writes leave no temporary file; the objects are files of the SSH user", async (backend, folder) => {
    await backend.write("packs/ab/x", bytes("x"), { exclusive: true });
    await backend.write("config", bytes("{}"), { exclusive: false });
    assert.deepEqual([...Deno.readDirSync(join(folder, "repo", ".tmp"))], []);
    assert.equal(Deno.statSync(join(folder, "repo", "packs", "ab", "x")).uid, NOBODY_UID);
    Deno.writeTextFileSync(join(folder, "repo", ".tmp", "left-by-a-crash"), "partial");
    assert.deepEqual((await backend.list("")).map((info) => info.name), ["config", "packs/ab/x"]);
  });

  sftpTest("a folder the SSH user cannot write is refused at once, naming it", async (backend, folder) => {
    Deno.chownSync(folder, 0, 0);
    Deno.chmodSync(folder, 0o755);
    await assert.rejects(backend.write("config", bytes("{}"), { exclusive: true }), (error: Error) => {
      assert.match(error.message, /permission denied/);
      assert.ok(error.message.includes(`${folder}/repo`), error.message);
      return true;
    });
  });

  sftpTest(
    "a folder where an object belongs, a file where a folder belongs: named as altered by hand",
    async (backend, folder) => {
      const repo = join(folder, "repo");
      Deno.mkdirSync(join(repo, "config"), { recursive: true });
      Deno.writeTextFileSync(join(repo, "packs"), "a file");
      for (const path of [repo, join(repo, "config"), join(repo, "packs")]) {
        Deno.chownSync(path, NOBODY_UID, NOBODY_GID);
      }
      const altered = (path: string, what: string) =>
        new RegExp(
          `^${path} on the SFTP server is ${what}; the repository was altered by hand, check it \\('remote verify'\\)$`,
        );
      const cases: [string, () => Promise<unknown>, RegExp][] = [
        ["read", () => backend.read("config"), altered(`${repo}/config`, "not a regular file \\(a folder\\)")],
        ["stat", () => backend.stat("config"), altered(`${repo}/config`, "not a regular file")],
        ["remove", () => backend.remove("config"), altered(`${repo}/config`, "a folder")],
        [
          "write",
          () => backend.write("packs/ab/x", bytes("x"), { exclusive: true }),
          altered(`${repo}/packs`, "not a folder"),
        ],
      ];
      for (const [what, act, pattern] of cases) {
        await assert.rejects(act(), (error: Error) => {
          assert.match(error.message, pattern, what);
          return true;
        });
      }
      assert.ok(Deno.statSync(join(repo, "config")).isDirectory, "the folder is left as found");
      assert.equal(Deno.readTextFileSync(join(repo, "packs")), "a file", "the file is left as found");
    },
  );

  sftpTest("a stalled connection is dropped and the request made again on a new one", async (_, folder) => {
    const backend = backendAt(server, `${folder}/repo`, {
      retry: FAST_RETRY,
      timeouts: { connectMs: 5000, stallMs: 300 },
    });
    try {
      await backend.write("config", bytes("one"), { exclusive: true });
      const sessions = server.sessions();
      assert.ok(sessions.length > 0, "a session process");
      for (const pid of sessions) Deno.kill(pid, "SIGSTOP");
      try {
        assert.equal(new TextDecoder().decode(await backend.read("config")), "one");
      } finally {
        for (const pid of sessions) Deno.kill(pid, "SIGKILL");
      }
    } finally {
      await backend.close();
    }
  });

  sftpTest("a server that is down: a bounded number of attempts, then one line naming the object", async (backend) => {
    await backend.write("config", bytes("one"), { exclusive: true });
    await server.stop();
    try {
      await assert.rejects(backend.read("config"), (error: Error) => {
        assert.match(
          error.message,
          /^reading config in sftp:\/\/nobody@127\.0\.0\.1:\d+\/\/.* failed after 3 attempts: /,
        );
        assert.doesNotMatch(error.message, /\n/);
        return true;
      });
    } finally {
      await server.start();
    }
    assert.equal(new TextDecoder().decode(await backend.read("config")), "one", "reconnected once it is back");
  });

  Deno.test("sftp backend: a key the server does not accept is refused at once, without retrying", async () => {
    const other = join(server.dir, `other_key_${++serial}`);
    const made = await new Deno.Command("ssh-keygen", { args: ["-q", "-t", "ed25519", "-N", "", "-f", other] })
      .output();
    assert.equal(made.code, 0);
    const backend = backendAt(server, `${freshFolder(server)}/repo`, { keyFile: other });
    try {
      await assert.rejects(backend.list(""), (error: Error) => {
        assert.ok(error instanceof UsageError, String(error));
        assert.match(error.message, /refused the SSH key .*other_key_\d+ for user nobody/);
        assert.doesNotMatch(error.message, /PRIVATE KEY/);
        return true;
      });
    } finally {
      await backend.close();
    }
  });

  Deno.test("sftp backend: an unknown or changed host key is refused with its fingerprint", async () => {
    const print = new TextDecoder().decode(
      (await new Deno.Command("ssh-keygen", { args: ["-lf", join(server.dir, "host_ed25519.pub")], stdout: "piped" })
        .output()).stdout,
    ).split(" ")[1];
    assert.match(print, /^SHA256:/);
    const empty = join(server.dir, `known_empty_${++serial}`);
    Deno.writeTextFileSync(empty, "");
    const changed = join(server.dir, `known_changed_${serial}`);
    const otherKey = join(server.dir, `other_host_${serial}`);
    await new Deno.Command("ssh-keygen", { args: ["-q", "-t", "ed25519", "-N", "", "-f", otherKey] }).output();
    const otherLine = Deno.readTextFileSync(`${otherKey}.pub`).split(" ").slice(0, 2).join(" ");
    Deno.writeTextFileSync(changed, `[127.0.0.1]:${server.port} ${otherLine}\n`);
    const revoked = join(server.dir, `known_revoked_${serial}`);
    Deno.writeTextFileSync(revoked, `@revoked [127.0.0.1]:${server.port} ${server.hostKeyLine}\n`);
    for (
      const [file, pattern] of [
        [empty, /is not in .* ssh-keyscan -p \d+ 127\.0\.0\.1 >> /],
        [changed, /CHANGED.*ssh-keygen -R '\[127\.0\.0\.1\]:\d+'/],
        [
          revoked,
          /is marked @revoked in \S+known_revoked_\d+; nothing was done; give the server a new host key, then /,
        ],
      ] as const
    ) {
      const backend = backendAt(server, `${freshFolder(server)}/repo`, { knownHostsFile: file });
      await assert.rejects(backend.list(""), (error: Error) => {
        assert.ok(error instanceof RefusedError, String(error));
        assert.match(error.message, pattern);
        assert.ok(error.message.includes(`ssh-ed25519 ${print}`), error.message);
        return true;
      });
      await backend.close();
    }
  });

  Deno.test("sftp backend: a hashed known_hosts (ssh-keygen -H) is understood", async () => {
    const hashed = join(server.dir, `known_hashed_${++serial}`);
    Deno.copyFileSync(server.knownHosts, hashed);
    const hashing = await new Deno.Command("ssh-keygen", { args: ["-H", "-f", hashed], stderr: "null", stdout: "null" })
      .output();
    assert.equal(hashing.code, 0);
    assert.match(Deno.readTextFileSync(hashed), /^\|1\|/);
    const backend = backendAt(server, `${freshFolder(server)}/repo`, { knownHostsFile: hashed });
    try {
      assert.deepEqual(await backend.list(""), []);
    } finally {
      await backend.close();
    }
  });

  sftpTest("a full remote disk is named, with the room left", async (_, folder) => {
    const disk = join(folder, "disk");
    Deno.mkdirSync(disk);
    const mount = mountTmpfs(disk, "1m");
    if (typeof mount === "string") throw new Error(mount);
    using _mount = mount;
    Deno.chownSync(disk, NOBODY_UID, NOBODY_GID);
    const backend = backendAt(server, disk, { retry: FAST_RETRY });
    try {
      await assert.rejects(
        backend.write("packs/ab/big", new Uint8Array(2 << 20), { exclusive: true }),
        (error: Error) => {
          assert.match(
            error.message,
            /^no space left on the SFTP server for packs\/ab\/big in .* bytes free, 2097152 needed/,
          );
          return true;
        },
      );
      assert.deepEqual([...Deno.readDirSync(join(disk, ".tmp"))], [], "the partial write removed");
    } finally {
      await backend.close();
    }
  });

  Deno.test("sftp: stop the server", async () => await server[Symbol.asyncDispose]());
}
