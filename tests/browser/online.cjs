// The portal's online transfer in a real browser: the page talks to the local helper
// (licentia container serve-local) that the test started on this computer, so the customer
// handles no file. Run by `online::an_online_transfer_in_a_browser_through_the_local_helper`
// (tests/it/online.rs), which answers this script's `ASK {json}` lines as portal.cjs's test
// does: `container` (the helper's container as its file says), `reinstall` (the helper
// starts again on an empty folder), `stop-helper`.
//
// Environment: PORTAL_BASE, PORTAL_CASE (JSON: ticket, licenses, texts), SCREENSHOTS, WORK,
// CHROMIUM (default /usr/bin/chromium).
'use strict';

const fs = require('fs');
const path = require('path');
const common = require('./common.cjs');

const { expect } = common;

const base = process.env.PORTAL_BASE;
const the = JSON.parse(process.env.PORTAL_CASE);
const shots = process.env.SCREENSHOTS;
const { ask, close } = common.asker();

const problems = [];
let shotNo = 0;

async function shot(page, name) {
  shotNo += 1;
  const file = path.join(shots, `online-${String(shotNo).padStart(2, '0')}-${name}.png`);
  await common.screenshot(page, file);
}

async function axe(page, name) {
  await common.axe(page, `accessibility ${name}`, problems);
}

async function expectText(page, selector, wanted) {
  const t = (await page.locator(selector).first().innerText()).trim();
  expect(t.includes(wanted), `${selector} says ${JSON.stringify(t)}, expected ${JSON.stringify(wanted)} (${page.url()})`);
}

/** Starts the online transfer of the form around the visible start button and follows its
 * steps (each shown as it runs) to the transfer's last page. */
async function transferOnline(page, label) {
  await page.locator('[data-online-start]:visible').click();
  // The steps as the page announces them, in order (the last may pass too fast to see: the
  // page then stands on the done page).
  const seen = [];
  const status = page.locator('[data-online-status]:visible');
  const deadline = Date.now() + 30000;
  while (!page.url().endsWith('/portal/transfer')) {
    expect(Date.now() < deadline, `${label}: no end of the online transfer; the page said ${JSON.stringify(seen)}`);
    const s = (await status.innerText({ timeout: 1000 }).catch(() => '')).trim();
    if (s && !seen.includes(s)) seen.push(s);
    if (s.startsWith('The online transfer stopped')) throw new Error(`${label}: ${s}`);
    await page.waitForTimeout(5);
  }
  await page.locator('.card.done').waitFor();
  const order = seen.map((s) => the.texts.steps.findIndex((t) => s.startsWith(t))).filter((i) => i >= 0);
  expect(order.length >= 1 && order.every((v, i) => i === 0 || v > order[i - 1]), `${label}: the steps shown in order: ${JSON.stringify(seen)}`);
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const { context, page } = await common.launch(process.env.WORK);
  let helperStopped = false;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // With the helper stopped, the browser reports the refused connection to it: that is
    // what the page is meant to notice.
    if (helperStopped && m.text().includes('ERR_CONNECTION_REFUSED')) return;
    problems.push(`console on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`script error on ${page.url()}: ${e.message}`));

  await page.goto(`${base}/portal/login`);
  await page.fill('#ticket', the.ticket);
  await page.click('form[action="/portal/login"] button[type="submit"]');

  // Activate both licenses online: the helper makes the container with the first transfer.
  await page.goto(`${base}/portal/tickets/${the.ticket}/activate?binding=act`);
  await page.locator('[data-online-start]').waitFor({ state: 'visible' });
  await expectText(page, '[data-online-status]', the.texts.found_new);
  await shot(page, 'online-activate');
  await axe(page, 'activate (online)');
  await transferOnline(page, 'activate');
  const c = await ask({ ask: 'container' });
  expect(await page.locator(`.done-list li[data-license="${the.l1}"]`).count() === 1, 'the done page lists license 1');
  expect(await page.locator(`.done-list li[data-license="${the.l2}"]`).count() === 1, 'the done page lists license 2');
  await expectText(page, '.card.done', c.serial);
  await shot(page, 'online-done');

  // Return the first one online: the return page offers it for the helper's container.
  await page.goto(`${base}/portal/tickets/${the.ticket}/return`);
  await page.locator('[data-online-start]').waitFor({ state: 'visible' });
  await expectText(page, '[data-online-status]', c.serial);
  await page.uncheck(`#ret-${the.l2}`);
  await shot(page, 'online-return');
  await transferOnline(page, 'return');
  expect(await page.locator(`.done-list li[data-license="${the.l1}"]`).count() === 1, 'the return lists license 1');
  await page.goto(`${base}/portal/tickets`);
  await expectText(page, `tr[data-license="${the.l1}"] td[data-col="state"]`, 'Available');
  await expectText(page, `tr[data-license="${the.l2}"] td[data-col="state"]`, 'Activated');

  // The computer is reinstalled: the new container restores the old one's licenses, with
  // this computer's traits hashed by the helper.
  await ask({ ask: 'reinstall' });
  await page.goto(`${base}/portal/restore`);
  await page.fill('#serial', c.serial);
  await page.click('form[action="/portal/restore"][method="get"] button[type="submit"]');
  await page.locator('[data-online-start]').waitFor({ state: 'visible' });
  await expectText(page, '[data-online-status]', the.texts.found_new);
  await shot(page, 'online-restore');
  await axe(page, 'restore (online)');
  await transferOnline(page, 'restore');
  const restored = await ask({ ask: 'container' });
  expect(restored.serial !== c.serial, 'a new container');
  expect(await page.locator(`.done-list li[data-license="${the.l2}"]`).count() === 1, 'the restore lists license 2');

  // Without the helper the page says so, shows the command that starts it, and the offline
  // transfer stays.
  await ask({ ask: 'stop-helper' });
  helperStopped = true;
  await page.goto(`${base}/portal/tickets/${the.ticket}/activate?binding=act`);
  await page.locator('[data-online-command]').waitFor({ state: 'visible' });
  await expectText(page, '[data-online-status]', the.texts.missing);
  await expectText(page, '[data-online-command]', the.texts.command);
  expect(!(await page.locator('[data-online-start]').isVisible()), 'no online button without the helper');
  expect(await page.locator('#request').isVisible(), 'the offline upload is still there');
  await shot(page, 'online-missing');
  await axe(page, 'activate (no helper)');

  await context.close();
  expect(problems.length === 0, `problems on the pages:\n${problems.join('\n')}`);
  process.stdout.write('DONE\n');
  close();
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
