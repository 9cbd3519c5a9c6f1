"""What the SDK peer scripts share: checks that print one line each, a webhook receiver that
verifies every delivery with Stripe's own stripe.Webhook.construct_event, and the parameters
of the delayed methods' payments."""
import http.server
import sys
import threading
import traceback

import stripe

results = []  # (check name, traceback or None)


def check(name):
    """Runs the decorated function at once as the check `name`, recording how it went."""

    def wrap(fn):
        try:
            fn()
            results.append((name, None))
        except Exception:  # noqa: BLE001
            results.append((name, traceback.format_exc()))
        return fn

    return wrap


def refused(error, why, call):
    """Runs call, which must raise `error` (else AssertionError(why)); returns the exception."""
    try:
        call()
    except error as e:
        return e
    raise AssertionError(why)


class Receiver:
    """A webhook endpoint on 127.0.0.1:`port` verifying deliveries signed with `secret`:
    `received` holds what `record` makes of each verified event, `rejected` why others were
    refused."""

    def __init__(self, port, secret, record):
        self.received = []
        self.rejected = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                payload = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = stripe.Webhook.construct_event(
                        payload.decode("utf-8"),
                        self.headers.get("Stripe-Signature"),
                        secret,
                        tolerance=300,
                    )
                    receiver.received.append(record(event))
                    self.send_response(200)
                except Exception as e:  # noqa: BLE001 - any failure is a rejected delivery
                    receiver.rejected.append(repr(e))
                    self.send_response(400)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def oxxo_payment(amount, **extra):
    """The parameters of a PaymentIntent of `amount` MXN paid by an OXXO voucher, confirmed at
    once, with `extra` added."""
    return {
        "amount": amount, "currency": "mxn", "payment_method_types": ["oxxo"], "confirm": True,
        "payment_method_data": {"type": "oxxo",
                                "billing_details": {"name": "Ana López", "email": "ana@example.com"}},
        **extra,
    }


def spei_payment(customer, amount, **extra):
    """The parameters of a PaymentIntent of `amount` MXN that `customer` pays by a SPEI bank
    transfer, confirmed at once, with `extra` added."""
    return {
        "amount": amount, "currency": "mxn", "customer": customer, "confirm": True,
        "payment_method_types": ["customer_balance"], "payment_method_data": {"type": "customer_balance"},
        "payment_method_options": {"customer_balance": {"funding_type": "bank_transfer",
                                                        "bank_transfer": {"type": "mx_bank_transfer"}}},
        **extra,
    }


def report():
    """Prints each check and 'N passed, N failed'; exits 1 on any failure."""
    failed = [(n, tb) for n, tb in results if tb]
    for name, tb in results:
        print(("ok   " if tb is None else "FAIL ") + name)
        if tb:
            print(tb)
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
