/**
 * Authentication keys and MACs against the README's definition, computed apart by Python's `hmac` and `hashlib` (HKDF
 * written out from RFC 5869), and the key file's parser: what it takes and what it refuses, never echoing a key.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { generateIdentity, parseIdentity } from "../../src/crypto/age.ts";
import { bech32Decode } from "../../src/crypto/bech32.ts";
import {
  deriveAuthKey,
  formatAuthKeyFile,
  macMatches,
  parseAuthKeyFile,
  refsMac,
  snapshotMac,
} from "../../src/crypto/auth_key.ts";
import { toolFor } from "../_helpers.ts";

const PYTHON = `
import hashlib, hmac, sys
secret, repo, name, sha = bytes.fromhex(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
prk = hmac.new(b"atocore-backup", secret, hashlib.sha256).digest()
k = hmac.new(prk, b"snapshot-authentication-v1" + b"\\x01", hashlib.sha256).digest()
message = b"atocore-backup snapshot v1\\0" + repo.encode() + b"\\0" + name.encode() + b"\\0" + sha.encode()
print(k.hex(), hmac.new(k, message, hashlib.sha256).hexdigest())
`;

Deno.test("auth key: K and the MAC are the README's HKDF-SHA256 and HMAC-SHA256, as Python computes them", () => {
  if (!toolFor("python3", "the independent computation of K and the MAC")) return;
  const made = generateIdentity();
  const identity = parseIdentity(made.identity);
  const claim = {
    repositoryId: "0123456789abcdef0123456789abcdef",
    objectName: "snapshots/20260409T010203Z_0123456789abcdef",
    sha256: "ab".repeat(32),
  };
  const secret = Buffer.from(bech32Decode(made.identity)!.bytes).toString("hex");
  const output = new Deno.Command("python3", {
    args: ["-c", PYTHON, secret, claim.repositoryId, claim.objectName, claim.sha256],
    stdout: "piped",
  }).outputSync();
  assert.equal(output.code, 0);
  const [k, mac] = new TextDecoder().decode(output.stdout).trim().split(" ");
  const key = deriveAuthKey(identity);
  assert.equal(Buffer.from(key.key).toString("hex"), k);
  assert.equal(key.recipient, made.recipient);
  assert.equal(snapshotMac(key, claim), mac);
  assert.ok(macMatches(key, claim, mac));
  for (const other of [{ ...claim, repositoryId: "f".repeat(32) }, { ...claim, objectName: "snapshots/x" }]) {
    assert.ok(!macMatches(key, other, mac), "the MAC covers the repository and the name");
  }
  assert.ok(!macMatches(key, claim, mac.toUpperCase()), "lowercase hex only");
  assert.ok(!macMatches(deriveAuthKey(parseIdentity(generateIdentity().identity)), claim, mac), "another key");
});

const REFS_PYTHON = `
import hmac, hashlib, sys
k, fields = bytes.fromhex(sys.argv[1]), sys.argv[2:]
print(hmac.new(k, b"atocore-backup refs v1\\0" + "\\0".join(fields).encode(), hashlib.sha256).hexdigest())
`;

Deno.test("refs MAC: the README's HMAC-SHA256 over the refs' fields, the sequence last where the refs hold one", () => {
  if (!toolFor("python3", "the independent computation of the refs' MAC")) return;
  const key = deriveAuthKey(parseIdentity(generateIdentity().identity));
  const claim = {
    repositoryId: "0123456789abcdef0123456789abcdef",
    objectName: "snapshots/20260409T010203Z_0123456789abcdef",
    sha256: "ab".repeat(32),
  };
  const refs = { source: "fedcba9876543210", local_sha256: "cd".repeat(32), packs: [{ id: "ef".repeat(32), size: 7 }] };
  const python = (...extra: string[]) => {
    const fields = [
      claim.repositoryId,
      claim.objectName,
      claim.sha256,
      refs.source,
      refs.local_sha256,
      `${"ef".repeat(32)}:7`,
    ];
    const output = new Deno.Command("python3", {
      args: ["-c", REFS_PYTHON, Buffer.from(key.key).toString("hex"), ...fields, ...extra],
      stdout: "piped",
    }).outputSync();
    assert.equal(output.code, 0);
    return new TextDecoder().decode(output.stdout).trim();
  };
  assert.equal(refsMac(key, claim, refs), python(), "refs without a sequence: the MAC refs had before it existed");
  assert.equal(refsMac(key, claim, { ...refs, sequence: 42 }), python("42"));
  assert.notEqual(refsMac(key, claim, { ...refs, sequence: 43 }), python("42"), "the MAC covers the sequence");
});

Deno.test("auth key file: its own output parses back; anything else is refused naming the line, not the key", () => {
  const identities = [generateIdentity(), generateIdentity()].map((made) => parseIdentity(made.identity));
  const text = formatAuthKeyFile(identities);
  const parsed = parseAuthKeyFile(text, "auth.key");
  assert.deepEqual(parsed.map((key) => key.recipient), identities.map((identity) => identity.recipient));
  assert.deepEqual(parsed.map((key) => key.key), identities.map((identity) => deriveAuthKey(identity).key));
  assert.deepEqual(parseAuthKeyFile(`\r\n  ${text.split("\n")[3]}  \r\n# end\n`, "f").length, 1, "spaces, CRLF");
  const appended = formatAuthKeyFile([identities[0]]) + formatAuthKeyFile([identities[1]]); // `>>` of two runs
  assert.deepEqual(parseAuthKeyFile(appended, "f").map((key) => key.recipient), parsed.map((key) => key.recipient));

  assert.deepEqual(parseAuthKeyFile(text + text, "f"), parsed, "the same lines twice ('auth-key >>' run twice)");
  const [recipient, hex] = text.split("\n")[3].split(" ");
  const refused: [string, RegExp][] = [
    ["", /^f: no authentication key in the file$/],
    [`${recipient}\n`, /^f:1: not an authentication key line/],
    [`${recipient} ${hex} extra\n`, /^f:1: not an authentication key line/],
    [`${recipient} ${hex.toUpperCase()}\n`, /^f:1: not an authentication key line/],
    [`# a\n${recipient.toUpperCase()} ${hex}\n`, /^f:2: not an authentication key line/],
    [`age1nope ${hex}\n`, /^f:1: not an authentication key line/],
    [`${recipient} ${hex}\n${recipient} ${"0".repeat(64)}\n`, /^f:2: another key for the recipient of line 1; keep/],
    [generateIdentity().identity, /^f:1: holds an age identity/],
  ];
  for (const [bad, pattern] of refused) {
    assert.throws(() => parseAuthKeyFile(bad, "f"), (error: Error) => {
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes(hex), "the key is not echoed");
      return true;
    });
  }
});
