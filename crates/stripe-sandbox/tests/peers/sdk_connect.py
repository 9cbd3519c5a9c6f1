"""Stripe's official Python SDK against the Stripe sandbox: Connect.

Usage: sdk_connect.py API_BASE RECEIVER_PORT WEBHOOK_SECRET

Creates connected accounts, onboards one through its Account Link's page, makes destination
and direct charges (by card, by a bank transfer to the account's customer, by an OXXO
voucher), reverses a transfer, refunds an application fee and a charge with its fee and
transfer, checks Stripe-Account scoping, and checks that the Connect events arrive signed,
naming their account. Prints one line per check and ends with 'N passed, N failed'; exits 1 on
any failure.
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import stripe

from peer import Receiver, check, oxxo_payment, report, spei_payment

API_BASE = sys.argv[1]
RECEIVER_PORT = int(sys.argv[2])
SECRET = sys.argv[3]

# (event id, type, account or None) of each verified delivery
receiver = Receiver(RECEIVER_PORT, SECRET, lambda e: (e.id, e.type, e.to_dict().get("account")))

client = stripe.StripeClient(
    "sk_test_connect_" + uuid.uuid4().hex, base_addresses={"api": API_BASE}, max_network_retries=0
)
state = {}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


browser = urllib.request.build_opener(NoRedirect)


def express(**extra):
    params = {
        "type": "express",
        "country": "MX",
        "email": "organiser@example.com",
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "metadata": {"organizer_id": "org-" + uuid.uuid4().hex[:8]},
    }
    params.update(extra)
    return client.v1.accounts.create(params=params)


@check("accounts.create: a new Express account cannot charge or pay out until onboarded")
def _():
    account = express()
    state["account"] = account.id
    assert account.id.startswith("acct_"), account.id
    assert account.object == "account" and account.type == "express", account.type
    assert account.charges_enabled is False and account.payouts_enabled is False
    assert account.details_submitted is False
    assert "external_account" in account.requirements.currently_due, account.requirements
    assert account.capabilities.card_payments == "inactive", account.capabilities
    assert account.capabilities.transfers == "inactive"
    assert account.controller.stripe_dashboard.type == "express"
    assert account.default_currency == "mxn" and account.country == "MX"
    again = client.v1.accounts.retrieve(account.id)
    assert again.metadata["organizer_id"] == account.metadata["organizer_id"]


@check("accounts.create with controller properties; accounts.list pages through them")
def _():
    made = client.v1.accounts.create(
        params={
            "controller": {
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
                "stripe_dashboard": {"type": "express"},
            },
            "capabilities": {"transfers": {"requested": True}},
        }
    )
    assert made.type == "express", made.type
    listed = [a.id for a in client.v1.accounts.list(params={"limit": 1}).auto_paging_iter()]
    assert made.id in listed and state["account"] in listed, listed


@check("account_links.create: a link whose page onboards the account and sends it back")
def _():
    link = client.v1.account_links.create(
        params={
            "account": state["account"],
            "type": "account_onboarding",
            "return_url": "https://organiser.example/back",
            "refresh_url": "https://organiser.example/again",
        }
    )
    assert link.object == "account_link" and link.expires_at > link.created, link
    page = browser.open(link.url).read().decode()
    assert ">Complete</button>" in page and ">Leave incomplete</button>" in page
    action = page.split('action="', 1)[1].split('"', 1)[0]
    token = page.split('name="link" value="', 1)[1].split('"', 1)[0]
    form = urllib.parse.urlencode({"link": token, "outcome": "complete"}).encode()
    try:
        browser.open(urllib.request.Request(action, data=form, method="POST"))
        raise AssertionError("no redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 303, e.code
        assert e.headers["Location"] == "https://organiser.example/back", e.headers["Location"]
    account = client.v1.accounts.retrieve(state["account"])
    assert account.charges_enabled and account.payouts_enabled and account.details_submitted
    assert account.requirements.currently_due == [], account.requirements
    assert account.capabilities.card_payments == "active"


def paid(amount, options=None, **connect):
    """A PaymentIntent of `amount` USD paid with pm_card_visa, with Connect's `connect`."""
    params = {"amount": amount, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    params.update(connect)
    return client.v1.payment_intents.create(params=params, options=options or {})


@check("a destination charge: transfer_data, application_fee_amount, on_behalf_of")
def _():
    org = state["account"]
    pi = paid(5000, transfer_data={"destination": org}, application_fee_amount=500, on_behalf_of=org)
    assert pi.status == "succeeded" and pi.transfer_data.destination == org, pi
    charge = client.v1.charges.retrieve(
        pi.latest_charge, params={"expand": ["transfer", "application_fee"]}
    )
    assert charge.on_behalf_of == org and charge.application_fee_amount == 500
    assert charge.transfer.object == "transfer" and charge.transfer.amount == 5000
    assert charge.transfer.destination == org
    assert charge.transfer.destination_payment.startswith("py_")
    assert charge.application_fee.object == "application_fee"
    assert charge.application_fee.amount == 500 and charge.application_fee.account == org
    assert charge.application_fee.originating_transaction == charge.id
    state.update(pi=pi.id, transfer=charge.transfer.id, fee=charge.application_fee.id)


@check("transfers.reversals.create: part of a transfer comes back, with the fee's share")
def _():
    reversal = client.v1.transfers.reversals.create(
        state["transfer"], params={"amount": 1000, "refund_application_fee": True}
    )
    assert reversal.object == "transfer_reversal" and reversal.amount == 1000
    assert reversal.transfer == state["transfer"]
    transfer = client.v1.transfers.retrieve(state["transfer"])
    assert transfer.amount_reversed == 1000 and transfer.reversed is False
    listed = list(client.v1.transfers.reversals.list(state["transfer"]).auto_paging_iter())
    assert [r.id for r in listed] == [reversal.id]
    fee = client.v1.application_fees.retrieve(state["fee"])
    assert fee.amount_refunded == 100, fee.amount_refunded
    try:
        client.v1.transfers.reversals.create(state["transfer"], params={"amount": 4001})
        raise AssertionError("reversed more than is left")
    except stripe.InvalidRequestError as e:
        assert e.param == "amount", e.param


@check("application_fees.refunds.create: part of the fee goes back to the account")
def _():
    refund = client.v1.application_fees.refunds.create(state["fee"], params={"amount": 50})
    assert refund.object == "fee_refund" and refund.amount == 50 and refund.fee == state["fee"]
    fee = client.v1.application_fees.retrieve(state["fee"])
    assert fee.amount_refunded == 150 and fee.refunded is False
    listed = list(client.v1.application_fees.refunds.list(state["fee"]).auto_paging_iter())
    assert len(listed) == 2, listed
    fees = [f.id for f in client.v1.application_fees.list().auto_paging_iter()]
    assert state["fee"] in fees


@check("refunds.create with refund_application_fee and reverse_transfer, in proportion")
def _():
    pi = paid(2000, transfer_data={"destination": state["account"]}, application_fee_amount=200)
    refund = client.v1.refunds.create(
        params={
            "payment_intent": pi.id,
            "amount": 1000,
            "refund_application_fee": True,
            "reverse_transfer": True,
        }
    )
    assert refund.transfer_reversal.startswith("trr_"), refund.transfer_reversal
    charge = client.v1.charges.retrieve(pi.latest_charge)
    transfer = client.v1.transfers.retrieve(charge.transfer)
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert transfer.amount_reversed == 1000 and fee.amount_refunded == 100


@check("Stripe-Account: a direct charge lives on the account, and only there")
def _():
    org = {"stripe_account": state["account"]}
    pi = paid(3000, options=org, application_fee_amount=300)
    assert pi.status == "succeeded" and pi.application_fee_amount == 300
    assert client.v1.payment_intents.retrieve(pi.id, options=org).id == pi.id
    try:
        client.v1.payment_intents.retrieve(pi.id)
        raise AssertionError("the platform saw the account's PaymentIntent")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 404 and e.code == "resource_missing", e
    charge = client.v1.charges.retrieve(pi.latest_charge, options=org)
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert fee.account == state["account"] and fee.amount == 300
    mine = [p.id for p in client.v1.payment_intents.list(options=org).auto_paging_iter()]
    assert mine == [pi.id], mine
    try:
        client.v1.payment_intents.list(options={"stripe_account": "acct_1NotConnected000"})
        raise AssertionError("a foreign account was accepted")
    except stripe.PermissionError as e:
        code = e.json_body["error"]["code"]
        assert (e.http_status, code) == (403, "account_invalid"), (e.http_status, code)


@check("Stripe-Account with a bank transfer: the account's customer, funded; the fee when paid")
def _():
    org = {"stripe_account": state["account"]}
    customer = client.v1.customers.create(params={"email": "buyer@example.com"}, options=org)
    try:
        client.v1.customers.retrieve(customer.id)
        raise AssertionError("the platform saw the account's customer")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 404 and e.code == "resource_missing", e
    pi = client.v1.payment_intents.create(
        params=spei_payment(customer.id, 10000, application_fee_amount=400), options=org
    )
    assert pi.status == "requires_action", pi.status
    funded = client.v1.test_helpers.customers.fund_cash_balance(
        customer.id, params={"amount": 10000, "currency": "mxn"}, options=org
    )
    assert funded.type == "funded" and funded.customer == customer.id, funded
    paid = client.v1.payment_intents.retrieve(pi.id, options=org)
    assert paid.status == "succeeded", paid.status
    charge = client.v1.charges.retrieve(paid.latest_charge, options=org)
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount, fee.account) == (400, state["account"]), fee


@check("an OXXO destination charge transfers and takes its fee when the voucher is paid")
def _():
    pi = client.v1.payment_intents.create(params=oxxo_payment(
        20000, transfer_data={"destination": state["account"]}, application_fee_amount=1000
    ))
    assert pi.status == "requires_action", pi.status
    group = {"transfer_group": pi.transfer_group}
    assert client.v1.transfers.list(params=group).data == []
    client.raw_request("post", f"/_sandbox/payment_intents/{pi.id}/pay_voucher")
    paid = client.v1.payment_intents.retrieve(pi.id)
    assert paid.status == "succeeded", paid.status
    charge = client.v1.charges.retrieve(paid.latest_charge)
    transfer = client.v1.transfers.retrieve(charge.transfer)
    assert (transfer.amount, transfer.destination) == (20000, state["account"]), transfer
    assert [t.id for t in client.v1.transfers.list(params=group).data] == [transfer.id]
    assert client.v1.application_fees.retrieve(charge.application_fee).amount == 1000


@check("the sandbox's onboarding control, through the SDK's raw requests")
def _():
    account = express()
    response = client.raw_request(
        "post", f"/_sandbox/accounts/{account.id}/onboard", outcome="complete"
    )
    assert json.loads(response.body)["charges_enabled"] is True, response.body
    state["second"] = account.id


@check("Connect webhooks arrive verified by construct_event, naming their account")
def _():
    deadline = time.time() + 20
    org = state["account"]

    def connect_types():
        return {(t, a) for _, t, a in receiver.received if a is not None}

    while time.time() < deadline and ("account.updated", state.get("second")) not in connect_types():
        time.sleep(0.1)
    assert not receiver.rejected, receiver.rejected[:3]
    seen = connect_types()
    assert ("account.updated", org) in seen, seen
    assert ("payment_intent.succeeded", org) in seen, seen
    platform = {t for _, t, a in receiver.received if a is None}
    for wanted in ("transfer.created", "transfer.reversed", "application_fee.created",
                   "application_fee.refunded"):
        assert wanted in platform, (wanted, platform)
    listed = client.v1.events.list(
        params={"type": "account.updated"}, options={"stripe_account": org}
    )
    assert all(e.account == org for e in listed.data) and listed.data, listed


receiver.close()
report()
