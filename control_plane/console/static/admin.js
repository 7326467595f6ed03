// Admin view (admin token): tenants with limits, status and fair share (priority tier and weight); create,
// suspend/resume, change limits and share;
// engine readiness from /health; links to Grafana when GRAFANA_URL is set.

import { api } from './api.js';
import { $, copyText, fmtNumber, h, showError } from './dom.js';

const LIMITS = [
  ['requests_per_minute', 'Requests per minute'], ['requests_per_hour', 'Requests per hour'],
  ['requests_per_day', 'Requests per day'], ['max_concurrent_streams', 'Concurrent streams'],
  ['monthly_characters', 'Characters per month'], ['max_voices', 'Cloned voices'],
];

// Priority tiers and their weights (control_plane/services/tiers.py); an explicit weight makes the tier "custom".
const TIERS = [['economy', 0.5], ['standard', 1], ['premium', 3], ['enterprise', 10]];

function shareInputs(prefix, tenant = {}) {
  const tier = h('select', { id: `${prefix}-tier`, name: 'tier' },
    h('option', { value: '', text: tenant.tier ? `keep (${tenant.tier})` : 'standard (default)' }),
    TIERS.map(([name, weight]) => h('option', { value: name, text: `${name} (weight ${weight})` })));
  return [
    h('div', { class: 'limit' }, h('label', { for: `${prefix}-tier`, text: 'Priority tier' }), tier),
    h('div', { class: 'limit' }, h('label', { for: `${prefix}-weight`, text: 'Weight (instead of the tier\'s)' }),
      h('input', { id: `${prefix}-weight`, name: 'weight', type: 'number', min: 0.01, max: 100, step: 0.01,
        inputmode: 'decimal', placeholder: tenant.weight === undefined ? 'tier default' : String(tenant.weight) })),
  ];
}

function readShare(container) {
  const tier = container.querySelector('select[name="tier"]')?.value;
  return tier ? { tier } : {};
}

function status(message) { $('#tenants-status').textContent = message; }

function limitInputs(prefix, values = {}) {
  return LIMITS.map(([key, label]) => h('div', { class: 'limit' },
    h('label', { for: `${prefix}-${key}`, text: label }),
    h('input', { id: `${prefix}-${key}`, name: key, type: 'number', min: 0, step: 1, inputmode: 'numeric',
      value: values[key] ?? '', placeholder: values[key] === undefined ? 'default' : undefined })));
}

function readLimits(container) {
  const out = {};
  for (const input of container.querySelectorAll('input[type="number"]')) {
    if (input.value !== '') out[input.name] = Number(input.value);
  }
  return out;
}

function editRow(row, tenant) {
  const box = h('form', { class: 'limits edit', 'aria-label': `Limits of ${tenant.name}` },
    limitInputs(`edit-${tenant.tenant_id.slice(0, 8)}`, tenant.limits),
    shareInputs(`edit-${tenant.tenant_id.slice(0, 8)}`, tenant),
    h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Save limits' }),
      h('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => refresh() })));
  box.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api(`/admin/v1/tenants/${tenant.tenant_id}`, { method: 'PATCH', json: { ...readLimits(box), ...readShare(box) } });
      status(`Limits of ${tenant.name} saved.`);
      await refresh();
    } catch (error) { status(`Could not save the limits of ${tenant.name}: ${error.message}`); }
  });
  const cells = row.children.length;
  const editor = h('tr', { class: 'editor' }, h('td', { colspan: cells }, box));
  row.after(editor);
  box.querySelector('input').focus();
}

async function setSuspended(tenant, suspend) {
  try {
    await api(`/admin/v1/tenants/${tenant.tenant_id}/${suspend ? 'suspend' : 'resume'}`, { method: 'POST' });
    status(`${tenant.name} ${suspend ? 'suspended' : 'resumed'}.`);
    await refresh();
  } catch (error) { status(`${suspend ? 'Suspend' : 'Resume'} failed: ${error.message}`); }
}

function tenantRow(t) {
  const l = t.limits;
  const actions = [];
  if (t.status !== 'revoked') {
    actions.push(h('button', { type: 'button', class: 'secondary', text: 'Limits', 'aria-label': `Change limits of ${t.name}`,
      onclick: (e) => editRow(e.currentTarget.closest('tr'), t) }));
    const suspend = t.status === 'active';
    actions.push(h('button', { type: 'button', class: 'secondary', text: suspend ? 'Suspend' : 'Resume',
      'aria-label': `${suspend ? 'Suspend' : 'Resume'} ${t.name}`, onclick: () => setSuspended(t, suspend) }));
  }
  return h('tr', { dataset: { tenantId: t.tenant_id, status: t.status } },
    h('th', { scope: 'row' }, h('span', { class: 'tenant-name', text: t.name }),
      h('small', { class: 'id', text: t.tenant_id })),
    h('td', {}, h('span', { class: `status status-${t.status}`, text: t.status })),
    h('td', { text: `${fmtNumber(l.requests_per_minute)} / ${fmtNumber(l.requests_per_hour)} / ${fmtNumber(l.requests_per_day)}` }),
    h('td', { text: fmtNumber(l.max_concurrent_streams) }),
    h('td', { class: 'monthly', text: fmtNumber(l.monthly_characters) }),
    h('td', { text: fmtNumber(l.max_voices) }),
    h('td', { class: 'share', text: `${t.tier} · ${t.weight}` }),
    h('td', { class: 'actions-cell' }, actions));
}

async function refresh() {
  try {
    const { tenants } = await api('/admin/v1/tenants');
    $('#tenants-table tbody').replaceChildren(...tenants.map(tenantRow));
  } catch (error) { status(`Could not list tenants: ${error.message}`); }
}

async function create(event) {
  event.preventDefault();
  const error = $('#tenant-error');
  showError(error, null);
  const name = $('#tenant-name');
  if (!name.value.trim() || !name.checkValidity()) {
    showError(error, new Error('A name is required: letters, digits, space and . _ @ - (starting with a letter or digit).'));
    name.setAttribute('aria-invalid', 'true');
    name.focus();
    return;
  }
  name.removeAttribute('aria-invalid');
  try {
    const created = await api('/admin/v1/tenants', { method: 'POST',
      json: { name: name.value.trim(), ...readLimits($('#tenant-limits')), ...readShare($('#tenant-limits')) } });
    $('#tenant-key-value').value = created.api_key;
    $('#tenant-key').hidden = false;
    status(`Tenant ${created.name} created.`);
    name.value = '';
    for (const input of $('#tenant-limits').querySelectorAll('input, select')) input.value = '';
    await refresh();
    $('#tenant-key-value').focus();
    $('#tenant-key-value').select();
  } catch (err) { showError(error, err); }
}

async function engines() {
  const list = $('#engines-list');
  try {
    const health = await fetch('/health', { cache: 'no-store' }).then((r) => r.json());
    list.replaceChildren(...Object.entries(health.engines).map(([name, e]) => h('li', { dataset: { engine: name, ready: String(e.ready) } },
      h('span', { class: `status status-${e.ready ? 'active' : 'suspended'}`, text: e.ready ? 'ready' : 'not ready' }),
      ` ${name}`, e.model_version ? h('small', { text: ` model ${e.model_version}` }) : null,
      e.test_weights ? h('small', { text: ' (test weights)' }) : null)));
    const redis = health.redis ? `, Redis ${health.redis.ok ? 'ok' : 'down'}` : '';
    $('#health-summary').textContent = `Service ${health.status} · version ${health.version} · store ${health.store.backend} `
      + `${health.store.ok ? 'ok' : 'down'}${redis} · ${health.active_streams} stream(s) open.`;
  } catch (error) { list.replaceChildren(h('li', { text: `Health unavailable: ${error.message}` })); }
  try {
    const links = await api('/admin/v1/links');
    $('#links-list').replaceChildren(...(links.dashboards.length
      ? links.dashboards.map((d) => h('li', {}, h('a', { href: d.url, target: '_blank', rel: 'noopener noreferrer',
        text: `Grafana: ${d.title} dashboard` })))
      : [h('li', { text: 'Set GRAFANA_URL to link the Grafana dashboards here.' })]));
  } catch (error) { $('#links-list').replaceChildren(h('li', { text: error.message })); }
}

export function initAdmin() {
  $('#tenant-limits').replaceChildren(...limitInputs('new'), ...shareInputs('new'));
  $('#tenant-form').addEventListener('submit', create);
  $('#tenant-key-copy').addEventListener('click', (e) => copyText($('#tenant-key-value'), e.currentTarget));
}

export async function showAdmin() {
  await Promise.all([refresh(), engines()]);
}
