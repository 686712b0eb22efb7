/**
 * `create --push`: the repository checked before the snapshot is made (a usage error costs no snapshot), and the push
 * of the new snapshot folded into create's outcome, whose exit code stands unless the push fails.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { ExitCode } from "../errors.ts";
import { pushAfterCreate, pushFacts } from "../ops/push.ts";
import { pushAuthFrom, recipientsFrom, refuseRemoteInStore, remoteBackend } from "../ops/remote.ts";
import { pathFlags } from "../ops/restore_intent.ts";
import type { PushAuth } from "../repo/authenticity.ts";
import type { Backend } from "../repo/backend.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { InterruptedError } from "../sys/interrupt.ts";
import { StoppedPublishing } from "../repo/publish.ts";
import type { CommandContext, FlagValues, Outcome } from "./command.ts";
import { describePush } from "./push.ts";
import {
  type AUTH_OPTIONS,
  type REMOTE_OPTIONS,
  remoteSettingsFrom,
  repositoryFlags,
  type TRANSFER_OPTIONS,
  transfersFrom,
} from "./remote_flags.ts";

/** Where `create --push` pushes, the recipients the operator expects, and the keys it authenticates with. */
export interface PushTarget {
  backend: Backend;
  recipients?: string[];
  auth?: PushAuth;
  /** Packs sealed and uploading at once (`--transfers`, `ATOCORE_BACKUP_TRANSFERS`), else the engine's default. */
  transfers?: number;
  /**
   * The flags (each with a leading space) that `push` needs to reach this backup folder and repository: the ones this
   * run was given, so that the next step it prints works from any folder.
   */
  pushFlags?: string;
}

/**
 * The repository, recipients and authentication keys the flags and environment give, checked before create runs.
 *
 * @throws {UsageError} when no repository is given, it lies in the store, a recipient is not one, or the
 *   authentication key is missing (without `--allow-unauthenticated`) or unreadable.
 */
export function pushTargetFrom(
  values: FlagValues<typeof REMOTE_OPTIONS> & FlagValues<typeof AUTH_OPTIONS> & FlagValues<typeof TRANSFER_OPTIONS>,
  context: CommandContext,
  config: Config,
): PushTarget {
  const settings = remoteSettingsFrom(values, context);
  const backend = remoteBackend(settings, context.cwd, "create --push", context.env, context.reporter);
  refuseRemoteInStore(config, backend);
  const allowUnauthenticated = Boolean(values["allow-unauthenticated"]);
  const auth = pushAuthFrom(settings, "create --push", allowUnauthenticated, context.reporter);
  const pushFlags = pathFlags(config) + repositoryFlags(settings, backend) +
    (allowUnauthenticated ? " --allow-unauthenticated" : "");
  return { backend, recipients: recipientsFrom(settings), auth, transfers: transfersFrom(values, context), pushFlags };
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
    auth: target.auth,
    transfers: target.transfers,
    signal,
  });
  // last on its line and not quoted as a whole: its words are quoted for a shell (quoted), which runs it as printed
  const command = `atocore-backup push ${stamp}${target.pushFlags ?? ""}`;
  if ("error" in pushed && pushed.error instanceof InterruptedError) {
    const listed = pushed.error instanceof StoppedPublishing && pushed.error.published === "listed";
    throw new InterruptedError(
      pushed.error.signal,
      `${pushed.error.message}; the new local snapshot ${stamp} is made, validated and kept` +
        (listed ? "" : `; push it with: ${command}`),
    );
  }
  if ("error" in pushed) {
    // the push's own "nothing was done" is not this command's: it made a snapshot
    const cause = pushed.error.message.split("\n")[0].replaceAll("nothing was done", "nothing was pushed");
    const message = `${cause}; the local snapshot ${stamp} is fine (validated): ` +
      `push it later with: ${command}`;
    context.reporter.event("warning", "push_after_create_failed", { stamp, error: message, command });
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
