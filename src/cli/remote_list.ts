/**
 * `remote list`: the snapshots of the off-host repository.
 *
 * @module
 */
import { ExitCode } from "../errors.ts";
import { identitiesFrom, openForReading, recipientsFrom, remoteBackend } from "../ops/remote.ts";
import { listRemote, type RemoteListing } from "../repo/remote_list.ts";
import { COMMON_HELP, configFrom, defineCommand } from "./command.ts";
import { formatBytes } from "../text/bytes.ts";
import { formatTable, printable } from "./format.ts";
import { nextStep } from "../ops/next_step.ts";
import { REMOTE_HELP, REMOTE_OPTIONS, remoteSettingsFrom, repositoryFlags } from "./remote_flags.ts";

/** The `remote list` command. */
export const remoteListCommand = defineCommand({
  name: "remote list",
  summary: "list the snapshots in the off-host repository, oldest first",
  help: `Usage: atocore-backup remote list [options]

List every snapshot the repository holds (STAMP_PUSHID, the name restore and
drill accept), with the backup folder that pushed it (SOURCE, a random id its
refs name; the last line names this backup folder's, once it pushed there: the
id 'drill --from-remote --latest --source' takes), the packs it needs and their stored bytes, and whether its refs
carry MACs (MAC). Without the identity only names and public sizes are
known; with --identity each snapshot's document is decrypted too: when and from
which host it was pushed, its files, its size, whether it holds Chroma, and
whether a MAC by the identity's auth key authenticates it (AUTH; exit 1 when one
cannot be read or its MAC is wrong). Refs that exist but cannot be read (altered)
are said so, with exit 1. A snapshot is listed only once every object
it needs was written. Pushes in progress are counted.

${REMOTE_HELP}
${COMMON_HELP}

Examples:
  atocore-backup remote list --remote file:///mnt/offsite/atocore
  atocore-backup remote list --identity atocore-offsite.key --json | jq -r '.snapshots[-1].snapshot'`,
  options: { ...REMOTE_OPTIONS },
  maxPositionals: 0,
  async run(values, _positionals, context) {
    const config = configFrom(values, context);
    const settings = remoteSettingsFrom(values, context);
    const backend = remoteBackend(settings, context.cwd, "remote list", context.env, context.reporter);
    const identities = settings.identityFile ? identitiesFrom(settings, "remote list", context.reporter) : [];
    const given = { recipients: recipientsFrom(settings), identities, identityFile: settings.identityFile?.value };
    const { own } = await openForReading(config, backend, given);
    // this folder's own source: the id to give 'drill --from-remote --latest --source' for this host
    const listing = { ...await listRemote(backend, identities, context.now), own_source: own };
    // the verify printed checks the repository given, with its flags
    const flags = repositoryFlags(settings, backend);
    const verify = nextStep("run 'remote verify'", "check the repository with", "remote verify", flags);
    for (const name of listing.not_objects) {
      const fields = { location: backend.location, name, next_step: verify };
      context.reporter.event("warning", "remote_snapshot_not_an_object", fields);
    }
    const unreadable = listing.snapshots.some((entry) => entry.error !== undefined || entry.refs_error !== undefined);
    return {
      result: listing,
      exitCode: unreadable ? ExitCode.Failed : ExitCode.Ok,
      text: describe(listing, identities.length > 0),
    };
  },
});

/** The listing as a table; every string the repository wrote is made printable (a writer may put ESC in a host). */
function describe(listing: RemoteListing & { own_source: string | null }, decrypted: boolean): string {
  const header = decrypted
    ? ["SNAPSHOT", "SOURCE", "PUSHED", "HOST", "FILES", "SIZE", "CHROMA", "AUTH", "STORED"]
    : ["SNAPSHOT", "SOURCE", "PACKS", "MAC", "STORED"];
  const rows = listing.snapshots.map((entry) => {
    const stored = formatBytes(entry.stored_bytes) +
      (entry.refs_error !== undefined
        ? ` (refs unreadable: ${printable(entry.refs_error)})`
        : entry.refs
        ? ""
        : " (refs missing)");
    const snapshot = printable(entry.snapshot);
    const source = printable(entry.source ?? "-");
    if (!decrypted) return [snapshot, source, String(entry.packs), entry.mac ? "yes" : "none", stored];
    if (entry.error !== undefined) {
      return [snapshot, source, `unreadable: ${printable(entry.error)}`, "", "", "", "", "", stored];
    }
    return [
      snapshot,
      source,
      printable(entry.pushed_at ?? ""),
      printable(entry.host ?? ""),
      String(entry.files ?? ""),
      formatBytes(entry.bytes ?? 0),
      entry.chroma ? "yes" : "no",
      entry.authenticated ? "yes" : "NONE",
      stored,
    ];
  });
  const lines = [
    `repository ${printable(listing.location)} (id ${printable(listing.repository_id)})`,
    rows.length ? formatTable(header, rows) : "no snapshots",
  ];
  if (listing.pushes_in_progress) lines.push(`pushes in progress: ${listing.pushes_in_progress}`);
  if (listing.own_source !== null) lines.push(`this backup folder pushes as source ${listing.own_source}`);
  return lines.join("\n");
}
