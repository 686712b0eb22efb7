/**
 * `remote auth-key`: print the authentication key file derived from an identity file, for the pushing hosts, which
 * must be able to authenticate their snapshots without holding the identity.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { deriveAuthKey, formatAuthKeyFile } from "../crypto/auth_key.ts";
import { ExitCode } from "../errors.ts";
import { identitiesFrom } from "../ops/remote.ts";
import { defineCommand } from "./command.ts";
import { remoteSettingsFrom } from "./remote_flags.ts";

/** The `remote auth-key` command. */
export const remoteAuthKeyCommand = defineCommand({
  name: "remote auth-key",
  summary: "print the authentication key file a pushing host needs, derived from the identity",
  help: `Usage: atocore-backup remote auth-key --identity FILE > auth.key

Print, for each identity in FILE, a line "<age1... recipient> <key>": the key
is derived one way from the identity (HKDF-SHA256), so it cannot decrypt and
reveals nothing of the identity, and it is the same each time. Run it where the
identity is, install the output on each pushing host with mode 600 and give it
to push and create --push (--auth-key FILE or ATOCORE_BACKUP_AUTH_KEY_FILE):
each snapshot's refs then carry a MAC that restore, drill and remote verify
check with the identity, so a writer of the repository who knows only the
public recipient cannot add or re-label a snapshot. Whoever holds the key can
push snapshots that restore accepts: keep it as private as the host. The file
is printed as is (not JSON) unless --json is given.

Options:
  --identity FILE        age identity file (secret key)                       ATOCORE_BACKUP_IDENTITY_FILE
  --json                 the keys as JSON
  --debug                stack traces on errors
  -h, --help             this help

Examples:
  atocore-backup remote auth-key --identity atocore-offsite.key > atocore-auth.key
  install -m 600 atocore-auth.key /etc/atocore-backup/auth.key     # on the pushing host`,
  options: { identity: { type: "string" } },
  maxPositionals: 0,
  run(values, _positionals, context) {
    const settings = remoteSettingsFrom({ identity: values.identity }, context);
    const identities = identitiesFrom(settings, "remote auth-key", context.reporter);
    const keys = identities.map(deriveAuthKey).map(({ recipient, key }) => ({
      recipient,
      key: Buffer.from(key).toString("hex"),
    }));
    return Promise.resolve({
      result: { keys },
      exitCode: ExitCode.Ok,
      text: formatAuthKeyFile(identities).trimEnd(),
      plain: true,
    });
  },
});
