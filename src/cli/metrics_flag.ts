/**
 * `--metrics-file PATH`: the flag that create, validate and drill share, and the
 * wrapper that records a run's metrics whether it succeeds, fails or throws.
 *
 * @module
 */
import { resolve } from "node:path";
import { describeOsError, RefusedError, UsageError } from "../errors.ts";
import { foreignLinkOnTheWay } from "../fs/foreign_link.ts";
import { checkCanReplace } from "../fs/durable.ts";
import { realPathAsFarAsExists } from "../fs/real_path.ts";
import { type MetricsOperation, writeMetrics } from "../report/metrics.ts";
import { type Config, refuseOddPathFlag } from "../config.ts";
import { outputOverlap } from "../path_overlap.ts";
import { isSameOrInside } from "../fs/real_path.ts";
import {
  type CommandContext,
  type CommandOptions,
  type FlagValues,
  type Outcome,
  type PATH_OPTIONS,
  resolvedConfigFrom,
} from "./command.ts";
import { heldOutputFile } from "../fs/state_folder.ts";
import { type RepositoryPlaces, repositoryPlacesOf } from "./remote_flags.ts";

/** The flag, for a command's `options`. */
export const METRICS_OPTIONS = { "metrics-file": { type: "string" } } as const satisfies CommandOptions;

/** The flag's line of help, its text starting at `column` (where the command's other options' text starts). */
export function metricsHelp(column: number): string {
  return `  ${
    "--metrics-file PATH".padEnd(column - 3)
  } write Prometheus textfile-collector metrics to PATH, atomically, ` +
    "also when the run fails";
}

/** The flag's line of help, for the commands whose options' text starts at column 23. */
export const METRICS_HELP = metricsHelp(23);

/**
 * Run a command's work and, when `--metrics-file` is given, write its metrics:
 * success when it ends with exit code 0, failure when it ends otherwise or throws
 * (the error is then thrown on). A metrics file that cannot be written is refused
 * before the work (exit 2); one that fails after it is reported as a warning
 * event and does not change the exit code.
 */
export async function withMetrics(
  values: FlagValues<typeof METRICS_OPTIONS & typeof PATH_OPTIONS>,
  operation: MetricsOperation,
  context: CommandContext,
  run: () => Promise<Outcome>,
): Promise<Outcome> {
  const path = values["metrics-file"];
  const { refused } = context;
  const work = refused ? () => Promise.reject(refused) : run; // reported as failed, and thrown on
  if (path === undefined) return await work();
  const given = outputPath(context.cwd, path, "metrics-file");
  requireWritableOutput(
    "metrics-file",
    given,
    storeConfigOrNull(values, context),
    repositoryPlacesOf(values, context),
  );
  const target = given.path;
  using output = heldOutputFile(target); // its folder as judged, whatever its path leads to by the end
  const record = (success: boolean, outcome?: Outcome) => {
    try {
      writeMetrics(output, {
        operation,
        startedAt: context.now,
        finishedAt: new Date(),
        success,
        facts: outcome?.metrics ?? {},
      });
    } catch (error) {
      context.reporter.event("warning", "metrics_write_failed", { path: target, error: describeOsError(error) });
    }
  };
  let outcome: Outcome;
  try {
    outcome = await work();
  } catch (error) {
    record(false);
    throw error;
  }
  record(outcome.exitCode === 0, outcome);
  return outcome;
}

/**
 * Refuse, before any work, an output file (`--metrics-file`, `--junit`) that could not be written after it, so that
 * a run that did its work never ends in exit 1 for want of somewhere to report it, or that would overwrite a file of
 * the store or of its backups.
 *
 * @param flag The flag's name without dashes, for the message.
 * @param output The output file: its path, links resolved, and how to name it.
 * @param config The store's paths, which an output must never overwrite (`null`: not known, the run will say why).
 * @param places The folder repository and key files the flags or environment name, which it must not overwrite
 *   either.
 * @throws {UsageError} naming the flag, the path and the reason.
 */
export function requireWritableOutput(
  flag: string,
  { path, named }: OutputPath,
  config: Config | null,
  places: RepositoryPlaces = { root: null, keyFiles: [] },
): void {
  const { root } = places;
  const keyFile = places.keyFiles.find(([, file]) => isSameOrInside(path, file) && isSameOrInside(file, path));
  const backup = config?.backupDir.path;
  const isBackup = backup !== undefined && isSameOrInside(path, backup) && isSameOrInside(backup, path); // not made yet
  const overlap = keyFile !== undefined
    ? `the ${keyFile[0]} ${keyFile[1]}`
    : root !== null && isSameOrInside(path, root)
    ? `the folder repository ${root}`
    : isBackup
    ? `the backup folder ${backup} itself`
    : config && outputOverlap(config, path);
  if (overlap !== null) {
    const keys = keyFile === undefined ? "" : ", not a key file";
    throw new UsageError(
      `--${flag} ${named} would overwrite ${overlap}; nothing was done; give a file outside the store and the ` +
        `backups' own folders${keys} (a textfile collector's folder, a CI job's output folder)`,
    );
  }
  try {
    checkCanReplace(path);
  } catch (error) {
    throw new UsageError(
      `--${flag} ${named} cannot be written (${describeOsError(error)}); ` +
        `give a file in an existing folder this user can write; nothing was done`,
      { cause: error },
    );
  }
}

/**
 * The store's paths as the flags and environment give them, for the output check; `null` when they cannot be resolved
 * (the run then fails on them itself, and its metrics record that).
 */
export function storeConfigOrNull(values: FlagValues<typeof PATH_OPTIONS>, context: CommandContext): Config | null {
  try {
    return resolvedConfigFrom(values, context);
  } catch {
    return null;
  }
}

/**
 * Where an output file given as `path` (by `--flag`) is written: a symbolic link there (an exporter's file kept
 * elsewhere) is written through, so the link stays and its file is the one replaced; but not another user's link to
 * what that user does not own, which would have a root run replace any file.
 *
 * @throws {RefusedError} naming the link, its owner and what it leads to.
 */
export function outputPath(cwd: string, path: string, flag: string): OutputPath {
  refuseOddPathFlag(path, `--${flag}`);
  const given = resolve(cwd, path);
  const found = foreignLinkOnTheWay(given, true);
  if (found !== null) {
    throw new RefusedError(
      `--${flag} ${given} leads through the symbolic link ${found.link}, owned by uid ${found.linkOwner}, to ` +
        `${found.leadsTo}, owned by uid ${found.targetOwner}; a link is followed only when root, this run's user or ` +
        "the owner of what it leads to owns it; nothing was done; give a path without it, or have root make the link",
    );
  }
  const real = realPathAsFarAsExists(given);
  return { path: real, named: real === given ? given : `${given} (which leads to ${real})` };
}

/** An output file: the path written (links resolved) and how messages name it (as given, and where it leads). */
export interface OutputPath {
  path: string;
  named: string;
}
