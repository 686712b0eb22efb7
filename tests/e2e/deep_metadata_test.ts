/**
 * Metadata made to nest thousands deep (a hand edit, or an attacker who can write the backup folder): refused unparsed,
 * that snapshot reported bad, the others listed and checked as ever.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createdStamp, runCli, storeEnv, tempStore } from "../_helpers.ts";

Deno.test("metadata nested 20,000 deep is one snapshot's error: list shows the others, validate names it, nothing crashes", async () => {
  using store = tempStore({ dbMiB: 0.5, chromaMiB: 0.2, segments: 1 });
  const env = storeEnv(store);
  const good = await createdStamp(env);
  const deep = await createdStamp(env);
  const metadata = join(store.backupDir, "snapshots", deep, "backup-metadata.json");
  const text = Deno.readTextFileSync(metadata);
  Deno.writeTextFileSync(metadata, `{"note": ${"[".repeat(20_000)}${"]".repeat(20_000)}, ${text.trim().slice(1)}`);
  const listed = await runCli(["list", "--json"], { env });
  assert.equal(listed.code, 0, listed.stderr);
  const names = JSON.stringify(listed.json);
  assert.ok(names.includes(good) && names.includes(deep), names.slice(0, 400));
  const all = await runCli(["validate", "--all", "--json"], { env });
  assert.equal(all.code, 1, all.stderr);
  const results = (all.json as { results: { stamp: string; valid: boolean; errors: string[] }[] }).results;
  assert.deepEqual(results.map(({ stamp, valid }) => [stamp, valid]), [[good, true], [deep, false]]);
  assert.match(results[1].errors.join(" "), /^metadata_invalid_json: nested deeper than \d+, not parsed/);
  const one = await runCli(["validate", deep, "--json"], { env });
  assert.equal(one.code, 1, one.stderr);
  assert.match(JSON.stringify(one.json), /metadata_invalid_json: nested deeper/);
});
