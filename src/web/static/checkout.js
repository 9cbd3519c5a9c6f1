// TMT checkout: the reference example for the platform's front ends.
//
// A ticket purchase with the same calls a production front end makes, in this order:
//
//   1. tmt-payments: POST /stripe_create_payment_intent, JSON {"data": {amount, currency,
//      description, metadata}}, with an Idempotency-Key that belongs to this order: a retry
//      (a network error, a declined card, a double click) gets the same PaymentIntent back
//      instead of a second one. Answer: paymentIntentId and clientSecret.
//   2. Stripe: a card PaymentMethod from the card fields.
//        production: stripe.createPaymentMethod({type: 'card', card: cardElement})
//      Stripe.js's card Element keeps the card number out of the page's own code (and out of
//      the platform's PCI scope). The sandbox has no Stripe.js, so here the page makes the same
//      request itself: POST /v1/payment_methods with the publishable key.
//   3. Stripe: confirm the PaymentIntent with its client secret, the PaymentMethod and a
//      return_url.
//        production: stripe.confirmCardPayment(clientSecret,
//                      {payment_method: pm.id, return_url: returnUrl}, {handleActions: false})
//      (without {handleActions: false} Stripe.js shows the 3-D Secure challenge in its own
//      modal instead of handing back the redirect below).
//   4. When the card asks for 3-D Secure, the answer is requires_action with
//      next_action.redirect_to_url: the browser goes there (the issuer's challenge; here the
//      sandbox's page with "Complete" and "Fail"), which sends it back to return_url with
//      ?payment_intent=…&payment_intent_client_secret=…&redirect_status=…
//   5. The outcome: Stripe's own view of the PaymentIntent (with last_payment_error),
//        production: stripe.retrievePaymentIntent(clientSecret)
//      and tmt-payments' (POST /stripe_get_payment_intent), which also brings its ledger up to
//      date. The page shows it; it never issues tickets itself. The platform's back end does,
//      on POST /stripe_confirm_payment or on the service's fulfilment notification.
//
// With Stripe Connect on, the tickets are sold for an organiser: the create names it
// (organizerId, tickets), and a direct charge lives on the organiser's account, so Stripe.js is
// initialised with the create's stripeAccount (production: Stripe(publishableKey,
// {stripeAccount})) and every Stripe call of the page carries it (here: the Stripe-Account
// header). The demo lists the sandbox's organisers and onboards new ones through
// POST /stripe_onboard_organizer and Stripe's onboarding page (a platform's back end does that
// for its organisers, not its buyers' page).
//
// Money that comes later (tmt-payments' docs/contract.md §16): for MXN, cash at OXXO (the page
// confirms with the buyer's name and e-mail, production: stripe.confirmOxxoPayment, and shows
// the voucher) and a SPEI transfer (the create confirms it and answers the CLABE and reference
// in nextAction); for EUR, SEPA Direct Debit from an IBAN with an online mandate (production:
// stripe.confirmSepaDebitPayment), processing until the bank answers. The create names the
// method (paymentMethodTypes) and, for a transfer, the buyer's e-mail (customerEmail).
//
// Plain JavaScript, no build step. Everything runs on this page's origin: the service, and the
// sandbox at /sandbox (production: Stripe.js talks to api.stripe.com with a pk_live_… key).
(function () {
  'use strict';

  // Any pk_test_… key works with the sandbox; production uses the account's publishable key.
  const PUBLISHABLE_KEY = 'pk_test_tmt_checkout_demo';
  const STRIPE_API = '/sandbox';

  const EVENT = { id: 'rock-2026', name: 'Rock en el Parque 2026' };
  const TICKETS = { general: 'General admission', vip: 'VIP' };
  // Prices in minor units, as Stripe counts them: JPY has no decimals, so ¥7,000 is 7000.
  const PRICES = {
    eur: { general: 4500, vip: 12000 },
    mxn: { general: 85000, vip: 230000 },
    jpy: { general: 7000, vip: 19000 },
    usd: { general: 4950, vip: 12900 },
  };

  const $ = (id) => document.getElementById(id);
  const quantities = { general: 1, vip: 0 };
  // The PaymentIntent of the current order, kept while the cart stays the same so that
  // retrying with another card pays the same PaymentIntent.
  let order = null;
  // Stripe Connect: how payments are made for organisers (null: not at all), as the service says.
  let connect = null;

  // ---- money -------------------------------------------------------------------------------

  function formatter(currency) {
    // The buyer's own locale decides separators and symbol placement.
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() });
  }

  // The currency's decimals. Intl agrees with Stripe for the currencies offered here; for a few
  // others (HUF, TWD, ISK, UGX) Stripe counts differently, and the service's answer (the amount
  // it charged) is what to show after the create.
  function decimals(currency) {
    return formatter(currency).resolvedOptions().maximumFractionDigits;
  }

  function formatMinor(minor, currency) {
    return formatter(currency).format(minor / 10 ** decimals(currency));
  }

  function formatMajor(major, currency) {
    return formatter(currency).format(Number(major));
  }

  // Minor units as the decimal text the service takes ("99.00", "14000"), built from digits so
  // that no binary rounding ever touches an amount.
  function majorText(minor, currency) {
    const d = decimals(currency);
    if (d === 0) return String(minor);
    const digits = String(minor).padStart(d + 1, '0');
    return digits.slice(0, -d) + '.' + digits.slice(-d);
  }

  function cart() {
    const currency = $('currency').value;
    let total = 0;
    const lines = [];
    for (const [ticket, count] of Object.entries(quantities)) {
      total += PRICES[currency][ticket] * count;
      if (count > 0) lines.push(count + 'x ' + ticket);
    }
    const count = Object.values(quantities).reduce((a, b) => a + b, 0);
    const organizer = connect ? $('organizer').value : '';
    const method = chosenMethod();
    const email = method === 'card' ? '' : $('buyer-email').value.trim();
    return {
      currency, total, lines, count, organizer, method, email,
      signature: [currency, organizer, method, email, JSON.stringify(quantities)].join(':'),
    };
  }

  // ---- the payment method -----------------------------------------------------------------

  function chosenMethod() {
    const checked = document.querySelector('input[name="method"]:checked');
    return checked ? checked.value : 'card';
  }

  // Only the methods of the chosen currency are offered; the buyer's details only where the
  // method needs them.
  function renderMethods() {
    const currency = $('currency').value;
    for (const label of document.querySelectorAll('.methods label[data-currency]')) {
      const offered = label.dataset.currency === currency;
      label.hidden = !offered;
      const input = label.querySelector('input');
      if (!offered && input.checked) document.querySelector('input[name="method"][value="card"]').checked = true;
    }
    const method = chosenMethod();
    $('card-fields').hidden = method !== 'card';
    $('test-cards').hidden = method !== 'card';
    $('buyer').hidden = method === 'card';
    $('iban-field').hidden = method !== 'sepa_debit';
  }

  function readBuyer(method) {
    const name = $('buyer-name').value.trim();
    const email = $('buyer-email').value.trim();
    if (method !== 'customer_balance' && !name) throw new CardError('Enter your name.');
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw new CardError('Enter your e-mail.');
    const iban = $('iban').value.replace(/\s/g, '').toUpperCase();
    if (method === 'sepa_debit' && !/^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$/.test(iban)) {
      throw new CardError('Enter the IBAN of the account to debit.');
    }
    return { name, email, iban };
  }

  // What Stripe is sent to confirm with a method that is not a card (production: Stripe.js's
  // confirmOxxoPayment or confirmSepaDebitPayment with the same billing details).
  function methodData(method, buyer) {
    const data = {
      'payment_method_data[type]': method,
      'payment_method_data[billing_details][name]': buyer.name,
      'payment_method_data[billing_details][email]': buyer.email,
    };
    if (method === 'sepa_debit') {
      data['payment_method_data[sepa_debit][iban]'] = buyer.iban;
      data['mandate_data[customer_acceptance][type]'] = 'online';
      data['mandate_data[customer_acceptance][online][infer_from_client]'] = 'true';
    }
    return data;
  }

  function render() {
    renderMethods();
    const c = cart();
    for (const li of document.querySelectorAll('[data-ticket]')) {
      const ticket = li.dataset.ticket;
      li.querySelector('[data-price]').textContent = formatMinor(PRICES[c.currency][ticket], c.currency);
      li.querySelector('[data-qty]').textContent = quantities[ticket];
    }
    $('total').textContent = formatMinor(c.total, c.currency);
    $('pay').textContent = c.total > 0 ? 'Pay ' + formatMinor(c.total, c.currency) : 'Choose your tickets';
    $('pay').disabled = c.total === 0 || (connect !== null && !c.organizer);
  }

  // ---- the two APIs ------------------------------------------------------------------------

  async function answer(response) {
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON: keep {} */ }
    return { ok: response.ok, status: response.status, body };
  }

  // tmt-payments: {"data": {...}} in, {"data": {...}} or {"error", "code"} out.
  async function service(path, data, idempotencyKey) {
    const headers = { 'Content-Type': 'application/json' };
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    return answer(await fetch(path, { method: 'POST', headers, body: JSON.stringify({ data }) }));
  }

  // Stripe's API as Stripe.js calls it: form-encoded, with the publishable key, and for a
  // direct charge with the organiser's account.
  async function stripe(method, path, params, account) {
    const init = { method, headers: { Authorization: 'Bearer ' + PUBLISHABLE_KEY } };
    if (account) init.headers['Stripe-Account'] = account;
    if (params) {
      init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
      init.body = new URLSearchParams(params).toString();
    }
    return answer(await fetch(STRIPE_API + path, init));
  }

  function idempotencyKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return 'checkout-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // Step 1: one PaymentIntent per order; the same key for as long as the cart is unchanged.
  async function paymentIntentFor(c) {
    if (!order || order.signature !== c.signature) {
      order = { signature: c.signature, key: idempotencyKey() };
    }
    const data = {
      amount: majorText(c.total, c.currency),
      currency: c.currency,
      description: EVENT.name + ': ' + c.lines.join(', '),
      metadata: { event_id: EVENT.id, tickets: c.lines.join(', '), channel: 'web-demo' },
    };
    if (c.organizer) Object.assign(data, { organizerId: c.organizer, tickets: c.count });
    if (c.method !== 'card') data.paymentMethodTypes = [c.method];
    if (c.method === 'customer_balance') data.customerEmail = c.email;
    const r = await service('/stripe_create_payment_intent', data, order.key);
    if (!r.ok) throw new Error(r.body.error || 'The payment could not be created (HTTP ' + r.status + ').');
    return r.body.data;
  }

  // ---- the card form -----------------------------------------------------------------------

  class CardError extends Error {}

  function readCard() {
    const number = $('card-number').value.replace(/[\s-]/g, '');
    const expiry = $('card-expiry').value.match(/^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/);
    const cvc = $('card-cvc').value.trim();
    if (!/^\d{12,19}$/.test(number)) throw new CardError('Enter the card number.');
    if (!expiry) throw new CardError('Enter the expiry date as MM / YY.');
    if (!/^\d{3,4}$/.test(cvc)) throw new CardError('Enter the 3 or 4 digit CVC.');
    const year = expiry[2].length === 2 ? '20' + expiry[2] : expiry[2];
    return { number, exp_month: String(Number(expiry[1])), exp_year: year, cvc };
  }

  // Step 2 (production: stripe.createPaymentMethod).
  async function paymentMethod(card, account) {
    const r = await stripe('POST', '/v1/payment_methods', {
      type: 'card',
      'card[number]': card.number,
      'card[exp_month]': card.exp_month,
      'card[exp_year]': card.exp_year,
      'card[cvc]': card.cvc,
    }, account);
    if (!r.ok) {
      const error = r.body.error || {};
      if (error.type === 'card_error') throw new CardError(error.message);
      throw new Error(error.message || 'The card could not be read (HTTP ' + r.status + ').');
    }
    return r.body;
  }

  function groupCardNumber(event) {
    const digits = event.target.value.replace(/\D/g, '').slice(0, 19);
    event.target.value = digits.replace(/(\d{4})(?=\d)/g, '$1 ');
  }

  function formatExpiry(event) {
    const digits = event.target.value.replace(/\D/g, '').slice(0, 4);
    event.target.value = digits.length > 2 ? digits.slice(0, 2) + ' / ' + digits.slice(2) : digits;
  }

  // ---- paying ------------------------------------------------------------------------------

  let leaving = false;

  function busy(on, text) {
    $('pay').disabled = on;
    $('progress').textContent = on ? text : '';
  }

  function showCardError(message) {
    $('card-error').textContent = message;
    $('card-error').hidden = !message;
  }

  async function pay(event) {
    event.preventDefault();
    showCardError('');
    const c = cart();
    if (c.total === 0) return;
    if (c.method !== 'card') { await payLater(c); return; }
    let card;
    try { card = readCard(); } catch (e) { showCardError(e.message); return; }
    try {
      busy(true, 'Reserving your tickets…');
      const intent = await paymentIntentFor(c);
      busy(true, 'Checking your card…');
      const account = intent.stripeAccount || null;
      const pm = await paymentMethod(card, account);
      busy(true, 'Confirming the payment…');
      // Step 3 (production: stripe.confirmCardPayment).
      const confirmed = await stripe('POST',
        '/v1/payment_intents/' + encodeURIComponent(intent.paymentIntentId) + '/confirm', {
          client_secret: intent.clientSecret,
          payment_method: pm.id,
          return_url: location.origin + location.pathname,
        }, account);
      if (!confirmed.ok) {
        const error = confirmed.body.error || {};
        if (error.type !== 'card_error') {
          throw new Error(error.message || 'The payment could not be confirmed (HTTP ' + confirmed.status + ').');
        }
        // A decline: Stripe's error names the card's problem and carries the PaymentIntent.
        await showOutcome(intent.paymentIntentId, error.payment_intent, error, false);
        return;
      }
      const pi = confirmed.body;
      if (pi.status === 'requires_action' && pi.next_action && pi.next_action.type === 'redirect_to_url') {
        // Step 4: the 3-D Secure challenge; the browser comes back to return_url (and Stripe.js,
        // loaded again there, is initialised with the same account).
        if (account) sessionStorage.setItem('stripeAccount', account);
        leaving = true;
        busy(true, 'Opening your bank’s check…');
        location.assign(pi.next_action.redirect_to_url.url);
        return;
      }
      await showOutcome(pi.id, pi, null, false);
    } catch (e) {
      showCardError(e.message);
    } finally {
      if (!leaving) busy(false);
    }
  }

  // A method whose money comes later: a transfer is confirmed by the create itself; a voucher
  // or a debit by the page, with the buyer's details.
  async function payLater(c) {
    let buyer;
    try { buyer = readBuyer(c.method); } catch (e) { showCardError(e.message); return; }
    try {
      busy(true, 'Reserving your tickets…');
      const intent = await paymentIntentFor(c);
      if (c.method === 'customer_balance') {
        await showOutcome(intent.paymentIntentId, null, null, false);
        return;
      }
      busy(true, c.method === 'oxxo' ? 'Issuing your voucher…' : 'Setting up the debit…');
      const confirmed = await stripe('POST',
        '/v1/payment_intents/' + encodeURIComponent(intent.paymentIntentId) + '/confirm',
        Object.assign({ client_secret: intent.clientSecret }, methodData(c.method, buyer)),
        intent.stripeAccount || null);
      if (!confirmed.ok) {
        const error = confirmed.body.error || {};
        throw new Error(error.message || 'The payment could not be confirmed (HTTP ' + confirmed.status + ').');
      }
      await showOutcome(intent.paymentIntentId, confirmed.body, null, false);
    } catch (e) {
      showCardError(e.message);
    } finally {
      busy(false);
    }
  }

  // What the buyer has to do to pay: the voucher's number, or where to send the transfer.
  function showNextAction(next, currency) {
    const list = $('result-next');
    list.replaceChildren();
    const add = (term, value, name) => {
      if (!value) return;
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      dd.dataset.field = name;
      list.append(dt, dd);
    };
    if (next) {
      const number = next.number ? next.number.replace(/(\d{4})(?=\d)/g, '$1 ') : '';
      add('Número de referencia OXXO', number, 'number');
      add('CLABE', next.clabe, 'clabe');
      add('IBAN', next.iban, 'iban');
      add('BIC', next.bic, 'bic');
      add('Referencia', next.reference, 'reference');
      add('Por pagar', formatMajor(next.amountRemaining, currency), 'amountRemaining');
      add('Fecha límite', next.expiresAt ? new Date(next.expiresAt).toLocaleString() : '', 'expiresAt');
    }
    list.hidden = !next;
    $('result-voucher').hidden = !(next && next.type === 'oxxo_display_details' && next.hostedUrl);
    if (next && next.hostedUrl) $('result-hosted').href = next.hostedUrl;
  }

  // Step 5. `pi` is Stripe's view (from the confirm, the decline or a retrieve), `declined` the
  // card error of a decline, `returned` whether the buyer came back from the 3-D Secure page.
  async function showOutcome(id, pi, declined, returned) {
    showNextAction(null, '');
    let status = pi ? pi.status : null;
    let amount = pi ? formatMinor(pi.amount, pi.currency) : '';
    // tmt-payments' answer is the one to trust, and reading it brings its ledger up to date.
    const r = await service('/stripe_get_payment_intent', { payment_intent_id: id });
    let next = null;
    if (r.ok) {
      status = r.body.data.status;
      amount = formatMajor(r.body.data.amount, r.body.data.currency);
      next = r.body.data.nextAction || null;
      showNextAction(next, r.body.data.currency);
    } else if (r.status !== 401 || !pi) {
      // 401: API_TOKENS is set, so the service reads payments for the platform's back end only;
      // a front end then shows Stripe's view and lets its back end confirm the payment.
      throw new Error(r.body.error || 'The payment could not be read (HTTP ' + r.status + ').');
    }
    const problem = declined || (pi && pi.last_payment_error) || null;
    const paid = status === 'succeeded';
    let title = 'Payment ' + status;
    let message = '';
    if (paid) {
      title = 'Payment successful';
      message = 'Thank you! Your tickets are on their way.';
    } else if (next && next.type === 'oxxo_display_details') {
      title = 'Paga en OXXO';
      message = 'Show this reference at any OXXO store and pay in cash before the deadline; your tickets are held until then.';
    } else if (next) {
      title = 'Transfiere para pagar';
      message = 'Send the amount to this account with the reference; your tickets are held until the deadline.';
    } else if (status === 'processing') {
      title = 'Payment processing';
      message = 'Your bank is still working on it; we will email you when it is done.';
    } else if (status === 'requires_capture') {
      title = 'Card authorised';
      message = 'The amount is held on your card until the tickets are issued.';
    } else if (status === 'requires_payment_method') {
      title = problem && problem.type === 'card_error' ? 'Payment declined' : 'Payment failed';
      message = (problem && problem.message) || 'The payment did not go through.';
    }
    const box = $('result');
    box.classList.toggle('ok', paid);
    box.classList.toggle('bad', !paid && status === 'requires_payment_method');
    $('result-title').textContent = title;
    $('result-amount').textContent = amount;
    $('result-message').textContent = message;
    $('result-id').textContent = id;
    $('result-status').textContent = status;
    $('result-dashboard').href = '/dashboard/payments/' + encodeURIComponent(id);
    // After a decline on this page the same order (and PaymentIntent) can be paid with
    // another card; otherwise the next purchase is a new order.
    const retry = !paid && status === 'requires_payment_method' && !returned && !next;
    $('again').textContent = retry ? 'Try another card'
      : paid ? 'Buy more tickets' : next ? 'New order' : 'Try again';
    $('again').dataset.retry = retry ? 'yes' : '';
    if (paid || returned || next) order = null;
    $('checkout').hidden = true;
    box.hidden = false;
    $('result-title').focus();
  }

  function again() {
    if (!$('again').dataset.retry) order = null;
    $('result').hidden = true;
    $('checkout').hidden = false;
    $('card-number').value = '';
    $('card-expiry').value = '';
    $('card-cvc').value = '';
    render();
    $('card-number').focus();
  }

  // Back from the 3-D Secure page: ?payment_intent=…&payment_intent_client_secret=…
  async function returnedFromAuthentication() {
    const params = new URLSearchParams(location.search);
    const id = params.get('payment_intent');
    const secret = params.get('payment_intent_client_secret');
    if (!id || !secret) return;
    // The client secret has no business in the address bar or the history.
    history.replaceState(null, '', location.pathname);
    $('checkout').hidden = true;
    try {
      // Production: stripe.retrievePaymentIntent(secret).
      const account = sessionStorage.getItem('stripeAccount');
      sessionStorage.removeItem('stripeAccount');
      const r = await stripe('GET', '/v1/payment_intents/' + encodeURIComponent(id) +
        '?client_secret=' + encodeURIComponent(secret), null, account);
      await showOutcome(id, r.ok ? r.body : null, null, true);
    } catch (e) {
      $('checkout').hidden = false;
      showCardError(e.message);
    }
  }

  // ---- organisers (Stripe Connect) --------------------------------------------------------

  function organizerError(message) {
    $('organizer-error').textContent = message;
    $('organizer-error').hidden = !message;
  }

  // The organisers the service knows (the ledger's), those that can take payments selectable;
  // `prefer` is chosen once it can. Whether it is listed and ready.
  async function loadOrganizers(prefer) {
    const r = await answer(await fetch('/demo/organizers'));
    if (!r.ok || !r.body.connect) return false;
    connect = r.body.connect;
    $('organizer-card').hidden = false;
    const select = $('organizer');
    const chosen = prefer || select.value;
    select.replaceChildren();
    let found = false;
    for (const o of r.body.organizers) {
      const option = new Option(o.ready ? o.id : o.id + ' (cannot take payments yet)', o.id);
      option.disabled = !o.ready;
      select.append(option);
      if (o.id === chosen && o.ready) { option.selected = true; found = true; }
    }
    if (!found) {
      const first = Array.from(select.options).find((o) => !o.disabled);
      if (first) first.selected = true;
    }
    $('organizer-note').textContent = select.value
      ? (connect === 'direct' ? 'Direct charges: the payment is made on the organiser’s own account.'
        : 'Destination charges: the money is transferred to the organiser.')
      : 'No organiser can take payments yet: onboard one below.';
    render();
    return found;
  }

  // The platform onboards an organiser: its connected account, and Stripe's onboarding page
  // (here the sandbox's), which sends the browser back to the demo.
  async function onboard() {
    organizerError('');
    const id = $('new-organizer').value.trim();
    const back = location.origin + location.pathname + '?onboarded=' + encodeURIComponent(id);
    const r = await service('/stripe_onboard_organizer',
      { organizerId: id, returnUrl: back, refreshUrl: back });
    if (!r.ok) { organizerError(r.body.error || 'Onboarding failed (HTTP ' + r.status + ').'); return; }
    location.assign(r.body.data.onboardingUrl);
  }

  // Back from Stripe's onboarding: the organiser can take payments once Stripe says so (its
  // account.updated event), which takes a moment.
  async function returnedFromOnboarding() {
    const id = new URLSearchParams(location.search).get('onboarded');
    if (!id) return;
    history.replaceState(null, '', location.pathname);
    $('organizer-note').textContent = 'Onboarding of ' + id + ' done; waiting for Stripe to enable it…';
    for (let n = 0; n < 60; n++) {
      if (await loadOrganizers(id)) {
        $('organizer-note').textContent = id + ' can take payments now.';
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    organizerError(id + ' cannot take payments yet: finish its onboarding.');
  }

  // ---- wiring ------------------------------------------------------------------------------

  for (const [ticket, name] of Object.entries(TICKETS)) {
    const li = $('ticket').content.firstElementChild.cloneNode(true);
    li.dataset.ticket = ticket;
    li.querySelector('.name').textContent = name;
    li.querySelector('[data-step="-1"]').setAttribute('aria-label', 'One ticket fewer: ' + name);
    li.querySelector('[data-step="1"]').setAttribute('aria-label', 'One ticket more: ' + name);
    $('tickets').append(li);
  }
  $('currency').addEventListener('change', render);
  for (const input of document.querySelectorAll('input[name="method"]')) {
    input.addEventListener('change', render);
  }
  for (const button of document.querySelectorAll('[data-iban]')) {
    button.addEventListener('click', () => {
      $('iban').value = button.dataset.iban.replace(/(.{4})(?=.)/g, '$1 ');
    });
  }
  for (const button of document.querySelectorAll('[data-step]')) {
    button.addEventListener('click', () => {
      const ticket = button.closest('[data-ticket]').dataset.ticket;
      quantities[ticket] = Math.min(10, Math.max(0, quantities[ticket] + Number(button.dataset.step)));
      render();
    });
  }
  for (const button of document.querySelectorAll('[data-card]')) {
    button.addEventListener('click', () => {
      $('card-number').value = button.dataset.card.replace(/(\d{4})(?=\d)/g, '$1 ');
      if (!$('card-expiry').value) $('card-expiry').value = '12 / ' + String(new Date().getFullYear() + 3).slice(2);
      if (!$('card-cvc').value) $('card-cvc').value = '123';
    });
  }
  $('card-number').addEventListener('input', groupCardNumber);
  $('card-expiry').addEventListener('input', formatExpiry);
  $('checkout').addEventListener('submit', pay);
  $('again').addEventListener('click', again);
  $('organizer').addEventListener('change', render);
  $('onboard').addEventListener('click', onboard);
  render();
  returnedFromAuthentication();
  loadOrganizers().then(returnedFromOnboarding);
})();
