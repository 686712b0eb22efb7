/**
 * A head-start flush of a restore's sources that fails stops the restore before anything is replaced: Linux reports a
 * failed write-back once, so the restore's later fsync through a new descriptor would succeed over lost pages.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveConfig } from "../../src/config.ts";
import { FlushAhead, FlushFailedError, flushSoon } from "../../src/fs/durable.ts";
import { OperationError } from "../../src/errors.ts";
import { restoreSnapshot } from "../../src/ops/restore.ts";
import { SILENT } from "../../src/report/reporter.ts";
import { openDriver } from "../../src/sqlite/open_driver.ts";
import { createdStamp, storeEnv, tempStore } from "../_helpers.ts";
import { liveDigest } from "../_faults.ts";

Deno.test("flushSoon: every file flushed, or the first one that could not be, named", async () => {
  using store = tempStore({ dbMiB: 1 });
  await flushSoon([store.db, store.registry])();
  const missing = join(store.dataDir, "gone.db");
  const failed = await flushSoon([store.db, missing])().then(() => null, (error) => error);
  assert.ok(failed instanceof FlushFailedError, String(failed));
  assert.equal(failed.path, missing);
});

Deno.test("FlushAhead: a round starts once enough is written, one at a time; the first failure is thrown at the end", async () => {
  using store = tempStore({ dbMiB: 1 });
  const flush = new FlushAhead(1000);
  flush.wrote(store.db, 999);
  await flush.settled(); // nothing due: no round
  flush.wrote(store.db, 1);
  const missing = join(store.dataDir, "gone.db");
  flush.wrote(missing, 5000); // while the first round runs: kept for the next
  await flush.settled();
  flush.wrote(store.registry, 1000); // the next round takes the missing file too
  const failed = await flush.settled().then(() => null, (error) => error);
  assert.ok(failed instanceof Deno.errors.NotFound, `the OS error itself: ${failed}`);
  assert.ok(String(failed).includes("gone.db"), String(failed));
});

Deno.test("restore: a source that could not be flushed stops it before anything changed, in one line", async () => {
  using store = tempStore({ dbMiB: 1, chromaMiB: 0.5 });
  const env = storeEnv(store);
  const stamp = await createdStamp(env);
  const before = liveDigest(store);
  const missing = join(store.backupDir, "snapshots", stamp, "db", "flushed-away.db");
  const config = resolveConfig({}, env, "/");
  const restoring = restoreSnapshot(config, stamp, {
    driver: openDriver("auto"),
    reporter: SILENT,
    confirmServiceStopped: true,
    ignoreOpenFiles: true,
    preSnapshot: true,
    flushed: flushSoon([missing]),
  });
  const error = await restoring.then(() => null, (caught) => caught);
  assert.ok(error instanceof OperationError, String(error));
  assert.match(
    error.message,
    new RegExp(
      `^restore of ${stamp}: flushing ${missing} to disk failed \\(.+\\); this run changed nothing in the live store ` +
        `\\(the pre-restore snapshot \\d{8}T\\d{6}Z is kept\\); check the disk of .+ \\(dmesg\\), then run the restore again$`,
    ),
  );
  assert.deepEqual(liveDigest(store), before, "nothing live changed");
});
