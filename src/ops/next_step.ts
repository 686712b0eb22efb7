/**
 * The next step a message gives the operator as a command that works on the backup folder: short when the command
 * reaches the folder as it is, else written out whole with the path flags it needs, for a shell to run as printed.
 *
 * @module
 */

/**
 * `short` (the hint naming the command in quotes) when `flags` is empty: run as it is, the command reaches this run's
 * folders. Otherwise `words: atocore-backup COMMAND FLAGS`, unquoted as a whole (its words are quoted for a shell, see
 * `pathFlags`) and ended by `; then` (what follows it, when given) or the message's end, so that the operator can paste
 * it as it is.
 */
export function nextStep(short: string, words: string, command: string, flags: string, then = ""): string {
  return flags === "" ? short : `${words}: atocore-backup ${command}${flags}${then === "" ? "" : `; ${then}`}`;
}
