#!/usr/bin/env bash
# Statement benchmark (docs/contract.md §17): 100,000 succeeded payments of one day in the
# ledger, each with its charge's balance transaction (a tenth refunded in part, half paid out
# in 50 automatic payouts, 20 organisers by metadata), on SQLite and on PostgreSQL; then
# `tmt-payments statement` over that day: the time of the table (every payment read and added
# up), of the CSV and of the JSON, and the peak RSS of each against the same command over an
# empty day (the process's idle size). Targets: under 2 s; the CSV within 50 MiB of idle.
#   bench/statement.sh                  # PAYMENTS=100000 RUNS=3
#   PAYMENTS=20000 bench/statement.sh
# Results: bench/results/statement-<time>/summary.md. The PostgreSQL database is the bench's
# own ($PG_DB), dropped and made again.
set -euo pipefail
cd "$(dirname "$0")/.."

PAYMENTS=${PAYMENTS:-100000}
RUNS=${RUNS:-3}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
PG_DB=${PG_DB:-tmt_statement_bench}
DAY=2026-01-15
START=$(date -u -d "$DAY" +%s)

# BIN names a binary already built (the release build is skipped then).
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/tmt-payments
fi
OUT=bench/results/statement-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pg_url() { python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path="/" + sys.argv[2]).geturl())' "$PG_ADMIN" "$1"; }

# The same SQL on both backends: a recursive count, text concatenation, integer arithmetic.
fill() {
  cat <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $PAYMENTS)
INSERT INTO payments (id, amount, currency, metadata, status, created, updated_at, status_at)
SELECT 'pi_bench' || i, 1000 + (i % 90) * 100, 'usd',
       '{"organizer":"org_' || (i % 20) || '","tickets":"' || (1 + i % 4) || '"}',
       'succeeded', $START + (i % 86400), '2026-01-15T00:00:00.000Z', $START
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $PAYMENTS)
INSERT INTO balance_transactions (id, account, source, type, reporting_category, amount, fee,
    stripe_fee, application_fee, tax, net, currency, exchange_rate, available_on, created,
    payment_intent_id, payout_id, updated_at)
SELECT 'txn_bench' || i, '', 'ch_bench' || i, 'charge', 'charge', 1000 + (i % 90) * 100,
       (1000 + (i % 90) * 100) * 29 / 1000 + 30, (1000 + (i % 90) * 100) * 29 / 1000 + 30, 0, 0,
       (1000 + (i % 90) * 100) - ((1000 + (i % 90) * 100) * 29 / 1000 + 30), 'usd', NULL,
       $START + (i % 86400) + 172800, $START + (i % 86400), 'pi_bench' || i,
       CASE WHEN i % 2 = 0 THEN 'po_bench' || (i % 50) END, '2026-01-15T00:00:00.000Z'
FROM n;
WITH RECURSIVE n(i) AS (SELECT 10 UNION ALL SELECT i + 10 FROM n WHERE i + 10 <= $PAYMENTS)
INSERT INTO refunds (id, payment_intent_id, amount, currency, status, created, updated_at,
                     status_at)
SELECT 're_bench' || i, 'pi_bench' || i, 500, 'usd', 'succeeded', $START + (i % 86400) + 60,
       '2026-01-15T00:00:00.000Z', $START
FROM n;
WITH RECURSIVE n(i) AS (SELECT 10 UNION ALL SELECT i + 10 FROM n WHERE i + 10 <= $PAYMENTS)
INSERT INTO balance_transactions (id, account, source, type, reporting_category, amount, fee,
    stripe_fee, application_fee, tax, net, currency, exchange_rate, available_on, created,
    payment_intent_id, payout_id, updated_at)
SELECT 'txn_bench_re' || i, '', 're_bench' || i, 'refund', 'refund', -500, 0, 0, 0, 0, -500,
       'usd', NULL, $START + (i % 86400) + 60, $START + (i % 86400) + 60, 'pi_bench' || i, NULL,
       '2026-01-15T00:00:00.000Z'
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 49)
INSERT INTO payouts (id, account, amount, currency, arrival_date, status, automatic,
                     reconciliation_status, created, updated_at, status_at)
SELECT 'po_bench' || i, '', 0, 'usd', $START + 259200, 'paid', 1, 'completed', $START + 172800,
       '2026-01-15T00:00:00.000Z', $START + 172800
FROM n;
SQL
}

# "seconds max-rss-KiB cpu-seconds" of one run of the statement over DAY (or an empty day) as
# FORMAT. CPU time (user + system) is what the statement costs whatever else the machine runs;
# elapsed time is what it takes, on a machine that may be shared.
measure() {
  local url=$1 format=$2 day=$3
  /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" \
    env -i PATH="$PATH" DATABASE_URL="$url" "$BIN" statement --from "$day" --to "$day" \
    --format "$format" > "$WORK/out.$format"
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$WORK/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

{
  echo "# Statement over $PAYMENTS payments ($(date -u +%FT%TZ))"
  echo
  echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); load average before: $(cut -d' ' -f1-3 /proc/loadavg); medians of $RUNS runs"
  echo
  echo "| backend | format | elapsed (s) | CPU (s) | peak RSS (MiB) | idle RSS (MiB) | above idle (MiB) | lines |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$OUT/summary.md"

for backend in sqlite postgres; do
  if [ "$backend" = sqlite ]; then
    url="sqlite://$WORK/bench.db"
    env -i PATH="$PATH" DATABASE_URL="$url" "$BIN" migrate > /dev/null
    fill | sqlite3 "$WORK/bench.db"
  else
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB"
    url=$(pg_url "$PG_DB")
    env -i PATH="$PATH" DATABASE_URL="$url" "$BIN" migrate > /dev/null
    fill | psql -q "$url"
    psql -q "$url" -c "ANALYZE"
  fi
  idle=$(for _ in $(seq "$RUNS"); do measure "$url" csv 2000-01-01 | cut -d' ' -f2; done | median)
  for format in table csv json; do
    : > "$WORK/runs"
    for _ in $(seq "$RUNS"); do measure "$url" "$format" "$DAY" >> "$WORK/runs"; done
    secs=$(cut -d' ' -f1 "$WORK/runs" | median)
    rss=$(cut -d' ' -f2 "$WORK/runs" | median)
    cpu=$(cut -d' ' -f3 "$WORK/runs" | median)
    lines=$(wc -l < "$WORK/out.$format")
    awk -v b="$backend" -v f="$format" -v s="$secs" -v c="$cpu" -v r="$rss" -v i="$idle" -v l="$lines" \
      'BEGIN { printf "| %s | %s | %.2f | %.2f | %.1f | %.1f | %.1f | %d |\n", b, f, s, c, r/1024, i/1024, (r-i)/1024, l }' \
      >> "$OUT/summary.md"
  done
  if [ "$backend" = postgres ]; then psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB"; fi
done
echo >> "$OUT/summary.md"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/summary.md"
cat "$OUT/summary.md"
