#!/usr/bin/env bash
# Sale-day benchmark: one command on a fresh machine.
#   bench/saleday.sh                       # 3,000 buyers in 30 s, one instance, then three
#   BUYERS=6000 WINDOW=30 bench/saleday.sh
#   CONNECT=direct bench/saleday.sh        # the same rush, each buyer paying an organiser
#                                          # (Stripe Connect: destination or direct charges)
# A Stripe stand-in that enforces Stripe's limits (nginx: the fixed answers of bench/run.sh
# behind limit_req, 25 requests/s per endpoint and 100/s per account, then 429), and a rush of
# buyers (bench/saleday.py, asyncio) doing what a front end does: create with an
# Idempotency-Key (again after Retry-After on a 503), the webhooks Stripe would send, signed, 3
# polls of get and a confirm. Run on one instance (SQLite) and on three (PostgreSQL, a database
# of the bench's own), then webhook ingest on the three behind an nginx round-robin (wrk).
# Installs nginx-light and wrk from Debian's packages when missing. Results:
# bench/results/<time>/ (summary.md, one JSON per scenario, the stand-in's access logs).
# With CONNECT set, each instance runs with CONNECT_CHARGE_TYPE=$CONNECT and a 5% platform fee,
# an organiser is onboarded first (its account from the stand-in, its account.updated signed
# and delivered), the stand-in's log starts after that, and every buyer's create names the
# organiser: what it shows is that a purchase still costs Stripe one call. Webhook ingest,
# which Connect does not change, is left out then.
#   SYNC=1 bench/saleday.sh                # the same rush with the settlement round running
# With SYNC=1, each instance runs with SETTLEMENT_INTERVAL_SECS=1 and the stand-in answers
# GET /v1/balance_transactions with a page of 100 balance transactions and has_more: true, the
# same page every time, so the round keeps paging through the whole rush (the worst case: it
# always wants a call; its share is a fifth of the budget, behind buyers' calls). The summary
# adds the listings the stand-in logged between the first and the last buyer's call, per
# instance. Results: bench/results/saleday-sync-<time>/; webhook ingest is left out then.
set -euo pipefail
cd "$(dirname "$0")/.."

BUYERS=${BUYERS:-3000}
WINDOW=${WINDOW:-30}
POOL=${POOL:-1000}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
PG_DB=${PG_DB:-tmt_saleday_bench}
CONNECT=${CONNECT:-}
SYNC=${SYNC:-}
[ "$SYNC" = 1 ] || SYNC=
export SYNC
SETTLEMENT_INTERVAL=${SYNC:+1}
WEBHOOK_RUNS=${WEBHOOK_RUNS:-3}
WEBHOOK_DURATION=${WEBHOOK_DURATION:-10}
WEBHOOK_CONNECTIONS=${WEBHOOK_CONNECTIONS:-120}
LOG_LEVEL=${LOG_LEVEL:-warn}
SECRET=whsec_saleday_bench

need() {
  command -v "$1" >/dev/null && return
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need nginx nginx-light
need wrk wrk
need psql postgresql-client

cargo build --release --quiet
BIN=target/release/tmt-payments
OUT=bench/results/saleday${SYNC:+-sync}${CONNECT:+-connect-$CONNECT}-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
WORK=$(mktemp -d)
py() { python3 bench/saleday.py "$@"; }
tools() { python3 bench/tools.py "$@"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_url() { python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path="/" + sys.argv[2]).geturl())' "$PG_ADMIN" "$1"; }

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "nginx: $(nginx -v 2>&1)"
  echo "postgres: $(psql "$PG_ADMIN" -Atc 'SHOW server_version' 2>&1)"
  echo "rush: $BUYERS buyers arriving evenly over ${WINDOW}s, $POOL keep-alive connections per instance"
  echo "stand-in: nginx limit_req 25 r/s per endpoint (burst 2) and 100 r/s per account (burst 5), nodelay, 429 beyond"
  echo "service: RUST_LOG=$LOG_LEVEL; service, stand-in, PostgreSQL and load generator share the machine"
  [ -n "$CONNECT" ] && echo "connect: CONNECT_CHARGE_TYPE=$CONNECT, PLATFORM_FEE_PERCENT=5, one organiser"
  [ -n "$SYNC" ] && echo "settlement: SETTLEMENT_INTERVAL_SECS=1, the stand-in's balance-transaction list always has_more"
  true
} | tee "$OUT/machine.txt"

PIDS=()
NGINX_CONF=
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$NGINX_CONF" ] && nginx -c "$NGINX_CONF" -p "$WORK" -s quit 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

export SERVICE_LOG="$OUT/service.log"
start_instance() { # db_url standin_port max_rps -> "pid port"
  local port
  port=$(free_port)
  read -r pid _ < <(
    STRIPE_SECRET_KEY=sk_test_saleday STRIPE_WEBHOOK_SECRET=$SECRET \
    STRIPE_API_BASE="http://127.0.0.1:$2" DATABASE_URL="$1" STRIPE_MAX_RPS="$3" \
    BIND=127.0.0.1 PORT=$port RUST_LOG=$LOG_LEVEL RECONCILE_INTERVAL_SECS=0 SETTLEMENT_INTERVAL_SECS=${SETTLEMENT_INTERVAL:-0} \
    CONNECT_CHARGE_TYPE="$CONNECT" PLATFORM_FEE_PERCENT=5 \
    tools start "$port" "$BIN")
  echo "$pid $port"
}
stop_all() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  PIDS=()
  nginx -c "$NGINX_CONF" -p "$WORK" -s quit 2>/dev/null || true
  while [ -e "$WORK/nginx.pid" ]; do sleep 0.05; done
}
fresh_pg() {
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
  psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB" >/dev/null
}

scenario() { # label instances max_rps backend
  local label=$1 n=$2 rps=$3 backend=$4 standin_ports=() service_ports=() i db
  for i in $(seq "$n"); do standin_ports+=("$(free_port)"); done
  NGINX_CONF="$WORK/nginx.conf"
  rm -f "$WORK/stripe-access.log"
  py nginx-conf "$WORK" "$(IFS=,; echo "${standin_ports[*]}")"
  nginx -c "$NGINX_CONF" -p "$WORK"
  if [ "$backend" = postgres ]; then fresh_pg; db=$(pg_url "$PG_DB"); fi
  for i in $(seq "$n"); do
    [ "$backend" = sqlite ] && { rm -f "$WORK"/ledger.db*; db="sqlite://$WORK/ledger.db"; }
    read -r pid port < <(start_instance "$db" "${standin_ports[$((i - 1))]}" "$rps")
    PIDS+=("$pid"); service_ports+=("$port")
  done
  if [ -n "$CONNECT" ]; then
    # The organiser, before the rush; the stand-in's count starts after it.
    py onboard "${service_ports[0]}" "$SECRET"
    : > "$WORK/stripe-access.log"
  fi
  echo "== $label: $BUYERS buyers over ${WINDOW}s, STRIPE_MAX_RPS=$rps per instance"
  py rush "$(IFS=,; echo "${service_ports[*]}")" "$BUYERS" "$WINDOW" "$SECRET" "$OUT/rush-$label.json" "$POOL" "$CONNECT"
  local rss=()
  for pid in "${PIDS[@]}"; do rss+=("$(tools rss "$pid" VmHWM)"); done
  stop_all
  cp "$WORK/stripe-access.log" "$OUT/stripe-access-$label.log"
  py analyse "$WORK/stripe-access.log" "$OUT/rush-$label.json" "$(IFS=,; echo "${standin_ports[*]}")" \
    "$rps" "$(IFS=,; echo "${rss[*]}")" "$label" "$OUT/saleday-$label.json"
}

suffix=${CONNECT:+-connect-$CONNECT}
scenario "1-instance-sqlite$suffix" 1 25 sqlite
# Stripe's limit is per account: three instances share it, 8/s each.
scenario "3-instances-postgres$suffix" 3 8 postgres

if [ -n "$CONNECT" ] || [ -n "$SYNC" ]; then
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
  echo
  py summarise "$OUT"
  echo
  echo "raw numbers and summary: $OUT"
  exit 0
fi

# Webhook ingest: three instances on PostgreSQL behind an nginx round-robin.
echo "== webhook ingest: 3 instances on PostgreSQL behind nginx, wrk -c$WEBHOOK_CONNECTIONS"
runs=()
for run in $(seq "$WEBHOOK_RUNS"); do
  fresh_pg
  db=$(pg_url "$PG_DB")
  standin=$(free_port)
  service_ports=()
  for i in 1 2 3; do
    read -r pid port < <(start_instance "$db" "$standin" 25)
    PIDS+=("$pid"); service_ports+=("$port")
  done
  balancer=$(free_port)
  py nginx-conf "$WORK" "$standin" "$balancer" "$(IFS=,; echo "${service_ports[*]}")"
  nginx -c "$NGINX_CONF" -p "$WORK"
  tools events "$WORK/events" $((40000 * WEBHOOK_DURATION)) "$SECRET" 2
  EVENTS="$WORK/events" wrk -t2 -c"$WEBHOOK_CONNECTIONS" -d"${WEBHOOK_DURATION}s" --latency \
    -s bench/webhook.lua "http://127.0.0.1:$balancer/stripe_webhook" > "$OUT/webhooks-$run.txt"
  stop_all
  recorded=$(psql "$db" -Atc "SELECT COUNT(*) FROM webhook_events")
  runs+=("$run:$recorded")
  echo "webhooks run $run: $(grep Requests/sec "$OUT/webhooks-$run.txt"), recorded $recorded"
done
python3 - "$OUT" "$WEBHOOK_DURATION" "$WEBHOOK_CONNECTIONS" "${runs[@]}" <<'EOF'
import json, sys
sys.path.insert(0, "bench")
from tools import parse_wrk
out, duration, connections, runs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
result = {"connections": connections, "duration_s": duration, "runs": []}
for item in runs:
    run, recorded = item.split(":")
    with open(f"{out}/webhooks-{run}.txt") as f:
        w = parse_wrk(f.read())
    w.update(recorded=int(recorded), acked=w["requests"] - w["non_2xx"],
             recorded_per_s=int(recorded) / duration)
    result["runs"].append(w)
with open(f"{out}/webhooks.json", "w") as f:
    json.dump(result, f, indent=1)
EOF
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null

echo
py summarise "$OUT"
echo
echo "raw numbers and summary: $OUT"
