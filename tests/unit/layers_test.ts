/**
 * Data flows one way: no file of `src/` imports from a layer above its own, main.ts reaches only the command layer, and
 * no files import each other in a cycle (the order is `scripts/layers.ts`'s).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "../_helpers.ts";

Deno.test("no import goes up the layers of src/, and no files import each other in a cycle", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", join(ROOT, "scripts", "layers.ts")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const printed = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, printed);
  assert.match(printed, /^0 upward imports, 0 past src\/cli from main\.ts, 0 cycles of files$/m);
});
