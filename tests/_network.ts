/**
 * Helpers of the network-fault tests: the CLI run with an action at a chosen moment of its transfer and a bound on its
 * time, and the `remote_retry` warnings it printed.
 *
 * @module
 */
import { cliProcess, type CliRun, cliRunOf } from "./_helpers.ts";
import type { FaultProxy } from "./_proxy.ts";

/** How a {@linkcode runUntil} run went: the run, whether the action ran, and whether the bound killed it. */
export interface ActedRun {
  run: CliRun;
  acted: boolean;
  /** Killed (SIGKILL) at `boundMs`: it did not end by itself in bounded time. */
  killed: boolean;
}

/**
 * Run the CLI with `args`; once `ready` says so (asked every few milliseconds), run `action` (once). With `boundMs`,
 * kill it when it has not ended by then (the caller asserts it was not killed). The action does not run when the run
 * ends first.
 */
export async function runUntil(
  args: string[],
  env: Record<string, string>,
  ready: () => boolean | Promise<boolean>,
  action: () => Promise<void> | void,
  boundMs?: number,
): Promise<ActedRun> {
  const child = cliProcess(args, { env }).spawn();
  const output = child.output();
  let ended = false;
  let killed = false;
  output.finally(() => ended = true);
  const bound = boundMs === undefined ? undefined : setTimeout(() => {
    killed = !ended;
    if (killed) child.kill("SIGKILL");
  }, boundMs);
  try {
    while (!ended && !await ready()) await new Promise((resolve) => setTimeout(resolve, 5));
    const acted = !ended;
    if (acted) await action();
    return { run: cliRunOf(await output), acted, killed };
  } finally {
    clearTimeout(bound);
  }
}

/** A `ready` for {@linkcode runUntil}: the proxy has relayed `bytes` more than when this was called. */
export function afterBytes(proxy: FaultProxy, bytes: number): () => boolean {
  const start = proxy.stats.bytes;
  return () => proxy.stats.bytes - start >= bytes;
}

/** The warnings `remote_retry` a run printed (its stderr JSON lines). */
export function retries(run: CliRun): string[] {
  return run.stderr.split("\n").filter((line) => line.includes('"event":"remote_retry"'));
}
