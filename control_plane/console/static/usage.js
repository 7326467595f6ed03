// Usage: requests, characters, audio seconds and cache hits per UTC day over a chosen range, with
// the tenant's limits and what is left of the month's character quota.

import { api } from './api.js';
import { $, fmtNumber, h, showError } from './dom.js';
import { barChart } from './chart.js';

const DAY = 86400000;
const iso = (date) => date.toISOString().slice(0, 10);

function applyPreset() {
  const preset = $('#usage-preset').value;
  if (preset === 'custom') return;
  const today = new Date();
  const start = preset === 'month'
    ? new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1))
    : new Date(today.getTime() - (Number(preset) - 1) * DAY);
  $('#usage-start').value = iso(start);
  $('#usage-end').value = iso(today);
}

// Every day of the range, with zeros where nothing was recorded.
function everyDay(start, end, recorded) {
  const byDate = new Map(recorded.map((d) => [d.date, d]));
  const out = [];
  for (let t = Date.parse(`${start}T00:00:00Z`); t <= Date.parse(`${end}T00:00:00Z`); t += DAY) {
    const date = iso(new Date(t));
    out.push(byDate.get(date) || { date, requests: 0, characters: 0, audio_seconds: 0, cache_hits: 0 });
  }
  return out;
}

function quotaCard(config) {
  const limits = config.limits;
  const used = config.quotas.monthly_characters_used;
  const left = Math.max(0, limits.monthly_characters - used);
  const voicesUsed = config.quotas.voices_used;
  const row = (label, value) => h('div', {}, h('dt', { text: label }), h('dd', { text: value }));
  return [
    h('h3', { text: `Limits of ${config.name}` }),
    h('label', { for: 'quota-meter', text: `Characters this month: ${fmtNumber(used)} of ${fmtNumber(limits.monthly_characters)} `
      + `(${fmtNumber(left)} left)` }),
    h('meter', { id: 'quota-meter', min: 0, max: Math.max(1, limits.monthly_characters), value: used,
      low: limits.monthly_characters * 0.7, high: limits.monthly_characters * 0.9, optimum: 0, text: `${used}` }),
    h('dl', { class: 'stats limits-list' },
      row('Requests per minute', fmtNumber(limits.requests_per_minute)),
      row('Requests per hour', fmtNumber(limits.requests_per_hour)),
      row('Requests per day', fmtNumber(limits.requests_per_day)),
      row('Concurrent streams', `${config.quotas.concurrent_streams_used} of ${limits.max_concurrent_streams} in use`),
      row('Cloned voices', `${voicesUsed} of ${limits.max_voices}`),
      row('Characters left this month', fmtNumber(left))),
  ];
}

async function load(event) {
  event?.preventDefault();
  const error = $('#usage-error');
  showError(error, null);
  const start = $('#usage-start').value;
  const end = $('#usage-end').value;
  try {
    const [usage, config] = await Promise.all([
      api(`/v1/tenant/usage?start_date=${encodeURIComponent(start)}&end_date=${encodeURIComponent(end)}`),
      api('/v1/tenant/config'),
    ]);
    $('#usage-quota').replaceChildren(...quotaCard(config));
    const days = everyDay(usage.start_date, usage.end_date, usage.days);
    $('#usage-charts').replaceChildren(
      barChart({ id: 'chart-requests', title: 'Requests', days, key: 'requests' }),
      barChart({ id: 'chart-characters', title: 'Characters', days, key: 'characters' }),
      barChart({ id: 'chart-audio', title: 'Audio seconds', days, key: 'audio_seconds', digits: 1, unit: ' s' }),
      barChart({ id: 'chart-cache', title: 'Cache hits', days, key: 'cache_hits' }));
  } catch (err) {
    showError(error, err);
  }
}

export function initUsage() {
  $('#usage-form').addEventListener('submit', load);
  $('#usage-preset').addEventListener('change', () => { applyPreset(); load(); });
  for (const id of ['#usage-start', '#usage-end']) {
    $(id).addEventListener('change', () => { $('#usage-preset').value = 'custom'; });
  }
}

export async function showUsage() {
  if (!$('#usage-start').value) applyPreset();
  await load();
}
