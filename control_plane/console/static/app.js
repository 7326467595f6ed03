// The console: sign-in, navigation between pages (#playground, #voices, ...: the fragment never
// holds a credential), and each page's show/leave hooks.

import { api, clearSession, saveSession, session } from './api.js';
import { $, $$, flash } from './dom.js';
import { initAdmin, showAdmin } from './admin.js';
import { initKeys, leaveKeys, showKeys } from './keys.js';
import { initPlayground, showPlayground, stopPlayground } from './playground.js';
import { initUsage, showUsage } from './usage.js';
import { initVoices, showVoices, stopVoices } from './voices.js';

const PAGES = {
  playground: { kind: 'tenant', show: showPlayground, leave: stopPlayground },
  voices: { kind: 'tenant', show: showVoices, leave: stopVoices },
  usage: { kind: 'tenant', show: showUsage },
  keys: { kind: 'tenant', show: showKeys, leave: leaveKeys },
  admin: { kind: 'admin', show: showAdmin },
};
let current = null;

function defaultPage(kind) { return kind === 'admin' ? 'admin' : 'playground'; }

async function route() {
  const s = session();
  let name = location.hash.slice(1);
  if (!s) name = 'signin';
  else if (!PAGES[name] || PAGES[name].kind !== s.kind) name = defaultPage(s.kind);
  if (current && current !== name) PAGES[current]?.leave?.();
  current = name;
  for (const page of $$('.page')) page.hidden = page.id !== `page-${name}`;
  for (const link of $$('#nav a')) {
    if (link.getAttribute('href') === `#${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${name === 'signin' ? 'Sign in' : $(`#page-${name} h2`).textContent} · TTS Gateway console`;
  if (name === 'signin') { $('#signin-token').focus(); return; }
  document.body.dataset.page = name;
  try {
    await PAGES[name].show();
  } catch (error) {
    flash(`Could not load ${name}: ${error.message}`, 'error');
  }
}

function showChrome() {
  const s = session();
  $('#nav').hidden = !s;
  $('#who').hidden = !s;
  for (const item of $$('#nav li')) item.hidden = !s || item.dataset.kind !== s.kind;
  $('#who-name').textContent = s ? (s.kind === 'admin' ? 'Administrator' : `Tenant ${s.name}`) : '';
  document.body.dataset.kind = s ? s.kind : 'none';
}

async function signIn(event) {
  event.preventDefault();
  const kind = document.querySelector('input[name="kind"]:checked').value;
  const token = $('#signin-token').value.trim();
  const error = $('#signin-error');
  error.textContent = '';
  if (!token) {
    error.textContent = kind === 'admin' ? 'Enter the admin token.' : 'Enter an API key.';
    $('#signin-token').focus();
    return;
  }
  try {
    let name = 'admin';
    if (kind === 'admin') await api('/admin/v1/tenants', { token });
    else name = (await api('/v1/tenant/config', { token })).name;
    saveSession({ kind, token, name });
  } catch (err) {
    error.textContent = err.status === 401 || err.status === 404
      ? `Refused: ${err.message}` : `Could not sign in: ${err.message}`;
    $('#signin-token').select();
    return;
  }
  $('#signin-token').value = '';
  flash('');
  showChrome();
  const target = defaultPage(kind);
  if (location.hash === `#${target}`) await route(); else location.hash = target;
  $('#main').focus();
}

// The dev stack prints /console/#signin=CODE: a one-time code (not the key) exchanged once for the
// dev tenant's key. The fragment never reaches the server or a proxy log, and is wiped from the
// address bar (and history) before anything else happens.
async function signInWithLink() {
  const code = location.hash.slice('#signin='.length);
  history.replaceState(null, '', location.pathname);
  try {
    const { api_key: token, name } = await api('/console/signin', { method: 'POST', json: { code }, token: '' });
    saveSession({ kind: 'tenant', token, name });
    history.replaceState(null, '', `${location.pathname}#playground`);
    return true;
  } catch (err) {
    $('#signin-error').textContent = err.status === 401 || err.status === 404
      ? `This sign-in link cannot be used: ${err.message}` : `Could not sign in: ${err.message}`;
    return false;
  }
}

function signOut(message = '') {
  if (current) PAGES[current]?.leave?.();
  clearSession();
  current = null;
  showChrome();
  flash(message, message ? 'error' : 'info');
  history.replaceState(null, '', location.pathname);
  route();
}

function signinKind() {
  const admin = document.querySelector('input[name="kind"]:checked').value === 'admin';
  $('#signin-token-label').textContent = admin ? 'Admin token' : 'API key';
}

async function init() {
  $('#signin-form').addEventListener('submit', signIn);
  for (const radio of document.querySelectorAll('input[name="kind"]')) radio.addEventListener('change', signinKind);
  $('#sign-out').addEventListener('click', () => signOut());
  window.addEventListener('console:unauthorized', () => signOut('Your key was refused (expired, rotated or revoked): sign in again.'));
  window.addEventListener('hashchange', route);
  initPlayground();
  initVoices();
  initUsage();
  initKeys();
  initAdmin();
  if (location.hash.startsWith('#signin=')) await signInWithLink();
  showChrome();
  await route();
}

init();
