"""Sale-day benchmark helpers for bench/saleday.sh: a rate-limited Stripe stand-in (nginx
config), the rush of buyers (asyncio, standard library only), and the analysis of the
stand-in's access log. Standard library only, so that it runs on a fresh machine."""
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools import fixture, free_port, nginx_literal, stripe_signature  # noqa: E402


# ---------------------------------------------------------------- the stand-in
def balance_page():
    """SYNC=1: one page of the account's balance transactions (Stripe's list object, 100
    transactions, each a charge's with its `source` expanded, as the settlement round asks) with
    `has_more: true`, the same page every time: the round never reaches the end, so it wants a
    call for as long as it runs (the worst case for buyers)."""
    txns = []
    for n in range(100):
        charge = fixture("charge")
        charge.update(id=f"ch_3SyncBench{n:03d}", payment_intent=f"pi_3SyncBench{n:03d}",
                      amount=2550, currency="eur", balance_transaction=f"txn_3SyncBench{n:03d}")
        txns.append({
            "id": f"txn_3SyncBench{n:03d}", "object": "balance_transaction", "amount": 2550,
            "available_on": 1700172800, "created": 1700000000 - n, "currency": "eur",
            "description": "Compra de tickets", "exchange_rate": None, "fee": 104,
            "fee_details": [{"amount": 104, "application": None, "currency": "eur",
                             "description": "Stripe processing fees", "type": "stripe_fee"}],
            "net": 2446, "reporting_category": "charge", "source": charge, "status": "pending",
            "type": "charge"})
    return {"object": "list", "data": txns, "has_more": True, "url": "/v1/balance_transactions"}


def nginx_conf(out_dir, ports, balancer_port=None, upstreams=(), sync=False):
    """Stripe's fixed answers (as bench/run.sh serves them) behind Stripe's limits: 25
    requests/s per endpoint and 100/s per account, then 429 with Stripe's error body. Each
    service instance talks to its own port, so the access log tells instances apart; the
    limits are shared by all ports, as Stripe's are per account. Create answers a distinct
    PaymentIntent id per request ($request_id), retrieve a succeeded PaymentIntent of the id
    asked for, the charges list one charge of the PaymentIntent asked for."""
    back_port = free_port()
    pi = fixture("payment_intent")
    pi.update(amount=2550, currency="eur", created=1700000000,
              metadata={"platform": "TMT"}, description="Compra de tickets")
    created = dict(pi, id="@ID@", client_secret="@ID@_secret_bench", status="requires_payment_method")
    succeeded = dict(pi, id="@ID@", client_secret="@ID@_secret_bench", status="succeeded",
                     payment_method="pm_1Bench", latest_charge="ch_@ID@")
    charge = fixture("charge")
    charge.update(id="ch_@ID@", payment_intent="@ID@", amount=2550, currency="eur")
    charges = {"object": "list", "data": [charge], "has_more": False, "url": "/v1/charges"}
    # Stripe Connect (CONNECT=destination|direct): the organiser's account, before its
    # onboarding is finished (the bench then sends the account.updated that finishes it), and
    # its onboarding link.
    account = {"id": BENCH_ACCOUNT, "object": "account", "type": "express", "country": "MX",
               "charges_enabled": False, "payouts_enabled": False, "details_submitted": False,
               "requirements": {"currently_due": ["external_account"],
                                "disabled_reason": "requirements.past_due"},
               "metadata": {"organizer_id": BENCH_ORGANIZER, "platform": "TMT"}}
    link = {"object": "account_link", "created": 1700000000, "expires_at": 4102444800,
            "url": "https://connect.stripe.com/setup/e/acct_1Bench/bench"}
    too_many = {"error": {"type": "invalid_request_error", "code": "rate_limit",
                          "message": "Too many requests hit the API too quickly."}}

    create_body = nginx_literal(created, "pi_${request_id}")
    retrieve_body = nginx_literal(succeeded, "${pi}")
    charges_body = nginx_literal(charges, "${arg_payment_intent}")
    balance = ""
    if sync:
        # Too long for an nginx string (4 KiB): served from a file.
        page = os.path.join(out_dir, "balance_transactions.json")
        with open(page, "w") as f:
            json.dump(balance_page(), f, separators=(",", ":"))
        # nginx's workers read it as their own user: the directory (mktemp's, 0700) must let them.
        os.chmod(page, 0o644)
        os.chmod(out_dir, os.stat(out_dir).st_mode | 0o011)
        balance = f"""
        location = /v1/balance_transactions {{ alias {page}; }}"""
    # `return` runs before limit_req would, so the limits sit in front servers (one port per
    # service instance) that pass what they let through to the server of fixed answers.
    back = f"""
    server {{
        listen 127.0.0.1:{back_port};
        access_log off;
        default_type application/json;
        location = /v1/payment_intents {{ return 200 {create_body}; }}
        location ~ ^/v1/payment_intents/(?<pi>pi_[A-Za-z0-9]+)$ {{ return 200 {retrieve_body}; }}
        location = /v1/charges {{ return 200 {charges_body}; }}
        location = /v1/accounts {{ return 200 {nginx_literal(account)}; }}
        location = /v1/account_links {{ return 200 {nginx_literal(link)}; }}{balance}
    }}"""
    servers = back + "\n".join(f"""
    server {{
        listen 127.0.0.1:{port};
        access_log {out_dir}/stripe-access.log stripe;
        default_type application/json;
        add_header Request-Id req_$request_id always;
        limit_req zone=account burst=5 nodelay;
        limit_req zone=endpoint burst=2 nodelay;
        error_page 429 = @too_many;
        location / {{
            proxy_pass http://stand_in;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location @too_many {{ return 429 {nginx_literal(too_many)}; }}
    }}""" for port in ports)
    balancer = ""
    if balancer_port:
        members = "\n".join(f"        server 127.0.0.1:{p};" for p in upstreams)
        balancer = f"""
    upstream service {{
{members}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{balancer_port};
        location / {{
            proxy_pass http://service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"""
    conf = f"""
worker_processes 1;
pid {out_dir}/nginx.pid;
error_log {out_dir}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    log_format stripe '$msec $server_port $request_method $uri $status $http_idempotency_key';
    access_log off;
    upstream stand_in {{
        server 127.0.0.1:{back_port};
        keepalive 64;
    }}
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    limit_req_status 429;
    limit_req_log_level info;
    map $request_method$uri $endpoint {{
        "POST/v1/payment_intents" create;
        ~^GET/v1/payment_intents/ retrieve;
        default $request_method$uri;
    }}
    map $uri $account {{ default acct_bench; }}
    limit_req_zone $endpoint zone=endpoint:1m rate=25r/s;
    limit_req_zone $account zone=account:1m rate=100r/s;
{servers}
{balancer}
}}
"""
    with open(os.path.join(out_dir, "nginx.conf"), "w") as f:
        f.write(conf)


# ---------------------------------------------------------------- a minimal HTTP/1.1 client
class Conn:
    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def request(self, path, body, headers=()):
        for attempt in (0, 1):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
                        f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers]
                self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionError("closed")
                status = int(status_line.split()[1])
                length, hdrs = 0, {}
                while True:
                    line = await self.reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    k, _, v = line.decode().partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                length = int(hdrs.get("content-length", "0"))
                data = await self.reader.readexactly(length) if length else b""
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                return status, hdrs, data
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """Keep-alive connections to one instance, shared by the buyers."""

    def __init__(self, port, size):
        self.free = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(Conn(port))

    async def post(self, path, payload, headers=()):
        conn = await self.free.get()
        try:
            return await conn.request(path, payload, headers)
        finally:
            self.free.put_nowait(conn)


BENCH_ACCOUNT = "acct_1BenchOrganizer"
BENCH_ORGANIZER = "org_bench"


def signed(event, secret):
    body = json.dumps(event, separators=(",", ":")).encode()
    return body, (("Stripe-Signature", stripe_signature(secret, int(time.time()), body)),)


def events_for(pi_id, n, connect=""):
    """What Stripe sends for a card payment: the PaymentIntent's creation, its success and the
    charge's success (the browser's confirmation goes to Stripe, not through the service). A
    direct charge's events are its connected account's."""
    now = int(time.time())
    pi = fixture("payment_intent")
    pi.update(id=pi_id, client_secret=f"{pi_id}_secret_bench", amount=2550, currency="eur",
              created=1700000000, metadata={"platform": "TMT"}, description="Compra de tickets")
    charge = fixture("charge")
    charge.update(id=f"ch_{pi_id}", payment_intent=pi_id, amount=2550, currency="eur")
    out = []
    for kind, obj in (("payment_intent.created", dict(pi, status="requires_payment_method")),
                      ("payment_intent.succeeded", dict(pi, status="succeeded", payment_method="pm_1Bench",
                                                        latest_charge=f"ch_{pi_id}")),
                      ("charge.succeeded", charge)):
        event = {"id": f"evt_{n}_{kind}", "object": "event", "type": kind, "created": now,
                 "livemode": False, "pending_webhooks": 1, "api_version": "2025-03-31.basil",
                 "data": {"object": obj}}
        if connect == "direct":
            event["account"] = BENCH_ACCOUNT
        out.append(event)
    return out


async def onboard(port, secret):
    """The platform onboards the bench's organiser (its account and link from the stand-in),
    and Stripe says its onboarding is finished (account.updated, signed): the rush then sells
    for an organiser that can take payments."""
    conn = Conn(port)
    body = json.dumps({"data": {"organizerId": BENCH_ORGANIZER,
                                "returnUrl": "https://tickets.example/done",
                                "refreshUrl": "https://tickets.example/again"}}).encode()
    status, _, data = await conn.request("/stripe_onboard_organizer", body)
    assert status == 200, data
    account = {"id": BENCH_ACCOUNT, "object": "account", "charges_enabled": True,
               "payouts_enabled": True, "details_submitted": True,
               "requirements": {"currently_due": [], "disabled_reason": None}}
    event = {"id": "evt_bench_account_ready", "object": "event", "type": "account.updated",
             "created": int(time.time()) + 1, "account": BENCH_ACCOUNT, "data": {"object": account}}
    payload, headers = signed(event, secret)
    status, _, data = await conn.request("/stripe_webhook", payload, headers)
    assert status == 200, data
    read = json.dumps({"data": {"organizerId": BENCH_ORGANIZER}}).encode()
    status, _, data = await conn.request("/stripe_get_organizer", read)
    assert status == 200 and json.loads(data)["data"]["chargesEnabled"], data
    conn.close()


async def rush(ports, buyers, window_s, secret, out_path, pool_size, connect=""):
    pools = [Pool(p, pool_size) for p in ports]
    results = []
    started = time.monotonic()

    async def buyer(n):
        await asyncio.sleep(n * window_s / buyers)
        arrived = time.monotonic()
        r = {"n": n, "arrived": arrived - started, "busy": 0, "server_errors": 0, "other": {}}
        pool = pools[n % len(pools)]
        key = uuid.uuid4().hex
        data = {"amount": "25.50", "currency": "eur", "metadata": {"order": f"SD-{n}"}}
        if connect:
            data.update(organizerId=BENCH_ORGANIZER, tickets=2)
        body = json.dumps({"data": data}).encode()
        while True:
            status, hdrs, data = await pool.post("/stripe_create_payment_intent", body,
                                                 (("Idempotency-Key", key),))
            if status == 200:
                created = json.loads(data)["data"]
                pi_id = created["paymentIntentId"]
                # With Connect, the service answers who the payment is for and its fee.
                r["organizer"] = created.get("organizerId")
                r["application_fee"] = created.get("applicationFee")
                break
            if status == 503 and json.loads(data).get("code") == "stripe_busy":
                r["busy"] += 1
                await asyncio.sleep(int(hdrs.get("retry-after", "1")))
                continue
            if status >= 500:
                r["server_errors"] += 1
            r["other"][str(status)] = r["other"].get(str(status), 0) + 1
            await asyncio.sleep(1)
        r["time_to_pi"] = time.monotonic() - arrived
        r["pi"] = pi_id
        for event in events_for(pi_id, n, connect):
            payload, headers = signed(event, secret)
            status, _, data = await random.choice(pools).post("/stripe_webhook", payload, headers)
            r.setdefault("webhook_status", []).append(status)
            if status >= 500:
                r["server_errors"] += 1
        read = json.dumps({"data": {"payment_intent_id": pi_id}}).encode()
        polls = []
        for _ in range(3):
            status, _, data = await random.choice(pools).post("/stripe_get_payment_intent", read)
            polls.append(status)
            if status >= 500:
                r["server_errors"] += 1
        r["polls"] = polls
        status, _, data = await random.choice(pools).post("/stripe_confirm_payment", read)
        r["confirm"] = status
        if status >= 500:
            r["server_errors"] += 1
        r["done"] = time.monotonic() - started
        results.append(r)

    await asyncio.gather(*(buyer(n) for n in range(buyers)))
    with open(out_path, "w") as f:
        json.dump({"buyers": buyers, "window_s": window_s, "wall_s": time.monotonic() - started,
                   "results": results}, f)


# ---------------------------------------------------------------- analysis
def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def analyse(access_log, rush_json, ports, max_rps, rss, label, out_json):
    lines = []
    with open(access_log) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5:
                continue
            t, port, method, uri, status = float(parts[0]), int(parts[1]), parts[2], parts[3], int(parts[4])
            key = parts[5] if len(parts) > 5 and parts[5] != "-" else ""
            lines.append((t, port, method, uri, status, key))
    lines.sort()
    ours = [l for l in lines if l[1] in ports]
    # The busiest one-second window (half-open, starting at each arrival) per instance.
    busiest = {}
    for port in ports:
        times = [l[0] for l in ours if l[1] == port]
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] < t:
                j += 1
            k = i
            while k < len(times) and times[k] < t + 1.0:
                k += 1
            best = max(best, k - i)
        busiest[port] = best
    # Every 429 must be followed by the same request again (same instance, method, path and,
    # for a create, Idempotency-Key): by the service's retry, or by the buyer's.
    unanswered = 0
    rate_limited = [i for i, l in enumerate(ours) if l[4] == 429]
    for i in rate_limited:
        _, port, method, uri, _, key = ours[i]
        if not any(l[2] == method and l[3] == uri and l[5] == key for l in ours[i + 1:]):
            unanswered += 1
    with open(rush_json) as f:
        rush = json.load(f)
    res = rush["results"]
    served = [r for r in res if r.get("confirm") == 200 and all(p == 200 for p in r.get("polls", []))]
    with_pi = [r for r in res if r.get("pi")]
    tt = [r["time_to_pi"] for r in with_pi]
    by_endpoint = {}
    for l in ours:
        name = "create" if l[2] == "POST" and l[3] == "/v1/payment_intents" else \
            "retrieve" if l[3].startswith("/v1/payment_intents/") else l[3]
        by_endpoint[name] = by_endpoint.get(name, 0) + 1
    # The settlement round's listings (SYNC=1), apart from the buyers' calls: all of them, and
    # those between the first and the last buyer's call (during the rush).
    listing = [l for l in ours if l[2] == "GET" and l[3] == "/v1/balance_transactions"]
    buyers_calls = [l for l in ours if not (l[2] == "GET" and l[3] == "/v1/balance_transactions")]
    rush_from = buyers_calls[0][0] if buyers_calls else 0.0
    rush_to = buyers_calls[-1][0] if buyers_calls else 0.0
    during = [l for l in listing if rush_from <= l[0] <= rush_to]
    summary = {
        "label": label,
        "instances": len(ports),
        "stripe_max_rps": max_rps,
        "buyers": rush["buyers"],
        "arrival_window_s": rush["window_s"],
        "wall_s": round(rush["wall_s"], 1),
        "buyers_with_payment_intent": len(with_pi),
        "buyers_served": len(served),
        "buyers_paying_an_organiser": sum(1 for r in res if r.get("organizer") and r.get("application_fee")),
        "buyer_facing_5xx": sum(r["server_errors"] for r in res),
        "stripe_busy_503_retried": sum(r["busy"] for r in res),
        "other_non_2xx": sum(sum(r["other"].values()) for r in res),
        "stripe_calls": len(ours),
        "stripe_calls_by_endpoint": by_endpoint,
        "stripe_429s": len(rate_limited),
        "stripe_429s_unanswered": unanswered,
        "calls_per_purchase": round(len(ours) / max(1, len(served)), 3),
        "busiest_second_per_instance": {str(p): busiest[p] for p in ports},
        "time_to_pi_p50_s": round(pct(tt, 50), 2),
        "time_to_pi_p99_s": round(pct(tt, 99), 2),
        "time_to_pi_max_s": round(max(tt), 2) if tt else None,
        "peak_rss_mib": rss,
    }
    if listing:
        summary.update(
            balance_transaction_listings=len(listing),
            balance_transaction_listings_during_rush=len(during),
            balance_transaction_listings_during_rush_per_instance={
                str(p): sum(1 for l in during if l[1] == p) for p in ports},
            balance_transaction_listings_429=sum(1 for l in listing if l[4] == 429),
            rush_span_s=round(rush_to - rush_from, 1),
            buyers_stripe_calls=len(buyers_calls),
            buyers_calls_per_purchase=round(len(buyers_calls) / max(1, len(served)), 3),
        )
    with open(out_json, "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


def summarise(out_dir):
    runs = []
    for name in sorted(os.listdir(out_dir)):
        if name.startswith("saleday-") and name.endswith(".json"):
            with open(os.path.join(out_dir, name)) as f:
                runs.append(json.load(f))
    lines = ["| scenario | buyers (in s) | served | with a PaymentIntent | buyer-facing 5xx | 503 `stripe_busy` (retried) | "
             "Stripe calls / purchase | 429s sent (unanswered) | busiest second per instance (max) | "
             "time to PaymentIntent p50 / p99 | peak RSS | wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['label']} | {r['buyers']:,} ({r['arrival_window_s']:.0f}) | {r['buyers_served']:,} | "
            f"{r['buyers_with_payment_intent']:,} | {r['buyer_facing_5xx']} | {r['stripe_busy_503_retried']:,} | "
            f"{r['calls_per_purchase']:.3f} | {r['stripe_429s']} ({r['stripe_429s_unanswered']}) | "
            f"{', '.join(str(v) for v in r['busiest_second_per_instance'].values())} ({r['stripe_max_rps']}) | "
            f"{r['time_to_pi_p50_s']:.1f} s / {r['time_to_pi_p99_s']:.1f} s | "
            f"{', '.join(str(v) for v in r['peak_rss_mib'])} MiB | {r['wall_s']:.0f} s |")
    if any("balance_transaction_listings" in r for r in runs):
        lines += ["", "| scenario (settlement round, SYNC=1) | balance-transaction listings during the rush "
                  "(per instance) | 429s to listings (all) | listings in all | rush span | buyers' Stripe calls / purchase |",
                  "|---|---|---|---|---|---|"]
        for r in runs:
            if "balance_transaction_listings" not in r:
                continue
            per = r["balance_transaction_listings_during_rush_per_instance"]
            lines.append(
                f"| {r['label']} | {r['balance_transaction_listings_during_rush']:,} "
                f"({', '.join(str(v) for v in per.values())}) | {r['balance_transaction_listings_429']} | "
                f"{r['balance_transaction_listings']:,} | {r['rush_span_s']:.0f} s | "
                f"{r['buyers_calls_per_purchase']:.3f} |")
    wh = os.path.join(out_dir, "webhooks.json")
    if os.path.exists(wh):
        with open(wh) as f:
            w = json.load(f)
        lines += ["", "| webhook ingest | runs | distinct events recorded/s (median) | answered 200 | recorded | lost |",
                  "|---|---|---|---|---|---|"]
        lines.append(f"| 3 instances, PostgreSQL, nginx round-robin, wrk -c{w['connections']} | {len(w['runs'])} | "
                     f"{statistics.median(r['recorded_per_s'] for r in w['runs']):,.0f} | "
                     f"{'+'.join(str(r['acked']) for r in w['runs'])} | "
                     f"{'+'.join(str(r['recorded']) for r in w['runs'])} | "
                     f"{sum(max(0, r['acked'] - r['recorded']) for r in w['runs'])} |")
    table = "\n".join(lines)
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "nginx-conf":
        # nginx-conf DIR PORTS [BALANCER_PORT UPSTREAM_PORTS]
        nginx_conf(args[0], [int(p) for p in args[1].split(",")],
                   int(args[2]) if len(args) > 2 else None,
                   [int(p) for p in args[3].split(",")] if len(args) > 3 else (),
                   sync=os.environ.get("SYNC") == "1")
    elif cmd == "rush":
        # rush SERVICE_PORTS BUYERS WINDOW_S SECRET OUT POOL [CONNECT]
        asyncio.run(rush([int(p) for p in args[0].split(",")], int(args[1]), float(args[2]),
                         args[3], args[4], int(args[5]), args[6] if len(args) > 6 else ""))
    elif cmd == "onboard":
        # onboard SERVICE_PORT SECRET
        asyncio.run(onboard(int(args[0]), args[1]))
    elif cmd == "analyse":
        # analyse ACCESS_LOG RUSH_JSON STANDIN_PORTS MAX_RPS RSS_LIST LABEL OUT
        analyse(args[0], args[1], [int(p) for p in args[2].split(",")], int(args[3]),
                [float(x) for x in args[4].split(",")], args[5], args[6])
    elif cmd == "summarise":
        summarise(args[0])
