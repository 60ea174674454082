#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, without a system service.
#
#   server.sh ensure [WATCH_PID]  start it unless it runs; print its URL. With WATCH_PID, it
#                                 stops by itself once that process (the test run) has ended.
#   server.sh stop                stop it.
#   server.sh crash               stop it as a crash would (`pg_ctl stop -m immediate`);
#                                 the next `ensure` restarts it on the same port.
#
# It lives in target/postgres/ (data, socket, log, port), listens on a free loopback port
# and trusts local connections. With openssl at hand it also offers TLS: a throwaway CA
# (`ca.crt`, the root a client must trust) signs a certificate for 127.0.0.1. Debian's `postgresql` package is installed when missing
# (needs root); initdb refuses root, so as root the server runs as the `postgres` user.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${VELLUM_PG_DIR:-$root/target/postgres}"
mkdir -p "$dir"

bindir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ] && command -v pg_ctl >/dev/null 2>&1; then
    found=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
  fi
  echo "$found"
}

install_server() {
  if [ -n "$(bindir)" ]; then return; fi
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not installed and this user cannot install it: run" \
      "\`sudo apt-get install postgresql\` (Debian's package) and try again" >&2
    exit 1
  fi
  echo "installing Debian's postgresql package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
}

# Runs a command as the data directory's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  [ -f "$dir/port" ] && [ -n "$(bindir)" ] &&
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

start() {
  install_server
  local bin
  bin=$(bindir)
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    mkdir -p "$dir/data"
    if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 9>&- || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
  fi
  # TLS, when openssl is there: a throwaway CA (`ca.crt`, what clients trust) signs the
  # server's certificate for 127.0.0.1.
  local ssl="-c ssl=off"
  if command -v openssl >/dev/null 2>&1; then
    if [ ! -f "$dir/data/server.crt" ]; then
      (
        cd "$dir"
        openssl req -x509 -new -nodes -days 3650 -subj "/CN=vellum test CA" \
          -keyout ca.key -out ca.crt
        openssl req -new -nodes -subj /CN=127.0.0.1 -keyout data/server.key -out server.csr
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
          -days 3650 -extfile server.ext -out data/server.crt
      ) >/dev/null 2>&1 9>&-
      chmod 600 "$dir/data/server.key"
      if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/data/server.key" "$dir/data/server.crt"; fi
    fi
    ssl="-c ssl=on"
  fi
  # The server (as the data directory's owner) writes its own log.
  touch "$dir/server.log"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir" "$dir/server.log"; fi
  local port
  if [ -f "$dir/port" ]; then
    port=$(cat "$dir/port")
  else
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=on $ssl" \
    start </dev/null >/dev/null 2>"$dir/pg_ctl.log" 9>&- || {
    cat "$dir/pg_ctl.log" >&2
    tail -n 20 "$dir/server.log" >&2
    exit 1
  }
  echo "$port" >"$dir/port"
}

stop() {
  if running; then as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
  rm -f "$dir/port"
}

case "${1:-}" in
ensure)
  exec 9>"$dir/.lock"
  flock 9
  running || start
  if [ -n "${2:-}" ] && [ ! -f "$dir/watch.$2" ]; then
    touch "$dir/watch.$2"
    # Stops the server once the watched process (the test run) is gone and no other run
    # watches it; under the lock, so a concurrent `ensure` either sees it stopped (and
    # starts it) or registers first (and keeps it running).
    (
      while kill -0 "$2" 2>/dev/null; do sleep 1; done
      exec 9>"$dir/.lock"
      flock 9
      rm -f "$dir/watch.$2"
      if [ -z "$(ls "$dir" | grep '^watch\.' || true)" ]; then stop; fi
    ) </dev/null >/dev/null 2>&1 9>&- &
  fi
  echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")"
  ;;
stop)
  exec 9>"$dir/.lock"
  flock 9
  stop
  ;;
crash)
  as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
  ;;
*)
  sed -n '2,12p' "$0" >&2
  exit 2
  ;;
esac
