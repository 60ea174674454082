#!/usr/bin/env bash
# Runs the outside tlog-tiles client (tlog_client.go) with Debian's Go and its packaged
# golang.org/x/mod, installing both when missing (needs root, as the PostgreSQL script).
# No module download: GOPATH mode over /usr/share/gocode.
#
#   run.sh <base URL or directory> <verifier key> <index> [bearer token]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
gocode=/usr/share/gocode
if ! command -v go >/dev/null 2>&1 || [ ! -d "$gocode/src/golang.org/x/mod/sumdb/tlog" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Go and golang.org/x/mod are not installed and this user cannot install them: run" \
      "\`sudo apt-get install golang-go golang-golang-x-mod-dev\` (Debian's packages)" >&2
    exit 2
  fi
  echo "installing Debian's golang-go and golang-golang-x-mod-dev" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Two test threads may get here at once; apt takes its own lock, so wait for it.
  flock "$root/target/.apt-go.lock" sh -c '
    command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ] ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends golang-go golang-golang-x-mod-dev; }' >&2
fi
export GO111MODULE=off GOPATH="$gocode" GOFLAGS= GOCACHE="$root/target/go-cache" GOTOOLCHAIN=local
mkdir -p "$GOCACHE"
bin="$root/target/tlog_client"
if [ ! -x "$bin" ] || [ "$here/tlog_client.go" -nt "$bin" ]; then
  go build -o "$bin.tmp.$$" "$here/tlog_client.go"
  mv "$bin.tmp.$$" "$bin"
fi
exec "$bin" "$@"
