/**
 * Ctrl-C and SIGTERM as a request to stop at the next safe point: a command that can stop cleanly listens while it
 * runs and checks the signal only where stopping leaves everything consistent; a second signal stops at once.
 *
 * @module
 */
import { ExitCode, ToolError } from "../errors.ts";
import { requireRoom } from "./descriptor_room.ts";

/** The signals a long command turns into a stop at a safe point. */
export type StopSignal = "SIGINT" | "SIGTERM";

const SIGNALS: readonly StopSignal[] = ["SIGINT", "SIGTERM"];

/** The command stopped at a safe point because of a signal; exits 130 (SIGINT) or 143 (SIGTERM), as a shell would. */
export class InterruptedError extends ToolError {
  /** Make the error for `signal`; the message says what was done and what the next run does. */
  constructor(readonly signal: StopSignal, message = `interrupted by ${signal}`) {
    super(message, signal === "SIGINT" ? ExitCode.Interrupted : ExitCode.Terminated);
  }

  /** The same interruption told in the command's own words: `<what> interrupted by SIGINT: <after>`. */
  told(what: string, after: string): InterruptedError {
    return new InterruptedError(this.signal, `${what} interrupted by ${this.signal}: ${after}`);
  }
}

/** Listening for stop signals while a command runs; stop listening at the end of the `using` scope. */
export interface Interrupts extends Disposable {
  /** Aborted, with an {@linkcode InterruptedError} as its reason, at the first signal. */
  readonly signal: AbortSignal;
}

/**
 * Listen for SIGINT and SIGTERM. The first one aborts {@linkcode Interrupts.signal} (the command stops at its next
 * safe point) and is told to `onFirst` (the CLI reports it); a second one ends the process at once, as a kill would
 * (everything this tool writes is safe to kill: it is what a run killed with SIGKILL leaves).
 *
 * @throws {DescriptorLimitError} at the open-file limit, where listening would end the process.
 */
export function listenForSignals(onFirst: (signal: StopSignal) => void): Interrupts {
  requireRoom("listen for SIGINT and SIGTERM");
  const controller = new AbortController();
  listening = controller.signal;
  const handlers = SIGNALS.map((name) => {
    const handler = () => {
      if (!controller.signal.aborted) {
        onFirst(name);
        controller.abort(new InterruptedError(name));
        return;
      }
      try {
        console.error(`atocore-backup: error: interrupted again by ${name}: stopped at once, as if killed`);
      } catch {
        // a stderr that cannot be written does not keep the process from stopping
      }
      Deno.exit(name === "SIGINT" ? ExitCode.Interrupted : ExitCode.Terminated);
    };
    Deno.addSignalListener(name, handler);
    return [name, handler] as const;
  });
  return {
    signal: controller.signal,
    [Symbol.dispose]: () => {
      for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
      if (listening === controller.signal) listening = null;
    },
  };
}

/** The signal of the command listening now (see {@linkcode listenForSignals}), for {@linkcode interruption}. */
let listening: AbortSignal | null = null;

/**
 * The stop the running command was asked for, or `null`: for code that waits on its own (a network backend's retries),
 * which gives up instead of trying again, as when its attempts run out (what follows is its caller's failure path).
 */
export function interruption(): InterruptedError | null {
  return listening?.aborted ? listening.reason as InterruptedError : null;
}

/** The signal a stop asked for aborts, while a command listens; `null` otherwise (for requests in flight to follow). */
export function interruptSignal(): AbortSignal | null {
  return tidying === 0 ? listening : null;
}

/** How many tidying steps run now (see {@linkcode tidyAfterStop}). */
let tidying = 0;

/**
 * Run `work`, a step that tidies up on the way out (a push's lease removed): its request is not aborted by the stop
 * (it ends by its own timeout), but is not tried again either, so a stop still waits at most for one request.
 */
export async function tidyAfterStop<T>(work: () => Promise<T>): Promise<T> {
  tidying += 1;
  try {
    return await work();
  } finally {
    tidying -= 1;
  }
}

/** Wait `ms` milliseconds, or less when a stop is asked for meanwhile. */
export function sleepUnlessInterrupted(ms: number): Promise<void> {
  const signal = listening;
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Throw the signal's {@linkcode InterruptedError} when it was aborted: call it only at a safe point. `tell` gives the
 * words of the message: what stopped, and what it left and the next run does.
 */
export function stopIfInterrupted(signal: AbortSignal | undefined, tell?: () => [string, string]): void {
  if (!signal?.aborted) return;
  const reason = signal.reason;
  if (tell && reason instanceof InterruptedError) throw reason.told(...tell());
  throw reason;
}

/**
 * Let a signal that arrived while this thread ran synchronous work reach its listener: listeners run only when the
 * event loop turns, which a resolved promise does not make happen; one timer does. Await it before a safe point that
 * follows synchronous work, and before reporting a late signal.
 */
export function signalsDelivered(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
