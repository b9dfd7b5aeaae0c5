// chart.js: the dashboard's SVG charts, drawn with DOM calls (labels are text nodes).
const NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// Stacked columns: one per bucket (oldest first), one band per series (keys, bottom up).
// buckets: [{label, values: {key: n}}]; colours: CSS classes per key.
export function stackedBars(buckets, keys, title) {
  const w = 720, h = 220, left = 36, bottom = 24, top = 8;
  const max = Math.max(1, ...buckets.map((b) => keys.reduce((s, k) => s + (b.values[k] || 0), 0)));
  const svg = el('svg', { viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img', 'aria-label': title });
  svg.appendChild(el('title', {}, title));
  const colw = (w - left) / Math.max(1, buckets.length);
  const scale = (h - bottom - top) / max;
  for (const f of [0, 0.5, 1]) {
    const y = h - bottom - f * max * scale;
    svg.appendChild(el('line', { x1: left, x2: w, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(el('text', { x: left - 4, y: y + 4, class: 'axis', 'text-anchor': 'end' }, Math.round(f * max)));
  }
  buckets.forEach((b, i) => {
    let y = h - bottom;
    for (const k of keys) {
      const n = b.values[k] || 0;
      if (!n) continue;
      const bh = n * scale;
      y -= bh;
      const r = el('rect', { x: left + i * colw + 1, y, width: Math.max(1, colw - 2), height: bh, class: 'bar bar-' + k });
      r.appendChild(el('title', {}, `${b.label} ${k}: ${n}`));
      svg.appendChild(r);
    }
    if (buckets.length <= 24 ? i % 3 === 0 : i % 6 === 0) {
      svg.appendChild(el('text', { x: left + i * colw + colw / 2, y: h - 6, class: 'axis', 'text-anchor': 'middle' }, b.label));
    }
  });
  return svg;
}

// Horizontal bars: [{label, value}], largest first.
export function hBars(rows, title) {
  const w = 720, rowh = 22, left = 200;
  const h = Math.max(1, rows.length) * rowh + 4;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const svg = el('svg', { viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img', 'aria-label': title });
  svg.appendChild(el('title', {}, title));
  rows.forEach((r, i) => {
    const y = i * rowh + 2;
    svg.appendChild(el('text', { x: left - 6, y: y + 15, class: 'axis', 'text-anchor': 'end' }, r.label));
    const bw = ((w - left - 60) * r.value) / max;
    svg.appendChild(el('rect', { x: left, y: y + 3, width: Math.max(1, bw), height: rowh - 6, class: 'bar bar-source' }));
    svg.appendChild(el('text', { x: left + bw + 6, y: y + 15, class: 'axis' }, r.value));
  });
  return svg;
}
