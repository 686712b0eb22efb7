/**
 * `remote init`: make a new off-host repository for the given recipients.
 *
 * @module
 */
import { ExitCode, UsageError } from "../errors.ts";
import { recipientsFrom, refuseRemoteInStore, remoteBackend } from "../ops/remote.ts";
import { initRepository } from "../repo/repository.ts";
import { pathFlags } from "../ops/restore_intent.ts";
import type { RemoteSettings } from "../config.ts";
import { COMMON_HELP, configFrom, defineCommand } from "./command.ts";
import { REMOTE_HELP, REMOTE_OPTIONS, remoteSettingsFrom, repositoryFlags } from "./remote_flags.ts";

/** The `remote init` command. */
export const remoteInitCommand = defineCommand({
  name: "remote init",
  summary: "make a new off-host repository encrypted to the given age recipients",
  help: `Usage: atocore-backup remote init --remote URL --recipient age1... [--recipient ...] [options]
       atocore-backup remote init --remote URL --recipients-file FILE [options]

Write the repository's config (its random id and the public recipients every
object will be encrypted to) at URL (a folder, sftp:// or s3://, see --remote),
new or empty. A location that holds anything is refused (exit 3), a repository
included, and so is a folder whose parent does not exist (a disk not mounted).
Make the key pair first with age-keygen, and keep the identity (the secret key)
off this host: pushing needs only the recipients and the authentication key
('remote auth-key', made where the identity is); restore, drill and remote
verify --read-data need the identity. Give two recipients (a second key kept in
a safe) so that losing one key loses nothing.

${REMOTE_HELP}
${COMMON_HELP}

Examples:
  age-keygen -o atocore-offsite.key    # prints the recipient: Public key: age1...
  atocore-backup remote init --remote file:///mnt/offsite/atocore --recipient age1...
  atocore-backup remote init --remote /mnt/offsite/atocore --recipients-file recipients.txt --json`,
  options: { ...REMOTE_OPTIONS },
  maxPositionals: 0,
  async run(values, _positionals, context) {
    const config = configFrom(values, context);
    const settings = remoteSettingsFrom(values, context);
    const backend = remoteBackend(settings, context.cwd, "remote init", context.env, context.reporter);
    refuseRemoteInStore(config, backend);
    const recipients = recipientsFrom(settings);
    if (recipients === undefined) {
      throw new UsageError(
        "remote init needs the recipients to encrypt to: --recipient age1... (from age-keygen) or --recipients-file",
      );
    }
    const made = await initRepository(backend, recipients, context.now);
    context.reporter.event("info", "remote_initialized", { location: backend.location, id: made.id });
    return {
      result: { location: backend.location, ...made },
      exitCode: ExitCode.Ok,
      text: [
        `made repository ${backend.location} (id ${made.id}) for ${made.recipients.length} recipient(s):`,
        ...made.recipients.map((recipient) => `  ${recipient}`),
        ...pushLines(`${pathFlags(config)}${repositoryFlags(settings, backend)}`, settings),
      ].join("\n"),
    };
  },
});

/**
 * The push to run next, its words quoted for a shell with the path and repository flags this run was given, so that it
 * runs as printed; without an authentication key (which a push needs), first how to make one, and the push given it.
 */
function pushLines(flags: string, settings: RemoteSettings): string[] {
  if (settings.authKeyFile !== null) return [`push to it with: atocore-backup push --latest${flags}`];
  return [
    "make the authentication key a push needs where the identity is (not on this host): " +
    "atocore-backup remote auth-key --identity atocore-offsite.key > atocore-auth.key",
    `push to it with: atocore-backup push --latest${flags} --auth-key atocore-auth.key`,
  ];
}
