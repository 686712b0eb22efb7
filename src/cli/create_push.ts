/**
 * `create --push`: the repository checked before the snapshot is made (a usage error costs no snapshot), and the push
 * of the new snapshot folded into create's outcome, whose exit code stands unless the push fails.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { ExitCode } from "../errors.ts";
import { pushAfterCreate, pushFacts } from "../ops/push.ts";
import { recipientsFrom, refuseRemoteInStore, remoteBackend } from "../ops/remote.ts";
import type { Backend } from "../repo/backend.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { InterruptedError } from "../sys/interrupt.ts";
import type { CommandContext, FlagValues, Outcome } from "./command.ts";
import { describePush } from "./push.ts";
import { type REMOTE_OPTIONS, remoteSettingsFrom } from "./remote_flags.ts";

/** Where `create --push` pushes, and the recipients the operator expects. */
export interface PushTarget {
  backend: Backend;
  recipients?: string[];
}

/**
 * The repository and recipients the flags and environment give, checked before create runs.
 *
 * @throws {UsageError} when no repository is given, it lies in the store, or a recipient is not one.
 */
export function pushTargetFrom(
  values: FlagValues<typeof REMOTE_OPTIONS>,
  context: CommandContext,
  config: Config,
): PushTarget {
  const settings = remoteSettingsFrom(values, context);
  const backend = remoteBackend(settings, context.cwd, "create --push", context.env, context.reporter);
  refuseRemoteInStore(config, backend);
  return { backend, recipients: recipientsFrom(settings) };
}

/**
 * Push the snapshot `stamp` create just made, and add how it went to create's `outcome`.
 *
 * @throws {InterruptedError} when `signal` stopped the push (or it was aborted during create): the snapshot is kept.
 */
export async function withPush(
  outcome: Outcome & { result: object },
  config: Config,
  target: PushTarget,
  stamp: string,
  context: CommandContext,
  { driver, signal }: { driver: SqliteDriver; signal?: AbortSignal },
): Promise<Outcome> {
  const pushed = await pushAfterCreate(config, target.backend, stamp, {
    driver,
    reporter: context.reporter,
    recipients: target.recipients,
    signal,
  });
  if ("error" in pushed && pushed.error instanceof InterruptedError) {
    throw new InterruptedError(
      pushed.error.signal,
      `${pushed.error.message}; the new local snapshot ${stamp} is made, validated and kept: push it with ` +
        `'atocore-backup push ${stamp}'`,
    );
  }
  if ("error" in pushed) {
    const message = `${pushed.error.message.split("\n")[0]}; the local snapshot ${stamp} is fine (validated): ` +
      `push it later with 'atocore-backup push ${stamp}'`;
    context.reporter.event("warning", "push_after_create_failed", { stamp, error: message });
    return {
      ...outcome,
      result: { ...outcome.result, push_error: message },
      exitCode: ExitCode.Failed,
      text: `${outcome.text}\nPUSH FAILED: ${message}`,
    };
  }
  return {
    ...outcome,
    result: { ...outcome.result, push: pushed.result },
    text: `${outcome.text}\n${describePush(pushed.result)}`,
    metrics: { ...outcome.metrics, pushed: pushFacts(pushed.result) },
  };
}
