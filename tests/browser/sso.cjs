// Single sign-on in a real browser against a real identity provider: Debian's Chromium,
// headless, driven by playwright-core, logging in at SimpleSAMLphp (started by the
// integration test `saml::a_real_identity_provider_in_a_browser`, tests/it/saml.rs).
//
// SP-initiated login from the portal's login page (HTTP-Redirect) → the IdP's password form
// → its HTTP-POST back to our Assertion Consumer Service → the licenses of every ticket of
// the user's customer; then single logout: our session ends, the IdP's too (the next
// sign-in, by the HTTP-POST binding, asks for the password again). Any failed expectation throws: the script exits 1 with the reason.
//
// Environment: PORTAL_BASE (http://127.0.0.1:PORT), SSO_CASE (JSON: user, password,
// tickets, licenses, idp), SCREENSHOTS (a folder), WORK (a scratch folder), CHROMIUM
// (default /usr/bin/chromium).
'use strict';

const fs = require('fs');
const path = require('path');
const common = require('./common.cjs');

const { expect } = common;

const base = process.env.PORTAL_BASE;
const the = JSON.parse(process.env.SSO_CASE);
const shots = process.env.SCREENSHOTS;
const work = process.env.WORK;

const problems = [];
const accessibility = [];

async function shot(page, name) {
  const file = path.join(shots, `sso-${name}.png`);
  await common.screenshot(page, file);
}

async function axe(page, name) {
  await common.axe(page, name, accessibility);
}

/** Signs in at the identity provider's password form (the page we are on). */
async function signInAtIdp(page) {
  await page.waitForURL((u) => u.href.startsWith(the.idp) && u.href.includes('loginuserpass'));
  await shot(page, 'idp-login');
  await page.fill('#username', the.user);
  await page.fill('#password', the.password);
  await page.click('#submit_button');
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const { context, page } = await common.launch(work);
  // Our pages only: the identity provider's are not ours to judge.
  page.on('console', (m) => {
    if (m.type() === 'error' && page.url().startsWith(base)) problems.push(`console on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => {
    if (page.url().startsWith(base)) problems.push(`script error on ${page.url()}: ${e.message}`);
  });
  page.on('response', (r) => {
    if (r.request().resourceType() !== 'document' || !r.url().startsWith(base)) return;
    const csp = r.headers()['content-security-policy'] || '';
    if (r.status() < 300 && (!csp.includes("script-src 'self'") || csp.includes('unsafe-inline'))) {
      problems.push(`${r.url()} answered without the strict policy: ${JSON.stringify(csp)}`);
    }
  });

  // SP-initiated: the login page offers single sign-on.
  await page.goto(`${base}/portal/login`);
  await shot(page, 'portal-login');
  await axe(page, 'login with single sign-on');
  await page.click('section[data-sso] a.btn');
  await signInAtIdp(page);
  // The IdP posts its signed answer back (HTTP-POST); the portal shows the customer's
  // licenses across their tickets.
  await page.waitForURL(`${base}/portal/tickets`);
  const main = await page.locator('main').innerText();
  for (const t of the.tickets) expect(main.includes(t), `the overview shows ticket ${t}: ${main.slice(0, 600)}`);
  for (const l of the.licenses) {
    expect(await page.locator(`tr[data-license="${l}"]`).count() === 1, `the overview shows license ${l}`);
  }
  await shot(page, 'overview');
  await axe(page, 'overview after single sign-on');

  // Single logout: the portal's logout goes through the IdP and back.
  await page.click('form[action="/portal/logout"] button');
  await page.waitForURL(`${base}/portal/login?out=1`);
  expect((await page.locator('.alert-ok').innerText()).includes('You are logged out.'), 'the logout is said');
  await shot(page, 'logged-out');
  await page.goto(`${base}/portal/tickets`);
  expect(page.url().startsWith(`${base}/portal/login`), `after the logout: ${page.url()}`);
  // The IdP's session ended too: signing in again asks for the password. This time the
  // request goes by the HTTP-POST binding (signed inside; the portal's script sends the form).
  const posted = page.waitForRequest((r) => r.url().startsWith(the.idp) && r.method() === 'POST'
    && r.url().includes('SSOService') && (r.postData() || '').includes('SAMLRequest='));
  await page.goto(`${base}/portal/saml/login?binding=post`);
  await posted;
  await signInAtIdp(page);
  await page.waitForURL(`${base}/portal/tickets`);
  for (const t of the.tickets) expect((await page.locator('main').innerText()).includes(t), `after the POST binding: ticket ${t}`);

  await context.close();
  expect(problems.length === 0, `problems on the pages:\n${problems.join('\n')}`);
  expect(accessibility.length === 0, `accessibility (axe-core, serious or critical):\n${accessibility.join('\n')}`);
  process.stdout.write('DONE\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
