/**
 * Giving freed memory back: glibc's `malloc_trim` where the FFI permission is granted, nothing where it is not.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { trimMemory } from "../../src/sys/trim_memory.ts";
import { skipBecause, tempDir } from "../_helpers.ts";

Deno.test("trimMemory: trims on glibc with the FFI permission, does nothing without it", async () => {
  if (Deno.build.os !== "linux" || Deno.build.env !== "gnu") {
    skipBecause(`not a glibc build of Deno (${Deno.build.target}): malloc_trim is glibc's`);
    return;
  }
  assert.equal(trimMemory(), true, "glibc has malloc_trim");
  assert.equal(trimMemory(), true, "and again, through the library opened once");
  using dir = tempDir();
  const script = join(dir.path, "trim.ts");
  const module = new URL("../../src/sys/trim_memory.ts", import.meta.url).href;
  Deno.writeTextFileSync(script, `import { trimMemory } from "${module}";\nconsole.log(trimMemory());\n`);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read", script], // no --allow-ffi
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.equal(new TextDecoder().decode(output.stdout).trim(), "false");
});
