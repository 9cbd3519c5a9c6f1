// Stripe's official Node SDK against the sandbox: Connect, by host and port.
//
// Usage: node sdk_connect.mjs HOST PORT RECEIVER_PORT WEBHOOK_SECRET
//
// Creates an Express account and onboards it through its Account Link's page, makes a
// destination charge and direct charges (stripeAccount: by card, by a bank transfer from the
// account's customer, by an OXXO voucher), reverses part of the transfer,
// refunds part of the application fee, and checks that Connect's events arrive signed, naming
// their account. Prints one line per check and ends with "N passed, N failed"; exits 1 on any
// failure.

import {randomUUID} from 'node:crypto';
import Stripe from 'stripe';

import {assert, check, equal, receive, rejects, report} from './peer.mjs';

const [host, port, receiverPort, secret] = process.argv.slice(2);
const options = {host, port: Number(port), protocol: 'http', maxNetworkRetries: 0};
const stripe = new Stripe('sk_test_node_connect_' + randomUUID().replaceAll('-', ''), options);
const receiver = await receive(stripe, receiverPort, secret, (e) => [e.type, e.account ?? null]);
const state = {};

await check('accounts.create: an Express account that cannot charge yet', async () => {
  const account = await stripe.accounts.create({
    type: 'express', country: 'MX', email: 'organiser@example.com',
    capabilities: {card_payments: {requested: true}, transfers: {requested: true}},
    metadata: {organizer_id: 'org-node'},
  });
  assert(account.id.startsWith('acct_'), account.id);
  equal([account.charges_enabled, account.payouts_enabled, account.details_submitted],
        [false, false, false], 'flags');
  equal(account.capabilities, {card_payments: 'inactive', transfers: 'inactive'}, 'capabilities');
  assert(account.requirements.currently_due.includes('external_account'), 'requirements due');
  equal(account.controller.stripe_dashboard.type, 'express', 'dashboard');
  state.account = account.id;
});

await check('accountLinks.create: the page onboards the account and goes back to return_url', async () => {
  const link = await stripe.accountLinks.create({
    account: state.account, type: 'account_onboarding',
    return_url: 'https://organiser.example/back', refresh_url: 'https://organiser.example/again',
  });
  equal(link.object, 'account_link', 'object');
  assert(link.expires_at > link.created, 'expires');
  const html = await (await fetch(link.url)).text();
  assert(html.includes('>Complete</button>') && html.includes('>Leave incomplete</button>'), 'buttons');
  const action = html.split('action="')[1].split('"')[0];
  const token = html.split('name="link" value="')[1].split('"')[0];
  const done = await fetch(action, {
    method: 'POST', redirect: 'manual',
    body: new URLSearchParams({link: token, outcome: 'complete'}),
  });
  equal([done.status, done.headers.get('location')], [303, 'https://organiser.example/back'], 'back');
  const account = await stripe.accounts.retrieve(state.account);
  equal([account.charges_enabled, account.payouts_enabled, account.details_submitted],
        [true, true, true], 'onboarded');
  equal(account.capabilities, {card_payments: 'active', transfers: 'active'}, 'active');
});

await check('a destination charge with an application fee: transfer and fee', async () => {
  const pi = await stripe.paymentIntents.create({
    amount: 4000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    transfer_data: {destination: state.account}, application_fee_amount: 400,
    on_behalf_of: state.account,
  });
  equal(pi.status, 'succeeded', 'paid');
  const charge = await stripe.charges.retrieve(pi.latest_charge,
                                               {expand: ['transfer', 'application_fee']});
  equal([charge.transfer.amount, charge.transfer.destination], [4000, state.account], 'transfer');
  assert(charge.transfer.destination_payment.startsWith('py_'), 'destination payment');
  equal([charge.application_fee.amount, charge.application_fee.account, charge.on_behalf_of],
        [400, state.account, state.account], 'fee');
  state.transfer = charge.transfer.id;
  state.fee = charge.application_fee.id;
});

await check('transfers.createReversal: part back, with the fee\'s share; no more than is left', async () => {
  const reversal = await stripe.transfers.createReversal(state.transfer,
                                                         {amount: 2000, refund_application_fee: true});
  equal([reversal.object, reversal.amount, reversal.transfer],
        ['transfer_reversal', 2000, state.transfer], 'reversal');
  const transfer = await stripe.transfers.retrieve(state.transfer);
  equal([transfer.amount_reversed, transfer.reversed], [2000, false], 'transfer');
  const fee = await stripe.applicationFees.retrieve(state.fee);
  equal(fee.amount_refunded, 200, 'half the fee back');
  const listed = await stripe.transfers.listReversals(state.transfer).autoPagingToArray({limit: 10});
  equal(listed.map((r) => r.id), [reversal.id], 'listed');
  const e = await rejects(stripe.transfers.createReversal(state.transfer, {amount: 2001}),
                          'StripeInvalidRequestError', 'too much');
  equal(e.param, 'amount', 'param');
});

await check('applicationFees.createRefund: part of the fee goes back', async () => {
  const refund = await stripe.applicationFees.createRefund(state.fee, {amount: 50});
  equal([refund.object, refund.amount, refund.fee], ['fee_refund', 50, state.fee], 'refund');
  const fee = await stripe.applicationFees.retrieve(state.fee);
  equal([fee.amount_refunded, fee.refunded, fee.refunds.data.length], [250, false, 2], 'fee');
});

await check('stripeAccount: a direct charge lives on the account only', async () => {
  const on = {stripeAccount: state.account};
  const pi = await stripe.paymentIntents.create({
    amount: 3000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    application_fee_amount: 300,
  }, on);
  equal(pi.status, 'succeeded', 'paid');
  equal((await stripe.paymentIntents.retrieve(pi.id, {}, on)).id, pi.id, 'on the account');
  const missing = await rejects(stripe.paymentIntents.retrieve(pi.id), 'StripeInvalidRequestError',
                                'not the platform\'s');
  equal([missing.statusCode, missing.code], [404, 'resource_missing'], 'missing');
  const foreign = await rejects(stripe.paymentIntents.list({}, {stripeAccount: 'acct_1NotConnected000'}),
                                'StripePermissionError', 'foreign account');
  equal(foreign.statusCode, 403, 'forbidden');
  const onboarded = await stripe.rawRequest('POST', `/_sandbox/accounts/${state.account}/onboard`,
                                            {outcome: 'complete'});
  equal(onboarded.charges_enabled, true, 'the control through rawRequest');
});

await check('stripeAccount with a bank transfer and OXXO: funded, paid, the fee taken then', async () => {
  const on = {stripeAccount: state.account};
  const customer = await stripe.customers.create({email: 'buyer@example.com'}, on);
  const hidden = await rejects(stripe.customers.retrieve(customer.id), 'StripeInvalidRequestError',
                               'the platform saw the account\'s customer');
  equal(hidden.statusCode, 404, 'not the platform\'s');
  const pi = await stripe.paymentIntents.create({
    amount: 10000, currency: 'mxn', customer: customer.id, confirm: true, application_fee_amount: 400,
    payment_method_types: ['customer_balance'], payment_method_data: {type: 'customer_balance'},
    payment_method_options: {customer_balance: {funding_type: 'bank_transfer',
                                                bank_transfer: {type: 'mx_bank_transfer'}}},
  }, on);
  equal(pi.status, 'requires_action', 'awaits the transfer');
  await stripe.testHelpers.customers.fundCashBalance(customer.id, {amount: 10000, currency: 'mxn'}, on);
  const paid = await stripe.paymentIntents.retrieve(pi.id, {}, on);
  equal(paid.status, 'succeeded', 'paid by the transfer');
  const charge = await stripe.charges.retrieve(paid.latest_charge, {}, on);
  const fee = await stripe.applicationFees.retrieve(charge.application_fee);
  equal([fee.amount, fee.account], [400, state.account], 'the fee');
  const voucher = await stripe.paymentIntents.create({
    amount: 20000, currency: 'mxn', payment_method_types: ['oxxo'], confirm: true,
    application_fee_amount: 700,
    payment_method_data: {type: 'oxxo', billing_details: {name: 'Ana López', email: 'ana@example.com'}},
  }, on);
  equal(voucher.status, 'requires_action', 'a voucher');
  const cashed = await stripe.rawRequest('POST', `/_sandbox/payment_intents/${voucher.id}/pay_voucher`,
                                         {}, on);
  equal(cashed.status, 'succeeded', 'paid at the store, on the account');
  const oxxo = await stripe.charges.retrieve(cashed.latest_charge, {}, on);
  equal((await stripe.applicationFees.retrieve(oxxo.application_fee)).amount, 700, 'its fee');
});

await check('Connect webhooks verified by constructEvent, naming their account', async () => {
  const deadline = Date.now() + 20000;
  const has = (type, account) => receiver.received.some(([t, a]) => t === type && a === account);
  while (Date.now() < deadline && !has('payment_intent.succeeded', state.account)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  equal(receiver.rejected, [], 'no rejected delivery');
  assert(has('account.updated', state.account), 'account.updated with account');
  assert(has('payment_intent.succeeded', state.account), 'direct charge event with account');
  for (const type of ['transfer.created', 'transfer.reversed', 'application_fee.created',
                      'application_fee.refunded']) {
    assert(has(type, null), `${type} of the platform`);
  }
});

receiver.server.close();
report();
