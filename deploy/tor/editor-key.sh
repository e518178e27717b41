#!/bin/sh
# The editor portal's client-authorisation keys: only Tor clients holding one
# of these private keys can even reach the portal.
#
#   editor-key add NAME     make a key pair, keep the public half, print the private half once
#   editor-key remove NAME  forget NAME's key (then restart tor)
#   editor-key list
set -eu
stanzas="${BUZON_TOR_STANZAS:-/etc/tor/onion-services.torrc}"
editor_dir="$(awk '$1 == "HiddenServiceDir" { dir = $2 } $1 == "HiddenServicePort" && $3 ~ /:8081$/ { print dir }' "$stanzas")"
clients="$editor_dir/authorized_clients"

fail() { echo "editor-key: $*" >&2; exit 1; }
valid_name() { printf '%s' "$1" | grep -Eq '^[A-Za-z0-9_-]{1,64}$' || fail "NAME must be 1-64 letters, digits, - or _"; }
raw_key() { tail -c 32 | base32 | tr -d '=\n'; }

case "${1:-}" in
  add)
    [ "$#" -eq 2 ] || fail "usage: editor-key add NAME"
    valid_name "$2"
    [ ! -e "$clients/$2.auth" ] || fail "$2 already has a key; remove it first"
    umask 077
    mkdir -p "$clients"
    # The private key lives only in this variable and on the terminal.
    pem="$(openssl genpkey -algorithm x25519)"
    private="$(printf '%s\n' "$pem" | openssl pkey -outform DER | raw_key)"
    public="$(printf '%s\n' "$pem" | openssl pkey -pubout -outform DER | raw_key)"
    printf 'descriptor:x25519:%s\n' "$public" > "$clients/$2.auth"
    echo "Added an editor key for $2. Restart tor to use it: docker compose restart tor"
    echo "Give $2 this private key over a channel you trust. Tor Browser asks for it"
    echo "the first time it opens the editor portal's address; tick \"Remember this key\"."
    echo "Private key: $private"
    ;;
  remove)
    [ "$#" -eq 2 ] || fail "usage: editor-key remove NAME"
    valid_name "$2"
    rm "$clients/$2.auth" 2>/dev/null || fail "$2 has no key"
    echo "Removed $2's key. Restart tor: docker compose restart tor"
    ;;
  list)
    for f in "$clients"/*.auth; do
      if [ -e "$f" ]; then basename "$f" .auth; fi
    done
    ;;
  *)
    fail "usage: editor-key add NAME | remove NAME | list"
    ;;
esac
