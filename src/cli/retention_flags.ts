/**
 * The `--keep-*` flags of the retention policy, shared by `cleanup` and `remote cleanup` so both read them alike.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { DEFAULT_POLICY, type RetentionPolicy } from "../snapshot/retention.ts";
import type { CommandOptions, FlagValues } from "./command.ts";

/** The flags of the policy, for a command's `options`. */
export const RETENTION_OPTIONS = {
  "keep-daily": { type: "string" },
  "keep-weekly": { type: "string" },
  "keep-monthly": { type: "string" },
} as const satisfies CommandOptions;

/** The flags' lines of help. */
export const RETENTION_HELP =
  `  --keep-daily N       days to keep (default ${DEFAULT_POLICY.daily}; 0 turns the rule off)
  --keep-weekly N      Sunday weeks to keep (default ${DEFAULT_POLICY.weekly})
  --keep-monthly N     1st-of-month months to keep (default ${DEFAULT_POLICY.monthly})`;

/**
 * The counts the `--keep-*` flags give, the defaults for the others.
 *
 * @throws {UsageError} for a value that is not a non-negative integer, and for
 * counts that are all 0 (a policy that keeps nothing; refused as restic does).
 */
export function policyFrom(values: FlagValues<typeof RETENTION_OPTIONS>, command: string): RetentionPolicy {
  const policy = {
    daily: countFrom(values["keep-daily"], "keep-daily", DEFAULT_POLICY.daily, command),
    weekly: countFrom(values["keep-weekly"], "keep-weekly", DEFAULT_POLICY.weekly, command),
    monthly: countFrom(values["keep-monthly"], "keep-monthly", DEFAULT_POLICY.monthly, command),
  };
  if (policy.daily + policy.weekly + policy.monthly === 0) {
    throw new UsageError(
      `${command}: --keep-daily, --keep-weekly and --keep-monthly are all 0: ` +
        "a policy that keeps nothing would delete every snapshot; keep at least one",
    );
  }
  return policy;
}

/**
 * The count a `--keep-*` flag gives (`text`), or `fallback` when it is not given.
 *
 * @throws {UsageError} for a value that is not a non-negative integer, or one past the safe integers.
 */
export function countFrom(text: string | undefined, flag: string, fallback: number, command: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`${command}: --${flag} must be a non-negative integer, not ${JSON.stringify(text)}`);
  }
  if (!Number.isSafeInteger(value)) {
    throw new UsageError(
      `${command}: --${flag} ${text} is too large (at most ${Number.MAX_SAFE_INTEGER}); give a smaller count`,
    );
  }
  return value;
}
