/**
 * A backup folder that is not there is never made by the commands that only read the repository or clean it: a
 * mistyped `--backup-dir` must not become a new folder (with sightings that start remote cleanup's grace again).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { runCli } from "../_helpers.ts";
import { createAndPush, remoteStore } from "../_remote_cli.ts";

Deno.test("remote commands given a backup folder that is not there make none", async () => {
  using r = await remoteStore();
  const { stamp } = await createAndPush(r.env);
  const missing = join(r.work, "mistyped", "backups");
  const env = { ...r.envWithIdentity, ATOCORE_BACKUP_DIR: missing };
  const refused = [
    ["remote", "cleanup", "--confirm"],
    ["remote", "cleanup"],
    ["restore", "--from-remote", "--confirm-service-stopped", stamp],
  ];
  for (const args of refused) {
    const run = await runCli(args, { env });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(`no backup folder at ${missing}; check --backup-dir`), args.join(" "));
    assert.equal(existsSync(join(r.work, "mistyped")), false, args.join(" "));
  }
  const runs: [string[], number][] = [
    [["remote", "list"], 0],
    [["remote", "verify"], 0],
    [["drill", "--from-remote", "--latest"], 0],
    [["restore", "--from-remote", "--to", join(r.work, "aside"), stamp], 0],
    [["restore", "--from-remote", "--confirm-service-stopped", "--no-pre-snapshot", stamp], 0],
  ];
  for (const [args, code] of runs) {
    const run = await runCli(args, { env });
    assert.equal(run.code, code, `${args.join(" ")}: ${run.stderr}`);
    assert.equal(existsSync(join(r.work, "mistyped")), false, args.join(" "));
  }
});
