"""Helpers for bench/run.sh: Stripe stand-in config, signed events, readiness timing, RSS,
ledger counts and the summary table. Standard library only."""
import glob
import hashlib
import hmac
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "stripe")


def fixture(name):
    with open(os.path.join(FIXTURES, name + ".json")) as f:
        return json.load(f)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_literal(obj, ident=None):
    """`obj` as a quoted nginx string of compact JSON; `@ID@` in it replaced by `ident`."""
    text = json.dumps(obj, separators=(",", ":"))
    assert "$" not in text
    text = "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text.replace("@ID@", ident) if ident else text


def stripe_signature(secret, t, body):
    """The `Stripe-Signature` header of `body` (bytes) signed with `secret` at Unix time `t`."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def nginx_conf(out_dir, port):
    """A fixed-response Stripe: create, retrieve (succeeded) and the charges list."""
    pi = fixture("payment_intent")
    pi.update(id="pi_3BenchPaymentIntent01", client_secret="pi_3BenchPaymentIntent01_secret_bench",
              amount=2550, currency="eur", created=1700000000, metadata={"platform": "TMT"})
    created = dict(pi, status="requires_payment_method")
    succeeded = dict(pi, status="succeeded", payment_method="pm_1Bench", latest_charge="ch_1Bench")
    charge = fixture("charge")
    charge.update(id="ch_1Bench", payment_intent=pi["id"], amount=2550, currency="eur")
    charges = {"object": "list", "data": [charge], "has_more": False, "url": "/v1/charges"}

    conf = f"""
worker_processes 1;
pid {out_dir}/nginx.pid;
error_log {out_dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        add_header Request-Id req_bench always;
        location = /v1/payment_intents {{ return 200 {nginx_literal(created)}; }}
        location /v1/payment_intents/ {{ return 200 {nginx_literal(succeeded)}; }}
        location = /v1/charges {{ return 200 {nginx_literal(charges)}; }}
    }}
}}
"""
    with open(os.path.join(out_dir, "nginx.conf"), "w") as f:
        f.write(conf)


def events(path, count, secret, threads):
    """Distinct payment_intent.succeeded events, signed now; one file per wrk thread."""
    now = int(time.time())
    files = [open(f"{path}.{t}", "w") for t in range(threads)]
    for i in range(count):
        body = json.dumps({
            "id": f"evt_bench_{i:08d}", "object": "event", "type": "payment_intent.succeeded",
            "created": now, "livemode": False, "pending_webhooks": 1,
            "data": {"object": {"id": f"pi_bench{i:08d}", "object": "payment_intent", "amount": 2550,
                                "currency": "eur", "status": "succeeded", "created": now,
                                "metadata": {"platform": "TMT", "order": f"B-{i}"}}},
        }, separators=(",", ":"))
        header = stripe_signature(secret, now, body.encode())
        files[i % threads].write(f"{header}\t{body}\n")
    for f in files:
        f.close()


def ready(port, timeout=10.0):
    """Seconds until GET /readyz answers 200 on 127.0.0.1:port (polled every millisecond)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.001)
    raise SystemExit("service not ready")


def start_and_time(port, *cmd):
    """Starts the service, prints its pid and the time to ready in ms."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=open(os.environ["SERVICE_LOG"], "a"))
    ready(port)
    print(proc.pid, round((time.perf_counter() - started) * 1000, 1))


def rss(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)


def count_events(db):
    import sqlite3
    with sqlite3.connect(db) as c:
        return c.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0]


def parse_wrk(text):
    def seconds(v):
        m = re.match(r"([\d.]+)(us|ms|s)", v)
        n, unit = float(m.group(1)), m.group(2)
        return n / 1000 if unit == "us" else n if unit == "ms" else n * 1000

    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "99"):
        out[f"p{pct}_ms"] = seconds(re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M).group(1))
    out["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return out


def summarise(results_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "raw", "*.json"))):
        with open(path) as f:
            r = json.load(f)
        runs.setdefault(r["scenario"], []).append(r)
    med = lambda rs, k: statistics.median(r[k] for r in rs if k in r)
    lines = ["| scenario | runs | throughput (median) | p50 | p99 | non-2xx | peak RSS | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("stripe_get_payment_intent", "stripe_confirm_payment", "stripe_create_payment_intent", "stripe_webhook"):
        rs = runs.get(name)
        if not rs:
            continue
        unit = "events/s recorded" if name == "stripe_webhook" else "req/s"
        value = med(rs, "recorded_per_s") if name == "stripe_webhook" else med(rs, "rps")
        notes = ""
        if name == "stripe_webhook":
            notes = "recorded {} / answered 200 {} (lost {})".format(
                "+".join(str(r["recorded"]) for r in rs), "+".join(str(r["acked"]) for r in rs),
                sum(max(0, r["acked"] - r["recorded"]) for r in rs))
        lines.append(f"| `{name}` | {len(rs)} | {value:,.0f} {unit} | {med(rs, 'p50_ms'):.2f} ms | "
                     f"{med(rs, 'p99_ms'):.2f} ms | {sum(r['non_2xx'] + r['socket_errors'] for r in rs)} | "
                     f"{max(r['peak_rss_mib'] for r in rs)} MiB | {notes} |")
    start = [r for rs in runs.values() for r in rs if "ready_ms" in r]
    if start:
        lines.append("")
        lines.append(f"Start to ready: median {med(start, 'ready_ms'):.1f} ms over {len(start)} starts; "
                     f"idle RSS median {med(start, 'idle_rss_mib')} MiB.")
    table = "\n".join(lines)
    with open(os.path.join(results_dir, "summary.md"), "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "nginx-conf":
        nginx_conf(args[0], int(args[1]))
    elif cmd == "events":
        events(args[0], int(args[1]), args[2], int(args[3]))
    elif cmd == "start":
        start_and_time(int(args[0]), *args[1:])
    elif cmd == "rss":
        print(rss(args[0], args[1]))
    elif cmd == "count-events":
        print(count_events(args[0]))
    elif cmd == "record":
        # record OUT SCENARIO WRK_OUTPUT_FILE KEY=VALUE...
        with open(args[2]) as f:
            r = parse_wrk(f.read())
        r["scenario"] = args[1]
        for kv in args[3:]:
            k, v = kv.split("=", 1)
            r[k] = float(v) if re.fullmatch(r"-?[\d.]+", v) else v
        if "recorded" in r:
            r["acked"] = r["requests"] - r["non_2xx"]
            r["recorded_per_s"] = r["recorded"] / r["duration_s"]
        with open(args[0], "w") as f:
            json.dump(r, f, indent=1)
    elif cmd == "summarise":
        summarise(args[0])
