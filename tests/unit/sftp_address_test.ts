/**
 * The SFTP URL (restic's convention: `/rel` from the login folder, `//abs` absolute) and the known_hosts matching
 * (patterns, negation, `[host]:port`, hashed names, `@revoked`), without a server; the fingerprints are checked
 * against `ssh-keygen -l` in sftp_backend_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { UsageError } from "../../src/errors.ts";
import { hostFieldMatches, hostKeyAlgorithms, judgeHostKey, keysForHost } from "../../src/repo/sftp/known_hosts.ts";
import { parseSftpUrl } from "../../src/repo/sftp/url.ts";
import { isTransientSftpError } from "../../src/repo/sftp/errors.ts";

Deno.test("sftp URL: relative and absolute paths, ports, IPv6, escapes; a password, query, dot segment or missing part is refused", () => {
  assert.deepEqual(parseSftpUrl("sftp://backup@nas/atocore"), {
    user: "backup",
    host: "nas",
    port: 22,
    path: "atocore",
    location: "sftp://backup@nas/atocore",
  });
  const absolute = parseSftpUrl("sftp://u@10.0.0.5:2222//srv/off%20site/");
  assert.deepEqual([absolute.path, absolute.port, absolute.location], [
    "/srv/off site",
    2222,
    "sftp://u@10.0.0.5:2222//srv/off%20site",
  ]);
  assert.equal(parseSftpUrl("sftp://u@[::1]:22/x").host, "::1");
  assert.equal(parseSftpUrl("sftp://u@[::1]:22/x").location, "sftp://u@[::1]/x");
  assert.throws(() => parseSftpUrl("sftp://u:hunter2@h/x"), (error: Error) => {
    assert.ok(error instanceof UsageError);
    assert.doesNotMatch(error.message, /hunter2/);
    return /holds a password/.test(error.message);
  });
  for (
    const bad of ["sftp://h/x", "sftp://u@h", "sftp://u@h/", "sftp://u@h//", "sftp://u@h:0/x", "sftp://u@h:99999/x"]
  ) {
    assert.throws(() => parseSftpUrl(bad), /not an SFTP location.*sftp:\/\/USER@HOST/, bad);
  }
  for (const dotted of ["sftp://u@h/a/../b", "sftp://u@h//srv/./x", "sftp://u@h/.."]) {
    assert.throws(() => parseSftpUrl(dotted), /not an SFTP location/, dotted);
  }
  for (const query of ["sftp://u@h/x?y=1", "sftp://u@h//srv/x#frag"]) {
    assert.throws(() => parseSftpUrl(query), /has a query or fragment \(\? or #\).*%3F/, query);
  }
  assert.equal(parseSftpUrl("sftp://u@h/why%3F").path, "why?", "an escaped ? is a name");
});

Deno.test("known_hosts: host patterns, negation, [host]:port, hashed names, markers and comments", () => {
  assert.ok(hostFieldMatches("nas,backup.example", "backup.example"));
  assert.ok(hostFieldMatches("*.example", "a.example"));
  assert.ok(!hostFieldMatches("*.example,!bad.example", "bad.example"));
  assert.ok(hostFieldMatches("[10.0.0.5]:2222", "[10.0.0.5]:2222"));
  assert.ok(!hostFieldMatches("10.0.0.5", "[10.0.0.5]:2222"), "another port is another host");
  assert.ok(!hostFieldMatches("a.example", "a-example"), "a dot is not a wildcard");
  // |1|salt|HMAC-SHA1(salt, name), as ssh-keygen -H writes it
  const salt = Buffer.from("0123456789abcdef0123");
  const mac = createHmac("sha1", salt).update("[nas]:2222").digest("base64");
  assert.ok(hostFieldMatches(`|1|${salt.toString("base64")}|${mac}`, "[nas]:2222"));
  assert.ok(!hostFieldMatches(`|1|${salt.toString("base64")}|${mac}`, "nas"));

  const key = (n: number) =>
    Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.alloc(4, 0), Buffer.alloc(32, n)]);
  const line = (n: number) => `ssh-ed25519 ${key(n).toString("base64")}`;
  const text = [
    "# a comment",
    `nas ${line(1)} old`,
    `@revoked nas ${line(2)}`,
    `@cert-authority *.example ${line(3)}`,
    `other ${line(4)}`,
    "",
  ].join("\n");
  const known = keysForHost(text, "nas", 22);
  assert.deepEqual(known.map((k) => [k.line, k.revoked]), [[2, false], [3, true]]);
  assert.equal(judgeHostKey(known, new Uint8Array(key(1))), "trusted");
  assert.equal(judgeHostKey(known, new Uint8Array(key(2))), "revoked");
  assert.equal(judgeHostKey(known, new Uint8Array(key(4))), "changed");
  assert.equal(judgeHostKey(keysForHost(text, "new", 22), new Uint8Array(key(1))), "unknown");
  assert.deepEqual(hostKeyAlgorithms(known), ["ssh-ed25519"]);
  assert.equal(hostKeyAlgorithms([]), undefined);
  // a host named in capitals is looked up lowercased, as OpenSSH does: a hashed name was hashed so
  const hashed = `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update("nas").digest("base64")} ${line(1)}`;
  assert.deepEqual(keysForHost(hashed, "NaS", 22).map((k) => k.line), [1]);
  assert.deepEqual(keysForHost(text, "NAS", 22).map((k) => k.line), [2, 3]);
});

Deno.test("sftp errors: a connection cut while the SFTP subsystem starts is retried; a refused key or a path is not", () => {
  for (const transient of ["Unable to start subsystem: sftp", "Received unexpected SFTP session termination"]) {
    assert.ok(isTransientSftpError(new Error(transient)), transient);
  }
  const denied = Object.assign(new Error("All configured authentication methods failed"), {
    level: "client-authentication",
  });
  assert.ok(!isTransientSftpError(denied));
  assert.ok(
    !isTransientSftpError(Object.assign(new Error("No such file"), { code: 2 })),
    "an SFTP status: not retried",
  );
});
