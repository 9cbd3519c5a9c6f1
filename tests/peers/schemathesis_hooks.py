"""Schemathesis hooks for tmt-payments: a 5xx is acceptable only as a documented Stripe failure."""
import schemathesis


@schemathesis.check
def server_errors_are_stripe_failures(ctx, response, case):
    if response.status_code >= 500:
        try:
            code = response.json().get("code")
        except Exception:  # noqa: BLE001 - a non-JSON 5xx is itself the failure
            code = None
        if not (response.status_code == 500 and code in ("stripe_error", "stripe_unreachable")):
            raise AssertionError(
                f"{response.status_code} with code {code!r} is not a documented Stripe failure"
            )
