// Stripe's official Node SDK against the sandbox: balances and payouts, by host and port.
//
// Usage: node sdk_balance.mjs HOST PORT RECEIVER_PORT WEBHOOK_SECRET
//
// Onboards a Mexican Express account, makes destination charges to it with an application fee
// and refunds one with its fee and transfer, lists the balance transactions of the platform
// and of the account (stripeAccount) with autoPagingEach across several pages, reads both
// balances, pays the account's balance out with the sandbox's payout control and reads the
// payout and its items, and checks that the payout events arrive signed, naming the account.
// Prints one line per check and ends with "N passed, N failed"; exits 1 on any failure.

import {randomUUID} from 'node:crypto';
import Stripe from 'stripe';

import {assert, check, equal, receive, rejects, report} from './peer.mjs';

const [host, port, receiverPort, secret] = process.argv.slice(2);
const options = {host, port: Number(port), protocol: 'http', maxNetworkRetries: 0};
const stripe = new Stripe('sk_test_node_balance_' + randomUUID().replaceAll('-', ''), options);
const receiver = await receive(stripe, receiverPort, secret,
                               (e) => [e.type, e.account ?? null, e.data.object.id]);
const state = {charges: []};

// What a US platform keeps of a charge: 2.9% (rounded half up) + 0.30 USD.
const fee = (amount) => Math.floor((amount * 290 + 5000) / 10000) + 30;

async function all(list) {
  const seen = [];
  await list.autoPagingEach((item) => {
    seen.push(item);
  });
  return seen;
}

await check('destination charges move the platform\'s and the account\'s balances', async () => {
  const account = await stripe.accounts.create({
    type: 'express', country: 'MX',
    capabilities: {card_payments: {requested: true}, transfers: {requested: true}},
  });
  state.account = account.id;
  await stripe.rawRequest('POST', `/_sandbox/accounts/${account.id}/onboard`, {outcome: 'complete'});
  for (let n = 0; n < 6; n += 1) {
    const pi = await stripe.paymentIntents.create({
      amount: 10000, currency: 'mxn', payment_method: 'pm_card_visa', confirm: true,
      transfer_data: {destination: account.id}, application_fee_amount: 1000,
    });
    state.charges.push(pi);
  }
  await stripe.refunds.create({payment_intent: state.charges[0].id, refund_application_fee: true,
                               reverse_transfer: true});
  const charge = await stripe.charges.retrieve(state.charges[1].latest_charge,
                                               {expand: ['balance_transaction']});
  const txn = charge.balance_transaction;
  // 100.00 MXN settles 5.00 USD on the US platform.
  equal([txn.type, txn.currency, txn.amount, txn.fee, txn.exchange_rate],
        ['charge', 'usd', 500, fee(500), 0.05], 'the platform\'s charge');
});

await check('balanceTransactions.list autoPagingEach: every page of the platform, newest first', async () => {
  const seen = await all(stripe.balanceTransactions.list({limit: 4}));
  // 6 charges, 6 transfers, 6 application fees; a refund, a reversal, a fee refund.
  equal(seen.length, 21, 'count');
  equal(new Set(seen.map((t) => t.id)).size, 21, 'each once');
  const created = seen.map((t) => t.created);
  equal(created, [...created].sort((a, b) => b - a), 'newest first');
  const types = new Set(seen.map((t) => t.type));
  for (const type of ['charge', 'transfer', 'application_fee', 'refund', 'transfer_refund',
                      'application_fee_refund']) {
    assert(types.has(type), `${type} among ${[...types]}`);
  }
  const earned = await stripe.balanceTransactions.list({type: 'application_fee', limit: 100});
  equal(earned.data.map((t) => t.amount), Array(6).fill(50), '10.00 MXN is 0.50 USD each');
});

await check('stripeAccount: the account\'s payments, less the fee, in its own currency', async () => {
  const on = {stripeAccount: state.account};
  const seen = await all(stripe.balanceTransactions.list({limit: 2}, on));
  equal(seen.length, 8, 'six payments, a payment refund and a fee refund');
  const payments = seen.filter((t) => t.type === 'payment');
  equal(payments.map((t) => [t.amount, t.fee, t.net, t.currency]),
        Array(6).fill([10000, 1000, 9000, 'mxn']), 'payments');
  equal(payments[0].fee_details[0].type, 'application_fee', 'the fee');
  const balance = await stripe.balance.retrieve({}, on);
  const total = (side) => side.filter((b) => b.currency === 'mxn').reduce((s, b) => s + b.amount, 0);
  equal(total(balance.available) + total(balance.pending), 5 * 9000, 'what the account keeps');
  const hidden = await rejects(stripe.balanceTransactions.retrieve(payments[0].id),
                               'StripeInvalidRequestError', 'the platform saw the account\'s');
  equal(hidden.statusCode, 404, 'not the platform\'s');
});

await check('the payout control pays the account out; payouts.retrieve and its items', async () => {
  const on = {stripeAccount: state.account};
  const made = await stripe.rawRequest('POST', '/_sandbox/payouts', {account: state.account});
  equal(made.data.length, 1, 'one currency');
  const payout = await stripe.payouts.retrieve(made.data[0].id, {}, on);
  equal([payout.status, payout.automatic, payout.reconciliation_status, payout.currency, payout.amount],
        ['paid', true, 'completed', 'mxn', 45000], 'the payout');
  const items = await all(stripe.balanceTransactions.list({payout: payout.id, limit: 3}, on));
  equal(items.length, 9, 'eight items and the payout itself');
  const nets = items.filter((t) => t.type !== 'payout').reduce((s, t) => s + t.net, 0);
  equal(nets, payout.amount, 'the items add up');
  const listed = await all(stripe.payouts.list({status: 'paid'}, on));
  equal(listed.map((p) => p.id), [payout.id], 'listed');
  state.payout = payout.id;
});

await check('payout events verified by constructEvent, naming the account', async () => {
  const wanted = ['payout.created', 'payout.updated', 'payout.paid', 'payout.reconciliation_completed'];
  const ours = () => receiver.received.filter(([, , id]) => id === state.payout);
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline && ours().length < wanted.length) {
    await new Promise((r) => setTimeout(r, 50));
  }
  equal(ours().map(([t]) => t), wanted, 'in order');
  assert(ours().every(([, account]) => account === state.account), 'the account\'s');
  equal(receiver.rejected, [], 'no rejected delivery');
});

receiver.server.close();
report();
