import assert from "node:assert/strict";
import { progressLine, readableWarning } from "../../src/cli/stderr_reporter.ts";
import { runCli, storeEnv, tempStore } from "../_helpers.ts";

Deno.test("a warning reads as one line with its fields", () => {
  assert.equal(
    readableWarning("chroma_copy_torn", { attempt: 2, changed: ["a/b.bin"] }),
    'warning: chroma_copy_torn (attempt=2, changed=["a/b.bin"])',
  );
  assert.equal(readableWarning("stale_leftover_removed", {}), "warning: stale_leftover_removed");
});

Deno.test("a progress line shows a bar for a known total and a count otherwise", () => {
  assert.match(progressLine("database pages", 512, 1024), /\[#{15}-{15}\] 50% 512\/1024 pages$/);
  assert.equal(progressLine("hashing", 3 * 1024 * 1024, 0), "hashing: 3.0 MiB");
});

Deno.test("stderr that is not a terminal gets JSON log lines with the module's event names", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 1 });
  const run = await runCli(["create"], { env: storeEnv(store) });
  assert.equal(run.code, 0, run.stderr);
  const events = run.stderr.trim().split("\n").map((line) => JSON.parse(line));
  const created = events.find((event) => event.event === "runtime_backup_created");
  assert.equal(created.logger, "backup");
  assert.equal(created.level, "info");
  assert.equal(created.validated, true);
});
