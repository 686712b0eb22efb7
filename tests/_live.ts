/**
 * Helpers of the restore fault tests: change the live store after a snapshot, put a saved copy of it back between
 * trials (keeping the Chroma folder itself), and a Chroma digest without restore's own staging entries.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { removeQuietly } from "../src/fs/durable.ts";
import { entryNames } from "./_faults.ts";

/** Change the live store after the snapshot: ledger rows, the registry, a Chroma file and a new segment. */
export async function changeLive(store: { db: string; registry: string; chromaDir: string }): Promise<void> {
  const inserts = Array.from(
    { length: 50 },
    (_, row) => `INSERT INTO ledger (amount) VALUES (${row + 1}); UPDATE ledger_total SET total = total + ${row + 1};`,
  );
  const output = await new Deno.Command("sqlite3", { args: [store.db, `BEGIN; ${inserts.join(" ")} COMMIT;`] })
    .output();
  assert.equal(output.code, 0);
  Deno.writeTextFileSync(store.registry, JSON.stringify({ projects: [{ id: "changed-after-the-snapshot" }] }));
  const segment = entryNames(store.chromaDir).find((name) => name.includes("-"))!;
  Deno.writeFileSync(join(store.chromaDir, segment, "header.bin"), new Uint8Array(100).fill(7));
  Deno.mkdirSync(join(store.chromaDir, "ffffffff-new-segment"));
  Deno.writeFileSync(join(store.chromaDir, "ffffffff-new-segment", "data_level0.bin"), new Uint8Array(4096).fill(9));
}

/** A digest without the Chroma copy restore stages inside the Chroma folder, nor the old entries it moves aside. */
export function withoutStaging(digest: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(digest).filter(([path]) =>
      !path.startsWith(".atocore-restore-") && !path.startsWith(".atocore-old-")
    ),
  );
}

/** Put the saved live store back, keeping the Chroma folder itself (as a bind mount would be kept). */
export function putBack(saved: string, store: { db: string; registry: string; chromaDir: string }): void {
  for (const sidecar of ["-wal", "-shm"]) removeQuietly(store.db + sidecar);
  Deno.copyFileSync(join(saved, "atocore.db"), store.db);
  Deno.copyFileSync(join(saved, "project-registry.json"), store.registry);
  for (const name of entryNames(store.chromaDir)) Deno.removeSync(join(store.chromaDir, name), { recursive: true });
  const copy = new Deno.Command("cp", { args: ["-a", `${join(saved, "chroma")}/.`, store.chromaDir] }).outputSync();
  assert.equal(copy.code, 0);
}
