/**
 * Who is in a group, from `/etc/passwd` and `/etc/group`: a folder its group may write is another user's to rename
 * entries of unless that group holds no one but its owner (Debian's per-user groups, where umask 002 makes 0775 folders).
 *
 * @module
 */

/** Most bytes read of each account file; a larger one counts as unknown. */
const ACCOUNTS_MAX_BYTES = 16 << 20;

/**
 * Whether no user but `owner` and root is in group `gid`, by name or as the primary group: `false` where the files
 * cannot be read or do not list the group (accounts kept elsewhere, as in LDAP, count as others).
 */
export function groupHoldsOnly(gid: number, owner: number): boolean {
  const passwd = accountLines("/etc/passwd");
  const groups = accountLines("/etc/group")?.filter((fields) => fields[2] !== "" && Number(fields[2]) === gid) ?? [];
  if (passwd === null || groups.length === 0) return false; // every line of the gid counts: names may share one
  const uidOf = new Map(passwd.map((fields) => [fields[0], Number(fields[2])]));
  const allowed = (uid: number | undefined) => uid === owner || uid === 0;
  const primary = passwd.filter((fields) => Number(fields[3]) === gid).map((fields) => Number(fields[2]));
  const members = groups.flatMap((fields) => (fields[3] ?? "").split(",")).filter((name) => name !== "");
  return primary.every(allowed) && members.every((name) => allowed(uidOf.get(name)));
}

/** The colon-separated fields of each line of the account file `path`, or `null` where it cannot be read whole. */
function accountLines(path: string): string[][] | null {
  try {
    const info = Deno.statSync(path);
    if (!info.isFile || info.size > ACCOUNTS_MAX_BYTES) return null;
    const lines = Deno.readTextFileSync(path).split("\n").filter((line) => line !== "" && !line.startsWith("#"));
    // `+`/`-` lines (nsswitch's compat mode) bring in accounts kept elsewhere: what the file says is not all
    return lines.some((line) => /^[+-]/.test(line)) ? null : lines.map((line) => line.split(":"));
  } catch {
    return null;
  }
}
