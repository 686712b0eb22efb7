/**
 * `open`'s flags handed to libc through FFI are this platform's (as Python's `os` module has them from the C headers),
 * and arm64's differ from x86_64's where the kernel's headers say.
 */
import assert from "node:assert/strict";
import { openFlags } from "../../src/sys/linux_constants.ts";

Deno.test("open's flags are this platform's, as the C headers give them to Python", async () => {
  const names = ["O_RDONLY", "O_WRONLY", "O_CREAT", "O_EXCL", "O_DIRECTORY", "O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC"];
  const script = `import json, os; print(json.dumps({n: getattr(os, n) for n in ${JSON.stringify(names)}}))`;
  const output = await new Deno.Command("python3", { args: ["-c", script], stdout: "piped" }).output();
  assert.equal(output.code, 0);
  assert.deepEqual(openFlags(Deno.build.arch), JSON.parse(new TextDecoder().decode(output.stdout)));
});

Deno.test("arm64's O_DIRECTORY and O_NOFOLLOW are not x86_64's", () => {
  const [arm, x86] = [openFlags("aarch64"), openFlags("x86_64")];
  assert.deepEqual([arm.O_DIRECTORY, arm.O_NOFOLLOW], [0o40000, 0o100000]);
  assert.deepEqual([x86.O_DIRECTORY, x86.O_NOFOLLOW], [0o200000, 0o400000]);
});
