// What every browser script shares: talking to its test (log lines, `ASK {json}` answered
// by one JSON line on stdin), failing with a reason, axe-core on a page, and Debian's
// Chromium started headless with a fresh profile (playwright-core never downloads one).
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

function log(...args) {
  process.stdout.write(`${args.join(' ')}\n`);
}

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

/** The test's answers: `ask(what)` writes `ASK {json}` and resolves with the answer (an
 * answer with `error` rejects); `close()` lets the script end. */
function asker() {
  const answers = readline.createInterface({ input: process.stdin });
  const waiting = [];
  answers.on('line', (line) => {
    const next = waiting.shift();
    if (next) next(JSON.parse(line));
  });
  const ask = (what) => new Promise((resolve, reject) => {
    waiting.push((answer) => (answer.error
      ? reject(new Error(`the test could not ${what.ask}: ${answer.error}`))
      : resolve(answer)));
    process.stdout.write(`ASK ${JSON.stringify(what)}\n`);
  });
  return { ask, close: () => answers.close() };
}

/** axe-core on the page as it is: serious or critical violations are pushed to `into`,
 * lesser ones logged. Evaluated through the browser's debugging protocol, which the page's
 * policy does not govern: the pages themselves still run nothing but the portal's script. */
async function axe(page, name, into) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      into.push(`${name}: ${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    } else {
      log(`axe ${name}: ${v.id} (${v.impact}) ${v.help}`);
    }
  }
}

/** Saves a full-page screenshot and says where. */
async function screenshot(page, file) {
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot', file);
}

/** Debian's Chromium (CHROMIUM, default /usr/bin/chromium), headless, with a fresh profile
 * in `work`; its first page, with a 20 s default timeout. */
async function launch(work, options = {}) {
  const profile = fs.mkdtempSync(path.join(work, 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    locale: 'en-US',
    ...options,
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(20000);
  return { context, page };
}

module.exports = { log, expect, asker, axe, screenshot, launch };
