"""Cross-checks webhook signatures with Stripe's official Python SDK.

Reads one JSON object per line on stdin and answers one JSON object per line:
  {"op": "sign", "payload": str, "secret": str, "timestamp": int} -> {"header": str}
  {"op": "verify", "payload": str, "header": str, "secret": str, "tolerance": int}
      -> {"ok": bool, "error": str|null}
"""
import json
import sys

import stripe


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "sign":
            header = stripe.WebhookSignature.generate_signature_header(
                request["payload"], request["secret"], timestamp=request["timestamp"]
            )
            answer = {"header": header}
        else:
            try:
                stripe.WebhookSignature.verify_header(
                    request["payload"],
                    request["header"],
                    request["secret"],
                    tolerance=request["tolerance"],
                )
                answer = {"ok": True, "error": None}
            except stripe.SignatureVerificationError as e:
                answer = {"ok": False, "error": str(e)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
