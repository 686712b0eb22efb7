/**
 * A push's validation of its local snapshot, run beside the push rather than before it: the databases' integrity
 * checks (off the main thread) overlap the reading and sealing, and the files' hashes are the push's own. The push
 * stops at its next safe point once the validation fails, and lists nothing before it has passed.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { RefusedError, ToolError, UsageError } from "../errors.ts";
import type { PushGate } from "../repo/push.ts";
import type { ReadFile } from "../repo/push_session.ts";
import { readIntegrityRecord } from "../snapshot/integrity_record.ts";
import type { SqliteDriver } from "../sqlite/driver.ts";
import { validateSnapshot } from "./validate.ts";
import { snapshotsDir } from "../snapshot/layout.ts";
import { nextStep } from "./next_step.ts";
import { pathFlags } from "./restore_intent.ts";

/** A local snapshot refused because it did not validate; its errors, for a run that goes on to the next (`--all`). */
export class InvalidSnapshotError extends RefusedError {
  /**
   * The refusal of snapshot `stamp` (its folder `folder`) with `errors`, after `packsSent` packs of it were stored;
   * its `list` and `create` carry the path flags of `config` (the run's), so that they reach the folder refused.
   */
  constructor(
    stamp: string,
    folder: string,
    readonly errors: string[],
    readonly packsSent: number,
    config?: Config,
    /** Bytes of those packs, counted in a run's totals as sent. */
    readonly bytesSent = 0,
  ) {
    super(
      `snapshot ${stamp} failed validation (${errors.join("; ")}): ${folder}; ` +
        `${storedMeanwhile(packsSent)}; ${anotherSnapshot(config)}`,
    );
  }
}

/**
 * Push another snapshot or make one: short when the commands reach this run's store as they are, else both written
 * out with the path flags of `config`, `list` with the backup folder's and `create` with the store's.
 */
function anotherSnapshot(config: Config | undefined): string {
  const create = config === undefined ? "" : pathFlags(config);
  if (create === "") return "push another snapshot (see 'list'), or make a new one with 'create'";
  const list = `atocore-backup list${pathFlags(config!, {}, ["backupDir"])}`;
  return `push another snapshot, listed by: ${list}; or make a new one with: atocore-backup create${create}`;
}

/** What a refused snapshot left in the repository, in words: the packs stored before the validation ended, or none. */
export function storedMeanwhile(packs: number): string {
  return packs === 0
    ? "nothing was pushed"
    : `nothing of it is listed (the ${packs} pack${packs === 1 ? "" : "s"} stored before the validation ended ` +
      `${packs === 1 ? "is" : "are"} kept for the next push to reuse, else 'remote cleanup' removes them)`;
}

/** Thrown inside the push to stop it once the validation failed; the caller turns it into the refusal. */
class ValidationFailed extends Error {}

/**
 * The validation of one snapshot, started at once, as the gate its push waits on. Deep, it takes the SHA-256 of each
 * file the push read (and checked against the manifest) from the push, and hashes only the others itself.
 */
export class ValidationBeside implements PushGate {
  /** The validation's errors (none: valid); rejects with a {@linkcode UsageError} when there is no such snapshot. */
  readonly errors: Promise<string[]>;
  private found: string[] = [];
  /** Errors found once the validation ended: a database checked that is not the file the push read. */
  private late: string[] = [];
  /** The identity of each database checked whole, by path. */
  private readonly checked = new Map<string, string>();
  /** Create's record (path → SHA-256 checked), for a deep validation; and the databases it spared a check. */
  private readonly record: ReadonlyMap<string, string>;
  private spared: readonly string[] = [];
  private readonly read = Promise.withResolvers<ReadonlyMap<string, string> | null>();

  /** Start validating snapshot `stamp` (`quick`: sizes, not hashes) with `driver`. */
  constructor(config: Config, stamp: string, driver: SqliteDriver, quick: boolean) {
    const backupDir = config.backupDir.path;
    this.record = quick ? new Map() : readIntegrityRecord(backupDir, stamp);
    const options = {
      driver,
      quick,
      verifiedLater: this.read.promise,
      onIntegrityChecked: (path: string, identity: string) => this.checked.set(path, identity),
      checkedAtCreate: this.record,
    };
    this.errors = validateSnapshot(backupDir, stamp, options).then((validation) => {
      if (!validation.exists) throw noSuchSnapshot(backupDir, stamp, pathFlags(config, {}, ["backupDir"]));
      this.spared = validation.integrity_checked_at_create ?? [];
      return this.found = validation.valid ? [] : validation.errors;
    });
    this.errors.catch(() => {}); // awaited by the push's caller; never an unhandled rejection meanwhile
  }

  /** Stop the push (between blocks) once the validation has failed. */
  check(): void {
    if (this.found.length > 0) throw new ValidationFailed();
  }

  /**
   * Wait for the validation, given the files the push read, and give the databases it checked that the push read; stop
   * the push when it failed, or when a database it checked is not the file the push read (replaced or written between
   * the two: the check vouches for other bytes).
   */
  async passed(read: ReadonlyMap<string, ReadFile>): Promise<readonly string[]> {
    this.read.resolve(new Map([...read].map(([path, file]) => [path, file.sha256])));
    const errors = await this.errors;
    const both = [...this.checked].filter(([path]) => read.has(path));
    this.late = both.filter(([path, identity]) => read.get(path)!.identity !== identity)
      .map(([path]) => `file_replaced_during_push: ${path}`);
    if (errors.length > 0 || this.late.length > 0) throw new ValidationFailed();
    return [...both.map(([path]) => path), ...vouchedByRecord(this.record, read, this.spared)];
  }

  /** The push ended before it read every file: the validation checks the files' sizes, not their hashes. */
  release(): void {
    this.read.resolve(null);
  }

  /**
   * The validation's errors once the push ended early (after {@linkcode release}), with `changed`, a file the push found
   * unlike the manifest, as one; none when the validation itself failed on anything but a usage problem (the push's own
   * error then says what happened).
   */
  async verdict(changed: string | null): Promise<string[]> {
    let errors: string[];
    try {
      errors = await this.errors;
    } catch (error) {
      if (error instanceof ToolError) throw error;
      errors = [];
    }
    errors = [...errors, ...this.late];
    if (changed === null || errors.some((error) => error.endsWith(`: ${changed}`))) return errors;
    return [...errors, `manifest_sha256_mismatch: ${changed}`];
  }
}

/**
 * The refusal of a push of a snapshot the backup folder does not hold. `flags`: the path flags a printed `list` needs
 * to reach that folder (see `pathFlags`; none by default).
 */
export function noSuchSnapshot(backupDir: string, stamp: string, flags = ""): UsageError {
  const list = nextStep("see 'atocore-backup list'", "see the snapshots with", "list", flags);
  return new UsageError(`no snapshot ${stamp} in ${snapshotsDir(backupDir)}; ${list}`);
}

/**
 * A {@linkcode ValidationBeside} started when the push first asks for it (as it reads the first block): a push that
 * finds its snapshot pushed already by this backup folder stops before that, and validates nothing; one that goes on
 * (another folder pushed the same second) is validated like any.
 */
export class ValidationWhenNeeded implements PushGate {
  private started: ValidationBeside | null = null;

  /** `start` makes the validation. */
  constructor(private readonly start: () => ValidationBeside) {}

  /** As {@linkcode ValidationBeside.check}, starting the validation. */
  check(): void {
    this.validation().check();
  }

  /** As {@linkcode ValidationBeside.passed}, starting the validation. */
  passed(read: ReadonlyMap<string, ReadFile>): Promise<readonly string[]> {
    return this.validation().passed(read);
  }

  /** As {@linkcode ValidationBeside.release}, when started. */
  release(): void {
    this.started?.release();
  }

  /** As {@linkcode ValidationBeside.verdict}; none when the push ended before it read a block. */
  verdict(changed: string | null): Promise<string[]> {
    return this.started?.verdict(changed) ?? Promise.resolve([]);
  }

  private validation(): ValidationBeside {
    return this.started ??= this.start();
  }
}

/**
 * The gate of a push of the snapshot create just made and validated (`create --push`): nothing to wait for, and
 * create's record vouches for the databases whose bytes the push read.
 */
export class CheckedAtCreate implements PushGate {
  /** For snapshot `stamp` of the backup folder of `config`. */
  constructor(private readonly config: Config, private readonly stamp: string) {}

  /** Nothing can fail beside the push. */
  check(): void {}

  /** The databases of create's record that the push read as the very bytes create checked. */
  passed(read: ReadonlyMap<string, ReadFile>): Promise<readonly string[]> {
    const record = readIntegrityRecord(this.config.backupDir.path, this.stamp);
    return Promise.resolve(vouchedByRecord(record, read, [...record.keys()]));
  }
}

/** Those of `paths` in `record` that the push read with the SHA-256 the record gives: the bytes create checked. */
function vouchedByRecord(
  record: ReadonlyMap<string, string>,
  read: ReadonlyMap<string, ReadFile>,
  paths: readonly string[],
): string[] {
  return paths.filter((path) => record.get(path) !== undefined && read.get(path)?.sha256 === record.get(path));
}
