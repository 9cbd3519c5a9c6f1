// Stripe's official Node SDK against the sandbox, by host and port (the SDK has no path prefix
// option).
//
// Usage: node sdk_sandbox.mjs HOST PORT [RECEIVER_PORT WEBHOOK_SECRET]
//
// With a receiver port, runs a webhook receiver there that verifies every delivery with
// stripe.webhooks.constructEvent and checks at the end that every listed event arrived once.
// Prints one line per check ("ok   name" or "FAIL name" with the error) and ends with
// "N passed, N failed"; exits 1 on any failure.

import {randomUUID} from 'node:crypto';
import Stripe from 'stripe';

import {assert, check, equal, receive, rejects, report} from './peer.mjs';

const [host, port, receiverPort, secret] = process.argv.slice(2);
const options = {host, port: Number(port), protocol: 'http', maxNetworkRetries: 0};
const stripe = new Stripe('sk_test_node_' + randomUUID().replaceAll('-', ''), options);

const receiver = receiverPort ? await receive(stripe, receiverPort, secret, (e) => e.id) : null;

const state = {};
const ours = [];

await check('25 PaymentIntents: autoPagingEach with limit 10 sees each once, newest first', async () => {
  for (let i = 0; i < 25; i++) {
    const pi = await stripe.paymentIntents.create({amount: 1000 + i, currency: 'usd',
                                                   metadata: {n: String(i)}});
    ours.push(pi.id);
  }
  const seen = [];
  await stripe.paymentIntents.list({limit: 10}).autoPagingEach((pi) => { seen.push(pi.id); });
  equal(new Set(seen).size, seen.length, 'no PaymentIntent seen twice');
  equal(seen.filter((id) => ours.includes(id)), [...ours].reverse(), 'ours, newest first');
  const first = await stripe.paymentIntents.list({limit: 10});
  assert(first.has_more === true && first.data.length === 10, 'first page of 10 with has_more');
  equal(first.url, '/v1/payment_intents', 'list url');
});

await check('autoPagingEach backwards with ending_before walks towards the newest', async () => {
  const seen = [];
  await stripe.paymentIntents.list({limit: 10, ending_before: ours[0]})
    .autoPagingEach((pi) => { seen.push(pi.id); });
  equal(seen.slice(0, 24), ours.slice(1), 'oldest to newest after the cursor');
  equal(new Set(seen).size, seen.length, 'none twice');
});

await check('create, retrieve, update', async () => {
  const pi = await stripe.paymentIntents.create({
    amount: 2500, currency: 'eur', description: 'Tickets',
    metadata: {order: 'N-1'}, automatic_payment_methods: {enabled: true},
  });
  assert(pi.id.startsWith('pi_') && pi.client_secret.startsWith(pi.id + '_secret_'), pi.id);
  equal(pi.status, 'requires_payment_method', 'status');
  equal(pi.lastResponse.statusCode, 200, 'status code');
  assert(pi.lastResponse.requestId.startsWith('req_'), 'request id');
  const again = await stripe.paymentIntents.retrieve(pi.id);
  equal([again.id, again.amount, again.metadata.order], [pi.id, 2500, 'N-1'], 'retrieved');
  const updated = await stripe.paymentIntents.update(pi.id, {metadata: {seat: '4C', order: ''},
                                                             description: 'VIP'});
  equal([updated.metadata, updated.description], [{seat: '4C'}, 'VIP'], 'updated');
  state.pi = pi;
});

await check('confirm with pm_card_visa succeeds, with its charge listed by payment_intent', async () => {
  const pi = await stripe.paymentIntents.confirm(state.pi.id, {payment_method: 'pm_card_visa'});
  equal([pi.status, pi.amount_received], ['succeeded', 2500], 'succeeded');
  const charges = await stripe.charges.list({payment_intent: pi.id});
  equal(charges.data.map((c) => [c.id, c.status, c.paid]), [[pi.latest_charge, 'succeeded', true]],
        'one charge');
  const expanded = await stripe.paymentIntents.retrieve(pi.id, {expand: ['latest_charge']});
  equal(expanded.latest_charge.object, 'charge', 'expanded');
});

await check('decline: StripeCardError with the decline code', async () => {
  const pi = await stripe.paymentIntents.create({amount: 1500, currency: 'usd'});
  const e = await rejects(
    stripe.paymentIntents.confirm(pi.id, {payment_method: 'pm_card_visa_chargeDeclinedInsufficientFunds'}),
    'StripeCardError', 'declined');
  equal([e.statusCode, e.code, e.decline_code], [402, 'card_declined', 'insufficient_funds'], 'error');
  equal(e.raw.payment_intent.id, pi.id, 'the PaymentIntent in the error');
  const after = await stripe.paymentIntents.retrieve(pi.id);
  equal(after.status, 'requires_payment_method', 'status after');
});

await check('3-D Secure then cancel', async () => {
  const pi = await stripe.paymentIntents.create({amount: 1500, currency: 'usd',
    payment_method: 'pm_card_authenticationRequired', confirm: true});
  equal(pi.status, 'requires_action', 'requires_action');
  const canceled = await stripe.paymentIntents.cancel(pi.id, {cancellation_reason: 'abandoned'});
  equal([canceled.status, canceled.cancellation_reason], ['canceled', 'abandoned'], 'canceled');
  const e = await rejects(stripe.paymentIntents.cancel(pi.id), 'StripeInvalidRequestError', 'again');
  equal(e.code, 'payment_intent_unexpected_state', 'code');
});

await check('idempotent replay and mismatch', async () => {
  const key = 'node-' + randomUUID();
  const first = await stripe.paymentIntents.create({amount: 1000, currency: 'eur'}, {idempotencyKey: key});
  const again = await stripe.paymentIntents.create({amount: 1000, currency: 'eur'}, {idempotencyKey: key});
  equal(again.id, first.id, 'same PaymentIntent');
  equal(again.lastResponse.headers['idempotent-replayed'], 'true', 'replayed header');
  equal(again.lastResponse.requestId, first.lastResponse.requestId, 'the original request id');
  const e = await rejects(
    stripe.paymentIntents.create({amount: 2000, currency: 'eur'}, {idempotencyKey: key}),
    'StripeIdempotencyError', 'other parameters');
  equal(e.statusCode, 400, 'status');
  state.keyed = {pi: first, key};
});

await check('events carry request.id and idempotency_key of the request that caused them', async () => {
  const {pi, key} = state.keyed;
  const events = await stripe.events.list({type: 'payment_intent.created', limit: 100});
  const event = events.data.find((e) => e.data.object.id === pi.id);
  assert(event, 'payment_intent.created of the keyed create');
  equal(event.request, {id: pi.lastResponse.requestId, idempotency_key: key}, 'request');
});

await check('events: created[gte] with starting_after pages without overlap, newest first', async () => {
  const newest = (await stripe.events.list({limit: 100})).data;
  const since = newest[newest.length - 1].created;
  const page1 = await stripe.events.list({created: {gte: since}, limit: 3});
  const page2 = await stripe.events.list({created: {gte: since}, limit: 3,
                                          starting_after: page1.data[2].id});
  const both = [...page1.data, ...page2.data];
  equal(both.map((e) => e.id), newest.slice(0, 6).map((e) => e.id), 'the six newest, in order');
  assert(both.every((e) => e.created >= since), 'created filter');
  for (let i = 1; i < both.length; i++) assert(both[i - 1].created >= both[i].created, 'order');
  const all = await stripe.events.list({type: 'payment_intent.created', limit: 10})
    .autoPagingToArray({limit: 1000});
  assert(all.length >= 29, `every created event across pages (${all.length})`);
  equal(new Set(all.map((e) => e.id)).size, all.length, 'none twice');
  const none = await stripe.events.list({created: {gt: newest[0].created + 3600}});
  equal(none.data.length, 0, 'nothing in the future');
});

await check('errors: resource_missing and authentication', async () => {
  const e = await rejects(stripe.paymentIntents.retrieve('pi_missing'), 'StripeInvalidRequestError',
                          'missing');
  equal([e.statusCode, e.code], [404, 'resource_missing'], 'missing');
  const bad = new Stripe('sk_live_nope', options);
  const auth = await rejects(bad.paymentIntents.list(), 'StripeAuthenticationError', 'bad key');
  equal(auth.statusCode, 401, 'status');
  const limit = await rejects(stripe.charges.list({limit: 101}), 'StripeInvalidRequestError', 'limit');
  equal(limit.param, 'limit', 'param');
});

async function eventually(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function paid(paymentMethod, extra = {}) {
  return stripe.paymentIntents.create({amount: 2500, currency: 'usd', payment_method: paymentMethod,
                                       confirm: true, ...extra});
}

await check('refunds: partial and full, retrieve, list by payment_intent across pages', async () => {
  const pi = await paid('pm_card_visa');
  const partial = await stripe.refunds.create({payment_intent: pi.id, amount: 1000,
                                               reason: 'requested_by_customer', metadata: {k: 'v'}});
  for (const field of ['id', 'object', 'amount', 'currency', 'status', 'payment_intent', 'charge',
                       'reason', 'metadata', 'created']) {
    assert(field in partial, field);
  }
  equal([partial.object, partial.amount, partial.status, partial.payment_intent, partial.charge],
        ['refund', 1000, 'succeeded', pi.id, pi.latest_charge], 'partial');
  const small = [];
  for (let i = 0; i < 4; i++) {
    small.push((await stripe.refunds.create({payment_intent: pi.id, amount: 100})).id);
  }
  const rest = await stripe.refunds.create({payment_intent: pi.id});
  equal(rest.amount, 1100, 'the rest');
  const seen = await stripe.refunds.list({payment_intent: pi.id, limit: 2}).autoPagingToArray({limit: 100});
  equal(seen.map((r) => r.id), [rest.id, ...small.reverse(), partial.id], 'every refund, newest first');
  equal((await stripe.refunds.retrieve(partial.id)).metadata, {k: 'v'}, 'retrieve');
  const charge = await stripe.charges.retrieve(pi.latest_charge);
  equal([charge.amount_refunded, charge.refunded], [2500, true], 'charge refunded');
  const again = await rejects(stripe.refunds.create({payment_intent: pi.id}), 'StripeInvalidRequestError',
                              'again');
  equal(again.code, 'charge_already_refunded', 'code');
});

await check('refunds: pm_card_refundFail fails later', async () => {
  const pi = await paid('pm_card_refundFail');
  const refund = await stripe.refunds.create({payment_intent: pi.id});
  equal(refund.status, 'succeeded', 'succeeded at first');
  const failed = await eventually('refund.failed', async () => {
    const r = await stripe.refunds.retrieve(refund.id);
    return r.status === 'failed' ? r : null;
  });
  equal(failed.failure_reason, 'expired_or_canceled_card', 'failure_reason');
});

await check('disputes: pm_card_createDispute, list, retrieve, update with winning_evidence wins', async () => {
  const pi = await paid('pm_card_createDispute');
  const dispute = await eventually('the dispute', async () =>
    (await stripe.disputes.list({payment_intent: pi.id})).data[0]);
  equal([dispute.object, dispute.status, dispute.reason, dispute.amount, dispute.charge],
        ['dispute', 'needs_response', 'fraudulent', 2500, pi.latest_charge], 'opened');
  assert(dispute.evidence_details.due_by > dispute.created, 'due_by');
  equal((await stripe.disputes.retrieve(dispute.id)).id, dispute.id, 'retrieve');
  const updated = await stripe.disputes.update(dispute.id,
                                               {evidence: {uncategorized_text: 'winning_evidence'}});
  equal(updated.status, 'under_review', 'submitted');
  await eventually('won', async () => (await stripe.disputes.retrieve(dispute.id)).status === 'won');
  const lost = await paid('pm_card_createDispute');
  const other = await eventually('another dispute', async () =>
    (await stripe.disputes.list({charge: lost.latest_charge})).data[0]);
  equal((await stripe.disputes.close(other.id)).status, 'lost', 'closed by accepting it');
});

await check('manual capture: capture with amount_to_capture; cancel releases', async () => {
  const pi = await paid('pm_card_visa', {capture_method: 'manual'});
  equal([pi.status, pi.amount_capturable], ['requires_capture', 2500], 'held');
  const captured = await stripe.paymentIntents.capture(pi.id, {amount_to_capture: 1500});
  equal([captured.status, captured.amount_received], ['succeeded', 1500], 'captured');
  const charge = await stripe.charges.retrieve(pi.latest_charge);
  equal([charge.captured, charge.amount_captured], [true, 1500], 'charge');
  const held = await paid('pm_card_visa', {capture_method: 'manual'});
  equal((await stripe.paymentIntents.cancel(held.id)).status, 'canceled', 'released');
  equal((await stripe.charges.retrieve(held.latest_charge)).refunded, true, 'released charge');
});

await check('processing: pm_usBankAccount_success, then succeeded', async () => {
  const pi = await stripe.paymentIntents.create({amount: 2500, currency: 'usd',
                                                 payment_method_types: ['us_bank_account'],
                                                 payment_method: 'pm_usBankAccount_success',
                                                 confirm: true});
  equal(pi.status, 'processing', 'processing');
  await eventually('succeeded', async () =>
    (await stripe.paymentIntents.retrieve(pi.id)).status === 'succeeded');
});

await check('card PaymentMethods by number with a publishable key', async () => {
  const js = new Stripe('pk_test_node', options);
  const pm = await js.paymentMethods.create({type: 'card', card: {number: '4242424242424242', exp_month: 12,
                                                                  exp_year: 2040, cvc: '123'}});
  equal([pm.type, pm.card.last4, pm.card.brand], ['card', '4242', 'visa'], 'created');
  const bad = await rejects(js.paymentMethods.create({type: 'card', card: {number: '4242424242424241',
                                                                           exp_month: 12, exp_year: 2040}}),
                            'StripeCardError', 'Luhn');
  equal(bad.code, 'incorrect_number', 'code');
  const pi = await stripe.paymentIntents.create({amount: 2500, currency: 'usd'});
  const done = await js.paymentIntents.confirm(pi.id, {payment_method: pm.id, client_secret: pi.client_secret});
  equal(done.status, 'succeeded', 'confirmed with it');
});

async function statusOf(id, status) {
  return eventually(`${id} ${status}`, async () => {
    const pi = await stripe.paymentIntents.retrieve(id);
    return pi.status === status ? pi : null;
  });
}

await check('OXXO: the voucher in next_action.oxxo_display_details, paid at the store', async () => {
  const pi = await stripe.paymentIntents.create({
    amount: 20000, currency: 'mxn', payment_method_types: ['oxxo'], confirm: true,
    payment_method_data: {type: 'oxxo', billing_details: {name: 'Ana López', email: 'ana@example.com'}},
  });
  equal([pi.status, pi.next_action.type], ['requires_action', 'oxxo_display_details'], 'voucher');
  const details = pi.next_action.oxxo_display_details;
  assert(details.number.length === 32, 'a 32-digit number');
  assert(details.expires_after > Date.now() / 1000, 'expires later');
  assert(details.hosted_voucher_url.startsWith(`http://${host}:${port}/`), details.hosted_voucher_url);
  // The sandbox's own control (not Stripe's), through the SDK's raw request.
  const paid = await stripe.rawRequest('POST', `/_sandbox/payment_intents/${pi.id}/pay_voucher`, {});
  equal(paid.status, 'succeeded', 'paid at the store');
  const charge = await stripe.charges.retrieve(paid.latest_charge);
  equal([charge.payment_method_details.type, charge.payment_method_details.oxxo.number],
        ['oxxo', details.number], 'the charge shows the voucher');
  const expiring = await stripe.paymentIntents.create({
    amount: 20000, currency: 'mxn', payment_method_types: ['oxxo'], confirm: true,
    payment_method_data: {type: 'oxxo',
                          billing_details: {name: 'Ana', email: 'ana.expire_with_delay@example.com'}},
  });
  const expired = await statusOf(expiring.id, 'requires_payment_method');
  equal(expired.last_payment_error.code, 'payment_intent_payment_attempt_expired', 'expired on time');
});

await check('bank transfer: instructions, funded in part with testHelpers.customers.fundCashBalance', async () => {
  const customer = await stripe.customers.create({email: 'jenny@example.com', name: 'Jenny Rosen'});
  const pi = await stripe.paymentIntents.create({
    amount: 10000, currency: 'eur', customer: customer.id, confirm: true,
    payment_method_types: ['customer_balance'], payment_method_data: {type: 'customer_balance'},
    payment_method_options: {customer_balance: {funding_type: 'bank_transfer', bank_transfer: {
      type: 'eu_bank_transfer', eu_bank_transfer: {country: 'DE'}}}},
  });
  equal(pi.next_action.type, 'display_bank_transfer_instructions', 'instructions');
  const instructions = pi.next_action.display_bank_transfer_instructions;
  equal([instructions.type, instructions.amount_remaining, instructions.currency],
        ['eu_bank_transfer', 10000, 'eur'], 'what is owed');
  const iban = instructions.financial_addresses[0].iban;
  equal([iban.country, iban.iban.slice(0, 2), iban.iban.length], ['DE', 'DE', 22], 'a German IBAN');
  const funded = await stripe.testHelpers.customers.fundCashBalance(customer.id, {
    amount: 2500, currency: 'eur', reference: instructions.reference});
  equal([funded.object, funded.type, funded.net_amount], ['customer_cash_balance_transaction', 'funded', 2500],
        'funded');
  const part = await stripe.paymentIntents.retrieve(pi.id);
  equal([part.status, part.next_action.display_bank_transfer_instructions.amount_remaining],
        ['requires_action', 7500], 'funded in part');
  const transactions = await stripe.customers.listCashBalanceTransactions(customer.id);
  equal(transactions.data.map((t) => t.type), ['applied_to_payment', 'funded'], 'the transactions');
  await stripe.testHelpers.customers.fundCashBalance(customer.id, {amount: 7500, currency: 'eur'});
  equal((await stripe.paymentIntents.retrieve(pi.id)).status, 'succeeded', 'then in full');
  const balance = await stripe.customers.retrieveCashBalance(customer.id);
  equal(balance.available, {eur: 0}, 'nothing left over');
});

await check('SEPA Direct Debit: processing, then succeeded; the disputed test IBAN is disputed', async () => {
  const debit = (iban) => stripe.paymentIntents.create({
    amount: 4200, currency: 'eur', payment_method_types: ['sepa_debit'], confirm: true,
    payment_method_data: {type: 'sepa_debit', sepa_debit: {iban},
                          billing_details: {name: 'Jenny Rosen', email: 'jenny@example.com'}},
    mandate_data: {customer_acceptance: {type: 'online', online: {
      ip_address: '127.0.0.1', user_agent: 'stripe-node'}}},
  });
  const ok = await debit('AT611904300234573201');
  equal(ok.status, 'processing', 'processing');
  equal((await statusOf(ok.id, 'succeeded')).amount_received, 4200, 'succeeded');
  const disputed = await debit('AT591904300235473203');
  const dispute = await eventually('the dispute', async () =>
    (await stripe.disputes.list({payment_intent: disputed.id})).data[0]);
  equal(dispute.reason, 'debit_not_authorized', 'reason');
});

if (receiver) {
  await check('webhooks verified by stripe.webhooks.constructEvent, each event once', async () => {
    const listed = await stripe.events.list({limit: 100}).autoPagingToArray({limit: 10000});
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline && receiver.received.length < listed.length) {
      await new Promise((r) => setTimeout(r, 100));
    }
    equal(receiver.rejected, [], 'no rejected delivery');
    equal([...receiver.received].sort(), listed.map((e) => e.id).sort(), 'every listed event');
  });
  receiver.server.close();
}

report();
