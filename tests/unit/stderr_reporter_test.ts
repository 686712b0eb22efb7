import assert from "node:assert/strict";
import { progressLine, readableWarning } from "../../src/cli/stderr_reporter.ts";
import { join } from "node:path";
import { WORDED_WARNINGS } from "../../src/cli/warning_text.ts";
import { walkTree } from "../../src/fs/tree.ts";
import { placeValidSnapshot, ROOT, runCli, runCliOnTerminal, storeEnv, tempStore } from "../_helpers.ts";

Deno.test("a warning reads as one sentence saying what was not checked or done, and why", () => {
  assert.equal(
    readableWarning("open_files_unreadable_processes", { count: 1 }),
    "warning: 1 process could not be checked for open live files: this user may not read its open files " +
      "(run as root to check every process)",
  );
  assert.equal(
    readableWarning("open_files_unreadable_processes", { count: 1, as_root: true }),
    "warning: 1 process could not be checked for open live files: its open files could not be read even as root (a " +
      "protected process): make sure none holds the live files",
  );
  assert.equal(
    readableWarning("open_files_unreadable_processes", { count: 3 }),
    "warning: 3 processes could not be checked for open live files: this user may not read their open files " +
      "(run as root to check every process)",
  );
  assert.equal(
    readableWarning("chroma_copy_torn", { attempt: 2, of: 3, changed: ["a/b.bin"] }),
    "warning: the Chroma folder changed while it was copied (attempt 2 of 3; changed: a/b.bin), so that copy was " +
      "not used; copying again",
  );
  assert.equal(
    readableWarning("chroma_copy_torn", { attempt: 3, of: 3, changed: ["a/b.bin"] }),
    "warning: the Chroma folder changed while it was copied (attempt 3 of 3; changed: a/b.bin), so that copy was " +
      "not used; no attempt is left",
  );
  assert.equal(
    readableWarning("snapshot_stamp_in_future", { stamp: "20990101T000000Z", seconds_ahead: 2_270_000_000 }),
    "warning: snapshot 20990101T000000Z is stamped 71 years in the future, so its age is unknown: the clock was " +
      "wrong when it was made, or is wrong now; check the clock",
  );
});

Deno.test("a name with a line break or a terminal escape in a warning stays on one line, shown escaped", () => {
  const line = readableWarning("chroma_copy_torn", {
    attempt: 1,
    of: 3,
    changed: ["evil\natocore-backup: error: x\x1b[2J"],
  });
  assert.equal(
    line,
    "warning: the Chroma folder changed while it was copied (attempt 1 of 3; changed: " +
      "evil\\natocore-backup: error: x\\x1b[2J), so that copy was not used; copying again",
  );
});

Deno.test("an event without a sentence (added later) still reads as its name and fields", () => {
  assert.equal(
    readableWarning("some_new_event", { path: "/x", count: 2 }),
    'warning: some_new_event (path="/x", count=2)',
  );
  assert.equal(readableWarning("some_new_event", {}), "warning: some_new_event");
});

Deno.test("every warning event the tool emits has a sentence", () => {
  const emitted = new Set<string>();
  const call = /\.event\(\s*([^,]*?"warning"[^,]*?),\s*"([a-z_]+)"/g;
  for (const entry of walkTree(join(ROOT, "src"))) {
    if (entry.kind !== "file" || !entry.path.endsWith(".ts")) continue;
    for (const match of Deno.readTextFileSync(join(ROOT, "src", entry.path)).matchAll(call)) emitted.add(match[2]);
  }
  assert.ok(emitted.size >= 12, `only ${[...emitted].join(", ")}`);
  for (const name of emitted) assert.ok(WORDED_WARNINGS.includes(name), `no sentence for ${name}`);
  for (const name of emitted) assert.ok(!readableWarning(name, {}).includes(name), `${name} reads as its event name`);
});

Deno.test("on a terminal, warnings are sentences; elsewhere, JSON lines with the event names", async () => {
  using store = tempStore({ dbMiB: 1 });
  placeValidSnapshot(store.backupDir, "20990101T000000Z");
  const { code, text } = await runCliOnTerminal(["list"], storeEnv(store));
  assert.equal(code, 0, text);
  assert.match(text, /warning: snapshot 20990101T000000Z is stamped \d+ years in the future, so its age is unknown/);
  assert.ok(!text.includes("snapshot_stamp_in_future"), text);
  assert.match(text, /20990101T000000Z +future .* stamp in the future: check the clock/);
  const piped = await runCli(["list"], { env: storeEnv(store) });
  assert.equal(JSON.parse(piped.stderr.trim()).event, "snapshot_stamp_in_future");
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
