/**
 * Ctrl-C and SIGTERM as the CLI tells them: the warnings `interrupt_received` and `interrupt_came_too_late` around
 * the stops that sys/interrupt.ts turns signals into.
 *
 * @module
 */
import type { Reporter } from "../report/reporter.ts";
import { type InterruptedError, type Interrupts, listenForSignals, signalsDelivered } from "../sys/interrupt.ts";

/** Listen for SIGINT and SIGTERM while a command runs (see `listenForSignals`), reporting the first one. */
export function listenForInterrupts(reporter: Reporter): Interrupts {
  return listenForSignals((signal) => reporter.event("warning", "interrupt_received", { signal }));
}

/**
 * After a command that finished although it was interrupted (the signal came after the last safe point), report it
 * as the warning `interrupt_came_too_late`: the command's outcome stands.
 */
export async function reportLateInterrupt(signal: AbortSignal, reporter: Reporter, command: string): Promise<void> {
  await signalsDelivered();
  if (!signal.aborted) return;
  const reason = signal.reason as InterruptedError;
  reporter.event("warning", "interrupt_came_too_late", { command, signal: reason.signal });
}
