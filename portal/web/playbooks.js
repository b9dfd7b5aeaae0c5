// playbooks.js: the Playbooks section, for the customer's review: the list, a version's
// source with Lua highlighting, the history of deployments (who deployed what when, the
// runs of each version), the difference between any two versions, and the dry-run switch.
// Source text reaches the page only as text nodes (dom.js), never as markup.
import { call, ApiError, enc, query } from './api.js';
import { h, mount } from './dom.js';
import { t, fmtTime, addWords } from './i18n.js';

addWords({
  en: {
    playbooks: 'Playbooks', pb_version: 'Version', pb_deployed: 'Deployed', pb_by: 'By',
    pb_via: 'How', pb_triggers: 'Triggers', pb_dry_run: 'Dry run', pb_runs_30d: 'Runs (30 days)',
    pb_runs: 'Runs', pb_not_recorded: 'not recorded', pb_via_cli: 'kagari playbook deploy',
    pb_via_api: 'portal / API', pb_via_reload: 'found at a reload', pb_via_first_run: 'first run',
    pb_on: 'on', pb_off: 'off', pb_dry_from_switch: 'set by {who} at {when}',
    pb_dry_from_playbook: 'as the playbook file says', pb_dry_from_tenant: 'the whole tenant is in dry run',
    pb_switch_label: 'Dry run: outside effects are recorded, not performed',
    pb_follow: 'Use the playbook file\'s setting', pb_read_only: 'Only an engineer or an admin can change this.',
    pb_history: 'Deployments', pb_source: 'Source', pb_libraries: 'Libraries',
    pb_compare: 'Compare', pb_diff: 'Changes', pb_from: 'From (A)', pb_to: 'To (B)',
    pb_same: 'The two versions are the same.', pb_added: '{n} lines added', pb_removed: '{n} lines removed',
    pb_not_serving: 'not served now', pb_any_source: 'every source', pb_min: 'from {s}',
    pb_outcome: 'outcome {o}', pb_runs_of_version: 'Runs of this version', pb_source_link: 'source',
    pb_too_different: 'The versions differ too much for a line-by-line comparison: shown as removed and added.',
    pb_switched: 'Saved: the next runs follow it.',
  },
  ja: {
    playbooks: 'プレイブック', pb_version: 'バージョン', pb_deployed: 'デプロイ日時', pb_by: '実施者',
    pb_via: '方法', pb_triggers: 'トリガー', pb_dry_run: 'ドライラン', pb_runs_30d: '実行数（30 日）',
    pb_runs: '実行数', pb_not_recorded: '記録なし', pb_via_cli: 'kagari playbook deploy',
    pb_via_api: 'ポータル / API', pb_via_reload: '再読み込み時に検出', pb_via_first_run: '初回実行',
    pb_on: 'オン', pb_off: 'オフ', pb_dry_from_switch: '{who} が {when} に設定',
    pb_dry_from_playbook: 'プレイブックファイルの設定どおり', pb_dry_from_tenant: 'テナント全体がドライラン中',
    pb_switch_label: 'ドライラン: 外部への操作は記録のみで実行しない',
    pb_follow: 'プレイブックファイルの設定に戻す', pb_read_only: '変更できるのはエンジニアまたは管理者のみです。',
    pb_history: 'デプロイ履歴', pb_source: 'ソース', pb_libraries: 'ライブラリ',
    pb_compare: '比較', pb_diff: '変更点', pb_from: '比較元 (A)', pb_to: '比較先 (B)',
    pb_same: '2 つのバージョンは同一です。', pb_added: '{n} 行追加', pb_removed: '{n} 行削除',
    pb_not_serving: '現在は未配備', pb_any_source: 'すべてのソース', pb_min: '{s} 以上',
    pb_outcome: '結果 {o}', pb_runs_of_version: 'このバージョンの実行', pb_source_link: 'ソース',
    pb_too_different: '差分が大きすぎるため行単位で比較できません。削除と追加として表示します。',
    pb_switched: '保存しました。次の実行から反映されます。',
  },
});

// ---- Lua highlighting ----

const KEYWORDS = new Set(['and', 'break', 'do', 'else', 'elseif', 'end', 'for', 'function', 'goto',
  'if', 'in', 'local', 'not', 'or', 'repeat', 'return', 'then', 'until', 'while']);
const LITERALS = new Set(['true', 'false', 'nil']);
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /0[xX][0-9a-fA-F]*(?:\.[0-9a-fA-F]*)?(?:[pP][+-]?[0-9]+)?|[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?/y;
const SPACE = /[ \t\r\n\f\v]+/y;
const OPEN_LONG = /\[(=*)\[/y;

// The end (index after) of a long bracket of level eq opened before i, or the text's end.
function longEnd(s, i, eq) {
  const close = ']' + eq + ']';
  const e = s.indexOf(close, i);
  return e < 0 ? s.length : e + close.length;
}

// Lua source as tokens [kind, text]: kind is '' (plain), 'kw', 'lit', 'num', 'str' or
// 'com'. The texts put together are the source, whatever it holds (broken code
// included): highlighting never changes or drops a character.
export function luaTokens(src) {
  const s = String(src);
  const out = [];
  let i = 0;
  const push = (kind, end) => {
    out.push([kind, s.slice(i, end)]);
    i = end;
  };
  while (i < s.length) {
    const c = s[i];
    let m;
    if (c === '-' && s[i + 1] === '-') {
      OPEN_LONG.lastIndex = i + 2;
      if ((m = OPEN_LONG.exec(s))) push('com', longEnd(s, i + 2 + m[0].length, m[1]));
      else {
        const e = s.indexOf('\n', i);
        push('com', e < 0 ? s.length : e);
      }
    } else if (c === '[' && ((OPEN_LONG.lastIndex = i), (m = OPEN_LONG.exec(s)))) {
      push('str', longEnd(s, i + m[0].length, m[1]));
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < s.length && s[j] !== c && s[j] !== '\n') j += s[j] === '\\' ? 2 : 1;
      push('str', Math.min(s.length, j + (s[j] === c ? 1 : 0)));
    } else if ((c >= '0' && c <= '9') || (c === '.' && s[i + 1] >= '0' && s[i + 1] <= '9')) {
      NUMBER.lastIndex = i;
      m = NUMBER.exec(s);
      push('num', i + Math.max(1, m ? m[0].length : 1));
    } else if ((NAME.lastIndex = i), (m = NAME.exec(s))) {
      push(KEYWORDS.has(m[0]) ? 'kw' : LITERALS.has(m[0]) ? 'lit' : '', i + m[0].length);
    } else if ((SPACE.lastIndex = i), (m = SPACE.exec(s))) {
      push('', i + m[0].length);
    } else {
      push('', i + 1);
    }
  }
  return out;
}

// The lines of a text, without the empty one after a final line end; none for no text
// (a file that one version lacks).
function splitLines(text) {
  if (text === undefined || text === null || text === '') return [];
  const lines = String(text).split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

// The tokens split into lines (as splitLines does): arrays of [kind, text].
function tokenLines(src) {
  const lines = [[]];
  for (const [kind, text] of luaTokens(src)) {
    const parts = text.split('\n');
    parts.forEach((p, n) => {
      if (n > 0) lines.push([]);
      if (p) lines[lines.length - 1].push([kind, p]);
    });
  }
  if (lines.length > 1 && lines[lines.length - 1].length === 0) lines.pop();
  return lines;
}

// A highlighted listing: one <li> per line (the list numbers them), spans of text nodes.
export function sourceBlock(src, id) {
  return h('ol', { class: 'code', id },
    tokenLines(src).map((line) => h('li', {}, line.length
      ? line.map(([kind, text]) => (kind ? h('span', { class: 'tok-' + kind }, text) : text))
      : '\u200b')));
}

// ---- line diff (Myers, O((N+M)D)) ----

const DIFF_MAX_D = 2000; // edits beyond this: the middle is shown as removed, then added

// The shortest edit script from a to b (arrays of lines) after their common head and tail
// are set aside: [op, lineA, lineB] with op '=', '-' or '+' and 0-based line numbers
// (-1 where the line is not on that side). Sets .approx on the result when the middle
// differed more than DIFF_MAX_D edits.
export function diffLines(a, b) {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const A = a.slice(head, a.length - tail);
  const B = b.slice(head, b.length - tail);
  const out = [];
  for (let i = 0; i < head; i++) out.push(['=', i, i]);
  const mid = myers(A, B);
  let approx = false;
  if (mid) {
    for (const [op, x, y] of mid) out.push([op, x < 0 ? -1 : x + head, y < 0 ? -1 : y + head]);
  } else {
    approx = true;
    for (let i = 0; i < A.length; i++) out.push(['-', i + head, -1]);
    for (let i = 0; i < B.length; i++) out.push(['+', -1, i + head]);
  }
  for (let i = 0; i < tail; i++) out.push(['=', a.length - tail + i, b.length - tail + i]);
  out.approx = approx;
  return out;
}

function myers(a, b) {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  if (max === 0) return [];
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace = [];
  let found = -1;
  for (let d = 0; d <= Math.min(max, DIFF_MAX_D) && found < 0; d++) {
    trace.push(v.slice(off - d, off + d + 1));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return null;
  const ops = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const vd = trace[d];
    const at = (k) => vd[k + d];
    const k = x - y;
    const pk = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const px = at(pk);
    const py = px - pk;
    while (x > px && y > py) {
      ops.push(['=', --x, --y]);
    }
    if (x === px) ops.push(['+', -1, --y]);
    else ops.push(['-', --x, -1]);
  }
  while (x > 0 && y > 0) ops.push(['=', --x, --y]);
  return ops.reverse();
}

// The script as hunks with three lines of context: [{aStart, aLen, bStart, bLen, ops}].
function hunks(ops, context = 3) {
  const out = [];
  let cur = null;
  let lastChange = -Infinity;
  ops.forEach((o, i) => {
    if (o[0] === '=') return;
    if (!cur || i - lastChange > 2 * context) {
      cur = { from: Math.max(0, i - context), to: i };
      out.push(cur);
    }
    cur.to = i;
    lastChange = i;
  });
  return out.map((hk) => {
    const list = ops.slice(hk.from, Math.min(ops.length, hk.to + context + 1));
    const aLines = list.filter((o) => o[0] !== '+');
    const bLines = list.filter((o) => o[0] !== '-');
    return {
      aStart: aLines.length ? aLines[0][1] + 1 : 0, aLen: aLines.length,
      bStart: bLines.length ? bLines[0][2] + 1 : 0, bLen: bLines.length, ops: list,
    };
  });
}

// The difference between two sources as a table: hunk headers, then each line with its
// numbers on both sides and its text (as text).
export function diffTable(srcA, srcB) {
  const a = splitLines(srcA);
  const b = splitLines(srcB);
  const ops = diffLines(a, b);
  const added = ops.filter((o) => o[0] === '+').length;
  const removed = ops.filter((o) => o[0] === '-').length;
  const rows = [];
  for (const hk of hunks(ops)) {
    rows.push(h('tr', { class: 'hunk' }, h('td', { colspan: 4 },
      '@@ -' + hk.aStart + ',' + hk.aLen + ' +' + hk.bStart + ',' + hk.bLen + ' @@')));
    for (const [op, x, y] of hk.ops) {
      const cls = op === '+' ? 'add' : op === '-' ? 'del' : 'ctx';
      rows.push(h('tr', { class: cls },
        h('td', { class: 'ln' }, x >= 0 ? String(x + 1) : ''), h('td', { class: 'ln' }, y >= 0 ? String(y + 1) : ''),
        h('td', { class: 'mark' }, op === '=' ? ' ' : op), h('td', { class: 'text' }, op === '+' ? b[y] : a[x])));
    }
  }
  return {
    added, removed, approx: ops.approx,
    node: rows.length ? h('table', { class: 'diff' }, h('tbody', {}, rows)) : null,
  };
}

// ---- pages ----

const short = (v) => String(v || '').slice(0, 12);

function viaText(via) {
  return ['cli', 'api', 'reload', 'first_run'].includes(via) ? t('pb_via_' + via) : String(via || '');
}

function triggerText(tr) {
  if (!tr || !Array.isArray(tr.source)) return '';
  const parts = [tr.source.length ? tr.source.join(', ') : t('pb_any_source')];
  if (tr.min_severity && tr.min_severity !== 'informational') parts.push(t('pb_min', { s: t('sev_' + tr.min_severity) }));
  if (Array.isArray(tr.outcome) && tr.outcome.length) parts.push(t('pb_outcome', { o: tr.outcome.join(', ') }));
  return parts.join(' · ');
}

function dryBadge(d) {
  const on = !!(d && d.effective);
  return h('span', { class: 'state ' + (on ? 'state-waiting' : 'state-done'), 'data-dry-run': on ? 'on' : 'off' },
    t('pb_dry_run') + ': ' + (on ? t('pb_on') : t('pb_off')));
}

function dryReason(d) {
  if (d.tenant) return t('pb_dry_from_tenant');
  if (d.switch !== null && d.switch !== undefined) {
    return t('pb_dry_from_switch', { who: d.changed_by || '?', when: fmtTime(d.changed) });
  }
  return t('pb_dry_from_playbook');
}

function pbBase(tenant, name) {
  return '#/t/' + enc(tenant) + '/playbooks/' + enc(name);
}

function listPage(ctx, tenant, r) {
  document.title = t('playbooks') + ' — ' + t('app');
  const rows = r.playbooks.map((p) => h('tr', { 'data-playbook': p.name },
    h('td', {}, h('a', { href: pbBase(tenant, p.name) }, p.name),
      p.serving ? null : h('div', { class: 'meta' }, t('pb_not_serving'))),
    h('td', {}, h('code', {}, short(p.version))),
    h('td', {}, fmtTime(p.deployed), h('div', { class: 'meta' }, p.deployed_by || t('pb_not_recorded'))),
    h('td', {}, triggerText(p.triggers)),
    h('td', {}, dryBadge(p.dry_run)),
    h('td', { class: 'num' }, String(p.runs_30d))));
  mount(ctx.root, h('section', { 'data-page': 'playbooks' }, h('h1', {}, t('playbooks')),
    r.tenant_dry_run ? h('p', { class: 'msg msg-info', id: 'tenant-dry-run' }, t('pb_dry_from_tenant')) : null,
    h('table', { class: 'list', id: 'playbook-list' },
      h('thead', {}, h('tr', {}, h('th', {}, t('playbook')), h('th', {}, t('pb_version')),
        h('th', {}, t('pb_deployed')), h('th', {}, t('pb_triggers')), h('th', {}, t('pb_dry_run')),
        h('th', {}, t('pb_runs_30d')))),
      h('tbody', { id: 'playbook-rows' }, rows.length ? rows : h('tr', {}, h('td', { colspan: 6 }, t('none')))))));
}

// The dry-run switch: a checkbox for those who may change it, the state as text for the
// others (the API refuses them too).
function drySection(ctx, tenant, p) {
  const d = p.dry_run;
  const status = h('div', { id: 'dry-run-status' });
  const send = async (value) => {
    try {
      await call('POST', 'tenants/' + enc(tenant) + '/playbooks/' + enc(p.name) + '/dry-run', { dry_run: value });
      ctx.redraw(t('pb_switched'));
    } catch (e) {
      mount(status, h('p', { class: 'msg msg-error', role: 'alert' },
        e instanceof ApiError && e.status === 403 ? t('forbidden') : t('failed') + ': ' + e.message));
    }
  };
  const state = h('p', { id: 'dry-run-state' }, dryBadge(d), ' ', dryReason(d));
  if (!ctx.canEdit) {
    return h('section', { class: 'pane', id: 'dry-run' }, h('h2', {}, t('pb_dry_run')), state,
      h('p', { class: 'meta', id: 'dry-run-readonly' }, t('pb_read_only')));
  }
  const box = h('input', { type: 'checkbox', id: 'dry-run-switch', checked: !!d.effective, disabled: !!d.tenant,
    on: { change: (ev) => send(ev.target.checked) } });
  return h('section', { class: 'pane', id: 'dry-run' }, h('h2', {}, t('pb_dry_run')), state,
    h('p', {}, box, ' ', h('label', { for: 'dry-run-switch' }, t('pb_switch_label'))),
    d.switch !== null && d.switch !== undefined
      ? h('button', { type: 'button', id: 'dry-run-follow', on: { click: () => send(null) } }, t('pb_follow')) : null,
    status);
}

function detailPage(ctx, tenant, p, src, notice) {
  document.title = p.name + ' — ' + t('playbooks') + ' — ' + t('app');
  const deps = Array.isArray(p.deployments) ? p.deployments : [];
  const versions = [...new Set(deps.map((x) => x.version))];
  const pickA = versions[1] || versions[0] || '';
  const pickB = versions[0] || '';
  const radios = (side, v, checked) => h('input', { type: 'radio', name: 'diff-' + side, value: v, checked,
    'aria-label': (side === 'a' ? t('pb_from') : t('pb_to')) + ' ' + short(v) });
  const form = h('form', { id: 'compare-form', on: { submit: (ev) => {
    ev.preventDefault();
    const a = form.querySelector('input[name="diff-a"]:checked');
    const b = form.querySelector('input[name="diff-b"]:checked');
    if (a && b) location.hash = pbBase(tenant, p.name) + '/diff' + query({ a: a.value, b: b.value });
  } } },
  h('table', { class: 'list', id: 'deployments' },
    h('thead', {}, h('tr', {}, h('th', {}, 'A'), h('th', {}, 'B'), h('th', {}, t('pb_version')),
      h('th', {}, t('pb_deployed')), h('th', {}, t('pb_by')), h('th', {}, t('pb_via')), h('th', {}, t('pb_runs')))),
    h('tbody', {}, deps.map((x, i) => h('tr', { 'data-version': x.version },
      h('td', {}, radios('a', x.version, i === deps.findIndex((y) => y.version === pickA))),
      h('td', {}, radios('b', x.version, i === 0)),
      h('td', {}, h('a', { href: pbBase(tenant, p.name) + '/versions/' + enc(x.version) }, h('code', {}, short(x.version)))),
      h('td', {}, fmtTime(x.deployed)), h('td', { class: 'deployer' }, x.deployed_by || t('pb_not_recorded')),
      h('td', {}, viaText(x.via)),
      h('td', { class: 'num' }, h('a', { href: pbBase(tenant, p.name) + '/versions/' + enc(x.version) }, String(x.runs))))))),
  versions.length > 1 ? h('button', { type: 'submit', id: 'compare' }, t('pb_compare')) : null);
  mount(ctx.root, h('section', { 'data-page': 'playbook' },
    h('h1', {}, p.name), p.description ? h('p', { class: 'description' }, p.description) : null,
    notice ? h('p', { class: 'msg msg-info', role: 'status' }, notice) : null,
    h('dl', { class: 'fields' },
      h('dt', {}, t('pb_version')), h('dd', {}, h('code', { id: 'pb-version' }, p.version || '')),
      h('dt', {}, t('pb_deployed')), h('dd', {}, fmtTime(p.deployed)),
      h('dt', {}, t('pb_by')), h('dd', { id: 'pb-deployer' }, p.deployed_by || t('pb_not_recorded')),
      h('dt', {}, t('pb_triggers')), h('dd', {}, triggerText(p.triggers)),
      h('dt', {}, t('pb_runs_30d')), h('dd', {}, String(p.runs_30d))),
    drySection(ctx, tenant, p),
    h('h2', {}, t('pb_history')), form,
    h('h2', {}, t('pb_source')), src ? sourceBlock(src.source, 'source') : h('p', {}, t('none'))));
}

async function versionPage(ctx, tenant, name, version) {
  const base = 'tenants/' + enc(tenant) + '/playbooks/' + enc(name) + '/versions/' + enc(version);
  const v = await call('GET', base);
  document.title = name + ' ' + short(version) + ' — ' + t('app');
  const tbody = h('tbody', { id: 'version-run-rows' });
  const more = h('button', { type: 'button', id: 'version-runs-more', class: 'hidden' }, t('more'));
  mount(ctx.root, h('section', { 'data-page': 'playbook-version' },
    h('h1', {}, h('a', { href: pbBase(tenant, name) }, name), ' ', h('code', {}, short(version))),
    h('dl', { class: 'fields' }, h('dt', {}, t('pb_version')), h('dd', {}, h('code', { id: 'pb-version' }, version)),
      h('dt', {}, t('pb_runs')), h('dd', { id: 'version-run-count' }, String(v.runs))),
    h('h2', {}, t('pb_source')), sourceBlock(v.source, 'source'),
    (v.libraries || []).length ? [h('h2', {}, t('pb_libraries')),
      v.libraries.map((l) => [h('h3', {}, 'lib/' + l.name + '.lua'), sourceBlock(l.source, 'lib-' + l.name)])] : null,
    h('h2', { id: 'runs' }, t('pb_runs_of_version')),
    h('table', { class: 'list', id: 'version-runs' }, ctx.runHead(), tbody), h('div', { class: 'actions' }, more)));
  const page = async (before) => {
    const r = await call('GET', base + '/runs' + query({ limit: 50, before }));
    for (const row of ctx.runRows(tenant, r.runs)) tbody.appendChild(row);
    if (!tbody.children.length) tbody.appendChild(h('tr', {}, h('td', { colspan: 6 }, t('none'))));
    more.classList.toggle('hidden', !r.next_before);
    more.onclick = r.next_before ? () => page(r.next_before).catch((e) => ctx.showError(e)) : null;
  };
  await page();
}

async function diffPage(ctx, tenant, name, params) {
  const a = params.get('a') || '';
  const b = params.get('b') || '';
  const base = 'tenants/' + enc(tenant) + '/playbooks/' + enc(name);
  const [p, va, vb] = await Promise.all([call('GET', base),
    call('GET', base + '/versions/' + enc(a)), call('GET', base + '/versions/' + enc(b))]);
  document.title = name + ' — ' + t('pb_diff') + ' — ' + t('app');
  const versions = [...new Set((p.deployments || []).map((x) => x.version))];
  const pick = (id, cur) => h('select', { id }, versions.map((v) => h('option', { value: v, selected: v === cur }, short(v))));
  const selA = pick('diff-a', a);
  const selB = pick('diff-b', b);
  // The playbook file, then each library (a version covers its libraries too): the files
  // that differ, each with its own table.
  const files = (v) => new Map([[name + '.lua', v.source],
    ...(v.libraries || []).map((l) => ['lib/' + l.name + '.lua', l.source])]);
  const fa = files(va);
  const fb = files(vb);
  const d = { added: 0, removed: 0, approx: false, node: null };
  const parts = [];
  for (const f of new Set([...fa.keys(), ...fb.keys()])) {
    const one = diffTable(fa.get(f), fb.get(f));
    if (!one.node) continue;
    d.added += one.added;
    d.removed += one.removed;
    d.approx = d.approx || one.approx;
    parts.push(h('h3', { class: 'diff-file' }, f), one.node);
  }
  if (parts.length) d.node = parts;
  mount(ctx.root, h('section', { 'data-page': 'playbook-diff' },
    h('h1', {}, h('a', { href: pbBase(tenant, name) }, name), ' — ', t('pb_diff')),
    h('form', { class: 'filters', id: 'diff-form', on: { submit: (ev) => {
      ev.preventDefault();
      location.hash = pbBase(tenant, name) + '/diff' + query({ a: selA.value, b: selB.value });
    } } }, h('label', {}, t('pb_from'), selA), h('label', {}, t('pb_to'), selB),
    h('button', { type: 'submit', id: 'diff-apply' }, t('pb_compare'))),
    h('p', { id: 'diff-summary' },
      h('a', { href: pbBase(tenant, name) + '/versions/' + enc(a) }, 'A ', h('code', {}, short(a))), ' → ',
      h('a', { href: pbBase(tenant, name) + '/versions/' + enc(b) }, 'B ', h('code', {}, short(b))), ' · ',
      h('span', { class: 'added' }, t('pb_added', { n: d.added })), ' · ',
      h('span', { class: 'removed' }, t('pb_removed', { n: d.removed }))),
    d.approx ? h('p', { class: 'msg msg-info' }, t('pb_too_different')) : null,
    d.node ? h('div', { id: 'diff' }, d.node) : h('p', { id: 'diff-same' }, t('pb_same'))));
}

// The section's pages: rest is what follows #/t/<tenant>/playbooks. ctx: { root (the
// page's container), canEdit, runRows, runHead, showError, notFound }.
export async function playbooksPage(ctx, tenant, rest, params) {
  const base = 'tenants/' + enc(tenant) + '/playbooks';
  if (rest.length === 0) {
    listPage(ctx, tenant, await call('GET', base));
  } else if (rest.length === 1) {
    const draw = async (notice) => {
      const p = await call('GET', base + '/' + enc(rest[0]));
      let src = null;
      if (p.version) {
        try {
          src = await call('GET', base + '/' + enc(rest[0]) + '/versions/' + enc(p.version));
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 404)) throw e;
        }
      }
      if (ctx.live()) detailPage(ctx, tenant, p, src, notice);
    };
    ctx.redraw = (notice) => draw(notice).catch((e) => ctx.showError(e));
    await draw();
  } else if (rest.length === 3 && rest[1] === 'versions') {
    await versionPage(ctx, tenant, rest[0], rest[2]);
  } else if (rest.length === 2 && rest[1] === 'diff') {
    await diffPage(ctx, tenant, rest[0], params);
  } else {
    ctx.notFound();
  }
}
