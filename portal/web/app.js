// app.js: the portal's pages: login (password, then TOTP or a recovery code; enrolment
// with the QR code), alerts, runs with their journal, the approval queue and settings.
// Routes are in the URL's fragment (#/...); every value from the server is shown as text.
import { call, ApiError, setCsrf, enc, query } from './api.js';
import { h, mount, jsonText, csvCell } from './dom.js';
import { t, lang, zone, setPrefs, fmtTime, fmtDuration, LANGS, ZONES } from './i18n.js';
import { stackedBars, hBars } from './chart.js';
import { adminSections, auditView, canAudit, dashboardExtras } from './settings.js';

const SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'];
const OUTCOMES = ['unknown', 'blocked', 'attempted', 'succeeded'];
const TENANT_RE = /^[A-Za-z0-9._-]{1,64}$/;

const app = { me: null, tenants: [], tenant: null, timer: null };
const POLL_MS = 5000; // the dashboard's refresh
// Each page draws into a fresh container: a page still loading when another is asked for
// draws into its own container, already taken off the page, and is never seen.
let view = null;
function fresh() {
  view = document.createElement('div');
  view.className = 'view';
  document.getElementById('main').replaceChildren(view);
  return view;
}
const main = () => view || fresh();
const nav = () => document.getElementById('nav');

// ---- helpers ----

function sevBadge(s) {
  const v = SEVERITIES.includes(s) ? s : 'informational';
  return h('span', { class: 'sev sev-' + v }, t('sev_' + v));
}

function outcomeText(o) {
  return OUTCOMES.includes(o) ? t('out_' + o) : String(o ?? '');
}

function stateBadge(s) {
  const v = /^[a-z]+$/.test(String(s)) ? s : 'unknown';
  return h('span', { class: 'state state-' + v }, t(v));
}

function field(label, value) {
  return [h('dt', {}, label), h('dd', {}, value ?? '')];
}

function message(kind, text) {
  return h('p', { class: 'msg msg-' + kind, role: kind === 'error' ? 'alert' : 'status' }, text);
}

function tenantPath(tenant, rest) {
  return 'tenants/' + enc(tenant) + '/' + rest;
}

// A naive "YYYY-MM-DDTHH:MM" read in the chosen time zone, as RFC 3339 UTC ('' if bad).
function zonedToUtc(naive) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(naive || '');
  if (!m) return '';
  const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone(), hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit',
  }).formatToParts(new Date(guess));
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute);
  return new Date(guess - (shown - guess)).toISOString();
}

function showError(e, root) {
  if (root !== view) return undefined;
  if (e instanceof ApiError && e.status === 404) return notFound();
  if (e instanceof ApiError && e.status === 401) {
    app.me = null;
    return loginView(t('session_expired'));
  }
  const text = e instanceof ApiError && e.status === 403 ? t('forbidden') : t('failed') + ': ' + (e.message || e);
  if (root === view) mount(root, message('error', text));
}

function notFound() {
  document.title = t('not_found') + ' — ' + t('app');
  mount(main(), h('section', { class: 'notfound', 'data-page': 'not-found' },
    h('h1', {}, '404 — ' + t('not_found')), h('p', {}, t('not_found_text'))));
}

// ---- chrome ----

function renderNav() {
  if (!app.me) {
    mount(nav(), h('span', { class: 'brand' }, t('app')), langToggle());
    return;
  }
  const tsel = h('select', { id: 'tenant', 'aria-label': t('tenant'), on: { change: (ev) => {
    app.tenant = ev.target.value;
    window.localStorage.setItem('kagari.tenant', app.tenant);
    location.hash = '#/t/' + enc(app.tenant) + '/dashboard';
  } } }, app.tenants.map((x) => h('option', { value: x.id, selected: x.id === app.tenant }, x.name || x.id)));
  const tp = app.tenant ? '#/t/' + enc(app.tenant) : '#/';
  mount(nav(),
    h('span', { class: 'brand' }, t('app')),
    h('a', { href: tp + '/dashboard', id: 'nav-dashboard' }, t('dashboard')),
    h('a', { href: tp + '/alerts', id: 'nav-alerts' }, t('alerts')),
    h('a', { href: tp + '/runs', id: 'nav-runs' }, t('runs')),
    h('a', { href: tp + '/playbooks', id: 'nav-playbooks' }, t('playbooks')),
    h('a', { href: '#/approvals', id: 'nav-approvals' }, t('approvals')),
    h('a', { href: '#/settings', id: 'nav-settings' }, t('settings')),
    canAudit(app.tenants, app.tenant) ? h('a', { href: tp + '/audit', id: 'nav-audit' }, t('audit')) : null,
    h('span', { class: 'spacer' }),
    app.tenants.length > 1 ? tsel : h('span', { class: 'tenant-name' }, app.tenant || ''),
    langToggle(),
    h('span', { class: 'who', id: 'who' }, app.me.user),
    h('button', { type: 'button', id: 'logout', on: { click: logout } }, t('logout')));
}

function langToggle() {
  const other = lang() === 'ja' ? 'en' : 'ja';
  return h('button', { type: 'button', id: 'lang-toggle', lang: other, on: { click: () => {
    savePrefs(other, zone());
  } } }, other === 'ja' ? '日本語' : 'English');
}

// Language and zone: shown at once, kept in this browser and, when logged in, for the
// person at the server (so another browser shows the same).
function savePrefs(l, z) {
  setPrefs(l, z);
  route();
  if (app.me) call('POST', 'me/preferences', { language: lang(), time_zone: zone() }).catch(() => {});
}

async function logout() {
  try {
    await call('POST', 'logout');
  } catch (e) {
    /* the session may be gone already */
  }
  setCsrf(null);
  app.me = null;
  location.hash = '#/login';
}

// ---- login ----

function loginView(notice) {
  fresh();
  document.title = t('login') + ' — ' + t('app');
  renderNav();
  let mode = 'password'; // then 'totp', 'enrol' or 'recovery'
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'login-password', type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const code = h('input', { id: 'login-code', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', maxlength: '11' });
  const codeLabel = h('label', { for: 'login-code' }, t('totp'));
  const codeRow = h('div', { class: 'row hidden', id: 'code-row' }, codeLabel, code);
  const enrol = h('div', { id: 'enrol', class: 'hidden' });
  // A one-time password (a user an admin added): the person chooses their own, twice.
  const newPass = h('input', { id: 'login-new-password', type: 'password', autocomplete: 'new-password', maxlength: '256' });
  const newPass2 = h('input', { id: 'login-new-password2', type: 'password', autocomplete: 'new-password', maxlength: '256' });
  const newRow = h('div', { class: 'hidden', id: 'new-password-row' }, h('p', {}, t('choose_password')),
    h('div', { class: 'row' }, h('label', { for: 'login-new-password' }, t('new_password')), newPass),
    h('div', { class: 'row' }, h('label', { for: 'login-new-password2' }, t('new_password_again')), newPass2));
  let wantNew = false;
  const status = h('div', { id: 'login-status' }, notice ? message('info', notice) : null);
  const toggle = h('button', { type: 'button', class: 'link hidden', id: 'toggle-recovery', on: { click: () => {
    mode = mode === 'recovery' ? 'totp' : 'recovery';
    codeLabel.textContent = mode === 'recovery' ? t('recovery') : t('totp');
    toggle.textContent = mode === 'recovery' ? t('use_totp') : t('use_recovery');
    code.value = '';
    code.focus();
  } } }, t('use_recovery'));

  const form = h('form', { id: 'login-form', on: { submit: async (ev) => {
    ev.preventDefault();
    const body = { user: user.value, password: pass.value };
    if (mode === 'totp' || mode === 'enrol') body.totp = code.value.trim();
    if (mode === 'recovery') body.recovery_code = code.value.trim();
    if (wantNew) {
      if (newPass.value !== newPass2.value || newPass.value.length < 12) {
        mount(status, message('error', t('password_mismatch')));
        return;
      }
      body.new_password = newPass.value;
    }
    if (mode !== 'password' && !code.value.trim()) {
      mount(status, message('error', t('need_code')));
      return;
    }
    try {
      const r = await call('POST', 'login', body);
      setCsrf(r.csrf_token);
      await start('#/');
    } catch (e) {
      const err = e instanceof ApiError ? e.body.error : '';
      code.value = '';
      if (err === 'password_change_required') {
        wantNew = true;
        newRow.classList.remove('hidden');
        mount(status, message('info', t('choose_password')));
        newPass.focus();
      } else if (err === 'weak_password') {
        mount(status, message('error', t('password_mismatch')));
      } else if (err === 'totp_enrolment_required' && e.body.enrolment) {
        mode = 'enrol';
        showEnrolment(enrol, e.body.enrolment);
        codeRow.classList.remove('hidden');
        mount(status);
        code.focus();
      } else if (err === 'totp_required') {
        mode = 'totp';
        codeRow.classList.remove('hidden');
        toggle.classList.remove('hidden');
        mount(status, message('info', t('need_code')));
        code.focus();
      } else if (err === 'locked' || err === 'too_many_attempts') {
        mount(status, message('error', t('locked')));
      } else if (err === 'totp_replayed') {
        mount(status, message('error', t('replayed')));
      } else if (err === 'address_not_allowed') {
        mount(status, message('error', t('not_allowed')));
      } else {
        mount(status, message('error', t('bad_login')));
      }
    }
  } } },
  h('h1', {}, t('login')),
  h('div', { class: 'row' }, h('label', { for: 'login-user' }, t('user')), user),
  h('div', { class: 'row' }, h('label', { for: 'login-password' }, t('password')), pass),
  newRow, enrol, codeRow, toggle, status,
  h('button', { type: 'submit', id: 'login-submit' }, t('login')));
  mount(main(), h('section', { class: 'login', 'data-page': 'login' }, form));
  user.focus();
}

function showEnrolment(box, e) {
  const svg = typeof e.qr_svg === 'string' ? e.qr_svg : '';
  const bytes = new TextEncoder().encode(svg);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  box.classList.remove('hidden');
  mount(box,
    h('h2', {}, t('enrol_title')),
    h('p', {}, t('enrol_text')),
    svg ? h('img', { id: 'enrol-qr', class: 'qr', alt: 'QR', src: 'data:image/svg+xml;base64,' + btoa(bin) }) : null,
    h('p', {}, t('secret') + ': ', h('code', { id: 'enrol-secret' }, String(e.secret || ''))));
}

// ---- alerts ----

function readFilters(params) {
  const f = {};
  for (const k of ['source', 'severity', 'outcome', 'since', 'until', 'user', 'ip']) {
    const v = params.get(k);
    if (v) f[k] = v;
  }
  return f;
}

async function alertsView(tenant, params) {
  const root = main();
  document.title = t('alerts') + ' — ' + t('app');
  const f = readFilters(params);
  const src = h('input', { id: 'f-source', name: 'source', value: f.source || '', placeholder: 'entra.signin', maxlength: '64' });
  const sev = h('select', { id: 'f-severity', name: 'severity' }, h('option', { value: '' }, t('any')),
    SEVERITIES.map((s) => h('option', { value: s, selected: f.severity === s }, t('sev_' + s))));
  const out = h('select', { id: 'f-outcome', name: 'outcome' }, h('option', { value: '' }, t('any')),
    OUTCOMES.map((s) => h('option', { value: s, selected: f.outcome === s }, t('out_' + s))));
  const since = h('input', { id: 'f-since', type: 'datetime-local', value: f.since || '' });
  const until = h('input', { id: 'f-until', type: 'datetime-local', value: f.until || '' });
  const fuser = h('input', { id: 'f-user', name: 'user', value: f.user || '', placeholder: 'user@example.jp', maxlength: '256' });
  const fip = h('input', { id: 'f-ip', name: 'ip', value: f.ip || '', placeholder: '203.0.113.7', maxlength: '45' });
  const form = h('form', { class: 'filters', id: 'alert-filters', on: { submit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, el] of [['source', src], ['severity', sev], ['outcome', out], ['since', since], ['until', until],
      ['user', fuser], ['ip', fip]]) {
      if (el.value.trim()) q.set(k, el.value.trim());
    }
    location.hash = '#/t/' + enc(tenant) + '/alerts' + (q.toString() ? '?' + q : '');
  } } },
  h('label', {}, t('source'), src), h('label', {}, t('severity'), sev),
  h('label', {}, t('outcome'), out), h('label', {}, t('since'), since),
  h('label', {}, t('until'), until),
  h('label', {}, t('search_user'), fuser), h('label', {}, t('search_ip'), fip),
  h('button', { type: 'submit', id: 'f-apply' }, t('filter')),
  h('a', { href: '#/t/' + enc(tenant) + '/alerts', class: 'button' }, t('clear')));
  const tbody = h('tbody', { id: 'alert-rows' });
  const more = h('button', { type: 'button', id: 'alerts-more', class: 'hidden' }, t('more'));
  const loaded = [];
  const exportBtn = h('button', { type: 'button', id: 'alerts-csv', on: { click: () => exportCsv(tenant, loaded) } }, t('export_csv'));
  mount(root, h('section', { 'data-page': 'alerts' }, h('h1', {}, t('alerts')), form,
    h('table', { class: 'list' }, h('thead', {}, h('tr', {}, h('th', {}, t('id')), h('th', {}, t('time')),
      h('th', {}, t('severity')), h('th', {}, t('source')), h('th', {}, t('title')), h('th', {}, t('outcome')))), tbody),
    h('div', { class: 'actions' }, more, exportBtn)));
  const api = { source: f.source, severity: f.severity, outcome: f.outcome, user: f.user, ip: f.ip,
    since: f.since ? zonedToUtc(f.since) : '', until: f.until ? zonedToUtc(f.until) : '' };
  // One click shows up to 50 alerts; a filter's search goes on through older windows of
  // the table (each request reads a bounded part of it) until it has them.
  const page = async (before, want = 50, hops = 0) => {
    const r = await call('GET', tenantPath(tenant, 'alerts') + query({ ...api, limit: want, before }));
    for (const a of r.alerts) {
      loaded.push(a);
      tbody.appendChild(h('tr', { 'data-alert': a.id },
        h('td', {}, String(a.id)), h('td', {}, fmtTime(a.time)), h('td', {}, sevBadge(a.severity)),
        h('td', {}, a.source), h('td', { class: 'title' }, h('a', { href: '#/t/' + enc(tenant) + '/alerts/' + enc(a.id) }, a.title || a.source)),
        h('td', {}, outcomeText(a.outcome))));
    }
    if (r.next_before && r.alerts.length < want && hops < 9 && root === view) {
      return page(r.next_before, want - r.alerts.length, hops + 1);
    }
    if (!loaded.length && !tbody.querySelector('.none')) {
      tbody.appendChild(h('tr', { class: 'none' }, h('td', { colspan: 6 }, t('none'))));
    }
    more.classList.toggle('hidden', !r.next_before);
    more.onclick = r.next_before ? () => page(r.next_before).catch((e) => showError(e, root)) : null;
    return undefined;
  };
  await page();
}

// The loaded alerts as a CSV file: every cell quoted, formulas neutralized.
function exportCsv(tenant, alerts) {
  const cols = ['id', 'time', 'received', 'severity', 'source', 'source_id', 'title', 'category', 'outcome'];
  const lines = [cols.map(csvCell).join(',')];
  for (const a of alerts) lines.push(cols.map((c) => csvCell(a[c])).join(','));
  const blob = new Blob(['\ufeff' + lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'alerts-' + (TENANT_RE.test(tenant) ? tenant : 'tenant') + '.csv';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function runRows(tenant, runs) {
  return runs.map((r) => h('tr', { 'data-run': r.id },
    h('td', {}, h('a', { href: '#/t/' + enc(tenant) + '/runs/' + enc(r.id) }, '#' + r.id)),
    h('td', {}, r.playbook), h('td', {}, stateBadge(r.state)), h('td', {}, fmtTime(r.created)),
    h('td', {}, fmtTime(r.ended)), h('td', {}, r.error || '')));
}

function runHead() {
  return h('thead', {}, h('tr', {}, h('th', {}, t('run')), h('th', {}, t('playbook')), h('th', {}, t('state')),
    h('th', {}, t('created')), h('th', {}, t('ended')), h('th', {}, t('error'))));
}

async function alertView(tenant, id) {
  const root = main();
  const a = await call('GET', tenantPath(tenant, 'alerts/' + enc(id)));
  document.title = t('alert') + ' ' + a.id + ' — ' + t('app');
  const obs = Array.isArray(a.observables) ? a.observables : [];
  mount(root, h('section', { 'data-page': 'alert' },
    h('h1', { id: 'alert-title' }, a.title || a.source),
    h('div', { class: 'split' },
      h('div', { class: 'pane' }, h('h2', {}, t('normalized')),
        h('dl', { class: 'fields' },
          field(t('id'), String(a.id)), field(t('source'), a.source), field('source_id', a.source_id),
          field(t('time'), fmtTime(a.time)), field(t('received'), fmtTime(a.received)),
          field(t('severity'), sevBadge(a.severity)), field(t('vendor_severity'), a.vendor_severity),
          field(t('outcome'), outcomeText(a.outcome)), field(t('category'), a.category)),
        h('h3', {}, t('observables')),
        h('table', { class: 'list' }, h('tbody', {}, obs.map((o) => h('tr', {},
          h('td', {}, o.type), h('td', { class: 'mono' }, o.value), h('td', {}, o.role || '')))))),
      h('div', { class: 'pane' }, h('h2', {}, t('raw')), h('pre', { id: 'alert-raw', class: 'json' }, jsonText(a.raw)))),
    h('h2', {}, t('runs_started')),
    h('table', { class: 'list', id: 'alert-runs' }, runHead(), h('tbody', {}, runRows(tenant, a.runs || [])))));
}

// ---- runs ----

async function runsView(tenant) {
  const root = main();
  document.title = t('runs') + ' — ' + t('app');
  const r = await call('GET', tenantPath(tenant, 'runs') + query({ limit: 100 }));
  mount(root, h('section', { 'data-page': 'runs' }, h('h1', {}, t('runs')),
    h('table', { class: 'list' }, runHead(), h('tbody', {}, r.runs.length ? runRows(tenant, r.runs) : h('tr', {}, h('td', { colspan: 6 }, t('none')))))));
}

async function runView(tenant, id) {
  const root = main();
  const r = await call('GET', tenantPath(tenant, 'runs/' + enc(id)));
  document.title = t('run') + ' #' + r.id + ' — ' + t('app');
  mount(root, h('section', { 'data-page': 'run' },
    h('h1', {}, t('run') + ' #' + r.id + ' ', stateBadge(r.state)),
    h('dl', { class: 'fields' },
      field(t('playbook'), h('a', { href: '#/t/' + enc(tenant) + '/playbooks/' + enc(r.playbook), id: 'run-playbook' }, r.playbook)),
      field(t('version'), h('a', { href: '#/t/' + enc(tenant) + '/playbooks/' + enc(r.playbook) + '/versions/' + enc(r.version), id: 'run-version' },
        h('code', {}, String(r.version || '').slice(0, 16)))),
      field(t('alert'), r.alert_id ? h('a', { href: '#/t/' + enc(tenant) + '/alerts/' + enc(r.alert_id) }, '#' + r.alert_id) : ''),
      field(t('created'), fmtTime(r.created)), field(t('started'), fmtTime(r.started)),
      field(t('ended'), fmtTime(r.ended)), field(t('error'), r.error || '')),
    h('h2', {}, t('journal')),
    h('table', { class: 'list journal', id: 'journal' },
      h('thead', {}, h('tr', {}, h('th', {}, t('step')), h('th', {}, t('kind')), h('th', {}, t('status')),
        h('th', {}, t('request')), h('th', {}, t('result')), h('th', {}, t('started')), h('th', {}, t('duration')))),
      h('tbody', {}, (r.journal || []).map((j) => h('tr', { 'data-seq': j.seq },
        h('td', {}, String(j.seq)), h('td', { class: 'mono' }, j.kind), h('td', {}, j.status),
        h('td', {}, h('pre', { class: 'json' }, jsonText(j.request))),
        h('td', {}, h('pre', { class: 'json' }, jsonText(j.result))),
        h('td', {}, fmtTime(j.started)), h('td', {}, fmtDuration(j.started, j.ended))))))));
}

// ---- approvals ----

// An effect ["graph.disable_user", "alice@example.jp"] as the call it is.
function effectText(e) {
  if (!Array.isArray(e) || !e.length) return jsonText(e);
  return String(e[0]) + '(' + e.slice(1).map((x) => JSON.stringify(x)).join(', ') + ')';
}

function approvalCard(a, full) {
  const votes = Array.isArray(full.votes) ? full.votes : [];
  const approvals = votes.filter((v) => v.decision === 'approve' || v.decision === 'approved').length;
  const comment = h('textarea', { id: 'comment-' + a.id, 'aria-label': t('comment'), maxlength: '1000' });
  const status = h('div', { class: 'decision-status' });
  const decide = async (decision) => {
    try {
      const r = await call('POST', tenantPath(a.tenant, 'approvals/' + enc(a.id) + '/decision'),
        { decision, comment: comment.value });
      mount(status, message('info', t('decided') + ' (' + t(r.state) + ')'));
      // The queue again after a moment, unless the person has moved on meanwhile.
      const here = view;
      setTimeout(() => {
        if (view === here) route();
      }, 800);
    } catch (e) {
      mount(status, message('error', e instanceof ApiError && e.status === 403 ? t('forbidden') : t('failed') + ': ' + e.message));
    }
  };
  const pending = a.state === 'pending';
  return h('article', { class: 'approval', 'data-approval': a.id },
    h('h2', {}, a.title), h('p', { class: 'meta' }, t('tenant') + ': ' + a.tenant + ' · ',
      h('a', { href: '#/t/' + enc(a.tenant) + '/runs/' + enc(a.run_id) }, t('run') + ' #' + a.run_id), ' · ', stateBadge(a.state)),
    h('h3', {}, t('what')),
    h('ul', { class: 'effects' }, (Array.isArray(a.effects) ? a.effects : []).map((e) => h('li', {}, h('code', {}, effectText(e))))),
    h('h3', {}, t('why')), h('p', { class: 'detail' }, a.detail || ''),
    h('dl', { class: 'fields' },
      field(t('deadline'), fmtTime(a.deadline)), field(t('role'), a.role),
      field(t('quorum'), t('vote_count', { n: approvals, m: a.approvers })),
      field(t('default_on_timeout'), a.default)),
    votes.length ? h('ul', { class: 'votes' }, votes.map((v) => h('li', {}, v.user + ' — ' + v.decision + ' — ' + fmtTime(v.at) + (v.comment ? ' — ' + v.comment : '')))) : null,
    pending ? h('div', { class: 'decide' }, h('label', { for: 'comment-' + a.id }, t('comment')), comment,
      h('button', { type: 'button', class: 'approve', on: { click: () => decide('approve') } }, t('approve')),
      h('button', { type: 'button', class: 'reject', on: { click: () => decide('reject') } }, t('reject'))) : null,
    status);
}

async function approvalsView() {
  const root = main();
  document.title = t('approvals') + ' — ' + t('app');
  const r = await call('GET', 'approvals');
  const cards = [];
  for (const a of r.approvals) {
    let full = {};
    try {
      full = await call('GET', tenantPath(a.tenant, 'approvals/' + enc(a.id)));
    } catch (e) {
      full = {};
    }
    cards.push(approvalCard(a, full));
  }
  mount(root, h('section', { 'data-page': 'approvals' }, h('h1', {}, t('approvals')),
    cards.length ? cards : h('p', { id: 'no-approvals' }, t('no_approvals'))));
}

async function approvalView(tenant, id) {
  const root = main();
  const a = await call('GET', tenantPath(tenant, 'approvals/' + enc(id)));
  a.tenant = a.tenant || tenant;
  mount(root, h('section', { 'data-page': 'approval' }, approvalCard(a, a)));
}

// ---- dashboard ----

// An hour label in the chosen zone ("09:00").
function hourLabel(v) {
  return new Intl.DateTimeFormat('en-GB', { timeZone: zone(), hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(v));
}

async function dashboardView(tenant) {
  const root = main();
  document.title = t('dashboard') + ' — ' + t('app');
  const draw = async () => {
    const [sum, ap, extras] = await Promise.all([
      call('GET', tenantPath(tenant, 'summary') + query({ hours: 24 })),
      call('GET', 'approvals'),
      dashboardExtras(tenant, app.tenants),
    ]);
    const step = sum.bucket_seconds * 1000;
    const start = new Date(sum.since).getTime();
    const byStart = new Map(sum.levels.map((l) => [new Date(l.start).getTime(), l]));
    const buckets = [];
    for (let x = start; x <= new Date(sum.now).getTime(); x += step) {
      const l = byStart.get(x) || {};
      buckets.push({ label: hourLabel(x), values: Object.fromEntries(SEVERITIES.map((s) => [s, l[s] || 0])) });
    }
    const pending = ap.approvals.filter((a) => a.tenant === tenant && a.state === 'pending');
    mount(root, h('section', { 'data-page': 'dashboard' },
      h('h1', {}, t('dashboard')),
      h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('div', { class: 'big', id: 'dash-total' }, String(sum.total)), t('alerts_24h')),
        h('div', { class: 'card' }, h('div', { class: 'big', id: 'dash-pending' }, String(pending.length)), t('approvals_pending')),
        h('div', { class: 'card' }, h('div', { class: 'big', id: 'dash-waiting' }, String(sum.runs.waiting || 0)), t('runs_waiting')),
        h('div', { class: 'card' }, h('div', { class: 'big', id: 'dash-failed' }, String(sum.runs.failed || 0)), t('runs_failed'))),
      h('h2', {}, t('by_level')),
      h('div', { class: 'legend' }, SEVERITIES.map((s) => sevBadge(s))),
      h('div', { id: 'chart-level' }, stackedBars(buckets, SEVERITIES, t('by_level'))),
      h('h2', {}, t('by_source')),
      h('div', { id: 'chart-source' }, sum.sources.length ? hBars(sum.sources.map((x) => ({ label: x.source, value: x.count })), t('by_source')) : t('none')),
      h('h2', {}, t('approvals_pending')),
      pending.length ? h('table', { class: 'list', id: 'dash-approvals' }, h('tbody', {}, pending.map((a) => h('tr', {},
        h('td', {}, h('a', { href: '#/t/' + enc(tenant) + '/approvals/' + enc(a.id) }, a.title)),
        h('td', {}, t('deadline') + ': ' + fmtTime(a.deadline)))))) : h('p', {}, t('no_approvals')),
      extras,
      h('p', { class: 'meta', id: 'dash-updated' }, t('updated') + ': ' + fmtTime(sum.now))));
  };
  await draw();
  // Live: redrawn every few seconds while this page is shown.
  app.timer = setInterval(() => {
    if (root !== view) return;
    draw().catch(() => { /* the next tick tries again */ });
  }, POLL_MS);
}

// ---- settings ----

function settingsView() {
  document.title = t('settings') + ' — ' + t('app');
  const l = h('select', { id: 'pref-lang' }, LANGS.map((x) => h('option', { value: x, selected: x === lang() }, x === 'ja' ? '日本語' : 'English')));
  const zones = ZONES.includes(zone()) ? ZONES : [zone(), ...ZONES];
  const z = h('select', { id: 'pref-tz' }, zones.map((x) => h('option', { value: x, selected: x === zone() }, x)));
  mount(main(), h('section', { 'data-page': 'settings' }, h('h1', {}, t('settings')),
    h('form', { id: 'prefs', on: { submit: (ev) => {
      ev.preventDefault();
      savePrefs(l.value, z.value);
    } } },
    h('div', { class: 'row' }, h('label', { for: 'pref-lang' }, t('language')), l),
    h('div', { class: 'row' }, h('label', { for: 'pref-tz' }, t('timezone')), z),
    h('button', { type: 'submit', id: 'pref-save' }, t('save'))),
    recoverySection(),
    adminSections(app.tenant, app.tenants, app.me.user)));
}

// New recovery codes, shown once, for a fresh authenticator code.
function recoverySection() {
  const code = h('input', { id: 'rc-code', autocomplete: 'one-time-code', inputmode: 'numeric', maxlength: '6' });
  const out = h('div', { id: 'rc-out' });
  return h('form', { id: 'recovery-form', on: { submit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await call('POST', 'me/recovery-codes', { totp: code.value.trim() });
      code.value = '';
      mount(out, message('info', t('rc_shown_once')),
        h('ul', { id: 'recovery-codes', class: 'codes' }, r.recovery_codes.map((c) => h('li', {}, h('code', {}, c)))));
    } catch (e) {
      mount(out, message('error', e instanceof ApiError && e.status === 429 ? t('locked') : t('bad_code')));
    }
  } } },
  h('h2', {}, t('recovery_codes')), h('p', {}, t('rc_text')),
  h('div', { class: 'row' }, h('label', { for: 'rc-code' }, t('totp')), code),
  h('button', { type: 'submit', id: 'rc-new' }, t('rc_new')), out);
}

// ---- playbooks (portal/web/playbooks.js, loaded when first shown) ----

function playbookCtx(root, tenant) {
  const roles = (app.tenants.find((x) => x.id === tenant) || {}).roles || [];
  return {
    root, live: () => root === view, runRows, runHead, notFound,
    canEdit: roles.some((r) => r === 'admin' || r === 'engineer' || r === 'operator'),
    showError: (e) => showError(e, root),
  };
}

// ---- routing ----

async function route() {
  document.documentElement.lang = lang();
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  const params = new URLSearchParams(qs || '');
  const seg = path.split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch (e) {
      return '\u0000';
    }
  });
  if (!app.me) {
    // Never wipe a login form someone is filling in.
    if (!view || !view.querySelector('#login-form')) loginView();
    return;
  }
  if (app.timer) {
    clearInterval(app.timer);
    app.timer = null;
  }
  renderNav();
  const root = fresh();
  mount(root, h('p', { class: 'loading' }, t('loading')));
  try {
    if (seg.length === 0) {
      location.replace(app.tenant ? '#/t/' + enc(app.tenant) + '/dashboard' : '#/approvals');
    } else if (seg[0] === 'login') {
      location.replace('#/');
    } else if (seg[0] === 'approvals' && seg.length === 1) {
      await approvalsView();
    } else if (seg[0] === 'settings' && seg.length === 1) {
      settingsView();
    } else if (seg[0] === 't' && seg.length >= 3 && TENANT_RE.test(seg[1])) {
      const tenant = seg[1];
      if (app.tenants.some((x) => x.id === tenant) && tenant !== app.tenant) {
        app.tenant = tenant;
        renderNav();
      }
      const id = seg[3];
      if (seg[2] === 'dashboard' && seg.length === 3) await dashboardView(tenant);
      else if (seg[2] === 'alerts' && seg.length === 3) await alertsView(tenant, params);
      else if (seg[2] === 'alerts' && seg.length === 4) await alertView(tenant, id);
      else if (seg[2] === 'runs' && seg.length === 3) await runsView(tenant);
      else if (seg[2] === 'runs' && seg.length === 4) await runView(tenant, id);
      else if (seg[2] === 'approvals' && seg.length === 4) await approvalView(tenant, id);
      else if (seg[2] === 'playbooks') await (await import('./playbooks.js')).playbooksPage(playbookCtx(root, tenant), tenant, seg.slice(3), params);
      else if (seg[2] === 'audit' && seg.length === 3) await auditView(root, tenant, params.get('before') || undefined);
      else notFound();
    } else {
      notFound();
    }
  } catch (e) {
    showError(e, root);
  }
}

// After a login, or at load with a live session: who we are and our tenants.
async function start(to) {
  const me = await call('GET', 'me');
  setCsrf(me.csrf_token);
  const ts = await call('GET', 'tenants');
  try {
    const p = await call('GET', 'me/preferences');
    setPrefs(p.language, p.time_zone);
  } catch (e) {
    /* this browser's choice stays */
  }
  app.me = me;
  app.tenants = ts.tenants || [];
  const saved = window.localStorage.getItem('kagari.tenant');
  app.tenant = (app.tenants.find((x) => x.id === saved) || app.tenants[0] || {}).id || null;
  if (to && location.hash !== to) location.hash = to;
  else route();
}

// A hashchange event still queued when the address has moved on again is stale: the newer
// one draws the page (else a page would be drawn twice, losing what was typed into it).
window.addEventListener('hashchange', (ev) => {
  if (ev.newURL === location.href) route();
});
setPrefs(lang(), zone());
start().catch(() => {
  app.me = null;
  route();
});
