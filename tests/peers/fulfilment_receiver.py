"""The platform's side of fulfilment notifications, for the integration tests.

Every POST is checked with Stripe's own verification code (the official Python library's
WebhookSignature.verify_header, with the fulfilment secret), exactly as the README tells the
platform to. The first --fail-first deliveries of each notification id are answered 500, so the
service must retry; the rest are answered 200 and written, one JSON object per line, to --log:

    {"id": ..., "type": ..., "paymentIntentId": ..., "late": ..., "attempt": n, "seq": k,
     "raw": <the body as received>}

`seq` counts the acknowledged deliveries in the order they arrived. A delivery whose signature
does not verify is answered 400 and logged with "bad_signature": true.

    python fulfilment_receiver.py --port 0 --secret whsec_... --fail-first 3 --log out.jsonl

prints "listening on <port>" once it accepts connections.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stripe


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    lock = threading.Lock()
    attempts = {}
    seq = [0]
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            payload = self.rfile.read(length).decode("utf-8")
            header = self.headers.get("TMT-Signature", "")
            try:
                stripe.WebhookSignature.verify_header(payload, header, args.secret, tolerance=300)
            except stripe.error.SignatureVerificationError as e:
                with lock:
                    log.write(json.dumps({"bad_signature": True, "error": str(e)}) + "\n")
                self.answer(400)
                return
            body = json.loads(payload)
            with lock:
                n = attempts.get(body["id"], 0) + 1
                attempts[body["id"]] = n
                if n <= args.fail_first:
                    failing = True
                else:
                    failing = False
                    seq[0] += 1
                    data = body.get("data", {})
                    log.write(json.dumps({
                        "id": body["id"],
                        "type": body["type"],
                        "paymentIntentId": data.get("paymentIntentId"),
                        "status": data.get("status"),
                        "late": data.get("late"),
                        "amount": data.get("amount"),
                        "amountRefunded": data.get("amountRefunded"),
                        "refundId": data.get("refundId"),
                        "attempt": n,
                        "seq": seq[0],
                        "raw": payload,
                    }) + "\n")
            self.answer(500 if failing else 200)

        def answer(self, status):
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
