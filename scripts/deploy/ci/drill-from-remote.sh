#!/usr/bin/env bash
# The nightly restore drill from the off-host repository, for any CI: fetch the binary (checked against its SHA-256),
# write the identity from a secret to a private temporary file, drill the newest snapshot, leave the JUnit report.
# Exit status: the drill's (0 passed; 1 a check failed or the snapshot is older than MAX_AGE; 2 usage; 3/4 refused).
#
# Environment (secrets marked *):
#   ATOCORE_BACKUP_BIN          a binary already on the runner, or else:
#   ATOCORE_BACKUP_BIN_URL      where to download it (a release asset) and
#   ATOCORE_BACKUP_BIN_SHA256   its SHA-256: an unverified binary never runs
#   ATOCORE_BACKUP_IDENTITY *   the age identity (the whole key file, as age-keygen wrote it)
#   ATOCORE_BACKUP_REMOTE       the repository (file:///..., sftp://..., s3://...) and its credentials (AWS_*, ...)
#   MAX_AGE                     the oldest acceptable snapshot (default 36h)
#   SOURCE_ID                   drill that backup folder's newest (SOURCE in 'remote list'; default: any host's newest,
#                               so in a repository several hosts share, run one job per host, each with its id)
#   JUNIT                       where the JUnit report goes (default drill.xml)
set -euo pipefail
{ set +x; } 2>/dev/null # a traced run would print the secret

fail() { echo "drill-from-remote: $*" >&2; exit 2; }
# A CI system passes a setting it does not have as an empty value; the tool refuses empty settings: unset them.
for name in $(compgen -e); do
  case "$name" in ATOCORE_* | AWS_*) [ -n "${!name}" ] || unset "$name" ;; esac
done
max_age="${MAX_AGE:-36h}"
junit="${JUNIT:-drill.xml}"
source_args=() # none: the newest of any host, as before SOURCE_ID existed
[ -z "${SOURCE_ID:-}" ] || source_args=(--source "$SOURCE_ID")
rm -f "$junit" # a report left by an earlier run must not pass for this one's
[ -n "${ATOCORE_BACKUP_IDENTITY:-}" ] || fail "set ATOCORE_BACKUP_IDENTITY from the secret store of the CI system"
case "$ATOCORE_BACKUP_IDENTITY" in # matched here, never printed
  *AGE-SECRET-KEY-1*) ;;
  *) fail "ATOCORE_BACKUP_IDENTITY holds no AGE-SECRET-KEY-1... line; store the whole key file in the secret, not its path" ;;
esac
[ -n "${ATOCORE_BACKUP_REMOTE:-}" ] || fail "set ATOCORE_BACKUP_REMOTE to the repository"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bin="${ATOCORE_BACKUP_BIN:-}"
if [ -z "$bin" ]; then
  [ -n "${ATOCORE_BACKUP_BIN_URL:-}" ] || fail "set ATOCORE_BACKUP_BIN or ATOCORE_BACKUP_BIN_URL"
  [ -n "${ATOCORE_BACKUP_BIN_SHA256:-}" ] || fail "set ATOCORE_BACKUP_BIN_SHA256 to the published SHA-256 of the binary"
  bin="$work/atocore-backup"
  curl -fsSL --retry 3 --connect-timeout 20 -o "$bin" "$ATOCORE_BACKUP_BIN_URL" ||
    fail "could not download $ATOCORE_BACKUP_BIN_URL; check the URL and the runner's network"
  echo "$ATOCORE_BACKUP_BIN_SHA256  $bin" | sha256sum --check --status ||
    fail "the binary from $ATOCORE_BACKUP_BIN_URL does not have the SHA-256 given; it was not run"
  chmod 700 "$bin"
fi

# The secret goes to a file only this user can read, removed on exit; it never reaches the command line or the log.
(umask 077 && printf '%s\n' "$ATOCORE_BACKUP_IDENTITY" >"$work/identity.txt")
unset ATOCORE_BACKUP_IDENTITY
export ATOCORE_BACKUP_IDENTITY_FILE="$work/identity.txt"

status=0
drill=""
# A job cancelled (SIGTERM) stops the drill first: the work folder is removed only once it has ended.
trap '[ -z "$drill" ] || kill -TERM "$drill" 2>/dev/null || true' TERM INT
"$bin" drill --from-remote --latest ${source_args[@]+"${source_args[@]}"} --max-age "$max_age" --junit "$junit" \
  --scratch-dir "$work" &
drill=$!
wait "$drill" || status=$?
while kill -0 "$drill" 2>/dev/null; do # a signal ended the wait, not the drill: wait for the drill's own status
  status=0
  wait "$drill" || status=$?
done
if [ -f "$junit" ]; then
  echo "drill-from-remote: exit $status, JUnit report in $junit" >&2
else
  echo "drill-from-remote: exit $status, no JUnit report (see above)" >&2
fi
exit "$status"
