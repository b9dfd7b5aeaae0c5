// settings.js: the portal's tenant administration (users: add with a one-time password,
// role, TOTP reset, disable; the address allow-list), the audit view, and the dashboard's
// escalations awaiting acknowledgement and containment in force. Roles are checked by the
// server on every call; the page only hides what the person's role cannot use.
import { call, ApiError, enc, query } from './api.js';
import { h, mount } from './dom.js';
import { t, addWords, fmtTime } from './i18n.js';

addWords({
  en: {
    users: 'Users', add_user: 'Add a user', added_user: 'User {u} added. Their one-time password (shown only now): ',
    added_note: 'They set up their authenticator at the first login.',
    reset_totp: 'Reset TOTP', reset_done: 'TOTP reset: {u} sets up the authenticator again at the next login.',
    disable: 'Disable', enable: 'Enable', disabled: 'disabled', active: 'active', enrolled: 'TOTP',
    last_login: 'Last login', sure: 'Click again to confirm', change_role: 'Change role',
    role_changed: 'Role of {u}: {r}.', user_exists: 'A user of that name exists.',
    shared_user: 'This user also works for other tenants: remove their role here instead.',
    bad_input: 'Check the input.', allowlist: 'Address allow-list', allow_add: 'Add',
    allow_remove: 'Remove', allow_empty: 'No list: every address may sign in.',
    your_address: 'Your address', bad_cidr: 'Not an IPv4 or IPv6 address or CIDR block (e.g. 192.0.2.0/24).',
    lockout: 'This change would lock you out: add your own address first, or confirm.',
    audit: 'Audit', actor: 'Who', action: 'Action', target: 'Target', address: 'Address',
    detail: 'Detail', escalations: 'Escalations awaiting acknowledgement',
    no_escalations: 'No escalation is waiting.', since_start: 'Waiting for', contact_reached: 'Contact reached',
    ack: 'Acknowledge', acked_done: 'Acknowledged: the chain is stopped.',
    contacts: 'Contacts', containment: 'Containment in force', blocked: 'Blocked on the firewall',
    disabled_accounts: 'Disabled accounts', isolated_devices: 'Isolated devices', expires: 'Until',
    no_containment: 'Nothing is contained.', value: 'Value', list: 'List', never: 'no end',
    search_user: 'User', search_ip: 'IP address', admin_only: 'Only the tenant\'s admins manage users and the allow-list.',
    my_prefs: 'My preferences', lockout_anyway: 'Lock me out anyway',
    locked_out: 'Done: your present address is no longer allowed for this tenant.', no_role: '(no role here)', chain: 'Contact chain for urgent escalation',
    chain_text: 'Reached in this order until someone acknowledges; each contact is waited for before the next one.',
    chain_config: 'From the configuration file (not changed here).', chain_saved: 'Saved by {u} at {t}.',
    email: 'Mail', webhooks: 'Webhooks (names, comma-separated)', wait_min: 'Wait (min)', add_contact: 'Add a contact',
    chain_save: 'Save the chain', chain_reset: 'Back to the configuration\'s chain', up: 'Up', down: 'Down',
    remove: 'Remove', chain_done: 'The chain is saved: the next escalation uses it.',
  },
  ja: {
    users: 'ユーザー', add_user: 'ユーザーを追加', added_user: 'ユーザー {u} を追加しました。初回パスワード（今だけ表示されます）: ',
    added_note: '初回ログイン時に認証アプリを設定します。',
    reset_totp: 'TOTP をリセット', reset_done: 'TOTP をリセットしました。{u} は次回ログイン時に認証アプリを再設定します。',
    disable: '無効化', enable: '有効化', disabled: '無効', active: '有効', enrolled: 'TOTP',
    last_login: '最終ログイン', sure: 'もう一度クリックして確定', change_role: 'ロールを変更',
    role_changed: '{u} のロール: {r}', user_exists: '同じ名前のユーザーが存在します。',
    shared_user: 'このユーザーは他のテナントでも使われています。このテナントのロールを外してください。',
    bad_input: '入力を確認してください。', allowlist: '接続元アドレスの許可リスト', allow_add: '追加',
    allow_remove: '削除', allow_empty: 'リストなし: すべてのアドレスからログインできます。',
    your_address: 'あなたのアドレス', bad_cidr: 'IPv4 / IPv6 アドレスまたは CIDR（例: 192.0.2.0/24）ではありません。',
    lockout: 'この変更であなた自身が締め出されます。先に自分のアドレスを追加するか、確認してください。',
    audit: '監査ログ', actor: '実行者', action: '操作', target: '対象', address: 'アドレス',
    detail: '詳細', escalations: '確認待ちのエスカレーション',
    no_escalations: '確認待ちのエスカレーションはありません。', since_start: '経過時間', contact_reached: '連絡済みの相手',
    ack: '確認しました', acked_done: '確認済みにしました。連絡を止めました。',
    contacts: '連絡先', containment: '実施中の封じ込め', blocked: 'ファイアウォールでブロック中',
    disabled_accounts: '無効化したアカウント', isolated_devices: '隔離中の端末', expires: '期限',
    no_containment: '封じ込めはありません。', value: '値', list: 'リスト', never: '無期限',
    search_user: 'ユーザー', search_ip: 'IP アドレス', admin_only: 'ユーザーと許可リストはテナントの管理者が管理します。',
    my_prefs: '個人設定', lockout_anyway: 'それでも変更する（自分は締め出されます）',
    locked_out: '変更しました。現在のアドレスからはこのテナントを利用できなくなります。', no_role: '（このテナントから外す）', chain: '緊急エスカレーションの連絡網',
    chain_text: '誰かが確認するまで、この順に連絡します。各連絡先の待ち時間の後に次の連絡先へ進みます。',
    chain_config: '設定ファイルの連絡網です（ここでは未変更）。', chain_saved: '{u} が {t} に保存しました。',
    email: 'メール', webhooks: 'Webhook（名前、カンマ区切り）', wait_min: '待ち時間（分）', add_contact: '連絡先を追加',
    chain_save: '連絡網を保存', chain_reset: '設定ファイルの連絡網に戻す', up: '上へ', down: '下へ',
    remove: '削除', chain_done: '連絡網を保存しました。次のエスカレーションから使われます。',
  },
});

const ROLES = ['admin', 'engineer', 'analyst', 'auditor'];

// The role names the person has in tenant (from GET /tenants).
export function rolesIn(tenants, tenant) {
  const x = (tenants || []).find((v) => v.id === tenant);
  return x && Array.isArray(x.roles) ? x.roles : [];
}

export const canAdmin = (tenants, tenant) => rolesIn(tenants, tenant).some((r) => r === 'admin' || r === 'operator');
// Who may acknowledge an escalation (the server checks it again).
export const canAck = (tenants, tenant) => rolesIn(tenants, tenant).some((r) => ['admin', 'analyst', 'operator'].includes(r));
export const canAudit = (tenants, tenant) => rolesIn(tenants, tenant).some((r) => ['admin', 'auditor', 'operator'].includes(r));

function note(kind, text) {
  return h('p', { class: 'msg msg-' + kind, role: kind === 'error' ? 'alert' : 'status' }, text);
}

function errText(e) {
  if (!(e instanceof ApiError)) return t('failed') + ': ' + (e.message || e);
  const code = e.body && e.body.error;
  if (e.status === 403 && code !== 'csrf_failed') return t('forbidden');
  if (code === 'would_lock_you_out') return t('lockout');
  if (code === 'user_exists') return t('user_exists');
  if (code === 'shared_user') return t('shared_user');
  if (code === 'bad_cidr') return t('bad_cidr');
  if (e.status === 400) return t('bad_input') + ' (' + (e.body.message || '') + ')';
  return t('failed') + ': ' + e.message;
}

// A button that acts only on its second click (no browser dialog), then resets.
function confirmButton(label, cls, act) {
  const b = h('button', { type: 'button', class: cls });
  let armed = false;
  b.textContent = label;
  b.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      b.textContent = t('sure');
      b.classList.add('armed');
      setTimeout(() => {
        armed = false;
        b.textContent = label;
        b.classList.remove('armed');
      }, 5000);
      return;
    }
    armed = false;
    b.disabled = true;
    try {
      await act();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// ---- users ----

function usersSection(tenant, me) {
  const base = 'tenants/' + enc(tenant) + '/users';
  const status = h('div', { id: 'users-status' });
  const tbody = h('tbody', { id: 'user-rows' });
  const load = async () => {
    const r = await call('GET', base);
    mount(tbody, r.users.map((u) => {
      const self = u.user === me;
      const sel = h('select', { 'aria-label': t('change_role'), class: 'role-select', disabled: self },
        ROLES.map((x) => h('option', { value: x, selected: x === u.role }, x)),
        h('option', { value: 'none' }, t('no_role')));
      sel.addEventListener('change', async () => {
        try {
          await call('POST', base + '/' + enc(u.user) + '/role', { role: sel.value });
          mount(status, note('info', t('role_changed', { u: u.user, r: sel.value })));
        } catch (e) {
          mount(status, note('error', errText(e)));
        }
        load().catch((e) => mount(status, note('error', errText(e))));
      });
      return h('tr', { 'data-user': u.user },
        h('td', { class: 'mono' }, u.user), h('td', {}, sel),
        h('td', {}, u.disabled ? t('disabled') : t('active')),
        h('td', {}, u.totp_enrolled ? '✓' : '—'),
        h('td', {}, fmtTime(u.last_login)),
        h('td', { class: 'row-actions' }, self ? null : [
          confirmButton(t('reset_totp'), 'reset-totp', async () => {
            try {
              await call('POST', base + '/' + enc(u.user) + '/reset-totp');
              mount(status, note('info', t('reset_done', { u: u.user })));
            } catch (e) {
              mount(status, note('error', errText(e)));
            }
            await load();
          }),
          confirmButton(u.disabled ? t('enable') : t('disable'), 'toggle-user', async () => {
            try {
              await call('POST', base + '/' + enc(u.user) + '/disabled', { disabled: !u.disabled });
              mount(status);
            } catch (e) {
              mount(status, note('error', errText(e)));
            }
            await load();
          })]));
    }));
  };
  const name = h('input', { id: 'new-user', maxlength: '64', required: true, autocomplete: 'off' });
  const role = h('select', { id: 'new-role' }, ROLES.map((x) => h('option', { value: x, selected: x === 'analyst' }, x)));
  const form = h('form', { id: 'add-user', class: 'filters', on: { submit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await call('POST', base, { user: name.value.trim(), role: role.value });
      name.value = '';
      mount(status, h('div', { class: 'msg msg-info', role: 'status', id: 'one-time' },
        t('added_user', { u: r.user }), h('code', { id: 'one-time-password' }, r.password), ' ', t('added_note')));
      await load();
    } catch (e) {
      mount(status, note('error', errText(e)));
    }
  } } },
  h('label', {}, t('user'), name), h('label', {}, t('role'), role),
  h('button', { type: 'submit', id: 'add-user-submit' }, t('add_user')));
  const section = h('section', { id: 'users', class: 'pane' }, h('h2', {}, t('users')),
    h('table', { class: 'list' }, h('thead', {}, h('tr', {}, h('th', {}, t('user')), h('th', {}, t('role')),
      h('th', {}, t('state')), h('th', {}, t('enrolled')), h('th', {}, t('last_login')), h('th', {}, ''))), tbody),
    h('h3', {}, t('add_user')), form, status);
  load().catch((e) => mount(status, note('error', errText(e))));
  return section;
}

// ---- allow-list ----

// IPv4 or IPv6, with an optional prefix: a first check (the server checks for real).
const CIDR_RE = /^(?:\d{1,3}(?:\.\d{1,3}){3}(?:\/\d{1,2})?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:\/\d{1,3})?)$/;

function allowSection(tenant) {
  const base = 'tenants/' + enc(tenant) + '/allowlist';
  const status = h('div', { id: 'allow-status' });
  const list = h('ul', { id: 'allow-rows', class: 'plain' });
  const mine = h('p', { class: 'meta', id: 'allow-mine' });
  // A change refused because it would lock the admin out: explained, with a button that
  // makes it anyway (confirmed) on a second click.
  const refused = (e, again) => {
    if (!(e instanceof ApiError) || !e.body || e.body.error !== 'would_lock_you_out') {
      mount(status, note('error', errText(e)));
      return;
    }
    mount(status, note('error', t('lockout')), confirmButton(t('lockout_anyway'), 'lockout-anyway', async () => {
      try {
        show(await again());
        mount(status, note('info', t('locked_out')));
      } catch (e2) {
        mount(status, note('error', errText(e2)));
      }
    }));
  };
  const show = (r) => {
    mount(mine, t('your_address') + ': ', h('code', {}, r.your_address || ''));
    mount(list, r.cidrs.length ? r.cidrs.map((c) => h('li', { 'data-cidr': c }, h('code', {}, c), ' ',
      confirmButton(t('allow_remove'), 'allow-remove', async () => {
        try {
          show(await call('DELETE', base + query({ cidr: c })));
          mount(status);
        } catch (e) {
          refused(e, () => call('DELETE', base + query({ cidr: c, confirm_lockout: 1 })));
        }
      }))) : h('li', { class: 'none' }, t('allow_empty')));
  };
  const cidr = h('input', { id: 'allow-cidr', maxlength: '63', placeholder: '192.0.2.0/24', autocomplete: 'off' });
  const form = h('form', { id: 'allow-form', class: 'filters', on: { submit: async (ev) => {
    ev.preventDefault();
    const v = cidr.value.trim();
    if (!CIDR_RE.test(v)) {
      mount(status, note('error', t('bad_cidr')));
      return;
    }
    try {
      show(await call('POST', base, { cidr: v }));
      cidr.value = '';
      mount(status);
    } catch (e) {
      refused(e, () => call('POST', base, { cidr: v, confirm_lockout: true }));
    }
  } } }, h('label', {}, 'CIDR', cidr), h('button', { type: 'submit', id: 'allow-add' }, t('allow_add')));
  call('GET', base).then(show).catch((e) => mount(status, note('error', errText(e))));
  return h('section', { id: 'allowlist', class: 'pane' }, h('h2', {}, t('allowlist')), mine, list, form, status);
}

// ---- contact chain ----

function chainSection(tenant) {
  const base = 'tenants/' + enc(tenant) + '/contacts';
  const status = h('div', { id: 'chain-status' });
  const origin = h('p', { class: 'meta', id: 'chain-source' });
  const tbody = h('tbody', { id: 'chain-rows' });
  let rows = [];
  const draw = () => {
    mount(tbody, rows.map((c, i) => {
      const name = h('input', { class: 'c-name', maxlength: '100', value: c.name || '', 'aria-label': t('user') });
      const email = h('input', { class: 'c-email', maxlength: '254', value: c.email || '', 'aria-label': t('email') });
      const hooks = h('input', { class: 'c-hooks', maxlength: '200', value: (c.webhooks || []).join(', '), 'aria-label': t('webhooks') });
      const wait = h('input', { class: 'c-wait', type: 'number', min: '0.02', max: '1440', step: 'any', value: String(Math.round((c.wait || 600) / 0.6) / 100), 'aria-label': t('wait_min') });
      const lng = h('select', { class: 'c-lang', 'aria-label': t('language') }, ['ja', 'en'].map((x) => h('option', { value: x, selected: x === (c.lang || 'ja') }, x)));
      const keep = () => {
        rows[i] = { name: name.value.trim(), email: email.value.trim() || undefined,
          webhooks: hooks.value.split(',').map((x) => x.trim()).filter(Boolean),
          wait: Math.round(Number(wait.value) * 60), lang: lng.value };
      };
      for (const el of [name, email, hooks, wait, lng]) el.addEventListener('change', keep);
      const move = (d) => {
        keep();
        const j = i + d;
        if (j < 0 || j >= rows.length) return;
        [rows[i], rows[j]] = [rows[j], rows[i]];
        draw();
      };
      return h('tr', { 'data-contact': i + 1 }, h('td', {}, String(i + 1)), h('td', {}, name), h('td', {}, email),
        h('td', {}, hooks), h('td', {}, wait), h('td', {}, lng),
        h('td', { class: 'row-actions' },
          h('button', { type: 'button', class: 'c-up', on: { click: () => move(-1) } }, t('up')),
          h('button', { type: 'button', class: 'c-down', on: { click: () => move(1) } }, t('down')),
          h('button', { type: 'button', class: 'c-remove', on: { click: () => {
            rows.splice(i, 1);
            draw();
          } } }, t('remove'))));
    }));
  };
  const show = (r) => {
    rows = Array.isArray(r.contacts) ? r.contacts : [];
    mount(origin, r.source === 'portal' ? t('chain_saved', { u: r.updated_by || '', t: fmtTime(r.updated) }) : t('chain_config'));
    reset.classList.toggle('hidden', r.source !== 'portal');
    draw();
  };
  const reset = confirmButton(t('chain_reset'), 'chain-reset', async () => {
    try {
      show(await call('DELETE', base));
      mount(status);
    } catch (e) {
      mount(status, note('error', errText(e)));
    }
  });
  reset.classList.add('hidden');
  const save = h('button', { type: 'button', id: 'chain-save', on: { click: async () => {
    // Every row as it is typed now (a change event may not have fired yet).
    for (const tr of tbody.querySelectorAll('tr')) tr.querySelectorAll('input, select').forEach((el) => el.dispatchEvent(new Event('change')));
    try {
      show(await call('POST', base, { contacts: rows }));
      mount(status, note('info', t('chain_done')));
    } catch (e) {
      mount(status, note('error', errText(e)));
    }
  } } }, t('chain_save'));
  const add = h('button', { type: 'button', id: 'chain-add', on: { click: () => {
    rows.push({ name: '', wait: 600, lang: 'ja', webhooks: [] });
    draw();
  } } }, t('add_contact'));
  call('GET', base).then(show).catch((e) => mount(status, note('error', errText(e))));
  return h('section', { id: 'chain', class: 'pane' }, h('h2', {}, t('chain')), h('p', {}, t('chain_text')), origin,
    h('table', { class: 'list' }, h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, t('user')), h('th', {}, t('email')),
      h('th', {}, t('webhooks')), h('th', {}, t('wait_min')), h('th', {}, t('language')), h('th', {}, ''))), tbody),
    h('div', { class: 'actions' }, add, save, reset), status);
}

// The tenant's administration, for its admins (and platform operators); others see why
// there is none (the server would answer 403 anyway).
export function adminSections(tenant, tenants, me) {
  if (!tenant) return [];
  if (!canAdmin(tenants, tenant)) return [h('p', { class: 'meta', id: 'not-admin' }, t('admin_only'))];
  return [h('h2', {}, t('tenant') + ': ' + tenant), usersSection(tenant, me), allowSection(tenant), chainSection(tenant)];
}

// ---- audit ----

export async function auditView(root, tenant, before) {
  document.title = t('audit') + ' — ' + t('app');
  const r = await call('GET', 'tenants/' + enc(tenant) + '/audit' + query({ limit: 100, before }));
  const next = r.next_before ? h('a', { class: 'button', id: 'audit-more', href: '#/t/' + enc(tenant) + '/audit?before=' + enc(r.next_before) }, t('more')) : null;
  mount(root, h('section', { 'data-page': 'audit' }, h('h1', {}, t('audit')),
    h('table', { class: 'list', id: 'audit' }, h('thead', {}, h('tr', {}, h('th', {}, t('time')), h('th', {}, t('actor')),
      h('th', {}, t('action')), h('th', {}, t('target')), h('th', {}, t('outcome')), h('th', {}, t('address')),
      h('th', {}, t('detail')))),
    h('tbody', {}, r.audit.length ? r.audit.map((a) => h('tr', { 'data-audit': a.id },
      h('td', {}, fmtTime(a.time)), h('td', {}, a.actor || ''), h('td', { class: 'mono' }, a.action),
      h('td', { class: 'title' }, a.target || ''), h('td', {}, a.outcome), h('td', { class: 'mono' }, a.address || ''),
      h('td', { class: 'mono title' }, a.detail === null || a.detail === undefined ? '' : JSON.stringify(a.detail))))
      : h('tr', {}, h('td', { colspan: 7 }, t('none'))))),
    h('div', { class: 'actions' }, next)));
}

// ---- dashboard: escalations and containment ----

// Seconds as "1 h 05 min", "3 min 20 s".
function age(s) {
  const n = Math.max(0, Math.floor(Number(s) || 0));
  const hh = Math.floor(n / 3600);
  const mm = Math.floor((n % 3600) / 60);
  if (hh) return hh + ' h ' + String(mm).padStart(2, '0') + ' min';
  return mm + ' min ' + String(n % 60).padStart(2, '0') + ' s';
}

// Acknowledge one escalation as the person logged in: the chain stops; the row says so.
function ackButton(tenant, e) {
  const b = h('button', { type: 'button', class: 'ack', 'data-ack': e.id }, t('ack'));
  b.addEventListener('click', async () => {
    b.disabled = true;
    const cell = b.parentNode;
    try {
      await call('POST', 'tenants/' + enc(tenant) + '/escalations/' + enc(e.id) + '/ack', {});
      mount(cell, note('info', t('acked_done')));
    } catch (err) {
      b.disabled = false;
      cell.append(note('error', err instanceof ApiError ? err.message : String(err)));
    }
  });
  return b;
}

function escalationsTable(tenant, r, ack) {
  if (!r.escalations.length) return h('p', { id: 'no-escalations' }, t('no_escalations'));
  return h('table', { class: 'list', id: 'dash-escalations' },
    h('thead', {}, h('tr', {}, h('th', {}, t('title')), h('th', {}, t('severity')), h('th', {}, t('started')),
      h('th', {}, t('since_start')), h('th', {}, t('contact_reached')), h('th', {}, t('contacts')), h('th', {}, t('run')),
      ack ? h('th', {}, '') : null)),
    h('tbody', {}, r.escalations.map((e) => h('tr', { 'data-escalation': e.id },
      h('td', { class: 'title' }, e.subject), h('td', {}, e.level), h('td', {}, fmtTime(e.created)),
      h('td', { class: 'age' }, age(e.age_seconds)),
      h('td', {}, e.last_contact ? [e.last_contact, ' ', h('span', { class: 'meta' }, fmtTime(e.last_contact_at))] : '—'),
      h('td', {}, String(e.reached) + ' / ' + String(e.contacts)),
      h('td', {}, h('a', { href: '#/t/' + enc(tenant) + '/runs/' + enc(e.run_id) }, '#' + e.run_id)),
      ack ? h('td', {}, ackButton(tenant, e)) : null))));
}

function containmentTables(tenant, c) {
  const runLink = (id) => h('a', { href: '#/t/' + enc(tenant) + '/runs/' + enc(id) }, '#' + id);
  const parts = [];
  if (c.blocked.length) {
    parts.push(h('h3', {}, t('blocked')), h('table', { class: 'list', id: 'dash-blocked' },
      h('thead', {}, h('tr', {}, h('th', {}, t('value')), h('th', {}, t('list')), h('th', {}, t('expires')))),
      h('tbody', {}, c.blocked.map((b) => h('tr', {}, h('td', { class: 'mono' }, b.value), h('td', {}, b.list),
        h('td', {}, b.expires ? fmtTime(b.expires) : t('never')))))));
  }
  for (const [key, id] of [['disabled_accounts', 'dash-disabled'], ['isolated_devices', 'dash-isolated']]) {
    if (!c[key].length) continue;
    parts.push(h('h3', {}, t(key)), h('table', { class: 'list', id },
      h('thead', {}, h('tr', {}, h('th', {}, t('target')), h('th', {}, t('started')), h('th', {}, t('run')))),
      h('tbody', {}, c[key].map((x) => h('tr', {}, h('td', { class: 'mono' }, x.target), h('td', {}, fmtTime(x.since)),
        h('td', {}, runLink(x.run_id)))))));
  }
  return parts.length ? parts : [h('p', { id: 'no-containment' }, t('no_containment'))];
}

// The dashboard's two sections, fetched fresh (the dashboard redraws them as it polls).
export async function dashboardExtras(tenant, tenants) {
  const base = 'tenants/' + enc(tenant) + '/';
  const [esc, con] = await Promise.all([call('GET', base + 'dashboard/escalations'), call('GET', base + 'containment')]);
  return [
    h('h2', {}, t('escalations')), escalationsTable(tenant, esc, canAck(tenants, tenant)),
    h('h2', {}, t('containment')), h('div', { id: 'dash-containment' }, containmentTables(tenant, con)),
  ];
}
