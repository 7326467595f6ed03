// Playground: text or SSML (validated as you type), voice, language, speed, pitch, format; speech
// plays as it streams, with the time to first audio; the result can be replayed and downloaded.

import { api } from './api.js';
import { $, h, showError } from './dom.js';
import { fillSelect, languageLabel, languagesOf, loadEngines, loadVoices } from './catalog.js';
import { EXTENSION, SpeechPlayer } from './player.js';

const player = new SpeechPlayer();
let voices = [];
let validateTimer = null;
let validateSeq = 0;
let objectUrl = null;

const mode = () => document.querySelector('input[name="mode"]:checked').value;

function voiceEngine() {
  return voices.find((v) => v.voice_id === $('#pg-voice').value)?.engine || 'piper';
}

function refreshLanguages() {
  const langs = languagesOf(voiceEngine());
  fillSelect($('#pg-language'), langs.map((l) => [l, languageLabel(l)]), $('#pg-language').value || 'en');
}

// Line/column (1-based) to an offset in the textarea.
function offsetOf(text, line, column) {
  const lines = text.split('\n');
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
  return Math.min(text.length, offset + Math.max(0, column - 1));
}

function showIssues(result) {
  const box = $('#pg-ssml-status');
  const area = $('#pg-text');
  if (!result) { box.replaceChildren(); area.removeAttribute('aria-invalid'); return; }
  if (result.valid) {
    area.removeAttribute('aria-invalid');
    box.replaceChildren(h('p', { class: 'ok', text: `Valid SSML: ${result.segments.length} segment(s), `
      + `${result.billed_characters} billed characters, about ${result.estimated_duration_s.toFixed(1)} s.` }));
    return;
  }
  area.setAttribute('aria-invalid', 'true');
  const items = result.errors.map((e) => {
    const where = e.line ? `Line ${e.line}, column ${e.column}` : 'Document';
    const item = h('li', {}, h('button', { type: 'button', class: 'link', text: `${where}: ${e.message}`,
      onclick: () => {
        const at = offsetOf(area.value, e.line || 1, e.column || 1);
        area.focus();
        area.setSelectionRange(at, Math.min(area.value.length, at + 1));
      } }));
    item.dataset.line = e.line;
    item.dataset.column = e.column;
    return item;
  });
  box.replaceChildren(h('p', { class: 'error', text: `${result.errors.length} SSML error(s):` }),
    h('ul', { class: 'issues' }, items));
}

async function validateNow() {
  if (mode() !== 'ssml') { showIssues(null); return; }
  const seq = ++validateSeq;
  try {
    const result = await api('/v1/ssml/validate', { method: 'POST', json: {
      ssml: $('#pg-text').value, voice_id: $('#pg-voice').value || 'en-US-generic',
      language: $('#pg-language').value || 'en' } });
    if (seq === validateSeq) showIssues(result);
  } catch (error) {
    if (seq === validateSeq) showIssues({ valid: false, errors: [{ line: 0, column: 0, message: error.message }] });
  }
}

function scheduleValidation() {
  clearTimeout(validateTimer);
  validateTimer = setTimeout(validateNow, 350);
}

function body() {
  const text = $('#pg-text').value;
  // The voice list may still be loading: the tenant's default voice then.
  const request = { voice_id: $('#pg-voice').value || 'en-US-generic', language: $('#pg-language').value || 'en',
    speed: Number($('#pg-speed').value), pitch: Number($('#pg-pitch').value), format: $('#pg-format').value };
  if (mode() === 'ssml') request.ssml = text; else request.text = text;
  return request;
}

async function speak(event) {
  event.preventDefault();
  const error = $('#pg-error');
  showError(error, null);
  if (!$('#pg-text').value.trim()) { showError(error, new Error('Type something to say first.')); return; }
  const speakButton = $('#pg-speak');
  speakButton.disabled = true;
  $('#pg-stop').disabled = false;
  for (const id of ['#pg-ttfa', '#pg-duration', '#pg-cache', '#pg-chars']) $(id).textContent = '…';
  const audio = $('#pg-audio');
  audio.pause();
  const request = body();
  try {
    const result = await player.speak(request, { onFirstAudio: (ms, live) => {
      $('#pg-ttfa').textContent = `${Math.round(ms)} ms${live ? '' : ' (first byte)'}`;
    } });
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(result.blob);
    audio.src = objectUrl;
    audio.dataset.format = request.format;
    if (!result.live) audio.play().catch(() => {});
    const link = $('#pg-download');
    link.href = URL.createObjectURL(result.download);
    link.download = `speech.${EXTENSION[request.format]}`;
    link.hidden = false;
    $('#pg-duration').textContent = result.seconds ? `${result.seconds.toFixed(2)} s` : '–';
    $('#pg-cache').textContent = result.cache || '–';
    $('#pg-chars').textContent = result.characters || '–';
    if (result.firstAudioMs === null) $('#pg-ttfa').textContent = '–';
  } catch (err) {
    if (err.name !== 'AbortError') showError(error, err);
    for (const id of ['#pg-ttfa', '#pg-duration', '#pg-cache', '#pg-chars']) {
      if ($(id).textContent === '…') $(id).textContent = '–';
    }
  } finally {
    speakButton.disabled = false;
    $('#pg-stop').disabled = true;
  }
}

function setMode() {
  const ssml = mode() === 'ssml';
  $('#pg-text-label').textContent = ssml ? 'SSML to speak' : 'Text to speak';
  const area = $('#pg-text');
  if (ssml && !area.value.trim().startsWith('<')) {
    area.value = `<speak>\n  ${area.value.trim() || 'Hello.'}\n  <break time="300ms"/>\n  Goodbye.\n</speak>`;
  }
  scheduleValidation();
}

export function initPlayground() {
  $('#pg-form').addEventListener('submit', speak);
  $('#pg-stop').addEventListener('click', () => player.stop());
  $('#pg-text').addEventListener('input', () => { if (mode() === 'ssml') scheduleValidation(); });
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.addEventListener('change', setMode);
  $('#pg-voice').addEventListener('change', () => { refreshLanguages(); scheduleValidation(); });
  for (const name of ['speed', 'pitch']) {
    $(`#pg-${name}`).addEventListener('input', (e) => {
      $(`#pg-${name}-out`).textContent = Number(e.target.value).toFixed(2);
    });
  }
}

export async function showPlayground() {
  const [engines, list] = await Promise.all([loadEngines(), loadVoices()]);
  voices = list;
  const ready = new Set(engines.filter((e) => e.ready).map((e) => e.name));
  fillSelect($('#pg-voice'), voices.map((v) => [v.voice_id,
    `${v.name}${v.builtin ? '' : ' (cloned)'} · ${v.engine}${ready.has(v.engine) ? '' : ' · not ready'}`]),
  $('#pg-voice').value || 'en-US-generic');
  refreshLanguages();
}

export function stopPlayground() { player.stop(); }
