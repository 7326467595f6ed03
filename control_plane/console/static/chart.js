// A per-day bar chart in SVG, with the same numbers as a table for screen readers and keyboards.

import { fmtNumber, h, svg } from './dom.js';

const W = 600;
const H = 180;
const PAD = { left: 48, right: 8, top: 10, bottom: 28 };

export function barChart({ id, title, days, key, digits = 0, unit = '' }) {
  const values = days.map((d) => Number(d[key]) || 0);
  const total = values.reduce((a, b) => a + b, 0);
  const max = Math.max(1, ...values);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, days.length);
  const bars = days.map((d, i) => {
    const height = (values[i] / max) * plotH;
    const width = Math.max(1, Math.min(step * 0.76, 48));
    return svg('rect', { x: PAD.left + i * step + (step - width) / 2, y: PAD.top + plotH - height,
      width, height, class: 'bar' },
    svg('title', {}, `${d.date}: ${fmtNumber(values[i], digits)}${unit}`));
  });
  const label = (x, y, text, anchor = 'middle') => svg('text', { x, y, 'text-anchor': anchor, class: 'axis' }, text);
  const first = days[0]?.date ?? '';
  const last = days[days.length - 1]?.date ?? '';
  const summary = `${title}: ${fmtNumber(total, digits)}${unit} in total from ${first} to ${last}; `
    + `highest day ${fmtNumber(Math.max(0, ...values), digits)}${unit}.`;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary, class: 'chart' },
    svg('line', { x1: PAD.left, y1: PAD.top + plotH, x2: W - PAD.right, y2: PAD.top + plotH, class: 'axis-line' }),
    label(PAD.left - 6, PAD.top + 10, fmtNumber(max, digits), 'end'),
    label(PAD.left - 6, PAD.top + plotH, '0', 'end'),
    label(PAD.left, H - 8, first, 'start'),
    label(W - PAD.right, H - 8, last, 'end'),
    bars);
  const table = h('table', { class: 'data' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Day' }), h('th', { scope: 'col', text: title }))),
    h('tbody', {}, days.map((d, i) => h('tr', {}, h('td', { text: d.date }),
      h('td', { text: fmtNumber(values[i], digits) })))));
  return h('figure', { class: 'card chart-card', id, dataset: { total: String(total) } },
    h('figcaption', {}, h('span', { text: title }), h('strong', { class: 'total', text: `${fmtNumber(total, digits)}${unit}` })),
    chart,
    h('details', {}, h('summary', { text: `${title} per day as a table` }), table));
}
