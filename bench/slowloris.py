#!/usr/bin/env python3
"""Slow, idle and stalled clients against a tmt-payments binary (docs/contract.md §13). Standard library only.

    bench/slowloris.py bodies   [--bin B] [--clients 1000] [--watch 25]
        N clients each send a webhook head with Content-Length 1 MiB and 900 KiB of body, then
        stall. Reports the service's peak RSS (VmHWM), its RSS over time, how /healthz answered
        meanwhile and what the clients got back.
    bench/slowloris.py heads    [--bin B] [--clients 1000] [--watch 8]
        N clients each send 300 KiB of request head (one long header) and stall. Reports the
        service's peak RSS and what the clients got back.
    bench/slowloris.py idle     [--bin B] [--clients 1100] [--nofile 1024] [--keepalive]
        The service runs with `ulimit -n 1024`; N clients connect and send nothing (or, with
        --keepalive, one request each and then nothing). Reports whether a new client is served,
        how long it waited, and what the service logged.
    bench/slowloris.py shutdown [--bin B]
        One client sends half a request head, another sits on an idle kept-alive connection;
        SIGTERM; reports how long the process took to exit.

The binary runs with a Stripe key and a dummy API base (nothing here calls Stripe), a fresh
SQLite ledger in a temporary directory, and RUST_LOG=warn; extra settings with --env K=V.
"""
import argparse
import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools import ROOT, free_port  # noqa: E402

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


class Service:
    def __init__(self, binary, env=(), nofile=None):
        self.dir = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.log_path = os.path.join(self.dir.name, "service.log")
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"sqlite://{self.dir.name}/ledger.db",
            "STRIPE_SECRET_KEY": "sk_test_bench0000000000000000",
            "STRIPE_WEBHOOK_SECRET": "whsec_bench",
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            "BIND": "127.0.0.1",
            "PORT": str(self.port),
            "RUST_LOG": "warn",
            "LOG_FORMAT": "json",
        }
        environment.update(kv.split("=", 1) for kv in env)

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary], env=environment, stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=limit)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("the service did not start:\n" + self.logged())
                time.sleep(0.02)

    def vm(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def logged(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


async def read_status(reader, timeout):
    """The status of the next response, or None (closed, reset or nothing within timeout)."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
        return int(line.split()[1]) if line.startswith(b"HTTP/") else None
    except (asyncio.TimeoutError, OSError, ValueError, IndexError):
        return None


async def healthz(port, timeout=5.0):
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError):
        return None, time.monotonic() - started
    writer.write(HEALTHZ)
    status = await read_status(reader, timeout)
    writer.close()
    return status, time.monotonic() - started


async def bodies(args):
    service = Service(args.bin, args.env)
    body = b" " * (900 * 1024)
    head = (b"POST /stripe_webhook HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Stripe-Signature: t=1,v1=00\r\nContent-Length: 1048576\r\n\r\n")
    outcomes = {}
    held = []

    async def client():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        except OSError:
            outcomes["connect failed"] = outcomes.get("connect failed", 0) + 1
            return
        held.append(writer)
        try:
            writer.write(head + body)
            await writer.drain()
        except OSError:
            pass
        status = await read_status(reader, args.watch + 5)
        key = str(status) if status else "no answer"
        outcomes[key] = outcomes.get(key, 0) + 1

    started = time.monotonic()
    clients = [asyncio.create_task(client()) for _ in range(args.clients)]
    samples, checks = [], []
    while time.monotonic() - started < args.watch:
        samples.append((time.monotonic() - started, service.vm("VmRSS")))
        checks.append(await healthz(service.port, timeout=2.0))
        await asyncio.sleep(0.5)
    peak = service.vm("VmHWM")
    end_rss = service.vm("VmRSS")
    for c in clients:
        c.cancel()
    for w in held:
        w.close()
    service.stop()
    ok = sum(1 for status, _ in checks if status == 200)
    slowest = max(t for _, t in checks)
    print(f"bodies: {args.clients} clients x 900 KiB of a 1 MiB webhook, watched {args.watch} s")
    print(f"  peak RSS (VmHWM): {peak:.1f} MiB; RSS at the end: {end_rss:.1f} MiB")
    print("  RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in samples[::4]))
    print(f"  /healthz: {ok}/{len(checks)} answered 200 within 2 s; slowest {slowest * 1000:.0f} ms")
    print(f"  client outcomes: {dict(sorted(outcomes.items()))} "
          f"(still waiting at the end: {args.clients - sum(outcomes.values())})")


async def heads(args):
    service = Service(args.bin, args.env)
    head = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Padding: " + b"a" * (300 * 1024)
    outcomes, held = {}, []

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        held.append(writer)
        try:
            writer.write(head)
            await writer.drain()
        except OSError:
            pass
        status = await read_status(reader, args.watch + 5)
        key = str(status) if status else "closed or no answer"
        outcomes[key] = outcomes.get(key, 0) + 1

    clients = [asyncio.create_task(client()) for _ in range(args.clients)]
    await asyncio.sleep(args.watch)
    peak = service.vm("VmHWM")
    for c in clients:
        c.cancel()
    for w in held:
        w.close()
    service.stop()
    print(f"heads: {args.clients} clients x 300 KiB of request head, watched {args.watch} s")
    print(f"  peak RSS (VmHWM): {peak:.1f} MiB")
    print(f"  client outcomes: {dict(sorted(outcomes.items()))}")


async def idle(args):
    service = Service(args.bin, args.env, nofile=args.nofile)
    held, failed = [], 0
    for _ in range(args.clients):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", service.port), 5)
        except (OSError, asyncio.TimeoutError):
            failed += 1
            continue
        held.append((reader, writer))
        if args.keepalive:
            writer.write(HEALTHZ)
    if args.keepalive:
        # Answers (for the accepted ones) come back; the rest sit in the listen queue.
        await asyncio.sleep(1)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(HEALTHZ)
    status = await read_status(reader, args.wait)
    waited = time.monotonic() - started

    async def closed(reader):
        try:
            while await asyncio.wait_for(reader.read(65536), 0.5):
                pass
            return True
        except (asyncio.TimeoutError, OSError):
            return False

    closed_by_service = sum(await asyncio.gather(*(closed(r) for r, _ in held)))
    log = service.logged()
    service.stop()
    kind = "kept-alive after one request" if args.keepalive else "connected, nothing sent"
    print(f"idle: {len(held)} connections ({kind}; {failed} failed to connect), "
          f"ulimit -n {args.nofile}")
    if status == 200:
        print(f"  a new client was served after {waited:.1f} s")
    else:
        print(f"  a new client was NOT served within {args.wait} s")
    print(f"  idle connections closed by the service meanwhile: {closed_by_service}")
    lines = [l for l in log.splitlines() if "API_TOKENS" not in l]
    print(f"  log lines ({len(lines)}):")
    for line in lines[:6]:
        print("    " + line[:300])


async def shutdown(args):
    service = Service(args.bin, args.env)
    _, half = await asyncio.open_connection("127.0.0.1", service.port)
    half.write(b"POST /stripe_webhook HTTP/1.1\r\nHost: bench\r\n")
    await half.drain()
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(HEALTHZ)
    assert await read_status(reader, 5) == 200
    await asyncio.sleep(0.2)
    started = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    while service.proc.poll() is None and time.monotonic() - started < 120:
        await asyncio.sleep(0.01)
    took = time.monotonic() - started
    code = service.proc.poll()
    service.stop()
    print(f"shutdown: SIGTERM with a half-sent head and an idle kept-alive connection open: "
          f"exited {code} after {took:.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["bodies", "heads", "idle", "shutdown"])
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/release/tmt-payments"))
    parser.add_argument("--clients", type=int)
    parser.add_argument("--watch", type=float, help="bodies, heads: seconds to watch")
    parser.add_argument("--nofile", type=int, default=1024, help="idle: the service's ulimit -n")
    parser.add_argument("--keepalive", action="store_true")
    parser.add_argument("--wait", type=float, default=90.0,
                        help="idle: how long the new client waits for an answer")
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    args = parser.parse_args()
    if args.clients is None:
        args.clients = 1100 if args.scenario == "idle" else 1000
    if args.watch is None:
        args.watch = 8.0 if args.scenario == "heads" else 25.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    scenarios = {"bodies": bodies, "heads": heads, "idle": idle, "shutdown": shutdown}
    asyncio.run(scenarios[args.scenario](args))


if __name__ == "__main__":
    sys.exit(main())
