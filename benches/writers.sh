#!/usr/bin/env bash
# Events/s into one ledger from 1 and from 4 `vellum ingest` processes at once, on SQLite
# and on PostgreSQL (the throwaway server of tests/postgres/server.sh, fsync on). Each
# process sends EVENTS events (default 20,000) in batches of BATCH (default 64), durable
# receipts for all; no plugins, so the figure is the sink and the ledger. PostgreSQL over
# plain TCP on loopback (sslmode=disable).
#
#   bash benches/writers.sh            # release build, then both backends
set -euo pipefail
cd "$(dirname "$0")/.."
events=${EVENTS:-20000}
batch=${BATCH:-64}

cargo build --release -q -p vellum-cli
vellum="$PWD/target/release/vellum"
server=$(bash tests/postgres/server.sh ensure $$)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for w in 0 1 2 3; do
  python3 -c "
import json, sys
for i in range($events):
    print(json.dumps({'id': f'w$w-{i}', 'occurred_at': '2026-12-03T10:00:00Z', 'tenant': 'acme',
        'kind': 'llm.call', 'actor': 'agent:planner', 'correlation_id': f'run-{i % 97}',
        'payload': {'model': 'gpt-x', 'usage': {'prompt_tokens': i, 'completion_tokens': 17},
                    'prompt': 'summarise the ticket and propose the next tool call'}}))
" >"$work/in$w.jsonl"
done

run() { # backend processes
  local backend=$1 procs=$2 ledger args=()
  case $backend in
  sqlite) ledger="$work/$backend-$procs.db" ;;
  postgres)
    local db="bench_${procs}_$$"
    PGOPTIONS="-c client_min_messages=warning" psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    ledger="$server/$db?sslmode=disable"
    args=(--signing-key "$work/$db.key")
    ;;
  esac
  "$vellum" init --ledger "$ledger" "${args[@]}" >/dev/null 2>&1
  local start end
  start=$(date +%s.%N)
  for ((w = 0; w < procs; w++)); do
    "$vellum" ingest --ledger "$ledger" "${args[@]}" --batch-size "$batch" \
      --input "$work/in$w.jsonl" >"$work/out$w" &
  done
  wait
  end=$(date +%s.%N)
  "$vellum" verify --ledger "$ledger" "${args[@]}" 2>/dev/null
  python3 -c "
n = $procs * $events; s = $end - $start
print(f'$backend  {$procs} process(es)  {n:>7} events  {s:6.2f} s  {n / s:>9,.0f} events/s')"
}

echo "$(date -u +%F) $(nproc) cores; $events events per process, batches of $batch"
for backend in sqlite postgres; do
  for procs in 1 4; do run "$backend" "$procs"; done
done
