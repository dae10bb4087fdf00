// Self-registration by e-mail and a trial license in a real browser: Debian's Chromium,
// headless, driven by playwright-core (started by the integration test
// `register::registration_and_a_trial_in_a_browser`, tests/it/register.rs).
//
// The login page's "No ticket?" card → the registration form → "Check your mailbox"; the
// test reads the link from the mail its SMTP server received (ASK) → the link's page → the
// click signs in → the overview offers the trials → one is taken and shows on its ticket →
// a cloud container is made and its credential file downloaded.
// Any failed expectation throws: the script exits 1 with the reason.
//
// Environment: PORTAL_BASE (http://127.0.0.1:PORT), PORTAL_CASE (JSON: email, name, trial,
// trial_name), SCREENSHOTS (a folder), WORK (a scratch folder), CHROMIUM (default
// /usr/bin/chromium).
'use strict';

const fs = require('fs');
const path = require('path');
const common = require('./common.cjs');

const { expect } = common;

const base = process.env.PORTAL_BASE;
const the = JSON.parse(process.env.PORTAL_CASE);
const shots = process.env.SCREENSHOTS;
const work = process.env.WORK;
const { ask, close } = common.asker();

const problems = [];
const accessibility = [];

async function shot(page, name) {
  const file = path.join(shots, `register-${name}.png`);
  await common.screenshot(page, file);
}

async function axe(page, name) {
  await common.axe(page, name, accessibility);
}

async function mainText(page) {
  return page.locator('main').innerText();
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const { context, page } = await common.launch(work, { acceptDownloads: true });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console on ${page.url()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`script error on ${page.url()}: ${e.message}`));

  await page.goto(`${base}/portal/login`);
  await page.click('section[data-register] a.btn');
  await page.waitForURL(`${base}/portal/register`);
  // The browser's own check stops an address that is none before it is sent.
  await page.fill('#email', the.email);
  await page.fill('#name', the.name);
  await shot(page, 'form');
  await axe(page, 'registration form');
  await page.click('form[action="/portal/register"] button[type="submit"]');
  await page.getByRole('heading', { name: 'Check your mailbox' }).waitFor();
  const sent = await mainText(page);
  expect(sent.includes('Check your mailbox') && sent.includes(the.email), `after the form: ${sent.slice(0, 400)}`);
  await shot(page, 'sent');
  await axe(page, 'link sent');

  const { link } = await ask({ ask: 'link', email: the.email });
  await page.goto(`${base}${link}`);
  expect((await mainText(page)).includes('Confirm your e-mail address'), 'the link shows its page');
  await shot(page, 'confirm');
  await axe(page, 'confirm the address');
  await page.click('form[action="/portal/register/verify"] button[type="submit"]');
  await page.waitForURL(`${base}/portal/tickets`);
  const trial = page.locator(`li[data-trial="${the.trial}"]`);
  expect(await trial.count() === 1, `the overview offers ${the.trial}: ${(await mainText(page)).slice(0, 600)}`);
  await shot(page, 'trials');
  await axe(page, 'overview with trials');

  await trial.locator('button').click();
  await page.waitForURL((u) => u.pathname.startsWith('/portal/tickets/') && u.search === '?trial=1');
  const ticket = await mainText(page);
  expect(ticket.includes('Your trial license is on ticket') && ticket.includes(the.trial_name), `after the take: ${ticket.slice(0, 600)}`);
  await shot(page, 'trial-ticket');
  await page.goto(`${base}/portal/tickets`);
  expect((await page.locator(`li[data-trial="${the.trial}"]`).innerText()).includes('Taken'), 'the trial shows as taken');

  // A cloud container of their own, and its credential file: downloaded, then in use.
  await page.click('form[action="/portal/cloud"] button[type="submit"]');
  await page.waitForURL(`${base}/portal/tickets#cloud`);
  const cloud = page.locator('div[data-cloud]');
  expect(await cloud.count() === 1, `one cloud container: ${(await mainText(page)).slice(0, 600)}`);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    cloud.locator('form[action$="/credential"] button').click(),
  ]);
  expect(/^150-\d{10}\.pem$/.test(download.suggestedFilename()), `the file: ${download.suggestedFilename()}`);
  await page.reload();
  expect(await page.locator('[data-credential="yes"]').count() === 1, 'a credential file in use');
  await shot(page, 'cloud');
  await axe(page, 'overview with a cloud container');

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
