/**
 * A writer who swaps folders for links to a victim folder and back, every few milliseconds, in a process of its own:
 * what the folder repository's held folders must withstand.
 *
 * @module
 */

/** Swap each folder given after `<victim>` for a link to `<victim>` and back, in turn, for ever (killed on dispose). */
const SWAPPER = `
import os, sys, time
victim, folders = sys.argv[1], sys.argv[2:]
while True:
    for folder in folders:
        aside = folder + "-aside"
        try:
            os.rename(folder, aside); os.symlink(victim, folder); time.sleep(0.002)
            os.unlink(folder); os.rename(aside, folder); time.sleep(0.001)
        except OSError:
            time.sleep(0.001)
`;

/** Start swapping `folders` for links to `victim`; disposing of it stops the swapper. */
export function startSwapper(victim: string, folders: string[]): AsyncDisposable {
  const swapper = new Deno.Command("python3", {
    args: ["-c", SWAPPER, victim, ...folders],
    stdout: "null",
    stderr: "null",
  })
    .spawn();
  return {
    async [Symbol.asyncDispose]() {
      swapper.kill("SIGKILL");
      await swapper.status;
    },
  };
}
