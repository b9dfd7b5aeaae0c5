// settings.mjs: browser tests of the portal's Settings, audit view, dashboard additions
// (escalations awaiting acknowledgement, containment) and the alert search by IP with its
// CSV export. Started by tests/browser/run.py after portal.mjs, with the same settings in
// KAGARI_BROWSER. Prints "ok NAME" / "not ok NAME: why" per test and ends with
// "browser: N passed, N failed".
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

const require = createRequire(path.join(process.env.PW_DIR, 'package.json'));
const { chromium } = require('playwright-core');
const cfg = JSON.parse(process.env.KAGARI_BROWSER);

let passed = 0;
let failed = 0;
let page = null;
const consoleEvents = [];

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok settings.${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  } catch (e) {
    failed++;
    try {
      await page.screenshot({ path: path.join(cfg.artefacts, 'failed-settings-' + name + '.png'), fullPage: true });
      console.log('# page text: ' + (await page.textContent('body')).slice(0, 600));
      console.log('# console: ' + consoleEvents.slice(-12).join(' | '));
    } catch (e2) {
      /* no page to show */
    }
    console.log(`not ok settings.${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
  }
}

// RFC 6238 with SHA-1, 30 s steps, 6 digits.
function totp(secret, step) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', key).update(msg).digest();
  const off = mac[mac.length - 1] & 15;
  const v = mac.readUInt32BE(off) & 0x7fffffff;
  return String(v % 1000000).padStart(6, '0');
}

// A code of the user's secret the server has not seen yet (waits for the next step when
// the window's steps are used).
async function freshCode(u) {
  for (;;) {
    const cur = Math.floor(Date.now() / 30000);
    const step = Math.max(u.last_step + 1, cur - 1);
    if (step <= cur + 1) {
      u.last_step = step;
      return totp(u.secret, step);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function login(p, name, password, code) {
  await p.goto(cfg.url + '/#/login');
  await p.waitForSelector('#login-form');
  await p.fill('#login-user', name);
  await p.fill('#login-password', password);
  await p.click('#login-submit');
  if (code === undefined) return;
  await p.waitForSelector('#code-row:not(.hidden)');
  await p.fill('#login-code', code);
  await p.click('#login-submit');
  await p.waitForSelector('#who');
}

// GET path with the context's session cookie, from a chosen local address (127.0.0.1 is
// the browser's; any other 127/8 address is "outside" for an allow-list of 127.0.0.1/32).
function getFrom(localAddress, urlPath, cookie) {
  const u = new URL(cfg.url);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: u.hostname, port: u.port, path: urlPath, method: 'GET', localAddress,
      rejectUnauthorized: false, headers: { Cookie: cookie, Accept: 'application/json' }, timeout: 10000 }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function postAlert(alert) {
  const r = await fetch(cfg.intake, { method: 'POST', headers: { Authorization: 'Bearer ' + cfg.token, 'Content-Type': 'application/json' },
    body: JSON.stringify(alert) });
  check(r.status === 202, 'intake answered ' + r.status);
  return (await r.json()).ids[0];
}

const browser = await chromium.launch({
  executablePath: cfg.chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const dialogs = [];
async function newPage(acceptDownloads) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, timezoneId: 'UTC', locale: 'en-GB', acceptDownloads: !!acceptDownloads });
  ctx.setDefaultTimeout(20000);
  const p = await ctx.newPage();
  p.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  p.on('console', (m) => consoleEvents.push(m.type() + ': ' + m.text()));
  p.on('pageerror', (e) => consoleEvents.push('pageerror: ' + e.message));
  return p;
}
const shot = (p, name) => p.screenshot({ path: path.join(cfg.artefacts, name + '.png'), fullPage: true });

try {
  page = await newPage(true);
  const adm = cfg.adm;
  await login(page, adm.name, cfg.password, await freshCode(adm));
  const admCookie = (await page.context().cookies()).map((c) => c.name + '=' + c.value).join('; ');

  await test('admin_adds_a_user_and_resets_totp', async () => {
    await page.goto(cfg.url + '/#/settings');
    await page.waitForSelector('#user-rows tr[data-user="ana2"]');
    await page.fill('#new-user', 'newbie');
    await page.selectOption('#new-role', 'analyst');
    await page.click('#add-user-submit');
    const pw = (await page.textContent('#one-time-password', { timeout: 20000 })).trim();
    check(pw.length >= 20, 'a one-time password is shown: ' + pw);
    await page.waitForSelector('#user-rows tr[data-user="newbie"]');
    await shot(page, 'settings');
    // The new person's first login: the password, then the enrolment with the QR code.
    const p2 = await newPage();
    await login(p2, 'newbie', pw);
    // The one-time password: the person chooses their own, then enrols TOTP.
    await p2.waitForSelector('#new-password-row:not(.hidden)');
    await p2.fill('#login-new-password', 'newbie passphrase 42');
    await p2.fill('#login-new-password2', 'newbie passphrase 41');
    await p2.click('#login-submit');
    await p2.waitForSelector('#login-status .msg-error');
    await p2.fill('#login-new-password2', 'newbie passphrase 42');
    await p2.click('#login-submit');
    await p2.waitForSelector('#enrol-secret');
    const secret1 = (await p2.textContent('#enrol-secret')).trim();
    const nb = { secret: secret1, last_step: 0 };
    await p2.fill('#login-code', await freshCode(nb));
    await p2.click('#login-submit');
    await p2.waitForSelector('#who');
    check((await p2.textContent('#who')) === 'newbie', 'newbie is logged in');
    // The admin resets the TOTP secret (two clicks: no browser dialog).
    const row = page.locator('#user-rows tr[data-user="newbie"]');
    await row.locator('button.reset-totp').click();
    await row.locator('button.reset-totp.armed').waitFor();
    await page.locator('#user-rows tr[data-user="newbie"] button.reset-totp').click();
    await page.waitForSelector('#users-status .msg-info');
    check((await page.textContent('#users-status')).includes('newbie'), 'reset confirmed');
    // The person's session ended; the next login enrols a new secret.
    await p2.reload();
    await p2.waitForSelector('#login-form');
    await login(p2, 'newbie', 'newbie passphrase 42');
    await p2.waitForSelector('#enrol-secret');
    const secret2 = (await p2.textContent('#enrol-secret')).trim();
    check(secret2 && secret2 !== secret1, 'a new secret to enrol');
    await p2.context().close();
    check(dialogs.length === 0, 'no browser dialog: ' + dialogs.join(' | '));
  });

  await test('analyst_cannot_open_settings_and_api_says_403', async () => {
    const p3 = await newPage();
    const u = cfg.ana2;
    await login(p3, u.name, cfg.password, await freshCode(u));
    await p3.goto(cfg.url + '/#/settings');
    await p3.waitForSelector('#not-admin');
    check(await p3.locator('#users').count() === 0 && await p3.locator('#allowlist').count() === 0,
      'no admin sections for an analyst');
    check(await p3.locator('#nav-audit').count() === 0, 'no audit link for an analyst');
    const answers = await p3.evaluate(async () => {
      const me = await (await fetch('/api/v1/me')).json();
      const h = { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token };
      const out = [];
      out.push((await fetch('/api/v1/tenants/t1/users')).status);
      out.push((await fetch('/api/v1/tenants/t1/users', { method: 'POST', headers: h, body: JSON.stringify({ user: 'sneaky', role: 'admin' }) })).status);
      out.push((await fetch('/api/v1/tenants/t1/allowlist', { method: 'POST', headers: h, body: JSON.stringify({ cidr: '0.0.0.0/0' }) })).status);
      out.push((await fetch('/api/v1/tenants/t1/users/newbie/disabled', { method: 'POST', headers: h, body: JSON.stringify({ disabled: true }) })).status);
      out.push((await fetch('/api/v1/tenants/t1/audit')).status);
      return out;
    });
    check(answers.every((s) => s === 403), 'the API refuses the analyst: ' + answers);
    await p3.goto(cfg.url + '/#/t/t1/audit');
    await p3.waitForSelector('.msg-error');
    await p3.context().close();
  });

  await test('allowlist_edit_then_a_request_from_outside_is_refused', async () => {
    await page.goto(cfg.url + '/#/settings');
    await page.waitForSelector('#allow-rows li');
    // Bad input: a clear message, nothing sent.
    for (const bad of ['<script>', '10.0.0.0/8/8', 'x']) {
      await page.evaluate(() => document.querySelector('#allow-status').replaceChildren());
      await page.fill('#allow-cidr', bad);
      await page.click('#allow-add');
      await page.waitForSelector('#allow-status .msg-error');
    }
    // A block that leaves the admin outside is refused (and undone) at the server.
    await page.fill('#allow-cidr', '192.0.2.0/24');
    await page.click('#allow-add');
    await page.waitForFunction(() => /lock you out|締め出され/.test(document.querySelector('#allow-status').textContent));
    check(await page.locator('#allow-status button.lockout-anyway').count() === 1, 'a confirmation offered, not taken');
    check(await page.locator('#allow-rows li[data-cidr]').count() === 0, 'nothing kept');
    await page.fill('#allow-cidr', '127.0.0.1/32');
    await page.click('#allow-add');
    await page.waitForSelector('#allow-rows li[data-cidr="127.0.0.1/32"]');
    const inside = await getFrom('127.0.0.1', '/api/v1/tenants/t1/alerts', admCookie);
    const outside = await getFrom('127.0.0.2', '/api/v1/tenants/t1/alerts', admCookie);
    check(inside.status === 200, 'from the allowed address: ' + inside.status);
    check(outside.status === 403 && JSON.parse(outside.body).error === 'address_not_allowed',
      'from outside: ' + outside.status + ' ' + outside.body);
    // Back to no list (removing the last entry admits everyone again: not a lock-out).
    const li = page.locator('#allow-rows li[data-cidr="127.0.0.1/32"]');
    await li.locator('button.allow-remove').click();
    await li.locator('button.allow-remove.armed').waitFor();
    await li.locator('button.allow-remove').click();
    await page.waitForSelector('#allow-rows li.none');
    const again = await getFrom('127.0.0.2', '/api/v1/tenants/t1/alerts', admCookie);
    check(again.status === 200, 'no list: everyone again: ' + again.status);
  });

  await test('dashboard_shows_the_pending_escalation_as_text', async () => {
    await page.goto(cfg.url + '/#/t/t1/dashboard');
    const row = page.locator('#dash-escalations tr[data-escalation]').first();
    await row.waitFor();
    const text = await row.textContent();
    check(text.includes(cfg.esc_subject), 'the subject, markup as text: ' + text);
    check(text.includes('当番 佐藤'), 'the contact reached: ' + text);
    check(/\d+ min \d\d s|\d+ h \d\d min/.test(text), 'the time since start: ' + text);
    check(await page.locator('#dash-escalations img').count() === 0, 'no element from the subject');
    check(await page.evaluate(() => window.__xss) === undefined, 'no script ran');
    await page.waitForSelector('#dash-containment');
    await shot(page, 'dashboard-escalations');
    // Acknowledged from the dashboard: the daemon stops the chain and records who did it.
    const id = await row.getAttribute('data-escalation');
    await row.locator('button[data-ack]').click();
    // the row says so, or the next refresh has dropped it (no longer awaiting)
    await page.waitForFunction((i) => {
      const r = document.querySelector(`#dash-escalations tr[data-escalation="${i}"]`);
      return !r || r.querySelector('.msg-info') !== null;
    }, id);
    const one = await page.evaluate(async (u) => (await fetch(u)).json(), '/api/v1/tenants/t1/escalations/' + id);
    check(one.state === 'acked' && one.acked_via === 'api' && one.acked_by, 'acknowledged through the API: ' + JSON.stringify(one));
  });

  await test('alert_search_by_ip_and_csv_export_neutralizes_formulas', async () => {
    const ip = '198.51.100.77';
    const id = await postAlert({ source: 'it.portal.search', source_id: 'csv-' + Date.now(), severity: 'high',
      title: '=HYPERLINK("http://evil.example/","x")', observables: [{ type: 'ip', value: ip }] });
    const other = await postAlert({ source: 'it.portal.search', source_id: 'csv2-' + Date.now(),
      title: '+cmd|x', observables: [{ type: 'ip', value: '198.51.100.78' }] });
    await page.goto(cfg.url + '/#/t/t1/alerts');
    await page.waitForSelector('#f-ip');
    await page.fill('#f-ip', ip);
    await page.click('#f-apply');
    await page.waitForSelector(`#alert-rows tr[data-alert="${id}"]`);
    check(await page.locator(`#alert-rows tr[data-alert="${other}"]`).count() === 0, 'only that IP');
    check(await page.locator('#alert-rows tr[data-alert]').count() === 1, 'one alert');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#alerts-csv')]);
    const csv = fs.readFileSync(await dl.path(), 'utf8');
    check(csv.includes('"\'=HYPERLINK(""http://evil.example/"",""x"")"'), 'the formula neutralized: ' + csv);
    for (const line of csv.split('\r\n').slice(1)) {
      for (const cell of line.split('","')) check(!/^"?[=+\-@]/.test(cell), 'a live formula cell: ' + cell);
    }
    // A hostile value in the search box: refused with a message, the page stays.
    await page.fill('#f-ip', '<img src=x onerror=alert(1)>');
    await page.click('#f-apply');
    await page.waitForSelector('.msg-error');
    check(await page.evaluate(() => window.__xss) === undefined, 'no script ran');
  });

  await test('admin_edits_the_contact_chain', async () => {
    await page.goto(cfg.url + '/#/settings');
    await page.waitForSelector('#chain-rows tr[data-contact="3"]');
    check((await page.inputValue('#chain-rows tr[data-contact="1"] .c-name')) === '当番 佐藤', 'the configuration\'s chain first');
    // Hostile text in a field: refused by the server with a message, nothing saved.
    await page.fill('#chain-rows tr[data-contact="1"] .c-email', 'a@b.jp\r\nBcc: x@evil.example');
    await page.click('#chain-save');
    await page.waitForSelector('#chain-status .msg-error');
    await page.fill('#chain-rows tr[data-contact="1"] .c-email', 'night@example.jp');
    await page.fill('#chain-rows tr[data-contact="1"] .c-name', '<b>夜間</b>');
    await page.click('#chain-rows tr[data-contact="3"] .c-remove');
    await page.click('#chain-rows tr[data-contact="2"] .c-up');
    await page.click('#chain-save');
    await page.waitForSelector('#chain-status .msg-info');
    await page.reload();
    await page.waitForSelector('#chain-rows tr[data-contact="2"]');
    check(await page.locator('#chain-rows tr').count() === 2, 'two contacts kept');
    check((await page.inputValue('#chain-rows tr[data-contact="2"] .c-name')) === '<b>夜間</b>', 'order and name kept, as text');
    check((await page.inputValue('#chain-rows tr[data-contact="1"] .c-name')) === 'CISO Tanaka', 'moved up');
    await page.click('button.chain-reset');
    await page.click('button.chain-reset.armed');
    await page.waitForSelector('#chain-rows tr[data-contact="3"]');
  });

  await test('audit_view_lists_the_changes', async () => {
    await page.goto(cfg.url + '/#/t/t1/audit');
    await page.waitForSelector('#audit tr[data-audit]');
    const text = await page.textContent('#audit');
    for (const a of ['user.add', 'user.reset_totp', 'allowlist.add', 'allowlist.remove', 'contacts.set', 'contacts.reset']) check(text.includes(a), 'audit shows ' + a);
    check(await page.locator('#audit button, #audit input').count() === 0, 'read-only');
  });
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
