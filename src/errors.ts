/**
 * Error classes that carry the process exit code an operator's script acts on; each message is one line
 * naming what went wrong, the path it concerns and the next step.
 *
 * @module
 */

/** Exit codes of the command-line interface; part of its public contract. */
export const ExitCode = {
  /** The operation succeeded. */
  Ok: 0,
  /** The operation ran and failed: validation, integrity or I/O. */
  Failed: 1,
  /** The command line or the configuration is wrong. */
  Usage: 2,
  /** Refused for safety: no acknowledgment, files open, snapshot invalid. */
  Refused: 3,
  /** Another operation holds the backup folder's lock. */
  Locked: 4,
  /** Stopped at a safe point by Ctrl-C (SIGINT): 128 + 2, as a shell reports it. */
  Interrupted: 130,
  /** Stopped at a safe point by SIGTERM: 128 + 15. */
  Terminated: 143,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** Base class: an error the tool expects and reports as one line with an exit code. */
export class ToolError extends Error {
  /** The exit code the CLI ends with when this error reaches it. */
  readonly exitCode: ExitCodeValue;

  /** Make an error with a one-line message and the exit code it maps to. */
  constructor(message: string, exitCode: ExitCodeValue, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** The command line or configuration is wrong (exit 2). */
export class UsageError extends ToolError {
  /** Make a usage error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Usage, options);
  }
}

/** The operation ran and failed (exit 1). */
export class OperationError extends ToolError {
  /** Make an operation failure. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Failed, options);
  }
}

/** The tool refused to act for safety (exit 3). */
export class RefusedError extends ToolError {
  /** Make a refusal. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Refused, options);
  }
}

/** Another operation holds the lock (exit 4). */
export class LockedError extends ToolError {
  /** Make a lock conflict. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Locked, options);
  }
}

/** ` at PATH` for an OS error whose message ends in the call and path (`: remove '/x/y'`), else `""`. */
export function osErrorPath(error: unknown): string {
  const path = (error as { path?: unknown } | null)?.path; // node:fs errors, or one a caller named
  if (typeof path === "string") return ` at ${path}`;
  const match = error instanceof Error ? /: [a-z]+ '([^']+)'$/.exec(error.message.split("\n")[0]) : null;
  return match ? ` at ${match[1]}` : "";
}

/**
 * Describe an operating-system error in a few words an operator recognises,
 * telling the classes apart by type, never by message text.
 */
export function describeOsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.AlreadyExists) return "already exists";
  if (error instanceof Deno.errors.NotADirectory) return "not a directory";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  if (isDiskFull(error)) return "no space left on device (disk full)";
  if ((error as { code?: unknown } | null)?.code === "EROFS") return "read-only file system";
  if (isIoError(error)) return ioErrorText(osErrorPath(error));
  if ((error as { code?: unknown } | null)?.code === "EMFILE") {
    return `the open-file limit was reached${osErrorPath(error)}: raise it (ulimit -n)`;
  }
  // this tool's own message is one line but for the paths it names, which may hold a line break: cut there, it would
  // lose the rest of the path and the next step
  if (error instanceof ToolError) return error.message;
  if (error instanceof Error) return error.message.split("\n")[0];
  return String(error);
}

/** The words for an I/O error (EIO) `where` (` at PATH`, or nothing): the storage failed, not this tool. */
export function ioErrorText(where: string): string {
  return `an I/O error${where} (the storage failed: check it, dmesg)`;
}

/**
 * Tell whether an error means the disk is full: the operating system's ENOSPC,
 * or SQLite's SQLITE_FULL (its drivers set `code` to the symbolic name).
 */
export function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "SQLITE_FULL";
}

/** Whether an error came from the open-file limit: the system's EMFILE or ENFILE, or SQLite's open that met it. */
export function isOpenFileLimit(error: unknown): boolean {
  const { code, systemCode } = (error ?? {}) as { code?: unknown; systemCode?: unknown };
  return [code, systemCode].some((name) => name === "EMFILE" || name === "ENFILE");
}

/** What to do after an I/O error (EIO): the storage failed, not this tool nor a permission. */
const IO_ERROR_STEP = "the storage failed to read or write there: check it (dmesg, the disk's health) and run again";

/** Whether an error is the system's I/O error (EIO): a bad sector, a network filesystem or a disk that went away. */
export function isIoError(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "EIO";
}

/** Whether an OS error says a path given cannot name anything: a symbolic link loop (ELOOP) or a name too long. */
export function isUnusablePath(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Deno.errors.FilesystemLoop || code === "ELOOP" || code === "ENAMETOOLONG";
}

/** The exit code of an error this tool did not expect: a path that cannot name anything is a usage error. */
export function unexpectedExitCode(error: unknown): ExitCodeValue {
  return isUnusablePath(error) ? ExitCode.Usage : ExitCode.Failed;
}

/**
 * The one line shown for an error this tool did not expect (not a {@linkcode ToolError}): its first line, which for a
 * system error names the path, and for a denied permission, the open-file limit, a full disk or an I/O error the next
 * step. A path that cannot name anything is said in
 * plain words, with `given` (where the path came from: `--db`, `ATOCORE_BACKUP_DIR`) when the caller knows it.
 */
export function unexpectedErrorLine(error: unknown, given: (path: string) => string | null = () => null): string {
  if (!(error instanceof Error)) return String(error);
  const line = error.message.split("\n")[0];
  if (isUnusablePath(error)) {
    const path = osErrorPath(error).slice(" at ".length);
    const what = error instanceof Deno.errors.FilesystemLoop || (error as { code?: unknown }).code === "ELOOP"
      ? "too many levels of symbolic links (a loop)"
      : "a name in it is longer than 255 bytes, or the whole path longer than 4,095";
    const source = path ? given(path) : null;
    return `${path || line}: ${what}; check ${source ? `the path given by ${source}` : "the path"} and its links`;
  }
  if (isOpenFileLimit(error)) {
    return `${line}: the open-file limit was reached: raise it (ulimit -n) and run again`;
  }
  if (isDiskFull(error)) return `${line}: the disk is full: free space on it and run again`;
  if (isIoError(error)) return `${line}: ${IO_ERROR_STEP}`;
  if (!(error instanceof Deno.errors.PermissionDenied)) return line;
  return `${line}; check that this user may read and write that path (its owner and modes, or an immutable flag)`;
}
