/**
 * The age format on node:crypto against the real `age` and `age-keygen` tools, both ways, and every refusal:
 * tampering, truncation, another key, not an age file, key files with comments.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ageDecrypt,
  ageEncrypt,
  AgeError,
  type AgeErrorKind,
  formatIdentityFile,
  generateIdentity,
  parseIdentity,
  parseIdentityFile,
  parseRecipient,
  parseRecipientsFile,
} from "../../src/crypto/age.ts";
import { tempDir, toolFor } from "../_helpers.ts";

const SIZES = [0, 1, 65536, 65537, 3_000_000];

/** Whether the `age` and `age-keygen` tools are there for `what` (a skip line, or a failure under CI=true, when not). */
function ageTools(what: string): boolean {
  return toolFor("age", what) && toolFor("age-keygen", what);
}

async function tool(program: string, args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const output = await piped(program, args, stdin);
  assert.equal(output.code, 0, `${program} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  return output.stdout;
}

/** Run `program` feeding `stdin` while its output is read (a large input would otherwise block both). */
async function piped(program: string, args: string[], stdin?: Uint8Array): Promise<Deno.CommandOutput> {
  const child = new Deno.Command(program, { args, stdin: stdin ? "piped" : "null", stdout: "piped", stderr: "piped" })
    .spawn();
  const output = child.output();
  if (stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(stdin).catch(() => {});
    await writer.close().catch(() => {});
  }
  return await output;
}

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  return bytes;
}

function kindOf(action: () => unknown): AgeErrorKind | "none" {
  try {
    action();
    return "none";
  } catch (error) {
    if (error instanceof AgeError) return error.kind;
    throw error;
  }
}

Deno.test("age: our identity files are read by age-keygen -y, and age-keygen's are read by us", async () => {
  if (!ageTools("key files read both ways")) return;
  using dir = tempDir();
  const ours = generateIdentity();
  Deno.writeTextFileSync(join(dir.path, "ours.key"), formatIdentityFile(ours.identity));
  const printed = new TextDecoder().decode(await tool("age-keygen", ["-y", join(dir.path, "ours.key")])).trim();
  assert.equal(printed, ours.recipient);
  await tool("age-keygen", ["-o", join(dir.path, "cli.key")]);
  const text = Deno.readTextFileSync(join(dir.path, "cli.key"));
  const [identity] = parseIdentityFile(text, "cli.key");
  const expected = new TextDecoder().decode(await tool("age-keygen", ["-y", join(dir.path, "cli.key")])).trim();
  assert.equal(identity.recipient, expected);
});

Deno.test("age: interop both ways with the age tool, two recipients, 0 B to 3 MB", async () => {
  if (!ageTools("interop with the age tool")) return;
  using dir = tempDir();
  const ours = generateIdentity();
  const oursKey = join(dir.path, "ours.key");
  Deno.writeTextFileSync(oursKey, formatIdentityFile(ours.identity));
  const cliKey = join(dir.path, "cli.key");
  await tool("age-keygen", ["-o", cliKey]);
  const cli = parseIdentityFile(Deno.readTextFileSync(cliKey), cliKey)[0];
  for (const size of SIZES) {
    const plain = randomBytes(size);
    const sealed = ageEncrypt(plain, [cli.recipient, ours.recipient]);
    for (const key of [cliKey, oursKey]) {
      assert.deepEqual(await tool("age", ["-d", "-i", key], sealed), plain, `age -d of ${size} B with ${key}`);
    }
    const byCli = await tool("age", ["-r", cli.recipient, "-r", ours.recipient], plain);
    assert.deepEqual(ageDecrypt(byCli, [cli]), plain, `our decrypt of age's ${size} B`);
    assert.deepEqual(ageDecrypt(byCli, [parseIdentity(ours.identity)]), plain);
  }
});

Deno.test("age: decrypting into a buffer gives a view of it when it fits, a new array when not", () => {
  const { identity, recipient } = generateIdentity();
  const plain = new Uint8Array(200_000).map((_, index) => index % 251);
  const sealed = ageEncrypt(plain, [recipient]);
  const into = new Uint8Array(sealed.length).fill(9);
  const view = ageDecrypt(sealed, [parseIdentity(identity)], into);
  assert.deepEqual(view, plain);
  assert.equal(view.buffer, into.buffer);
  const small = new Uint8Array(1000);
  const fresh = ageDecrypt(sealed, [parseIdentity(identity)], small);
  assert.deepEqual(fresh, plain);
  assert.notEqual(fresh.buffer, small.buffer);
});

Deno.test("age: tampered, truncated, another key, not age: each a distinct refusal", () => {
  const key = parseIdentity(generateIdentity().identity);
  const other = parseIdentity(generateIdentity().identity);
  const plain = randomBytes(200_000);
  const sealed = ageEncrypt(plain, [key.recipient]);
  assert.equal(kindOf(() => ageDecrypt(sealed, [other])), "no_identity");
  assert.equal(kindOf(() => ageDecrypt(sealed, [other, key])), "none");
  const payloadFlip = sealed.slice();
  payloadFlip[sealed.length - 1000] ^= 1;
  assert.equal(kindOf(() => ageDecrypt(payloadFlip, [key])), "payload_auth");
  const headerEnd = sealed.indexOf(10, new TextDecoder().decode(sealed.subarray(0, 400)).indexOf("---"));
  const macFlip = sealed.slice();
  macFlip[headerEnd - 3] = macFlip[headerEnd - 3] === 65 ? 66 : 65;
  assert.equal(kindOf(() => ageDecrypt(macFlip, [key])), "header_auth");
  assert.equal(kindOf(() => ageDecrypt(sealed.subarray(0, sealed.length - 10), [key])), "payload_auth");
  const headerLength = headerEnd + 1 + 16;
  const oneChunk = sealed.subarray(0, headerLength + 65536 + 16);
  assert.equal(kindOf(() => ageDecrypt(oneChunk, [key])), "truncated");
  assert.equal(kindOf(() => ageDecrypt(sealed.subarray(0, headerLength), [key])), "truncated");
  assert.equal(kindOf(() => ageDecrypt(sealed.subarray(0, 30), [key])), "malformed");
  assert.equal(kindOf(() => ageDecrypt(new TextEncoder().encode('{"format":1}\n'), [key])), "not_age");
  const swapped = ageEncrypt(plain, [key.recipient]);
  const spliced = new Uint8Array([...sealed.subarray(0, headerLength), ...swapped.subarray(headerLength)]);
  assert.equal(kindOf(() => ageDecrypt(spliced, [key])), "payload_auth");
});

Deno.test("age: the age tool refuses what we refuse (a flipped payload byte)", async () => {
  if (!ageTools("the age tool refuses what we refuse")) return;
  using dir = tempDir();
  const keyFile = join(dir.path, "k.key");
  const { identity, recipient } = generateIdentity();
  Deno.writeTextFileSync(keyFile, formatIdentityFile(identity));
  const sealed = ageEncrypt(randomBytes(70_000), [recipient]);
  sealed[sealed.length - 5] ^= 1;
  const output = await piped("age", ["-d", "-i", keyFile], sealed);
  assert.notEqual(output.code, 0);
  assert.match(new TextDecoder().decode(output.stderr), /failed|error/i);
});

Deno.test("age: key files with comments and blank lines; a bad line is named with its number", () => {
  const a = generateIdentity();
  const b = generateIdentity();
  const identities = parseIdentityFile(`# created: now\n\n${a.identity}\r\n  # note\n${b.identity}\n`, "ids.txt");
  assert.deepEqual(identities.map((identity) => identity.recipient), [a.recipient, b.recipient]);
  assert.deepEqual(parseRecipientsFile(`# team\n${a.recipient}\n\n${b.recipient}\n${a.recipient}\n`, "r.txt"), [
    a.recipient,
    b.recipient,
  ]);
  assert.throws(() => parseRecipientsFile(`${a.recipient}\nssh-ed25519 AAAA x\n`, "r.txt"), /r\.txt:2: not an age/);
  assert.throws(() => parseIdentityFile(`# c\nxyz\n`, "k.txt"), /k\.txt:2: not an age X25519 identity/);
  const sealed = ageEncrypt(new TextEncoder().encode(a.identity), [b.recipient]); // as `age -p` leaves a key, in form
  const armored = "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n";
  for (const text of [new TextDecoder().decode(sealed), armored]) {
    assert.throws(() => parseIdentityFile(text, "k.age"), /^Error: k\.age: an age-encrypted file .*decrypt it first/);
  }
  assert.throws(
    () => parseIdentityFile(`# c\n${a.recipient}\n`, "k.txt"),
    /k\.txt:2: a recipient \(public key, age1…\), not an identity \(expected AGE-SECRET-KEY-1…/,
  );
  assert.throws(() => parseRecipientsFile(`${a.identity}\n`, "r.txt"), (error: Error) => {
    assert.match(error.message, /r\.txt:1: an identity \(secret key\), not a recipient: keep it off this host/);
    assert.ok(!error.message.includes(a.identity.slice(16)), "the secret key is not echoed");
    return true;
  });
  assert.throws(() => parseIdentityFile("# only comments\n", "k.txt"), /k\.txt: no age identity/);
  assert.throws(() => parseIdentity(a.identity.toLowerCase()), /not an age X25519 identity/);
  assert.equal(parseRecipient(a.recipient.toUpperCase()), a.recipient);
  const flipped = a.recipient.slice(0, -1) + (a.recipient.endsWith("q") ? "p" : "q");
  assert.throws(() => parseRecipient(flipped), /not an age X25519 recipient/);
  assert.throws(() => ageEncrypt(new Uint8Array(1), []), /no age recipient/);
});
