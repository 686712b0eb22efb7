/**
 * A recursive listing of a repository folder over SFTP: regular files with their sizes, hidden names (`.tmp`) and
 * anything that is not a file or folder left out; the folders of a level read several at a time (a round trip each).
 *
 * @module
 */
import type { ObjectInfo } from "../backend.ts";
import type { SftpSession } from "./connection.ts";
import { readFolder } from "./requests.ts";
import { isExpectedTopEntry, isTooDeepFolder } from "../layout.ts";

/** Folders read at once: `packs/` has up to 256 subfolders, and each read waits a round trip. */
const FOLDERS_AT_ONCE = 8;

/**
 * Every regular file below `path` (names relative to the repository, starting with `relative/`), unsorted. With
 * `unlisted`, what the listing leaves out is added there: links and special files anywhere, and hidden names at the
 * top but `.tmp` (and a filesystem's `lost+found`), as the folder backend reports them.
 */
export async function listFolder(
  session: SftpSession,
  path: string,
  relative: string,
  unlisted?: string[],
): Promise<ObjectInfo[]> {
  const found: ObjectInfo[] = [];
  let level: [string, string][] = [[path, relative]];
  while (level.length > 0) {
    const next: [string, string][] = [];
    const visit = async (folder: string, prefix: string) => {
      const entries = await readFolder(session, folder); // gone meanwhile (or no repository yet): nothing in it
      for (const entry of entries ?? []) {
        if (entry.name === "." || entry.name === "..") continue;
        const name = prefix ? `${prefix}/${entry.name}` : entry.name;
        const hidden = entry.name.startsWith("."); // .tmp and anything hidden is never an object
        if (unlisted && isUnlisted(entry, hidden, prefix === "")) unlisted.push(name);
        if (hidden) continue;
        if (entry.kind === "folder" && isTooDeepFolder(name)) found.push({ name: `${name}/`, size: 0 });
        else if (entry.kind === "folder") next.push([`${folder}/${entry.name}`, name]);
        else if (entry.kind === "file") found.push({ name, size: entry.size });
      }
    };
    const waiting = [...level];
    const worker = async () => {
      for (let folder = waiting.shift(); folder !== undefined; folder = waiting.shift()) await visit(...folder);
    };
    await Promise.all(Array.from({ length: Math.min(FOLDERS_AT_ONCE, waiting.length) }, worker));
    level = next;
  }
  return found;
}

/** Whether an entry is one the listing leaves out and a verify names: see {@linkcode listFolder}. */
function isUnlisted(entry: { name: string; kind: string }, hidden: boolean, top: boolean): boolean {
  if (top && isExpectedTopEntry(entry.name)) return false;
  return (hidden && top) || (!hidden && entry.kind !== "file" && entry.kind !== "folder");
}
