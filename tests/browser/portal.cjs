// The license portal in a real browser: Debian's Chromium, headless, driven by playwright-core.
//
// Run by the integration test `portal::the_portal_in_a_browser` (tests/it/portal.rs), which
// starts the server and plays the customer's computer: whenever this script needs a file
// the client runtime makes (a request, a receipt) or must import one (a template, an update),
// it writes one line `ASK {json}` to stdout and waits for the test's answer, one JSON line
// on stdin. Everything else on stdout is a log line. Any failed expectation throws: the
// script exits 1 with the reason, and the test fails with it.
//
// Environment: PORTAL_BASE (http://127.0.0.1:PORT), PORTAL_CASE (JSON: tickets, licenses,
// texts), SCREENSHOTS (a folder), WORK (a scratch folder), CHROMIUM (default
// /usr/bin/chromium).
'use strict';

const fs = require('fs');
const path = require('path');
const common = require('./common.cjs');

const { log, expect } = common;

const base = process.env.PORTAL_BASE;
const the = JSON.parse(process.env.PORTAL_CASE);
const shots = process.env.SCREENSHOTS;
const work = process.env.WORK;
const { ask, close } = common.asker();

/** Problems seen on any page: console errors, script errors, a page without its policy. */
const problems = [];
const accessibility = [];
let shotNo = 0;

async function shot(page, name) {
  shotNo += 1;
  const file = path.join(shots, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await common.screenshot(page, file);
}

async function axe(page, name) {
  await common.axe(page, name, accessibility);
}

async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).trim();
}

async function expectText(page, selector, wanted) {
  const t = await text(page, selector);
  expect(t.includes(wanted), `${selector} says ${JSON.stringify(t)}, expected it to contain ${JSON.stringify(wanted)} (${page.url()})`);
}

async function expectRefusal(page, code, detail) {
  const alert = page.locator(`.alert-error[data-code="${code}"]`);
  expect(await alert.count() === 1, `expected the refusal ${code} on ${page.url()}, the page says: ${(await page.locator('main').innerText()).slice(0, 400)}`);
  if (detail) await expectText(page, `.alert-error[data-code="${code}"]`, detail);
}

/** The second and third step of an offline transfer, for the container `name`. */
async function downloadApplyReceipt(page, name, label) {
  expect(page.url().endsWith('/portal/transfer'), `expected the transfer page, at ${page.url()}`);
  await expectText(page, '.step-current', the.texts.download_step);
  if (label) {
    await shot(page, `${label}-download`);
    await axe(page, `${label} download`);
  }
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('a[href="/portal/transfer/update"]'),
  ]);
  const update = path.join(work, `${name}-${download.suggestedFilename()}`);
  expect(download.suggestedFilename().endsWith('.lcu'), `the update file is ${download.suggestedFilename()}`);
  await download.saveAs(update);
  const receipt = path.join(work, `${name}-receipt-${Date.now()}.lcr`);
  const applied = await ask({ ask: 'apply', container: name, update, receipt });
  await page.click('a[href="/portal/transfer?step=receipt"]');
  await expectText(page, '.step-current', the.texts.receipt_step);
  if (label) {
    await shot(page, `${label}-receipt`);
    await axe(page, `${label} receipt`);
  }
  await page.setInputFiles('#receipt', receipt);
  await page.click('form[action="/portal/transfer/receipt"] button[type="submit"]');
  await page.locator('.card.done').waitFor();
  if (label) await shot(page, `${label}-done`);
  return applied;
}

/** Uploads a fresh request file of container `name` in the form around `input`. */
async function uploadRequest(page, name, input, kind) {
  const file = path.join(work, `${name}-request-${Date.now()}.lcr`);
  await ask({ ask: 'request', container: name, kind: kind || 'act', file });
  await page.setInputFiles(input, file);
}

async function row(page, license) {
  return page.locator(`tr[data-license="${license}"]`);
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const { context, page } = await common.launch(work, { acceptDownloads: true });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // A refusal page's own status (400, 403, 404, 429) is its answer, not a problem; any
    // other resource that fails to load is.
    const ownStatus = /^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())
      && m.location().url === page.url();
    // No local helper runs here: the page's question to it fails, and the page says so.
    const noHelper = m.location().url.startsWith(`${the.helper}/`) && m.text().includes('ERR_CONNECTION_REFUSED');
    if (!ownStatus && !noHelper) problems.push(`console on ${page.url()}: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
  page.on('response', (r) => {
    if (r.request().resourceType() !== 'document') return;
    const csp = r.headers()['content-security-policy'] || '';
    if (!csp.includes("script-src 'self'") || !csp.includes("style-src 'self'") || csp.includes('unsafe-inline')) {
      problems.push(`${r.url()} answered without the strict policy: ${JSON.stringify(csp)}`);
    }
  });

  // The ticket mail's link, with no session: the login, the ticket filled in.
  const mailLink = `${base}/portal/tickets/${the.t1}`;
  await page.goto(mailLink);
  expect(await page.inputValue('#ticket') === the.t1, 'the mail link fills in its ticket');
  await shot(page, 'login');
  await axe(page, 'login');

  // A typo is caught by the check character, before any lookup.
  await page.fill('#ticket', the.t1_typo);
  await page.click('form[action="/portal/login"] button[type="submit"]');
  await expectRefusal(page, 'invalid_ticket', 'check character');
  await expectText(page, '.alert-error', the.texts.invalid_ticket_en);
  await shot(page, 'login-typo');

  // Two tickets separated by ';': the mail link's page comes back, then both tickets.
  await page.fill('#ticket', `${the.t1.toLowerCase()} ; ${the.t2}`);
  await page.click('form[action="/portal/login"] button[type="submit"]');
  expect(page.url() === mailLink, `after the login, the mail link's page: ${page.url()}`);
  expect(await page.locator('section.ticket').count() === 1, 'the mail link shows its ticket');
  await page.click(`nav a[href="/portal/tickets"]`);
  expect(await page.locator('section.ticket').count() === 2, 'My Licenses shows both tickets');
  await expectText(page, `tr[data-license="${the.l1}"] td[data-col="state"]`, 'Available');
  await shot(page, 'overview');
  await axe(page, 'overview');

  // Activate: the binding (these licenses allow both), then the licenses, then the three steps.
  await page.click(`a[href="/portal/tickets/${the.t1}/activate"]`);
  await expectText(page, 'h2', the.texts.binding_title);
  await shot(page, 'activate-binding');
  await axe(page, 'activate binding');
  await page.check('input[name="binding"][value="act"]');
  await page.click('form.form button[type="submit"]');
  await expectText(page, '.step-current', the.texts.request_step);
  await shot(page, 'activate-upload');
  await axe(page, 'activate upload');
  const [template] = await Promise.all([
    page.waitForEvent('download'),
    page.click(`a[href="/portal/template/${the.firm_code}"]`),
  ]);
  const templateFile = path.join(work, template.suggestedFilename());
  await template.saveAs(templateFile);
  await ask({ ask: 'create', container: 'A', kind: 'act', template: templateFile });
  await ask({ ask: 'create', container: 'B', kind: 'act', template: templateFile });
  await page.uncheck(`#lic-${the.l2}`);
  await uploadRequest(page, 'A', '#request');
  await page.click('form[enctype="multipart/form-data"] button[type="submit"]');
  const a = await downloadApplyReceipt(page, 'A', 'activate');
  expect(await page.locator(`.done-list li[data-license="${the.l1}"]`).count() === 1, 'the done page lists the activated license');
  await page.click('.card.done a.btn');
  await expectText(page, `tr[data-license="${the.l1}"] td[data-col="state"]`, 'Activated');
  await expectText(page, `tr[data-license="${the.l1}"] td[data-col="container"]`, a.serial);
  await expectText(page, `tr[data-license="${the.l2}"] td[data-col="state"]`, 'Available');

  // Re-host: return the license from container A (the same three steps).
  await page.click(`a[href="/portal/tickets/${the.t1}/return"]`);
  await expectText(page, 'main h2', a.serial);
  await shot(page, 'return');
  await axe(page, 'return');
  await uploadRequest(page, 'A', 'input[name="request"]');
  await page.click('form[enctype="multipart/form-data"] button[type="submit"]');
  await downloadApplyReceipt(page, 'A', 'return');
  await page.click('.card.done a.btn');
  await expectText(page, `tr[data-license="${the.l1}"] td[data-col="state"]`, 'Available');

  // Into container A again, then A is lost: restore the license into container B.
  await page.click(`a[href="/portal/tickets/${the.t1}/activate"]`);
  await page.check('input[name="binding"][value="act"]');
  await page.click('form.form button[type="submit"]');
  await page.uncheck(`#lic-${the.l2}`);
  await uploadRequest(page, 'A', '#request');
  await page.click('form[enctype="multipart/form-data"] button[type="submit"]');
  await downloadApplyReceipt(page, 'A');
  await page.click('.card.done a.btn');
  await page.click(`a[href="/portal/tickets/${the.t1}/reactivate"]`);
  await expectText(page, '#conditions', the.texts.conditions_title);
  await expectText(page, '#conditions', the.texts.conditions_blacklist);
  await shot(page, 'reactivate');
  await axe(page, 'reactivate');
  // Without the conditions accepted the server refuses (the browser would not even send
  // it: the box is required; taken away here to ask the server).
  await page.evaluate(() => document.querySelector('input[name="accept"]').removeAttribute('required'));
  await uploadRequest(page, 'B', '#request');
  await page.click('form[enctype="multipart/form-data"] button[type="submit"]');
  await expectRefusal(page, 'invalid_input', 'accept the conditions');
  await page.check('input[name="accept"]');
  await uploadRequest(page, 'B', '#request');
  await page.click('form[enctype="multipart/form-data"] button[type="submit"]');
  const b = await downloadApplyReceipt(page, 'B', 'reactivate');
  await page.click('.card.done a.btn');
  await expectText(page, `tr[data-license="${the.l1}"] td[data-col="container"]`, b.serial);
  await expectText(page, `tr[data-license="${the.l1}"] td[data-col="state"]`, 'Activated');

  // The lost container A is blacklisted now: its request is refused with the reason.
  await page.click(`a[href="/portal/tickets/${the.t1}/activate"]`);
  await page.check('input[name="binding"][value="act"]');
  await page.click('form.form button[type="submit"]');
  await uploadRequest(page, 'A', '#request');
  await page.click('form[enctype="multipart/form-data"] button[type="submit"]');
  await expectRefusal(page, 'blacklisted', a.serial);
  await expectText(page, '.alert-error', the.texts.blacklisted_en);
  await shot(page, 'refused-blacklisted');

  // Automatic updates for container B by its serial: the vendor pushed a license to it.
  await ask({ ask: 'push', container: 'B', license: the.l_push });
  await page.click('nav a[href="/portal/updates"]');
  await page.fill('#serial', b.serial);
  await shot(page, 'updates');
  await axe(page, 'updates');
  await uploadRequest(page, 'B', '#request');
  await page.click('form[action="/portal/updates"] button[type="submit"]');
  await downloadApplyReceipt(page, 'B', 'updates');
  expect(await page.locator(`.done-list li[data-license="${the.l_push}"]`).count() === 1, 'the done page lists the pushed license');

  // Split the floating license of the second ticket into 2 + 3 users.
  await page.goto(`${base}/portal/tickets`);
  await page.click(`a[href="/portal/licenses/${the.l_float}/split"]`);
  await shot(page, 'split');
  await axe(page, 'split');
  await page.fill('#quantities', '2, 3');
  await page.click('form.form button[type="submit"]');
  await expectText(page, '.alert-ok', the.texts.split_done);
  expect(await page.locator(`tr[data-license="${the.l_float}"]`).count() === 0, 'the split license left the ticket');

  // The history of the license that went A → returned → A → B.
  await page.goto(`${base}/portal/licenses/${the.l1}/history`);
  for (const what of the.texts.history) await expectText(page, 'table.history', what);
  await shot(page, 'history');
  await axe(page, 'history');

  // German, as the customer chooses it.
  await page.goto(`${base}/portal/tickets`);
  await page.click('a[hreflang="de"]');
  await expectText(page, 'h1', 'Meine Lizenzen');
  expect(await page.getAttribute('html', 'lang') === 'de', 'the page says it is German');
  await expectText(page, `tr[data-license="${the.l1}"] td[data-col="state"]`, 'Aktiviert');
  await shot(page, 'overview-de');
  await axe(page, 'overview (de)');
  await page.click('form[action="/portal/logout"] button');
  await expectText(page, '.alert-ok', 'Sie sind abgemeldet.');
  await page.fill('#ticket', the.t1_typo);
  await page.click('form[action="/portal/login"] button[type="submit"]');
  await expectRefusal(page, 'invalid_ticket');
  await expectText(page, '.alert-error', 'Das ist kein gültiges Ticket');
  await shot(page, 'login-typo-de');
  await axe(page, 'login (de)');
  // The ended session opens nothing any more.
  await page.goto(`${base}/portal/tickets`);
  expect(page.url().startsWith(`${base}/portal/login`), `after the logout: ${page.url()}`);

  await context.close();
  expect(problems.length === 0, `problems on the pages:\n${problems.join('\n')}`);
  expect(accessibility.length === 0, `accessibility (axe-core, serious or critical):\n${accessibility.join('\n')}`);
  process.stdout.write('DONE\n');
  close();
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
