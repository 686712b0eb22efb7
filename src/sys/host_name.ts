/**
 * This host's name for the records a push writes (inside its encrypted document), read without the `--allow-sys`
 * permission the binary does not have: from the system's file where it can be read.
 *
 * @module
 */
import { hostname } from "node:os";

/** The host name file of Linux systems and containers (Deno asks `--allow-all` for the kernel's, in /proc/sys). */
const HOSTNAME_FILE = "/etc/hostname";

/** The host's name: the system's file, else the runtime's call where permitted, else `"unknown"`. */
export function hostName(): string {
  try {
    const name = Deno.readTextFileSync(HOSTNAME_FILE).trim();
    if (name) return name;
  } catch {
    // missing or not readable: try the runtime's call
  }
  try {
    return hostname();
  } catch {
    return "unknown"; // no --allow-sys: the name is informative only
  }
}
