// i18n.js: the portal's words in English and Japanese, the chosen language and time zone
// (kept per browser), and dates shown in that time zone.

const WORDS = {
  en: {
    app: 'kagari portal', login: 'Log in', logout: 'Log out', user: 'User name',
    password: 'Password', totp: 'Authenticator code', recovery: 'Recovery code',
    use_recovery: 'Use a recovery code instead', use_totp: 'Use an authenticator code',
    enrol_title: 'Set up two-factor authentication',
    enrol_text: 'Scan this QR code with an authenticator app (or type the secret), then enter the code it shows.',
    secret: 'Secret', confirm: 'Confirm', need_code: 'Enter the code of your authenticator app.',
    bad_login: 'Wrong user name, password or code.', locked: 'Too many attempts: try again later.',
    replayed: 'This code was used already: wait for the next one.',
    not_allowed: 'Your address is not allowed.',
    alerts: 'Alerts', runs: 'Runs', approvals: 'Approvals', dashboard: 'Dashboard', settings: 'Settings',
    tenant: 'Tenant', source: 'Source', severity: 'Level', outcome: 'Outcome', since: 'From',
    until: 'Until', filter: 'Filter', clear: 'Clear', any: 'any', time: 'Time', title: 'Title',
    received: 'Received', category: 'Category', vendor_severity: 'Vendor severity',
    observables: 'Observables', raw: 'Raw record', normalized: 'Normalized', id: 'ID',
    more: 'Older', none: 'Nothing to show.', runs_started: 'Runs started by this alert',
    playbook: 'Playbook', version: 'Version', state: 'State', created: 'Created', started: 'Started',
    ended: 'Ended', error: 'Error', journal: 'Journal', step: 'Step', kind: 'Kind', status: 'Status',
    request: 'Request', result: 'Answer', duration: 'Duration', alert: 'Alert',
    what: 'What the run will do', why: 'Why', deadline: 'Deadline', quorum: 'Approvers',
    votes: 'Votes', comment: 'Comment', approve: 'Approve', reject: 'Reject', role: 'Role',
    default_on_timeout: 'On timeout', decided: 'Decision recorded.', run: 'Run',
    not_found: 'Not found', not_found_text: 'There is no such page or object, or you may not see it.',
    forbidden: 'Your role does not allow this.', failed: 'The request failed',
    language: 'Language', timezone: 'Time zone', save: 'Save', saved: 'Saved.',
    export_csv: 'Export CSV', loading: 'Loading…', vote_count: '{n} of {m}',
    sev_informational: 'Informational', sev_low: 'Low', sev_medium: 'Medium', sev_high: 'High',
    sev_critical: 'Critical', out_unknown: 'Unknown', out_blocked: 'Blocked',
    out_attempted: 'Attempted', out_succeeded: 'Succeeded', approved: 'approved',
    rejected: 'rejected', pending: 'pending', expired: 'expired', cancelled: 'cancelled',
    no_approvals: 'No approval is waiting.', session_expired: 'Your session has ended: log in again.',
    alerts_24h: 'alerts in the last 24 hours', approvals_pending: 'Approvals waiting',
    runs_waiting: 'runs waiting', runs_failed: 'runs failed', by_level: 'Alerts by level (24 h)',
    by_source: 'Alerts by source (24 h)', updated: 'Updated',
    recovery_codes: 'Recovery codes', rc_new: 'New recovery codes',
    rc_text: 'Each code logs you in once without your authenticator. New codes replace the old ones.',
    rc_shown_once: 'Keep these codes somewhere safe: they are shown only now.',
    bad_code: 'The code is wrong or was used already.',
    choose_password: 'This password was for your first login: choose your own (12 characters or more).',
    new_password: 'New password', new_password_again: 'New password again',
    password_mismatch: 'The new passwords differ, or are too short (12 characters or more, not your user name).',
  },
  ja: {
    app: 'kagari ポータル', login: 'ログイン', logout: 'ログアウト', user: 'ユーザー名',
    password: 'パスワード', totp: '認証コード', recovery: 'リカバリーコード',
    use_recovery: 'リカバリーコードを使う', use_totp: '認証アプリのコードを使う',
    enrol_title: '二要素認証の設定',
    enrol_text: '認証アプリでこの QR コードを読み取り（またはシークレットを入力し）、表示されたコードを入力してください。',
    secret: 'シークレット', confirm: '確認', need_code: '認証アプリのコードを入力してください。',
    bad_login: 'ユーザー名、パスワードまたはコードが正しくありません。',
    locked: '試行回数が多すぎます。しばらくしてから再度お試しください。',
    replayed: 'このコードは使用済みです。次のコードをお待ちください。',
    not_allowed: 'このアドレスからのアクセスは許可されていません。',
    alerts: 'アラート', runs: '実行', approvals: '承認', dashboard: 'ダッシュボード', settings: '設定',
    tenant: 'テナント', source: 'ソース', severity: 'レベル', outcome: '結果', since: '開始',
    until: '終了', filter: '絞り込み', clear: 'クリア', any: 'すべて', time: '日時', title: 'タイトル',
    received: '受信日時', category: 'カテゴリ', vendor_severity: 'ベンダー重大度',
    observables: '観測値', raw: '元のレコード', normalized: '正規化', id: 'ID',
    more: 'さらに古いもの', none: '表示するものはありません。', runs_started: 'このアラートで開始された実行',
    playbook: 'プレイブック', version: 'バージョン', state: '状態', created: '作成', started: '開始',
    ended: '終了', error: 'エラー', journal: 'ジャーナル', step: 'ステップ', kind: '種類', status: '状態',
    request: 'リクエスト', result: '応答', duration: '所要時間', alert: 'アラート',
    what: '実行される操作', why: '理由', deadline: '期限', quorum: '承認者数',
    votes: '投票', comment: 'コメント', approve: '承認', reject: '却下', role: 'ロール',
    default_on_timeout: 'タイムアウト時', decided: '判断を記録しました。', run: '実行',
    not_found: '見つかりません', not_found_text: 'そのページまたはオブジェクトは存在しないか、閲覧できません。',
    forbidden: 'このロールでは実行できません。', failed: 'リクエストに失敗しました',
    language: '言語', timezone: 'タイムゾーン', save: '保存', saved: '保存しました。',
    export_csv: 'CSV エクスポート', loading: '読み込み中…', vote_count: '{m} 人中 {n} 人',
    sev_informational: '情報', sev_low: '低', sev_medium: '中', sev_high: '高', sev_critical: '緊急',
    out_unknown: '不明', out_blocked: 'ブロック済み', out_attempted: '試行', out_succeeded: '成功',
    approved: '承認済み', rejected: '却下', pending: '保留中', expired: '期限切れ',
    cancelled: '取消', no_approvals: '承認待ちはありません。',
    session_expired: 'セッションが終了しました。再度ログインしてください。',
    alerts_24h: '過去 24 時間のアラート', approvals_pending: '承認待ち', runs_waiting: '待機中の実行',
    runs_failed: '失敗した実行', by_level: 'レベル別アラート（24 時間）',
    by_source: 'ソース別アラート（24 時間）', updated: '更新',
    recovery_codes: 'リカバリーコード', rc_new: '新しいリカバリーコードを発行',
    rc_text: '各コードは認証アプリなしで 1 回だけログインに使えます。新しいコードを発行すると古いコードは無効になります。',
    rc_shown_once: 'これらのコードは今しか表示されません。安全な場所に保管してください。',
    bad_code: 'コードが正しくないか、使用済みです。',
    choose_password: 'このパスワードは初回ログイン用です。ご自身のパスワード（12 文字以上）を設定してください。',
    new_password: '新しいパスワード', new_password_again: '新しいパスワード（確認）',
    password_mismatch: '新しいパスワードが一致しないか短すぎます（12 文字以上、ユーザー名以外）。',
  },
};

// The Playbooks section's name, for the menu (its other words are in playbooks.js, which
// is loaded when the section is first shown).
WORDS.en.playbooks = 'Playbooks';
WORDS.ja.playbooks = 'プレイブック';

export const LANGS = ['ja', 'en'];
export const ZONES = ['Asia/Tokyo', 'UTC', 'America/New_York', 'Europe/London', 'Asia/Singapore'];

const store = window.localStorage;

export function lang() {
  const v = store.getItem('kagari.lang');
  return LANGS.includes(v) ? v : 'ja';
}

// A zone name this browser knows.
function knownZone(z) {
  if (typeof z !== 'string' || z.length > 63) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: z });
    return true;
  } catch (e) {
    return false;
  }
}

export function zone() {
  const v = store.getItem('kagari.tz');
  return knownZone(v) ? v : 'Asia/Tokyo';
}

// Kept in this browser (the server keeps them per person too: app.js saves them there).
export function setPrefs(l, z) {
  if (LANGS.includes(l)) store.setItem('kagari.lang', l);
  if (knownZone(z)) store.setItem('kagari.tz', z);
  document.documentElement.lang = lang();
}

// More words from a page module (the playbook view keeps its own): { en: {...}, ja: {...} }.
export function addWords(more) {
  for (const l of LANGS) Object.assign(WORDS[l], more[l] || {});
}

// The word for key in the present language (English, then the key, when missing).
export function t(key, vars) {
  let s = WORDS[lang()][key] ?? WORDS.en[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', String(v));
  return s;
}

// An RFC 3339 time in the chosen zone, e.g. "2026/12/05 09:30:12 JST"; '' for null.
export function fmtTime(v) {
  if (!v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return new Intl.DateTimeFormat(lang() === 'ja' ? 'ja-JP' : 'en-GB', {
    timeZone: zone(), year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
    minute: '2-digit', second: '2-digit', timeZoneName: 'short', hour12: false,
  }).format(d);
}

// Milliseconds between two RFC 3339 times as "1.234 s" / "12 ms"; '' when either is null.
export function fmtDuration(a, b) {
  if (!a || !b) return '';
  const ms = new Date(b).getTime() - new Date(a).getTime();
  if (!Number.isFinite(ms)) return '';
  return ms >= 1000 ? (ms / 1000).toFixed(3) + ' s' : ms + ' ms';
}
