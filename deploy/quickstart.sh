#!/usr/bin/env bash
# Set up and run Buzón on the embedded default (SQLite plus a ciphertext
# directory in ./buzon-data). The first run creates a demo newsroom and its
# first editor, and prints their one-time credentials.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/bootstrap.sh deploy/requirements.lock

export BUZON_DATA_DIR="${BUZON_DATA_DIR:-$PWD/buzon-data}"
if [ ! -e "$BUZON_DATA_DIR/pepper" ]; then
  init_output="$(buzon init)"
  recovery_secret="$(sed -n 's/^Recovery secret: //p' <<<"$init_output")"
  passphrase="$(buzon passphrase)"
  editor_output="$(printf '%s\n' "$passphrase" | BUZON_RECOVERY_SECRET="$recovery_secret" buzon editor add editor --admin --passphrase-stdin)"
  cat <<MSG

================ Shown once: write these down, then clear the screen ================
Recovery secret (opens every tip if all passphrases are lost): $recovery_secret
Editor username:   editor
Editor passphrase: $passphrase
$(grep -E '^TOTP (secret|URI):' <<<"$editor_output")
Add the TOTP secret to an authenticator app; log in with its 6-digit code.
=====================================================================================

MSG
fi
exec buzon serve --host "${BUZON_HOST:-127.0.0.1}" --source-port "${BUZON_SOURCE_PORT:-8080}" --editor-port "${BUZON_EDITOR_PORT:-8081}"
