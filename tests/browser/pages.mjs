// The checkout demo and the dashboard in a real browser: Debian's Chromium, driven by
// Playwright's core package. tests/api/browser.rs starts the service and runs this script:
//
//   node tests/browser/pages.mjs
//
// with TMT_OPEN (a sandbox service without API_TOKENS), TMT_LOCKED (one with API_TOKENS),
// TMT_TOKEN (one of its tokens), TMT_CONNECT (one paying organisers by Stripe Connect's direct
// charges, with a 10% platform fee), TMT_SCREENSHOTS (where screenshots go) and optionally
// TMT_DOC_IMAGES (where the README's pictures go) and CHROMIUM (the browser's path).
//
// Steps run in order, each building on the last (the dashboard shows what the checkout made);
// the first failure stops the run with a screenshot of the page as it was.

import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const OPEN = process.env.TMT_OPEN;
const LOCKED = process.env.TMT_LOCKED;
const TOKEN = process.env.TMT_TOKEN;
const CONNECT = process.env.TMT_CONNECT;
const SHOTS = process.env.TMT_SCREENSHOTS || 'target/screenshots';
const DOC_IMAGES = process.env.TMT_DOC_IMAGES;
if (!OPEN || !LOCKED || !TOKEN || !CONNECT) {
  console.error('TMT_OPEN, TMT_LOCKED, TMT_TOKEN and TMT_CONNECT are required');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });
if (DOC_IMAGES) mkdirSync(DOC_IMAGES, { recursive: true });

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Without the background-networking flags Chromium reaches for Google's services at start,
  // which a closed network refuses.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// Pages by name, so that a failure can show the one it happened on.
const pages = {};
const problems = [];

async function open(name, viewport) {
  // A fixed locale, so that Intl's currency formats are known (€45.00, ¥7,000, MX$850.00).
  const context = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    // Answers that are not 2xx (a decline's 402, the favicon's 404) are logged by the browser
    // as errors: they are expected; anything else is a fault of the page.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) {
      problems.push(`${name}: console error: ${m.text()}`);
    }
  });
  pages[name] = page;
  return page;
}

async function shot(page, file, { doc = false, fullPage = true } = {}) {
  await page.screenshot({ path: join(SHOTS, file), fullPage });
  // The README's pictures: the visible window only, to keep the files small.
  if (doc && DOC_IMAGES) await page.screenshot({ path: join(DOC_IMAGES, file) });
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function equal(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

// The page fits its window: nothing scrolls sideways, and `controls` are on screen.
async function fitsPhone(page, controls) {
  const [scroll, inner] = await page.evaluate(() =>
    [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= inner, `scrolls sideways on a phone: ${scroll} > ${inner} at ${page.url()}`);
  for (const selector of controls) {
    const box = await page.locator(selector).first().boundingBox();
    check(box && box.width > 0, `${selector} is not visible`);
    check(box.x >= 0 && box.x + box.width <= inner, `${selector} sticks out: ${JSON.stringify(box)}`);
  }
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

// ---- checkout ----------------------------------------------------------------------------

async function chooseTickets(page, currency, general, vip) {
  await page.selectOption('#currency', currency);
  // The order starts with one general admission.
  for (let n = 1; n < general; n++) await page.click('[data-ticket=general] [data-step="1"]');
  for (let n = 1; n > general; n--) await page.click('[data-ticket=general] [data-step="-1"]');
  for (let n = 0; n < vip; n++) await page.click('[data-ticket=vip] [data-step="1"]');
}

async function enterCard(page, number) {
  await page.fill('#card-number', number);
  await page.fill('#card-expiry', '12 / 34');
  await page.fill('#card-cvc', '123');
}

// The result box, once shown: title, amount, message, payment id, status.
async function result(page) {
  await page.locator('#result').waitFor({ state: 'visible' });
  return {
    title: await text(page, '#result-title'),
    amount: await text(page, '#result-amount'),
    message: await text(page, '#result-message'),
    id: await text(page, '#result-id'),
    status: await text(page, '#result-status'),
  };
}

async function payWith(page, number) {
  await enterCard(page, number);
  await page.click('#pay');
}

// A fresh checkout of the service at `base`: orders `tickets` ([currency, general, vip]; the
// page's own order when absent) and pays with the card `number`.
async function checkout(page, base, number, tickets) {
  await page.goto(`${base}/demo`);
  if (tickets) await chooseTickets(page, ...tickets);
  await payWith(page, number);
}

// A checkout (see `checkout`) with a card that asks for 3-D Secure, whose challenge is answered
// with `answer` ('Complete' or 'Fail') after `whileShown` ran on it; the result box.
async function payThrough3ds(page, tickets, number, answer, whileShown = async () => {}) {
  await checkout(page, OPEN, number, tickets);
  await page.waitForURL(/\/_sandbox\/3ds\/pi_/);
  const button = page.getByRole('button', { name: `${answer} authentication` });
  await button.waitFor();
  await whileShown();
  await button.click();
  return result(page);
}

// ---- service calls the tests make themselves, as the platform's back end would -------------

async function call(base, path, data, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(base + path, { method: 'POST', headers, body: JSON.stringify({ data }) });
  const body = await r.json();
  check(r.ok, `${path} answered ${r.status}: ${JSON.stringify(body)}`);
  return body.data;
}

// ---- the dashboard -----------------------------------------------------------------------

// Waits (the page refreshes itself) until the payment's timeline holds every event type of
// `types`, in that order; returns the timeline's lines.
async function timelineHas(page, types) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const lines = await page.locator('#timeline li').allTextContents();
    const at = types.map((t) => lines.findIndex((l) => l.includes(`Event ${t}`)));
    if (at.every((i) => i >= 0) && at.every((i, n) => n === 0 || i > at[n - 1])) return lines;
    check(Date.now() < deadline, `timeline never showed ${types.join(' → ')}:\n${lines.join('\n')}`);
    await page.waitForTimeout(250);
  }
}

async function statusOf(page, id) {
  return page.locator(`#payments tr[data-id="${id}"] [data-status]`).getAttribute('data-status');
}

async function listed(page) {
  return page.locator('#payments tr[data-id]').evaluateAll((rows) => rows.map((r) => r.dataset.id));
}

async function totals(page) {
  return page.locator('#totals tr[data-currency]').evaluateAll((rows) => Object.fromEntries(
    rows.map((r) => [r.dataset.currency, Array.from(r.cells, (c) => c.textContent.trim())])));
}

// ---- the steps ---------------------------------------------------------------------------

const paid = {};

const steps = [
  ['the checkout fits a phone and formats each currency', async () => {
    const page = await open('phone', PHONE);
    await page.goto(`${OPEN}/demo`);
    equal(await text(page, '#total'), '€45.00', 'EUR total');
    await fitsPhone(page, ['#currency', '[data-ticket=vip] [data-step="1"]', '#card-number',
      '#card-expiry', '#card-cvc', '#pay']);
    await shot(page, 'checkout-phone.png', { doc: true });
    await page.selectOption('#currency', 'jpy');
    equal(await text(page, '#total'), '¥7,000', 'JPY has no decimals');
    equal(await text(page, '#pay'), 'Pay ¥7,000', 'pay button');
    await page.selectOption('#currency', 'mxn');
    equal(await text(page, '#total'), 'MX$850.00', 'MXN total');
    await page.click('[data-ticket=general] [data-step="-1"]');
    check(await page.locator('#pay').isDisabled(), 'no tickets, no payment');
  }],

  ['4242 4242 4242 4242 pays: success with the amount', async () => {
    const page = await open('desktop', DESKTOP);
    await page.goto(`${OPEN}/demo`);
    await chooseTickets(page, 'jpy', 2, 1);
    equal(await text(page, '#total'), '¥33,000', 'JPY total of 2 general and 1 VIP');
    await enterCard(page, '4242 4242 4242 4242');
    await shot(page, 'checkout-desktop.png', { doc: true });
    await page.click('#pay');
    const r = await result(page);
    equal(r.title, 'Payment successful', 'title');
    equal(r.amount, '¥33,000', 'amount, from the service');
    equal(r.status, 'succeeded', 'status');
    check(/^pi_/.test(r.id), `a PaymentIntent id: ${r.id}`);
    await shot(page, 'checkout-success.png', { doc: true });
    paid.success = r.id;
  }],

  ['4000 0000 0000 0002 is declined with the card error’s message', async () => {
    const page = pages.desktop;
    await checkout(page, OPEN, '4000 0000 0000 0002');
    const r = await result(page);
    equal(r.title, 'Payment declined', 'title');
    equal(r.message, 'Your card was declined.', 'the card error’s message');
    equal(r.status, 'requires_payment_method', 'status');
    equal(r.amount, '€45.00', 'amount');
    await shot(page, 'checkout-declined.png');
    paid.declined = r.id;
  }],

  ['the declined payment shows in the dashboard with its failure', async () => {
    const page = await open('dashboard', DESKTOP);
    await page.goto(`${OPEN}/dashboard/payments/${paid.declined}`);
    await page.locator('#status [data-status="requires_payment_method"]').waitFor();
    await timelineHas(page, ['payment_intent.created', 'payment_intent.payment_failed']);
  }],

  ['another card pays the same order: the same PaymentIntent succeeds', async () => {
    const page = pages.desktop;
    equal(await text(page, '#again'), 'Try another card', 'retry button');
    await page.click('#again');
    await payWith(page, '4242424242424242');
    const r = await result(page);
    equal(r.title, 'Payment successful', 'title');
    equal(r.id, paid.declined, 'the retry pays the PaymentIntent of the declined attempt');
    const dash = pages.dashboard;
    await dash.locator('#status [data-status="succeeded"]').waitFor();
    await timelineHas(dash, ['payment_intent.payment_failed', 'payment_intent.succeeded']);
  }],

  ['4000 0027 6000 3184 asks for 3-D Secure; Complete: success', async () => {
    const page = pages.desktop;
    const r = await payThrough3ds(page, ['mxn', 1, 0], '4000 0027 6000 3184', 'Complete',
      () => shot(page, '3ds-challenge.png', { doc: true }));
    equal(r.title, 'Payment successful', 'title');
    equal(r.amount, 'MX$850.00', 'amount');
    equal(r.status, 'succeeded', 'status');
    const url = new URL(page.url());
    equal(url.pathname, '/demo', 'back on the checkout');
    equal(url.search, '', 'the client secret is gone from the address bar');
    paid.threeDs = r.id;
  }],

  ['3-D Secure, Fail: the payment fails with the reason', async () => {
    const page = pages.desktop;
    const r = await payThrough3ds(page, ['usd', 1, 1], '4000002760003184', 'Fail');
    equal(r.title, 'Payment failed', 'title');
    check(/unable to authenticate/.test(r.message), `the reason: ${r.message}`);
    equal(r.status, 'requires_payment_method', 'status');
    equal(r.amount, '$178.50', 'amount');
    await shot(page, 'checkout-3ds-failed.png');
    paid.threeDsFailed = r.id;
  }],

  ['each checkout’s payment has its status and timeline in the dashboard', async () => {
    const page = pages.dashboard;
    const expected = [
      [paid.success, 'succeeded', ['payment_intent.created', 'payment_intent.succeeded']],
      [paid.threeDs, 'succeeded',
        ['payment_intent.created', 'payment_intent.requires_action', 'payment_intent.succeeded']],
      [paid.threeDsFailed, 'requires_payment_method',
        ['payment_intent.created', 'payment_intent.requires_action', 'payment_intent.payment_failed']],
    ];
    for (const [id, status, types] of expected) {
      await page.goto(`${OPEN}/dashboard/payments/${id}`);
      await page.locator(`#status [data-status="${status}"]`).waitFor();
      await timelineHas(page, types);
    }
    // The fulfilment notification of a paid order, delivered to the platform.
    await page.goto(`${OPEN}/dashboard/payments/${paid.threeDs}`);
    await page.locator('#timeline li[data-kind=notification]:has-text("payment.succeeded") [data-status=delivered]')
      .waitFor();
    await shot(page, 'dashboard-payment.png', { doc: true });
  }],

  ['a refund appears on the open timeline without a reload', async () => {
    const page = pages.dashboard;
    await page.goto(`${OPEN}/dashboard/payments/${paid.success}`);
    await timelineHas(page, ['payment_intent.succeeded']);
    equal(await text(page, '#refunded'), '0 JPY', 'nothing refunded yet');
    await page.evaluate(() => { window.sameDocument = true; });
    const refund = await call(OPEN, '/stripe_refund_payment',
      { payment_intent_id: paid.success, amount: 5000 });
    await page.locator(`#timeline li[data-kind=refund]:has-text("${refund.refundId}")`).waitFor();
    await timelineHas(page, ['refund.created']);
    equal(await text(page, '#refunded'), '5,000 JPY', 'refunded so far');
    check(await page.evaluate(() => window.sameDocument === true), 'the page was reloaded');
  }],

  ['the list: statuses, totals per currency, the chart, escaped metadata', async () => {
    // Two payments made by the platform's back end: another event, and hostile metadata.
    const jazz = await call(OPEN, '/stripe_create_payment_intent', {
      amount: 30, currency: 'eur', metadata: { event_id: 'jazz-2026' },
    });
    const hostile = await call(OPEN, '/stripe_create_payment_intent', {
      amount: 12, currency: 'usd',
      description: '<script>window.injected = 1</script>',
      metadata: { event_id: '"><img src=x onerror="window.injected=1">', note: '<b>bold</b>' },
    });
    const page = pages.dashboard;
    await page.goto(`${OPEN}/dashboard`);
    const ids = await listed(page);
    for (const id of [paid.success, paid.declined, paid.threeDs, paid.threeDsFailed,
      jazz.paymentIntentId, hostile.paymentIntentId]) {
      check(ids.includes(id), `${id} is listed`);
    }
    equal(await statusOf(page, paid.success), 'succeeded', 'success');
    equal(await statusOf(page, paid.declined), 'succeeded', 'declined, then paid');
    equal(await statusOf(page, paid.threeDs), 'succeeded', '3-D Secure completed');
    equal(await statusOf(page, paid.threeDsFailed), 'requires_payment_method', '3-D Secure failed');
    equal(await statusOf(page, jazz.paymentIntentId), 'requires_payment_method', 'not paid yet');

    const t = await totals(page);
    // currency, payments, succeeded, amount succeeded, refunded, net
    equal(JSON.stringify(t.jpy), JSON.stringify(
      ['JPY', '1', '1', '33,000 JPY', '5,000 JPY', '28,000 JPY']), 'JPY totals');
    equal(JSON.stringify(t.eur), JSON.stringify(
      ['EUR', '2', '1', '45.00 EUR', '0.00 EUR', '45.00 EUR']), 'EUR totals');
    equal(JSON.stringify(t.mxn), JSON.stringify(
      ['MXN', '1', '1', '850.00 MXN', '0.00 MXN', '850.00 MXN']), 'MXN totals');
    equal(JSON.stringify(t.usd), JSON.stringify(
      ['USD', '2', '0', '0.00 USD', '0.00 USD', '0.00 USD']), 'USD totals');

    // The chart's bars add up to the payments made above (within a day or two of each other).
    const bars = await page.locator('svg.chart g.day').evaluateAll((days) => days.map((d) =>
      [Number(d.dataset.payments), Number(d.dataset.succeeded)]));
    equal(bars.reduce((sum, [all]) => sum + all, 0), 6, 'payments in the chart');
    equal(bars.reduce((sum, [, ok]) => sum + ok, 0), 3, 'succeeded payments in the chart');

    const row = page.locator(`#payments tr[data-id="${hostile.paymentIntentId}"]`);
    check((await row.textContent()).includes('<script>window.injected = 1</script>'),
      'the description is shown as text');
    check((await row.textContent()).includes('event_id="><img src=x onerror="window.injected=1">'),
      'metadata is shown as text');
    equal(await row.locator('img, script, b').count(), 0, 'no markup from the ledger');
    equal(await page.evaluate(() => window.injected), undefined, 'nothing ran');
    await shot(page, 'dashboard-desktop.png', { doc: true, fullPage: false });
    paid.jazz = jazz.paymentIntentId;
  }],

  ['the filters: by status and by metadata KEY=VALUE', async () => {
    const page = pages.dashboard;
    await page.goto(`${OPEN}/dashboard`);
    await page.selectOption('select[name=status]', 'requires_payment_method');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/status=requires_payment_method/);
    const failed = await listed(page);
    check(failed.includes(paid.threeDsFailed) && failed.includes(paid.jazz),
      `unpaid payments listed: ${failed}`);
    check(!failed.includes(paid.success) && !failed.includes(paid.threeDs),
      `no succeeded payment among ${failed}`);

    await page.selectOption('select[name=status]', '');
    await page.fill('input[name=metadata]', 'event_id=jazz-2026');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/metadata=event_id%3Djazz-2026/);
    equal(JSON.stringify(await listed(page)), JSON.stringify([paid.jazz]), 'only the jazz payment');
    equal(JSON.stringify(Object.keys(await totals(page))), '["eur"]', 'totals of the filtered payments');

    await page.fill('input[name=metadata]', 'channel=web-demo');
    await page.selectOption('select[name=status]', 'succeeded');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/channel%3Dweb-demo/);
    const demo = await listed(page);
    equal(JSON.stringify([...demo].sort()),
      JSON.stringify([paid.success, paid.declined, paid.threeDs].sort()),
      'succeeded payments of the checkout');
    equal((await totals(page)).jpy[1], '1', 'JPY payments under the filter');

    await page.fill('input[name=metadata]', 'no-equals-sign');
    await page.click('form.filters button[type=submit]');
    await page.locator('p.error:has-text("KEY=VALUE")').waitFor();
  }],

  ['the dashboard fits a phone', async () => {
    const page = await open('dashboard-phone', PHONE);
    await page.goto(`${OPEN}/dashboard`);
    await fitsPhone(page, ['select[name=status]', 'input[name=metadata]',
      'form.filters button[type=submit]', '#payments tr[data-id] a']);
    await shot(page, 'dashboard-phone.png', { doc: true });
    await page.goto(`${OPEN}/dashboard/payments/${paid.threeDs}`);
    await timelineHas(page, ['payment_intent.succeeded']);
    await fitsPhone(page, ['#status', '#timeline li']);
    await shot(page, 'dashboard-payment-phone.png');
  }],

  ['MXN offers cash at OXXO and SPEI: the voucher and the transfer instructions are shown', async () => {
    const page = await open('delayed', DESKTOP);
    await page.goto(`${OPEN}/demo`);
    check(await page.locator('label:has-text("Efectivo en OXXO")').isHidden(), 'OXXO is for MXN only');
    await page.selectOption('#currency', 'mxn');
    await page.check('input[name=method][value=oxxo]');
    check(await page.locator('#card-fields').isHidden(), 'no card fields for cash');
    await page.fill('#buyer-name', 'Ana López');
    await page.fill('#buyer-email', 'ana@example.mx');
    await page.click('#pay');
    const voucher = await result(page);
    equal(voucher.title, 'Paga en OXXO', 'the voucher is shown');
    equal(voucher.status, 'requires_action', 'waiting for the cash');
    const number = await text(page, '[data-field=number]');
    check(/^(\d{4} ){7}\d{4}$/.test(number), `a voucher number in groups of four: ${number}`);
    check(await page.locator('#result-hosted').isVisible(), 'a link to the voucher');
    check((await text(page, '[data-field=expiresAt]')).length > 0, 'the voucher’s deadline');
    paid.voucher = voucher.id;
    await shot(page, 'checkout-oxxo.png', { doc: true });

    await page.click('#again');
    await page.check('input[name=method][value=customer_balance]');
    check(await page.locator('#iban-field').isHidden(), 'no IBAN for a transfer');
    await page.fill('#buyer-email', 'ana@example.mx');
    await page.click('#pay');
    const transfer = await result(page);
    equal(transfer.title, 'Transfiere para pagar', 'the transfer instructions are shown');
    const clabe = await text(page, '[data-field=clabe]');
    check(/^\d{18}$/.test(clabe), `a CLABE: ${clabe}`);
    check((await text(page, '[data-field=reference]')).length > 0, 'a reference');
    paid.transfer = transfer.id;
    await shot(page, 'checkout-spei.png', { doc: true });
  }],

  ['EUR offers SEPA Direct Debit with Stripe’s test IBANs', async () => {
    const page = pages.delayed;
    await page.goto(`${OPEN}/demo`);
    check(await page.locator('label:has-text("Transferencia SPEI")').isHidden(), 'SPEI is for MXN only');
    await page.check('input[name=method][value=sepa_debit]');
    await page.fill('#buyer-name', 'Jenny Rosen');
    await page.fill('#buyer-email', 'jenny@example.com');
    await page.click('details.testcards:visible summary');
    await page.click('[data-iban="AT611904300234573201"]');
    await page.click('#pay');
    const debit = await result(page);
    // The sandbox debits after its delay: processing, or already through.
    check(['processing', 'succeeded'].includes(debit.status), `a debit: ${debit.status}`);
  }],

  ['the dashboard lists the payments awaiting money with their deadline', async () => {
    const page = pages.delayed;
    await page.goto(`${OPEN}/dashboard`);
    for (const [id, method] of [[paid.voucher, 'OXXO voucher'], [paid.transfer, 'Bank transfer']]) {
      const row = page.locator(`#awaiting tr[data-payment="${id}"]`);
      await row.waitFor();
      equal(await text(row, '[data-label=Method]'), method, `${id}'s method`);
      check(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/.test(await text(row, '[data-deadline]')),
        `${id} has a deadline`);
    }
    await shot(page, 'dashboard-awaiting.png', { doc: true });
  }],

  ['the checkout onboards a sandbox organiser and sells tickets for it', async () => {
    const page = await open('connect', DESKTOP);
    await page.goto(`${CONNECT}/demo`);
    await page.locator('#organizer-card').waitFor({ state: 'visible' });
    check(await page.locator('#pay').isDisabled(), 'no organiser, no payment');
    await page.fill('#new-organizer', 'org_demo');
    await page.click('#onboard');
    // Stripe's onboarding page (the sandbox's): the organiser finishes it.
    await page.waitForURL(/\/_sandbox\/onboarding\//);
    await page.getByRole('button', { name: 'Complete', exact: true }).click();
    await page.waitForURL(/\/demo$/);
    await page.locator('#organizer-note:has-text("can take payments now")').waitFor();
    equal(await page.locator('#organizer').inputValue(), 'org_demo', 'the new organiser is chosen');
    equal(await text(page, '#total'), '€45.00', 'EUR total');
    await enterCard(page, '4242 4242 4242 4242');
    await shot(page, 'checkout-organizer.png', { doc: true });
    await page.click('#pay');
    const r = await result(page);
    equal(r.title, 'Payment successful', 'title');
    equal(r.amount, '€45.00', 'amount');
    paid.organizer = r.id;
  }],

  ['the dashboard shows the organiser and the fee, filters by organiser and has its page', async () => {
    const page = pages.connect;
    await page.goto(`${CONNECT}/dashboard/payments/${paid.organizer}`);
    await page.locator('#status [data-status="succeeded"]').waitFor();
    equal(await text(page, '#organizer'), 'org_demo', 'the organiser');
    equal(await text(page, '#application-fee'), '4.50 EUR', 'the platform’s 10%');
    check(/^direct on acct_/.test(await text(page, '#charge-type')), 'a direct charge, on the account');
    await shot(page, 'dashboard-payment-organizer.png', { doc: true });
    await page.goto(`${CONNECT}/dashboard`);
    await page.fill('input[name=organizer]', 'org_demo');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/organizer=org_demo/);
    equal(JSON.stringify(await listed(page)), JSON.stringify([paid.organizer]), 'the organiser’s payments');
    await page.fill('input[name=organizer]', 'org_nobody');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/organizer=org_nobody/);
    equal((await listed(page)).length, 0, 'another organiser has none');
    await page.click('header.top a:has-text("Organisers")');
    await page.click('#organizers a:has-text("org_demo")');
    await page.waitForURL(/\/dashboard\/organizers\/org_demo$/);
    equal(await page.locator('#charges [data-value]').getAttribute('data-value'), 'true', 'can take payments');
    equal(await text(page, '#requirements'), 'nothing', 'nothing due');
    equal(JSON.stringify(await listed(page)), JSON.stringify([paid.organizer]), 'its payments');
    const row = await page.locator('#organizer-totals tr[data-currency=eur]').evaluate((r) =>
      Array.from(r.cells, (c) => c.textContent.trim()));
    equal(JSON.stringify(row), JSON.stringify(
      ['EUR', '1', '1', '45.00 EUR', '0.00 EUR', '4.50 EUR', '0.00 EUR', '0.00 EUR']), 'its totals');
    await shot(page, 'dashboard-organizer.png', { doc: true });
    const phone = await open('connect-phone', PHONE);
    await phone.goto(`${CONNECT}/dashboard/organizers/org_demo`);
    await fitsPhone(phone, ['#organizer-facts', '#organizer-totals', '#payments tr[data-id] a']);
    await phone.goto(`${CONNECT}/demo`);
    await phone.locator('#organizer-card').waitFor({ state: 'visible' });
    await fitsPhone(phone, ['#organizer', '#new-organizer', '#onboard', '#pay']);
  }],

  ['with API_TOKENS the dashboard wants a token, and a session is not the token', async () => {
    const page = await open('locked', DESKTOP);
    const refused = await page.goto(`${LOCKED}/dashboard`);
    equal(refused.status(), 401, 'no token, no dashboard');
    equal(await page.locator('#payments, #totals').count(), 0, 'nothing of the ledger shown');
    const other = await page.goto(`${LOCKED}/dashboard/payments/pi_123`);
    equal(other.status(), 401, 'no token, no payment page');
    await shot(page, 'dashboard-login.png', { doc: true });

    await page.fill('#token', 'not-the-token-but-long-enough');
    await page.click('.login button[type=submit]');
    await page.locator('p.error:has-text("not accepted")').waitFor();

    await page.fill('#token', TOKEN);
    await page.click('.login button[type=submit]');
    await page.waitForURL(/\/dashboard\/payments\/pi_123$/);
    await page.locator('h1:has-text("No such payment")').waitFor();
    await page.goto(`${LOCKED}/dashboard`);
    await page.locator('h1:has-text("Payments")').waitFor();
    equal(await page.locator('#token').count(), 0, 'signed in');
    check(!page.url().includes(TOKEN), 'the token is never in a URL');
    check(!(await page.content()).includes(TOKEN), 'the token is never in a page');

    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'tmt_dashboard');
    check(session, `a session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
    check(session.httpOnly, 'HttpOnly');
    equal(session.sameSite, 'Strict', 'SameSite');
    check(!session.value.includes(TOKEN), 'the cookie is not the token');
    equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session');

    await page.click('button:has-text("Sign out")');
    await page.locator('#token').waitFor();
    const after = await page.goto(`${LOCKED}/dashboard`);
    equal(after.status(), 401, 'signed out');
  }],

  ['a sign-in form posted from another site is refused and starts no session', async () => {
    const page = await open('another-site', DESKTOP);
    // A page of another site, played here: its form posts the right token to the dashboard.
    await page.route(/elsewhere\.example/, (route) => route.fulfill({
      contentType: 'text/html',
      body: `<form method="post" action="${LOCKED}/dashboard/login">
        <input name="token" value="${TOKEN}"><button type="submit">Go</button></form>`,
    }));
    await page.goto('http://elsewhere.example/');
    const [answer] = await Promise.all([
      page.waitForResponse(`${LOCKED}/dashboard/login`),
      page.click('button'),
    ]);
    equal(answer.status(), 403, 'a sign-in from another site');
    equal((await answer.json()).code, 'forbidden_origin', 'its code');
    const cookies = await page.context().cookies();
    check(!cookies.some((c) => c.name === 'tmt_dashboard'), 'no session cookie');
  }],

  ['the statement shows Stripe’s fees once a settlement round has read them; its CSV downloads', async () => {
    const page = pages.dashboard;
    const day = new Date().toISOString().slice(0, 10);
    const url = `${OPEN}/dashboard/statements?from=${day}&to=${day}`;
    // The round runs every second here (SETTLEMENT_INTERVAL_SECS=1): until it has read every
    // payment, the page counts and names those whose fees are not known.
    for (let tries = 0; ; tries++) {
      await page.goto(url);
      const unknown = await page.locator('#statement-totals [data-unknown]')
        .evaluateAll((cells) => cells.map((c) => Number(c.dataset.unknown)));
      if (unknown.length && unknown.every((n) => n === 0)) break;
      if (tries > 150) throw new Error(`fees still not known: ${unknown}`);
      await page.waitForTimeout(200);
    }
    check(await page.locator('#statement-totals td[data-label="Stripe fees"]').count() > 0,
      'a Stripe fees column');
    await shot(page, 'dashboard-statements.png');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#csv-download'),
    ]);
    const file = await readFile(await download.path(), 'utf8');
    check(file.startsWith('payment_intent_id,created,status,organizer_id,'), 'the CSV header');
    check(file.includes(paid.success), 'the paid payment is a line of the CSV');
    await page.goto(`${OPEN}/dashboard/payments/${paid.success}`);
    check(/USD/.test(await text(page, '#stripe-fee')), 'the payment page shows Stripe’s fee (in USD, the platform’s)');
    await page.goto(`${OPEN}/dashboard/payouts`);
    equal(await text(page, 'h1'), 'Payouts', 'the payouts page');
  }],

  ['with API_TOKENS the checkout still pays, and the payment shows after login', async () => {
    const page = pages.locked;
    await checkout(page, LOCKED, '4242 4242 4242 4242');
    const r = await result(page);
    equal(r.title, 'Payment successful', 'title (from Stripe’s view: the service wants a token)');
    await page.goto(`${LOCKED}/dashboard/payments/${r.id}`);
    await page.fill('#token', TOKEN);
    await page.click('.login button[type=submit]');
    await page.locator('#status [data-status="succeeded"]').waitFor();
    await timelineHas(page, ['payment_intent.succeeded']);
    const login = await open('locked-phone', PHONE);
    await login.goto(`${LOCKED}/dashboard`);
    await fitsPhone(login, ['#token', '.login button[type=submit]']);
  }],
];

let passed = 0;
let failed = 0;
for (const [n, [name, step]] of steps.entries()) {
  try {
    await step();
    if (problems.length) throw new Error(problems.splice(0).join('\n'));
    passed++;
    console.log(`ok ${n + 1} - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok ${n + 1} - ${name}\n  ${String(e.stack || e).replace(/\n/g, '\n  ')}`);
    for (const [pageName, page] of Object.entries(pages)) {
      await page.screenshot({ path: join(SHOTS, `failed-${pageName}.png`), fullPage: true })
        .catch(() => {});
    }
    break;
  }
}
await browser.close();
console.log(`${passed} passed, ${failed} failed, ${steps.length - passed - failed} skipped`);
process.exit(failed ? 1 : 0);
