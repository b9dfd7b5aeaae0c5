// dom.js: the only way the portal puts data on the page. Text goes in with textContent
// (never parsed as HTML), attributes with setAttribute after a check of their name, and
// links only to this portal's own pages. No markup is ever parsed from data.

const SAFE_ATTR = /^(class|id|type|name|value|placeholder|for|role|title|lang|colspan|min|max|step|autocomplete|inputmode|maxlength|pattern|required|disabled|checked|selected|readonly|alt|width|height|tabindex|datetime|data-[a-z-]+|aria-[a-z-]+)$/;

// A link target of this portal: a hash route ("#/...") made of safe characters. Anything
// else (javascript:, data:, other sites, markup) becomes "#/".
export function safeHref(v) {
  const s = String(v);
  return /^#\/[A-Za-z0-9._~\/%?=&-]*$/.test(s) ? s : '#/';
}

// An image source: only data: URLs of SVG images that we made ourselves (the QR code).
function safeSrc(v) {
  const s = String(v);
  return s.startsWith('data:image/svg+xml;base64,') ? s : '';
}

// h('tag', {attrs, on: {event: fn}}, ...children): children are nodes or text.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'href') {
      el.setAttribute('href', safeHref(v));
    } else if (k === 'src') {
      el.setAttribute('src', safeSrc(v));
    } else if (SAFE_ATTR.test(k)) {
      el.setAttribute(k, v === true ? '' : String(v));
    } else {
      throw new Error('dom.h: attribute not allowed: ' + k);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Replace el's content with children.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// JSON shown as text, indented.
export function jsonText(v) {
  try {
    return JSON.stringify(v, null, 2);
  } catch (e) {
    return String(v);
  }
}

// One CSV cell: quoted, and a cell a spreadsheet would run as a formula (=, +, -, @, tab,
// CR) is prefixed with a quote so that it stays text.
export function csvCell(v) {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return '"' + s.replace(/"/g, '""') + '"';
}
