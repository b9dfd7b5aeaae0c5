// portal.mjs: browser tests of the portal (playwright-core driving chromium headless).
// Started by tests/browser/run.py with the daemon, users and data ready; the settings
// come in KAGARI_BROWSER (JSON). Prints "ok NAME" / "not ok NAME: why" per test and ends
// with "browser: N passed, N failed".
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import path from 'node:path';

const require = createRequire(path.join(process.env.PW_DIR, 'package.json'));
const { chromium } = require('playwright-core');
const cfg = JSON.parse(process.env.KAGARI_BROWSER);

let passed = 0;
let failed = 0;

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  } catch (e) {
    failed++;
    try {
      await page.screenshot({ path: path.join(cfg.artefacts, 'failed-' + name + '.png'), fullPage: true });
      console.log('# page text: ' + (await page.textContent('body')).slice(0, 600));
      console.log('# console: ' + consoleEvents.slice(-12).join(' | '));
    } catch (e2) {
      /* no page to show */
    }
    console.log(`not ok ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
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

const browser = await chromium.launch({
  executablePath: cfg.chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
// The browser's own zone is UTC: the portal must still show JST, the user's default.
const ctx = await browser.newContext({ ignoreHTTPSErrors: true, timezoneId: 'UTC', locale: 'en-GB' });
ctx.setDefaultTimeout(20000);
const page = await ctx.newPage();
const dialogs = [];
let anaSecret = '';
let anaStep = 0;
const consoleEvents = [];
page.on('dialog', async (d) => {
  dialogs.push(d.message());
  await d.dismiss();
});
page.on('console', (m) => consoleEvents.push(m.type() + ': ' + m.text()));
page.on('pageerror', (e) => consoleEvents.push('pageerror: ' + e.message));
const shot = (name) => page.screenshot({ path: path.join(cfg.artefacts, name + '.png'), fullPage: true });

async function login(user, code, recovery) {
  await page.fill('#login-user', user);
  await page.fill('#login-password', cfg.password);
  await page.click('#login-submit');
  if (recovery) {
    await page.waitForSelector('#toggle-recovery:not(.hidden)');
    await page.click('#toggle-recovery');
    await page.fill('#login-code', recovery);
  } else {
    await page.waitForSelector('#code-row:not(.hidden)');
    await page.fill('#login-code', code);
  }
  await page.click('#login-submit');
  await page.waitForSelector('#who');
}

try {
  await test('served_html_has_csp_and_no_inline_script', async () => {
    const resp = await page.goto(cfg.url + '/');
    const hd = resp.headers();
    const csp = hd['content-security-policy'] || '';
    check(csp.includes("default-src 'self'") && csp.includes("frame-ancestors 'none'") &&
      !csp.includes('unsafe-inline'), 'CSP: ' + csp);
    check((hd['strict-transport-security'] || '').startsWith('max-age='), 'HSTS');
    check(hd['x-content-type-options'] === 'nosniff', 'nosniff');
    check(hd['referrer-policy'] === 'no-referrer', 'referrer policy');
    const html = await resp.text();
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
      check(/\bsrc=/.test(m[1]) && m[2].trim() === '', 'inline script: ' + m[0]);
    }
    check(!/\son[a-z]+\s*=/i.test(html) && !/\sstyle\s*=/i.test(html), 'handler or style attribute');
    // The CSP is enforced: an inline script added by hand does not run.
    const ran = await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inline = 1';
      document.body.appendChild(s);
      return window.__inline === 1;
    });
    check(!ran, 'an inline script ran despite the CSP');
  });

  await test('login_with_password_then_totp_enrolment', async () => {
    await page.waitForSelector('#login-form');
    await page.fill('#login-user', cfg.ana.name);
    await page.fill('#login-password', cfg.password);
    await page.click('#login-submit');
    await page.waitForSelector('#enrol-qr');
    const secret = (await page.textContent('#enrol-secret')).trim();
    anaSecret = secret;
    check(/^[A-Z2-7]{16,}$/.test(secret), 'secret: ' + secret);
    const src = await page.getAttribute('#enrol-qr', 'src');
    check(src.startsWith('data:image/svg+xml;base64,'), 'QR src');
    const svg = Buffer.from(src.split(',')[1], 'base64').toString();
    check(svg.includes('<svg') && !/<script/i.test(svg), 'the QR code is an SVG image');
    await shot('enrolment');
    // A wrong code first: refused, still on the login page.
    await page.fill('#login-code', '000000');
    await page.click('#login-submit');
    await page.waitForSelector('#login-status .msg-error');
    anaStep = Math.floor(Date.now() / 30000);
    await page.fill('#login-code', totp(secret, anaStep));
    await page.click('#login-submit');
    await page.waitForSelector('#who');
    check((await page.textContent('#who')) === cfg.ana.name, 'logged in as ana');
    // The landing page is the tenant's dashboard.
    await page.waitForSelector('[data-page="dashboard"]');
  });

  await test('language_switch_shows_japanese_labels', async () => {
    await page.goto(cfg.url + '/#/settings');
    await page.waitForSelector('#pref-lang');
    await page.selectOption('#pref-lang', 'en');
    await page.click('#pref-save');
    await page.waitForFunction(() => document.querySelector('#nav-alerts').textContent === 'Alerts');
    check(await page.evaluate(() => document.documentElement.lang) === 'en', 'lang en');
    await page.click('#lang-toggle');
    await page.waitForFunction(() => document.querySelector('#nav-alerts').textContent === 'アラート');
    check(await page.textContent('#nav-approvals') === '承認', 'approvals label');
    check(await page.textContent('#logout') === 'ログアウト', 'logout label');
    check(await page.evaluate(() => document.documentElement.lang) === 'ja', 'lang ja');
    // Kept for the person at the server, and in this browser: a reload stays Japanese.
    await page.waitForFunction(async () => (await (await fetch('/api/v1/me/preferences')).json()).language === 'ja');
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#nav-alerts')?.textContent === 'アラート');
    // The server's choice wins over this browser's: English at the server, a reload shows English.
    await page.evaluate(() => window.localStorage.setItem('kagari.lang', 'ja'));
    const csrf = await page.evaluate(async () => (await (await fetch('/api/v1/me')).json()).csrf_token);
    const st = await page.evaluate(async (tok) => (await fetch('/api/v1/me/preferences', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': tok },
      body: JSON.stringify({ language: 'en', time_zone: 'Asia/Tokyo' }) })).status, csrf);
    check(st === 200, 'preferences saved: ' + st);
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#nav-alerts')?.textContent === 'Alerts');
    await page.click('#lang-toggle');
    await page.waitForFunction(() => document.querySelector('#nav-alerts').textContent === 'アラート');
  });

  await test('alert_title_with_markup_is_shown_as_text', async () => {
    const before = consoleEvents.length;
    await page.goto(cfg.url + '/#/t/t1/alerts');
    const row = page.locator(`tr[data-alert="${cfg.xss_alert}"] td.title a`);
    await row.waitFor();
    check((await row.textContent()) === cfg.xss_title, 'list title: ' + (await row.textContent()));
    await shot('alerts');
    await row.click();
    await page.waitForSelector('#alert-title');
    check((await page.textContent('#alert-title')) === cfg.xss_title, 'detail title');
    check((await page.textContent('#alert-raw')).includes(cfg.xss_title.replace(/"/g, '\\"')), 'raw shows the markup as text');
    await page.waitForTimeout(500);
    const injected = await page.evaluate(() => ({
      xss: window.__xss, imgs: document.querySelectorAll('main img').length,
      scripts: document.querySelectorAll('main script, main svg').length,
      links: [...document.querySelectorAll('main a')].map((a) => a.getAttribute('href')),
    }));
    check(injected.xss === undefined && injected.imgs === 0 && injected.scripts === 0, 'injected: ' + JSON.stringify(injected));
    check(injected.links.every((h) => h.startsWith('#/')), 'links: ' + injected.links);
    // Shown in the user's zone (JST), not the browser's (UTC): 00:30Z is 09:30 JST.
    const times = await page.textContent('dl.fields');
    check(times.includes('09:30:00') && times.includes('JST'), 'time in JST: ' + times);
    check(dialogs.length === 0, 'dialogs: ' + dialogs);
    check(consoleEvents.length === before, 'console: ' + consoleEvents.slice(before));
    await shot('alert');
  });

  await test('alert_filter_by_level', async () => {
    await page.goto(cfg.url + '/#/t/t1/alerts');
    await page.waitForSelector('#f-severity');
    await page.selectOption('#f-severity', 'critical');
    await page.click('#f-apply');
    await page.waitForFunction(() => location.hash.includes('severity=critical'));
    // The filtered page replaces the list: only the critical alert is left.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#alert-rows td.title')].map((x) => x.textContent);
      return rows.length === 1 && rows[0] === 'critical one';
    });
    check(await page.inputValue('#f-severity') === 'critical', 'the filter is shown as set');
  });

  await test('dashboard_shows_a_new_alert_by_polling', async () => {
    await page.goto(cfg.url + '/#/t/t1/dashboard');
    await page.waitForSelector('#dash-total');
    const before = Number(await page.textContent('#dash-total'));
    check(before >= 3, 'total: ' + before);
    check(await page.locator('#chart-level svg rect').count() >= 1, 'level chart drawn');
    check((await page.locator('#chart-source svg text').allTextContents()).includes('it.portal.lvl'), 'source chart');
    check(Number(await page.textContent('#dash-pending')) >= 1, 'pending approvals counted');
    await shot('dashboard');
    // A new alert arrives at the intake; the page shows it without a reload.
    const r = await fetch(cfg.intake, {
      method: 'POST', headers: { Authorization: 'Bearer ' + cfg.token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ source: 'it.portal.live', source_id: 'live-1', severity: 'critical', title: 'live one' }),
    });
    check(r.status === 202, 'intake: ' + r.status);
    await page.waitForFunction((n) => Number(document.querySelector('#dash-total')?.textContent) === n + 1, before, { timeout: 20000 });
    check((await page.locator('#chart-source svg text').allTextContents()).includes('it.portal.live'), 'new source drawn');
  });

  await test('approve_shows_the_calls_then_the_run_continues', async () => {
    await page.goto(cfg.url + '/#/approvals');
    const card = page.locator('article.approval', { hasText: cfg.approval_title });
    await card.waitFor();
    const calls = await card.locator('ul.effects code').allTextContents();
    check(calls.length === 1 && calls[0] === `graph.disable_user("${cfg.approval_upn}")`, 'calls: ' + calls);
    check((await card.locator('p.detail').textContent()).includes('203.0.113.7'), 'why');
    const fields = await card.locator('dl.fields').textContent();
    check(fields.includes('JST') && /1/.test(fields), 'deadline and quorum: ' + fields);
    await shot('approval');
    await card.locator('textarea').fill('checked with the manager');
    await card.locator('button.approve').click();
    await card.locator('.decision-status .msg-info').waitFor();
    const runLink = card.locator('p.meta a');
    const href = await runLink.getAttribute('href');
    await page.goto(cfg.url + '/' + href);
    // The run goes on: the approved call is made and the run ends done.
    for (let i = 0; i < 40; i++) {
      await page.waitForSelector('[data-page="run"]');
      const kinds = await page.locator('#journal td.mono').allTextContents();
      const state = await page.locator('h1 .state').textContent();
      if (kinds.some((k) => k.includes('graph.disable_user')) &&
        (await page.locator('h1 .state').getAttribute('class')).includes('state-done')) {
        await shot('run');
        return;
      }
      check(!(await page.locator('h1 .state').getAttribute('class')).includes('state-failed'), 'run failed: ' + state);
      await page.waitForTimeout(500);
      await page.reload();
    }
    throw new Error('the run did not continue after the approval');
  });

  await test('other_tenant_alert_is_404', async () => {
    for (const h of [`#/t/t2/alerts/${cfg.t2_alert}`, '#/t/t2/alerts', '#/t/t1/alerts/999999',
      '#/t/t1/runs/999999', '#/t/nope/alerts/1', '#/no/such/page']) {
      await page.goto(cfg.url + '/' + h);
      await page.waitForSelector('[data-page="not-found"]');
      check(!(await page.content()).includes('t2 secret alert'), 'leaked t2 alert on ' + h);
    }
  });

  await test('logout_then_login_with_a_recovery_code', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    const me = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
    check(me === 401, 'session ended: ' + me);
    await login(cfg.ana.name, null, cfg.ana.recovery);
    check((await page.textContent('#who')) === cfg.ana.name, 'logged in');
  });

  await test('new_recovery_codes_from_settings', async () => {
    await page.goto(cfg.url + '/#/settings');
    await page.waitForSelector('#rc-code');
    await page.fill('#rc-code', '000000');
    await page.click('#rc-new');
    await page.waitForSelector('#rc-out .msg-error');
    const step = Math.max(anaStep + 1, Math.floor(Date.now() / 30000) - 1);
    anaStep = step;
    await page.fill('#rc-code', totp(anaSecret, step));
    await page.click('#rc-new');
    await page.waitForSelector('#recovery-codes');
    const codes = await page.locator('#recovery-codes code').allTextContents();
    check(codes.length === 10 && codes.every((c) => /^[a-z2-7]{5}-[a-z2-7]{5}$/.test(c)), 'codes: ' + codes);
    // The old codes stop working; a new one logs in.
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    await page.fill('#login-user', cfg.ana.name);
    await page.fill('#login-password', cfg.password);
    await page.click('#login-submit');
    await page.waitForSelector('#toggle-recovery:not(.hidden)');
    await page.click('#toggle-recovery');
    await page.fill('#login-code', cfg.ana.recovery2);
    await page.click('#login-submit');
    await page.waitForSelector('#login-status .msg-error');
    await page.fill('#login-code', codes[3]);
    await page.click('#login-submit');
    await page.waitForSelector('#who');
  });

  await test('auditor_cannot_approve', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    let step = Math.max(Math.floor(Date.now() / 30000), cfg.aud.last_step + 1);
    while (step > Math.floor(Date.now() / 30000) + 1) await page.waitForTimeout(500);
    await login(cfg.aud.name, totp(cfg.aud.secret, step));
    await page.goto(cfg.url + '/#/approvals');
    const card = page.locator('article.approval', { hasText: cfg.aud_title });
    await card.waitFor();
    await card.locator('button.approve').click();
    await card.locator('.decision-status .msg-error').waitFor();
    check((await card.locator('.decision-status').textContent()).length > 0, 'refusal shown');
    // Still pending at the server: the auditor's click changed nothing.
    await page.reload();
    const again = page.locator('article.approval', { hasText: cfg.aud_title });
    await again.waitFor();
    check((await again.locator('p.meta .state').getAttribute('class')).includes('state-pending'), 'still pending');
  });

  // ---- the Playbooks section (the auditor is logged in from the test above) ----
  const pv = cfg.pbview;

  await test('playbooks_list', async () => {
    await page.goto(cfg.url + '/#/t/t1/playbooks');
    const row = page.locator('tr[data-playbook="pb-view"]');
    await row.waitFor();
    const text = await row.textContent();
    check(text.includes(pv.v2.slice(0, 12)) && !text.includes(pv.v1.slice(0, 12)), 'current version: ' + text);
    check(text.includes(pv.deployer), 'deployed by: ' + text);
    check(text.includes('it.portal.pbview'), 'triggers: ' + text);
    check((await row.locator('td.num').textContent()) === '3', 'runs in 30 days: ' + text);
    check((await row.locator('[data-dry-run]').getAttribute('data-dry-run')) === 'off', 'dry run off');
    await page.click('#nav-playbooks');
    await row.waitFor();
  });

  await test('playbook_source_is_highlighted_text', async () => {
    await page.goto(cfg.url + '/#/t/t1/playbooks/pb-view');
    await page.waitForSelector('#source li');
    const lines = await page.locator('#source li').allTextContents();
    const want = pv.source2.replace(/\n$/, '').split('\n');
    check(lines.length === want.length, 'lines: ' + lines.length + ' want ' + want.length);
    check(lines.every((l, i) => l.replace(/\u200b/g, '') === want[i]), 'the source as text');
    const kw = await page.locator('#source .tok-kw').allTextContents();
    check(kw.includes('local') && kw.includes('function') && kw.includes('return'), 'keywords: ' + kw);
    check((await page.locator('#source .tok-com').first().textContent()).includes('<img'), 'comment');
    check((await page.locator('#source .tok-str').allTextContents()).some((x) => x.includes('<script>')), 'string');
    const injected = await page.evaluate(() => ({ xss: window.__xss,
      odd: document.querySelectorAll('#source *:not(li):not(span)').length,
      imgs: document.querySelectorAll('main img, main script').length }));
    check(injected.xss === undefined && injected.odd === 0 && injected.imgs === 0, 'injected: ' + JSON.stringify(injected));
    check((await page.textContent('#pb-deployer')) === pv.deployer, 'deployer');
    await shot('playbook');
  });

  await test('playbook_diff_between_two_deployed_versions', async () => {
    await page.goto(cfg.url + '/#/t/t1/playbooks/pb-view');
    await page.waitForSelector('#deployments');
    const vs = await page.locator('#deployments tbody tr').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-version')));
    check(vs.length === 2 && vs[0] === pv.v2 && vs[1] === pv.v1, 'history: ' + vs);
    const who = await page.locator('#deployments td.deployer').allTextContents();
    check(who.every((w) => w === pv.deployer), 'deployed by: ' + who);
    await page.check(`#deployments tr[data-version="${pv.v1}"] input[name="diff-a"]`);
    await page.check(`#deployments tr[data-version="${pv.v2}"] input[name="diff-b"]`);
    await page.click('#compare');
    await page.waitForSelector('#diff');
    // The playbook file, then the library the second version added (a version covers
    // its libraries).
    const files = await page.locator('#diff h3.diff-file').allTextContents();
    check(files.join(',') === 'pb-view.lua,lib/pvhelp.lua', 'files: ' + files);
    const libAdds = await page.locator('#diff table.diff').nth(1).locator('tr.add td.text').allTextContents();
    check(libAdds.join('\n') === '-- a helper of pb-view\nreturn { tag = "!" }', 'library: ' + libAdds);
    check(await page.locator('#diff table.diff').nth(1).locator('tr.del').count() === 0, 'library: nothing removed');
    const del = await page.locator('#diff table.diff').first().locator('tr.del td.text').allTextContents();
    const add = await page.locator('#diff table.diff').first().locator('tr.add td.text').allTextContents();
    check(del.length === 1 && del[0].includes('"looked up v1"'), 'removed: ' + del);
    check(add.length === 1 && add[0].includes('"looked up v2"'), 'added: ' + add);
    check((await page.locator('#diff table.diff').first().locator('tr.ctx').count()) >= 3, 'context lines');
    check((await page.locator('#diff tr.hunk').first().textContent()).startsWith('@@ -'), 'hunk header');
    await shot('playbook-diff');
    // The same two versions the other way round: added and removed swap.
    await page.selectOption('#diff-a', pv.v2);
    await page.selectOption('#diff-b', pv.v1);
    await page.click('#diff-apply');
    await page.waitForFunction((v) => location.hash.includes('a=' + v), pv.v2);
    await page.waitForFunction(() => document.querySelector('#diff tr.add td.text')?.textContent.includes('v1') &&
      document.querySelectorAll('#diff table.diff')[1]?.querySelectorAll('tr.del').length === 2);
    // A version with itself: no change.
    await page.goto(cfg.url + `/#/t/t1/playbooks/pb-view/diff?a=${pv.v1}&b=${pv.v1}`);
    await page.waitForSelector('#diff-same');
  });

  await test('runs_per_version_and_back_from_a_run', async () => {
    await page.goto(cfg.url + '/#/t/t1/playbooks/pb-view');
    await page.waitForSelector('#deployments');
    const counts = await page.locator('#deployments td.num').allTextContents();
    check(counts.join(',') === '2,1', 'runs per version: ' + counts);
    await page.click(`#deployments tr[data-version="${pv.v1}"] td.num a`);
    await page.waitForSelector('#version-runs');
    await page.waitForFunction(() => document.querySelectorAll('#version-run-rows tr[data-run]').length === 1);
    const id = await page.locator('#version-run-rows tr[data-run]').getAttribute('data-run');
    check(Number(id) === pv.runs[0], 'the run of v1: ' + id);
    await page.click('#version-run-rows tr[data-run] a');
    await page.waitForSelector('[data-page="run"]');
    // The run's page links to the source of the version it ran with.
    await page.click('#run-version');
    await page.waitForSelector('[data-page="playbook-version"]');
    check((await page.textContent('#pb-version')) === pv.v1, 'the version page of the run');
    check((await page.locator('#source li').allTextContents()).some((l) => l.includes('looked up v1')), 'v1 source');
  });

  async function cannotEdit(who) {
    await page.goto(cfg.url + '/#/t/t1/playbooks/pb-view');
    await page.waitForSelector('#dry-run-state');
    check(await page.locator('#dry-run-switch').count() === 0, who + ': a switch is shown');
    check(await page.locator('#dry-run-follow').count() === 0, who + ': a reset button is shown');
    await page.waitForSelector('#dry-run-readonly');
    const st = await page.evaluate(async () => {
      const me = await (await fetch('/api/v1/me')).json();
      const r = await fetch('/api/v1/tenants/t1/playbooks/pb-view/dry-run', {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token },
        body: JSON.stringify({ dry_run: true }) });
      return r.status;
    });
    check(st === 403, who + ': the API answered ' + st);
    check((await page.locator('[data-dry-run]').first().getAttribute('data-dry-run')) === 'off', 'still off');
  }

  await test('an_auditor_cannot_edit_playbooks', async () => {
    await cannotEdit('auditor');
  });

  await test('an_analyst_cannot_edit_playbooks', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    const step = Math.max(anaStep + 1, Math.floor(Date.now() / 30000) - 1);
    while (step > Math.floor(Date.now() / 30000) + 1) await page.waitForTimeout(500);
    anaStep = step;
    await login(cfg.ana.name, totp(anaSecret, step));
    await cannotEdit('analyst');
  });

  await test('an_engineer_turns_dry_run_on_and_the_next_run_is_dry', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    const step = Math.max(Math.floor(Date.now() / 30000), cfg.eng.last_step + 1);
    while (step > Math.floor(Date.now() / 30000) + 1) await page.waitForTimeout(500);
    await login(cfg.eng.name, totp(cfg.eng.secret, step));
    await page.goto(cfg.url + '/#/t/t1/playbooks/pb-view');
    await page.waitForSelector('#dry-run-switch');
    check(!(await page.isChecked('#dry-run-switch')), 'off at first');
    await page.check('#dry-run-switch');
    await page.waitForFunction(() => document.querySelector('#dry-run-state [data-dry-run]')?.getAttribute('data-dry-run') === 'on');
    check((await page.textContent('#dry-run-state')).includes(cfg.eng.name), 'who set it: ' + (await page.textContent('#dry-run-state')));
    const r = await fetch(cfg.intake, {
      method: 'POST', headers: { Authorization: 'Bearer ' + cfg.token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ source: 'it.portal.pbview', source_id: 'pv-dry', severity: 'high', title: 'dry one' }),
    });
    check(r.status === 202, 'intake: ' + r.status);
    const alertId = (await r.json()).ids[0];
    // The run of that alert: its lookup was recorded as a dry run, not made.
    let run = null;
    for (let i = 0; i < 60 && !run; i++) {
      run = await page.evaluate(async (a) => {
        const al = await (await fetch('/api/v1/tenants/t1/alerts/' + a)).json();
        const x = (al.runs || []).find((y) => y.playbook === 'pb-view' && y.state === 'done');
        return x ? x.id : null;
      }, alertId);
      if (!run) await page.waitForTimeout(250);
    }
    check(run, 'no finished run for the dry alert');
    await page.goto(cfg.url + '/#/t/t1/runs/' + run);
    await page.waitForSelector('#journal');
    const row = page.locator('#journal tbody tr', { hasText: 'graph.user' });
    check((await row.count()) === 1, 'one lookup step');
    const result = await row.locator('td').nth(4).textContent();
    check(JSON.parse(result).dry_run === true, 'the lookup was a dry run: ' + result);
    await shot('playbook-dry-run');
    // And off again: back to the file's own setting.
    await page.goto(cfg.url + '/#/t/t1/playbooks/pb-view');
    await page.waitForSelector('#dry-run-follow');
    await page.click('#dry-run-follow');
    await page.waitForFunction(() => document.querySelector('#dry-run-state [data-dry-run]')?.getAttribute('data-dry-run') === 'off' && !document.querySelector('#dry-run-follow'));
  });

  await test('highlighter_and_diff_keep_every_character', async () => {
    const res = await page.evaluate(async () => {
      const m = await import('/assets/playbooks.js');
      // Hostile and broken Lua: unterminated strings and long brackets, escapes at the
      // end, nested brackets, markup, NUL, astral characters, CR LF.
      const pieces = ['--[[', ']]', '--[==[', ']==]', '[[', '[=[', ']=]', '"', "'", '\\', '\n',
        '\r\n', '0x1p4', '1e', '.5', '..', '...', 'local', 'end', 'nil', '<img src=x onerror=alert(1)>',
        '</script>', '\u0000', '\ud83d\ude00', '\t', '-- c', '-', '[', '=', 'a_b', '9'];
      let seed = 7;
      const rnd = (n) => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      const bad = [];
      for (let i = 0; i < 400; i++) {
        let s = '';
        for (let k = rnd(40); k > 0; k--) s += pieces[rnd(pieces.length)];
        const joined = m.luaTokens(s).map((x) => x[1]).join('');
        if (joined !== s) bad.push(['tokens', s]);
        const el = m.sourceBlock(s, 'probe');
        const text = [...el.children].map((li) => li.textContent.replace(/\u200b/g, '')).join('\n');
        if (text !== s.replace(/\n$/, '')) bad.push(['block', s]);
        if (el.querySelectorAll('*:not(li):not(span)').length) bad.push(['elements', s]);
        // The diff of two random line lists rebuilds the second from the first.
        const a = [];
        const b = [];
        for (let k = rnd(30); k > 0; k--) a.push(pieces[rnd(6)]);
        for (let k = rnd(30); k > 0; k--) b.push(pieces[rnd(6)]);
        const ops = m.diffLines(a, b);
        const rebuilt = ops.filter((o) => o[0] !== '-').map((o) => (o[0] === '+' ? b[o[2]] : a[o[1]]));
        const kept = ops.filter((o) => o[0] !== '+').map((o) => a[o[1]]);
        if (rebuilt.join('\u0001') !== b.join('\u0001') || kept.join('\u0001') !== a.join('\u0001') ||
          ops.filter((o) => o[0] === '=').some((o) => a[o[1]] !== b[o[2]])) bad.push(['diff', a, b]);
      }
      // Large and far apart: bounded, and still a correct script.
      const big = [];
      const big2 = [];
      for (let i = 0; i < 20000; i++) {
        big.push('a' + i);
        big2.push('b' + i);
      }
      const t0 = performance.now();
      const ops = m.diffLines(big, big2);
      const ms = performance.now() - t0;
      return { bad: bad.slice(0, 3), nbad: bad.length, ms, approx: ops.approx, n: ops.length };
    });
    check(res.nbad === 0, 'lost or changed text: ' + JSON.stringify(res.bad));
    check(res.n === 40000 && res.ms < 10000, 'the large diff: ' + JSON.stringify(res));
  });
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
