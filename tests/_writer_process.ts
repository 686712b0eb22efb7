/**
 * A writer process for tests: commits ledger rows to a sample database from another
 * process, as the live service would, while the test backs the database up.
 *
 * It must be another process: two SQLite libraries in one process (the FFI driver's
 * libsqlite3 and `node:sqlite`'s) do not see each other's POSIX locks, so one could
 * checkpoint and delete the WAL under the other.
 *
 * Run as a script: `deno run --allow-all tests/_writer_process.ts DB CONTROL_DIR MODE INITIAL`.
 *
 * @module
 */
import { join } from "node:path";
import { openLedgerWriter } from "../scripts/sample_store.ts";

/** `hold`: commit the initial rows, then keep the connection open idle. `busy`: keep committing. */
export type WriterMode = "hold" | "busy";

/** A running writer process. */
export interface WriterProcess extends AsyncDisposable {
  /** Ask the writer to stop, wait for it, and return how many rows it committed. */
  stop(): Promise<number>;
}

/**
 * Start a writer process on `db`, and return once it has committed `initial` rows
 * (its connection is then open, with those frames in the WAL and not checkpointed).
 * Row `i` has amount `(i % 7) + 1`.
 */
export async function startWriterProcess(db: string, mode: WriterMode, initial = 20): Promise<WriterProcess> {
  const control = Deno.makeTempDirSync({ prefix: "atocore-writer-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL(import.meta.url).pathname, db, control, mode, String(initial)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = child.output();
  while (!exists(join(control, "ready"))) {
    const finished = await Promise.race([output.then(() => true), delay(10).then(() => false)]);
    if (finished) throw new Error(`writer process ended before it was ready: ${db}`);
  }
  let stopped: Promise<number> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      Deno.writeTextFileSync(join(control, "stop"), "");
      const result = await output;
      Deno.removeSync(control, { recursive: true });
      if (!result.success) throw new Error(`writer process failed: ${db}`);
      return Number(new TextDecoder().decode(result.stdout).trim());
    })();
    return stopped;
  };
  return { stop, [Symbol.asyncDispose]: async () => void await stop() };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (import.meta.main) {
  const [db, control, mode, initial] = Deno.args;
  const writer = openLedgerWriter(db);
  let committed = 0;
  for (; committed < Number(initial); committed++) writer.commit((committed % 7) + 1);
  Deno.writeTextFileSync(join(control, "ready"), "");
  while (!exists(join(control, "stop"))) {
    if (mode === "busy") {
      for (let batch = 0; batch < 10; batch++, committed++) writer.commit((committed % 7) + 1);
    } else {
      await delay(5);
    }
  }
  writer.close();
  console.log(committed);
}
