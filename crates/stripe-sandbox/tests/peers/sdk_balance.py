"""Stripe's official Python SDK against the Stripe sandbox: balances and payouts.

Usage: sdk_balance.py API_BASE RECEIVER_PORT WEBHOOK_SECRET

Makes charges and refunds, reads their balance transactions (expanded from a charge, retrieved,
and listed with auto-pagination across several pages, by the SDK's global resources and by its
client), the balance, and a payout of the sandbox's payout control with its items; makes a
manual payout, which cannot be itemised, and cancels one; checks that the payout events arrive
signed. Prints one line per check and ends with 'N passed, N failed'; exits 1 on any failure.
"""
import sys
import time
import uuid

import stripe

from peer import Receiver, check, refused, report

API_BASE = sys.argv[1]
RECEIVER_PORT = int(sys.argv[2])
SECRET = sys.argv[3]

# (event id, type, object id) of each verified delivery
receiver = Receiver(RECEIVER_PORT, SECRET, lambda e: (e.id, e.type, getattr(e.data.object, "id", None)))

KEY = "sk_test_balance_" + uuid.uuid4().hex
# The SDK's global resources (stripe.BalanceTransaction…) and its client, at the sandbox.
stripe.api_key = KEY
stripe.api_base = API_BASE
stripe.max_network_retries = 0
client = stripe.StripeClient(KEY, base_addresses={"api": API_BASE}, max_network_retries=0)
state = {"charges": [], "refunds": []}


def fee(amount):
    """The sandbox's fee of a US account: 2.9% (rounded half up) + 0.30 USD."""
    return (amount * 290 + 5000) // 10000 + 30


@check("charges and refunds make balance transactions with Stripe's fee (expand, retrieve)")
def _():
    for n in range(8):
        pi = stripe.PaymentIntent.create(
            amount=2000 + n, currency="usd", payment_method="pm_card_visa", confirm=True
        )
        state["charges"].append(pi)
    charge = stripe.Charge.retrieve(state["charges"][3].latest_charge, expand=["balance_transaction"])
    txn = charge.balance_transaction
    assert txn.object == "balance_transaction" and txn.type == "charge", txn
    assert (txn.amount, txn.fee, txn.net) == (2003, fee(2003), 2003 - fee(2003)), txn
    assert txn.fee_details[0].type == "stripe_fee" and txn.status == "pending"
    assert txn.available_on == txn.created + 2 * 24 * 60 * 60
    again = stripe.BalanceTransaction.retrieve(txn.id)
    assert again.source == charge.id and again.reporting_category == "charge"
    for pi in state["charges"][:3]:
        refund = stripe.Refund.create(payment_intent=pi.id, amount=100)
        state["refunds"].append(refund)
        out = stripe.BalanceTransaction.retrieve(refund.balance_transaction)
        assert (out.type, out.amount, out.status) == ("refund", -100, "available"), out


@check("BalanceTransaction.list(limit=3).auto_paging_iter() walks 4 pages, newest first, each once")
def _():
    first = stripe.BalanceTransaction.list(limit=3)
    assert first.has_more and len(first.data) == 3 and first.url == "/v1/balance_transactions"
    seen = [t.id for t in first.auto_paging_iter()]
    assert len(seen) == 11 and len(set(seen)) == 11, seen
    created = [t.created for t in stripe.BalanceTransaction.list(limit=100).data]
    assert created == sorted(created, reverse=True)
    refunds = [t.type for t in stripe.BalanceTransaction.list(type="refund", limit=2).auto_paging_iter()]
    assert refunds == ["refund"] * 3, refunds
    via_client = [
        t.id for t in client.v1.balance_transactions.list(params={"limit": 4}).auto_paging_iter()
    ]
    assert via_client == seen
    state["nets"] = sum(t.net for t in first.auto_paging_iter())


@check("Balance.retrieve: what came in is pending, what went out is gone")
def _():
    balance = stripe.Balance.retrieve()
    pending = {b.currency: b.amount for b in balance.pending}
    available = {b.currency: b.amount for b in balance.available}
    charged = sum(2000 + n - fee(2000 + n) for n in range(8))
    assert pending["usd"] == charged and available["usd"] == -300, balance
    assert balance.object == "balance" and not balance.livemode


@check("the payout control's payout: Payout.retrieve, and its items through auto-pagination")
def _():
    made = client.raw_request("post", "/_sandbox/payouts")
    payout_id = made.data["data"][0]["id"]
    payout = stripe.Payout.retrieve(payout_id)
    assert payout.automatic and payout.status == "paid", payout
    assert payout.reconciliation_status == "completed"
    assert payout.amount == state["nets"], (payout.amount, state["nets"])
    items = list(stripe.BalanceTransaction.list(payout=payout.id, limit=2).auto_paging_iter())
    assert len(items) == 12, len(items)
    own = [t for t in items if t.type == "payout"]
    assert len(own) == 1 and own[0].id == payout.balance_transaction and own[0].amount == -payout.amount
    assert sum(t.net for t in items if t.type != "payout") == payout.amount
    paid = [p.id for p in stripe.Payout.list(status="paid").auto_paging_iter()]
    assert paid == [payout.id], paid
    state["payout"] = payout.id


@check("a manual payout from the available balance cannot be itemised, and can be canceled")
def _():
    stripe.PaymentIntent.create(amount=5000, currency="usd", payment_method="pm_card_visa", confirm=True)
    refused(
        stripe.InvalidRequestError, "paid out pending money",
        lambda: stripe.Payout.create(amount=1000, currency="usd"),
    )
    client.raw_request("post", "/_sandbox/clock", advance=2 * 24 * 60 * 60)
    payout = stripe.Payout.create(amount=1000, currency="usd", metadata={"week": "7"})
    assert not payout.automatic and payout.reconciliation_status == "not_applicable"
    error = refused(
        stripe.InvalidRequestError, "a manual payout was itemised",
        lambda: stripe.BalanceTransaction.list(payout=payout.id),
    )
    assert "only be filtered on automatic transfers" in str(error.user_message), error
    canceled = stripe.Payout.cancel(payout.id)
    assert canceled.status == "canceled"
    back = stripe.BalanceTransaction.retrieve(canceled.failure_balance_transaction)
    assert (back.type, back.amount) == ("payout_cancel", 1000), back
    balance = client.v1.balance.retrieve()
    assert {b.currency: b.amount for b in balance.available}["usd"] == 5000 - fee(5000)


@check("payout events arrive signed, in order")
def _():
    wanted = ["payout.created", "payout.updated", "payout.paid", "payout.reconciliation_completed"]
    deadline = time.time() + 20
    while time.time() < deadline:
        got = [t for _, t, o in receiver.received if o == state.get("payout")]
        if len(got) >= len(wanted):
            break
        time.sleep(0.05)
    assert got == wanted, got
    assert not receiver.rejected, receiver.rejected


receiver.close()
report()
