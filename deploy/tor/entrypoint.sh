#!/bin/sh
# Starts tor with Buzón's onion services; with arguments, runs them instead
# (`docker compose run --rm --no-deps tor editor-key add NAME`).
set -eu
if [ "$#" -gt 0 ]; then
  exec "$@"
fi

stanzas="${BUZON_TOR_STANZAS:-/etc/tor/onion-services.torrc}"
generated="${BUZON_TOR_GENERATED:-/tmp/buzon-tor}"
: "${BUZON_ADDRESS:?set BUZON_ADDRESS to the buzon container address (deploy/compose.yaml)}"

# Fail closed. Tor publishes a service with no valid client key in
# authorized_clients/ to anyone who learns its name, so the editor portal
# (the service for port 8081) waits for its first key.
editor_dir="$(awk '$1 == "HiddenServiceDir" { dir = $2 } $1 == "HiddenServicePort" && $3 ~ /:8081$/ { print dir }' "$stanzas")"
if [ -z "$editor_dir" ]; then
  echo "buzon-tor: no onion service for the editor portal (port 8081) in $stanzas" >&2
  exit 1
fi
if ! cat "$editor_dir"/authorized_clients/*.auth 2>/dev/null | grep -Eq '^descriptor:x25519:[A-Z2-7]{52}$'; then
  echo "buzon-tor: no editor key in $editor_dir/authorized_clients, so the editor portal would be open to anyone." >&2
  echo "buzon-tor: add one first: docker compose run --rm --no-deps tor editor-key add NAME" >&2
  exit 1
fi

# The stanzas say 127.0.0.1, where Buzón listens on bare metal; here Buzón is
# another container on the internal network.
mkdir -p "$generated"
sed -E "s/^(HiddenServicePort[[:space:]]+[0-9]+[[:space:]]+)127\.0\.0\.1:/\1${BUZON_ADDRESS}:/" \
  "$stanzas" > "$generated/onion-services.torrc"
exec tor -f /etc/tor/torrc
