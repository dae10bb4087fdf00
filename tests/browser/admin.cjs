// The vendor back office in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Run by the integration test `admin::the_back_office_in_a_browser`
// (tests/it/admin.rs), which starts the server, sets up the case and plays the containers:
// when this script needs a container to contact the server, a request file, or the JSON
// API's view of a report, it writes `ASK {json}` and waits for the test's answer.
//
// Environment: PORTAL_BASE, PORTAL_CASE (JSON: passwords, ticket, license, serials, the
// failed mail), SCREENSHOTS, WORK, CHROMIUM.
'use strict';

const path = require('path');
const fs = require('fs');
const common = require('./common.cjs');

const { log, expect } = common;

const base = process.env.PORTAL_BASE;
const the = JSON.parse(process.env.PORTAL_CASE);
const shots = process.env.SCREENSHOTS;
const work = process.env.WORK;
const { ask, close } = common.asker();

const problems = [];
const accessibility = [];
let shotNo = 0;

async function look(page, name) {
  shotNo += 1;
  await common.screenshot(page, path.join(shots, `${String(shotNo).padStart(2, '0')}-admin-${name}.png`));
  await common.axe(page, `admin ${name}`, accessibility);
}

async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).trim();
}

async function expectText(page, selector, wanted) {
  const t = await text(page, selector);
  expect(t.includes(wanted), `${selector} says ${JSON.stringify(t)}, expected ${JSON.stringify(wanted)} (${page.url()})`);
}

/** The notice a successful action leaves. */
async function expectNotice(page, wanted) {
  const alert = page.locator('.alert-error');
  if (await alert.count()) throw new Error(`refused on ${page.url()}: ${await alert.innerText()}`);
  await expectText(page, '.alert-ok', wanted);
}

async function go(page, where) {
  const r = await page.goto(`${base}${where}`);
  return r.status();
}

async function login(page, user, password) {
  await go(page, '/admin');
  expect(page.url().includes('/admin/login'), `the login first, at ${page.url()}`);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('form[action="/admin/login"] button[type="submit"]');
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const { context, page } = await common.launch(work, { acceptDownloads: true });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const ownStatus = /^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())
      && m.location().url === page.url();
    // The portal's pages ask the customer's local helper, which does not run here.
    const noHelper = page.url().includes('/portal/') && m.text().includes('ERR_CONNECTION_REFUSED');
    if (!ownStatus && !noHelper) problems.push(`console on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
  page.on('response', (r) => {
    if (r.request().resourceType() !== 'document' || !r.url().includes('/admin')) return;
    const csp = r.headers()['content-security-policy'] || '';
    if (!csp.includes("default-src 'none'") || csp.includes('script-src') || csp.includes('unsafe-inline')) {
      problems.push(`${r.url()} answered without the strict policy: ${JSON.stringify(csp)}`);
    }
  });

  // The login, then the dashboard.
  await go(page, '/admin');
  await look(page, 'login');
  await page.fill('#username', 'admin');
  await page.fill('#password', 'wrong');
  await page.click('form[action="/admin/login"] button[type="submit"]');
  await expectText(page, '.alert-error', 'wrong');
  await page.fill('#password', the.admin_password);
  await page.click('form[action="/admin/login"] button[type="submit"]');
  expect(new URL(page.url()).pathname === '/admin', `the dashboard after the login, at ${page.url()}`);
  expect(await page.locator('svg.chart').count() === 2, 'two charts on the dashboard');
  await look(page, 'dashboard');

  // An item, made in its form.
  await page.click('nav a[href="/admin/items"]');
  await page.click('a[href="/admin/items/new"]');
  await page.fill('#item_id', 'BO-BROWSER');
  await page.fill('#name', 'Browser Suite');
  await page.fill('#product_code', '1001');
  await page.fill('#feature_map', '1');
  await page.fill('#license_quantity', '0');
  await page.fill('#maintenance_period_days', '365');
  await page.click('form.stack button[type="submit"]');
  await expectNotice(page, 'The item was saved.');
  expect(await page.inputValue('#maintenance_period_days') === '365', 'the option is kept');
  await look(page, 'item');

  // An order by hand with a new ticket; then one license withdrawn.
  await page.click('nav a[href="/admin/orders"]');
  await page.click('a[href="/admin/orders/new"]');
  await page.check('input[name="way"][value="new"]');
  await page.fill('#customer_id', 'C-HAND');
  await page.fill('#customer_name', 'Hand & Söhne');
  await page.fill('#erp_order_id', 'HAND-1');
  await page.selectOption('#item_0', 'BO-BROWSER');
  await page.fill('#quantity_0', '2');
  await page.click('form.card button[type="submit"]');
  await expectNotice(page, 'The order was saved.');
  expect(await page.locator('tr[data-license]').count() === 2, 'two licenses on the new ticket');
  const first = await page.locator('tr[data-license]').first().getAttribute('data-license');
  await page.check(`#lic_${first}`);
  await page.fill('#reason', 'ordered twice');
  await page.click('form[action$="/withdraw"] button[type="submit"]');
  await expectNotice(page, 'withdrawn');
  expect(await page.locator(`tr[data-license="${first}"]`).count() === 0, 'the withdrawn license left the ticket');
  expect(await page.locator('tr[data-license]').count() === 1, 'one license left');
  await look(page, 'order');
  await page.click('nav a[href="/admin/orders"]');
  await expectText(page, 'table', 'HAND-1');
  await look(page, 'orders');
  await page.click('nav a[href="/admin/customers"]');
  await page.fill('#q', 'Söhne');
  await page.click('form[action="/admin/customers"] button[type="submit"]');
  await page.click('a[href="/admin/customers/view?id=C-HAND"]');
  await expectText(page, 'main', 'HAND');
  await look(page, 'customer');

  // The stolen container on the blacklist: the lock goes with its next contact.
  await page.click('nav a[href="/admin/blacklist"]');
  await page.fill('#bl_serial', the.stolen);
  await page.fill('#bl_description', 'stolen from the car');
  await page.click('form[action="/admin/blacklist"] button[type="submit"]');
  await expectNotice(page, 'blacklist');
  const row = `tr[data-serial="${the.stolen}"]`;
  expect((await text(page, `${row} .lock-sent`)) === '', 'no lock sent before the contact');
  const contact = await ask({ ask: 'contact', container: 'stolen' });
  expect(contact.updates === 1, `the stolen container got the lock: ${JSON.stringify(contact)}`);
  await page.reload();
  expect((await text(page, `${row} .lock-sent`)) !== '', 'the lock was sent');
  expect((await text(page, `${row} .lock-validated`)) !== '', 'and validated');
  await look(page, 'blacklist');
  await page.click(`${row} a.code`);
  await expectText(page, '.facts .listed', 'stolen from the car');
  await look(page, 'container');

  // The customer asks in the portal to re-activate the lost license into a new computer:
  // that needs support's approval.
  await go(page, `/portal/tickets/${the.ticket}`);
  await page.fill('#ticket', the.ticket);
  await page.click('form[action="/portal/login"] button[type="submit"]');
  await page.click(`a[href="/portal/tickets/${the.ticket}/reactivate"]`);
  await page.check('input[name="accept"]');
  const request = path.join(work, `admin-request-${Date.now()}.lcr`);
  await ask({ ask: 'request', file: request });
  await page.setInputFiles('#request', request);
  await page.click('form[enctype="multipart/form-data"] button[type="submit"]');
  expect(await page.locator('.alert-error[data-code="approval_required"]').count() === 1,
    `the portal says an approval is needed: ${(await page.locator('main').innerText()).slice(0, 300)}`);
  await go(page, '/admin/approvals');
  const approval = page.locator('tr[data-approval]');
  expect(await approval.count() === 1, 'one open request');
  await expectText(page, 'tr[data-approval]', the.lost);
  await look(page, 'approvals');
  await page.click('tr[data-approval] form[action$="/approve"] button');
  await expectNotice(page, 'approved');
  const pulled = await ask({ ask: 'contact', container: 'new' });
  expect(pulled.added.includes(the.license), `the new computer got the license: ${JSON.stringify(pulled)}`);

  // A report as a table, and as CSV: the same as the JSON API's.
  await page.click('nav a[href="/admin/reports"]');
  await page.click('form[action="/admin/reports/blacklist"] button[type="submit"]');
  await expectText(page, '#report', the.stolen);
  await look(page, 'report');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  const csv = path.join(work, `admin-${download.suggestedFilename()}`);
  expect(download.suggestedFilename() === 'blacklist.csv', `the file is ${download.suggestedFilename()}`);
  await download.saveAs(csv);
  const compared = await ask({ ask: 'compare', file: csv, report: 'blacklist' });
  log('the CSV matches the JSON API', JSON.stringify(compared));

  // The failed mail, sent again.
  await page.click('nav a[href="/admin/mail"]');
  const mail = `tr[data-mail="${the.mail}"]`;
  await expectText(page, mail, 'failed');
  await look(page, 'mail');
  await ask({ ask: 'smtp_up' });
  await page.click(`${mail} form[action$="/requeue"] button`);
  await expectNotice(page, 'Queued again.');
  const state = await ask({ ask: 'mail_sent', id: the.mail });
  expect(state.state === 'sent' && state.delivered === 1, `the mail went out once: ${JSON.stringify(state)}`);

  // A subscription to events: its secret is shown this once; the CRM is down, so the
  // delivery of the next order's event waits with the error it met; then it is paused.
  await page.click('nav a[href="/admin/webhooks"]');
  await page.fill('#new_url', the.webhook_url);
  await page.fill('#new_events', 'order.created, license.*');
  await page.fill('#new_description', 'CRM');
  await page.click('form[action="/admin/webhooks"] button[type="submit"]');
  const secret = await page.inputValue('#made_secret');
  expect(/^[0-9a-f]{64}$/.test(secret), `the signing secret is shown: ${JSON.stringify(secret)}`);
  const made = await ask({ ask: 'webhook_event' });
  const queued = made.deliveries.filter((d) => d.kind === 'order.created' && d.state === 'queued');
  expect(queued.length === 1, `one delivery waits: ${JSON.stringify(made.deliveries)}`);
  await go(page, '/admin/webhooks');
  expect(!(await page.content()).includes(secret), 'the secret is not shown again');
  await expectText(page, `tr[data-delivery="${queued[0].id}"]`, 'order.created');
  await look(page, 'webhooks');
  await page.click('#webhooks form[action$="/pause"] button');
  await expectNotice(page, 'The subscription is paused');
  await expectText(page, '#webhooks', 'paused');

  // The rest of the pages, looked at.
  await page.click('nav a[href="/admin/users"]');
  await look(page, 'users');
  await page.click('nav a[href="/admin/settings"]');
  await look(page, 'settings');
  await go(page, `/admin/history?serial=${the.stolen}`);
  await page.click('a[href*="verify=1"]');
  await expectText(page, '#chain-ok', 'intact');
  await look(page, 'history');
  await page.click('a[hreflang="de"]');
  await go(page, '/admin');
  await expectText(page, 'h1', 'Übersicht');
  await look(page, 'dashboard-de');
  await page.click('a[hreflang="en"]');

  // A sales user: no blacklist, no users.
  await page.click('form[action="/admin/logout"] button');
  await login(page, 'sam', the.sales_password);
  expect(await page.locator('nav a[href="/admin/blacklist"]').count() === 0, 'sales is not offered the blacklist');
  for (const where of ['/admin/blacklist', '/admin/users', '/admin/webhooks']) {
    const status = await go(page, where);
    expect(status === 403, `${where} answered ${status} for sales`);
    await expectText(page, '.alert-error', 'Your role does not allow this.');
  }

  await context.close();
  if (accessibility.length) throw new Error(`accessibility:\n${accessibility.join('\n')}`);
  if (problems.length) throw new Error(`problems:\n${problems.join('\n')}`);
  process.stdout.write('DONE\n');
  close();
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
