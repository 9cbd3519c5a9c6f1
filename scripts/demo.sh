#!/usr/bin/env bash
# The whole payment flow offline, against the embedded Stripe sandbox:
#   create -> the browser confirms (as Stripe.js would) -> the webhook lands in the ledger ->
#   stripe_confirm_payment says success -> `payments show` shows `succeeded`;
# then the same with a declined card. Needs cargo, curl and python3 (for reading JSON).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-8080}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
DB="sqlite://$WORK/demo.db"

cargo build --release --quiet
BIN=target/release/tmt-payments
env -u STRIPE_SECRET_KEY "$BIN" --database-url "$DB" serve --port "$PORT" --bind 127.0.0.1 \
  2>"$WORK/service.log" &
SERVICE=$!
trap 'kill $SERVICE 2>/dev/null; wait $SERVICE 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null -X OPTIONS "$BASE/stripe_get_payment_intent" && break; sleep 0.1; done

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
call() { curl -s "$BASE/$1" -H 'content-type: application/json' -d "$2"; }

pay() {
  local card=$1
  echo "== $card"
  local created id secret
  created=$(call stripe_create_payment_intent '{"data": {"amount": "25.50", "currency": "eur", "metadata": {"order": "DEMO-1"}}}')
  echo "create:  $created"
  id=$(echo "$created" | json '["data"]["paymentIntentId"]')
  secret=$(echo "$created" | json '["data"]["clientSecret"]')
  echo "browser: confirm $id with $card (publishable key + client secret, as Stripe.js does)"
  curl -s -o /dev/null -w '         sandbox answered HTTP %{http_code}\n' -u pk_test_demo: \
    "$BASE/sandbox/v1/payment_intents/$id/confirm" -d "payment_method=$card" -d "client_secret=$secret"
  # The sandbox's webhook reaches /stripe_webhook within moments.
  for _ in $(seq 50); do
    "$BIN" --database-url "$DB" payments show "$id" --json 2>/dev/null \
      | grep -q '"payment_intent.succeeded"\|"payment_intent.payment_failed"' && break
    sleep 0.1
  done
  echo "confirm: $(call stripe_confirm_payment "{\"data\": {\"payment_intent_id\": \"$id\"}}" | head -c 300)…"
  "$BIN" --database-url "$DB" payments show "$id"
  echo
}

pay pm_card_visa
pay pm_card_visa_chargeDeclined
