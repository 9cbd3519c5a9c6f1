#!/usr/bin/env bash
# Load benchmark of tmt-payments: one command on a fresh machine.
#   bench/run.sh                      # 3 runs x 10 s per scenario at 32 connections
#   RUNS=5 DURATION=20 bench/run.sh
# Installs wrk and nginx-light from Debian's packages when missing, builds the release binary,
# serves Stripe's published fixture objects from nginx as a fixed-response Stripe, and measures
# stripe_get_payment_intent, stripe_confirm_payment, stripe_create_payment_intent and
# stripe_webhook (distinct, validly signed events, counted in the ledger afterwards), plus
# start-to-ready time, idle and peak RSS. Raw outputs and summary.md go to bench/results/<time>/.
# The Stripe call budget is off (STRIPE_MAX_RPS=0): this measures the service, not Stripe's
# rate limit, which bench/saleday.sh measures.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
LOG_LEVEL=${LOG_LEVEL:-warn}

need() {
  command -v "$1" >/dev/null && return
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need nginx nginx-light

cargo build --release --quiet
BIN=target/release/tmt-payments
OUT=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/raw"
WORK=$(mktemp -d)
tools() { python3 bench/tools.py "$@"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "wrk: $(wrk -v 2>&1 | head -n 1)"
  echo "nginx: $(nginx -v 2>&1)"
  echo "load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; service, nginx and wrk share the machine"
  echo "service: RUST_LOG=$LOG_LEVEL, SQLite ledger (WAL, synchronous=FULL) in $WORK"
} | tee "$OUT/machine.txt"

NGINX_PORT=$(free_port)
tools nginx-conf "$WORK" "$NGINX_PORT"
nginx -c "$WORK/nginx.conf" -p "$WORK"
SERVICE_PID=
cleanup() {
  [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null || true
  nginx -c "$WORK/nginx.conf" -p "$WORK" -s quit 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

export SERVICE_LOG="$OUT/service.log"
start_service() {
  rm -f "$WORK"/ledger.db*
  PORT=$(free_port)
  read -r SERVICE_PID READY_MS < <(
    STRIPE_SECRET_KEY=sk_test_bench STRIPE_WEBHOOK_SECRET=whsec_bench STRIPE_MAX_RPS=0 \
    STRIPE_API_BASE="http://127.0.0.1:$NGINX_PORT" DATABASE_URL="sqlite://$WORK/ledger.db" \
    BIND=127.0.0.1 PORT=$PORT RUST_LOG=$LOG_LEVEL tools start "$PORT" "$BIN")
  IDLE_RSS=$(tools rss "$SERVICE_PID" VmRSS)
}
stop_service() {
  kill -TERM "$SERVICE_PID"
  while kill -0 "$SERVICE_PID" 2>/dev/null; do sleep 0.05; done
  SERVICE_PID=
}

run_wrk() { # name script path body
  local name=$1 run=$2 script=$3 path=$4
  local raw="$OUT/raw/$name-$run.txt"
  BODY=${5:-} wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" \
    "http://127.0.0.1:$PORT$path" > "$raw"
  echo "$raw"
}

GET_BODY='{"data":{"payment_intent_id":"pi_3BenchPaymentIntent01"}}'
CREATE_BODY='{"data":{"amount":"25.50","currency":"eur","metadata":{"order":"B-1"}}}'
for run in $(seq "$RUNS"); do
  for scenario in stripe_get_payment_intent stripe_confirm_payment stripe_create_payment_intent; do
    start_service
    body=$GET_BODY
    [ "$scenario" = stripe_create_payment_intent ] && body=$CREATE_BODY
    raw=$(run_wrk "$scenario" "$run" bench/post.lua "/$scenario" "$body")
    peak=$(tools rss "$SERVICE_PID" VmHWM)
    stop_service
    tools record "$OUT/raw/$scenario-$run.json" "$scenario" "$raw" \
      ready_ms="$READY_MS" idle_rss_mib="$IDLE_RSS" peak_rss_mib="$peak"
    echo "$scenario run $run: $(grep Requests/sec "$raw")"
  done
  # Webhooks: distinct events signed just now, more than the run can send.
  tools events "$WORK/events" $((60000 * DURATION)) whsec_bench "$THREADS"
  start_service
  raw=$(EVENTS="$WORK/events" run_wrk stripe_webhook "$run" bench/webhook.lua /stripe_webhook)
  peak=$(tools rss "$SERVICE_PID" VmHWM)
  stop_service
  recorded=$(tools count-events "$WORK/ledger.db")
  tools record "$OUT/raw/stripe_webhook-$run.json" stripe_webhook "$raw" \
    ready_ms="$READY_MS" idle_rss_mib="$IDLE_RSS" peak_rss_mib="$peak" \
    recorded="$recorded" duration_s="$DURATION"
  echo "stripe_webhook run $run: $(grep Requests/sec "$raw"), recorded $recorded"
done

echo
tools summarise "$OUT"
echo
echo "raw numbers and summary: $OUT"
