// Voices and engines of the signed-in tenant, fetched once per page visit and shared by the pages.

import { api } from './api.js';
import { h } from './dom.js';

let engines = null;

export async function loadEngines(force = false) {
  if (!engines || force) engines = (await api('/v1/engines')).engines;
  return engines;
}

export async function loadVoices() {
  return (await api('/v1/voices')).voices;
}

export function languagesOf(engine) {
  const found = (engines || []).find((e) => e.name === engine);
  return found ? found.languages : ['en'];
}

export function fillSelect(select, options, selected) {
  const keep = selected ?? select.value;
  select.replaceChildren(...options.map(([value, label]) => h('option', { value, text: label })));
  if (options.some(([value]) => value === keep)) select.value = keep;
}

const LANGUAGE_NAMES = new Intl.DisplayNames(['en'], { type: 'language' });

export function languageLabel(code) {
  try { return `${LANGUAGE_NAMES.of(code)} (${code})`; } catch { return code; }
}
