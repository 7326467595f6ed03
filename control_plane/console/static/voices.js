// Voices: the tenant's cloned voices and the built-in ones; play a sample, rename, delete; clone a
// new one from an uploaded file or a microphone recording, with the checks shown before and after.

import { api } from './api.js';
import { $, confirmButton, h, showError } from './dom.js';
import { fillSelect, languageLabel, languagesOf, loadEngines, loadVoices } from './catalog.js';
import { SpeechPlayer } from './player.js';
import { MAX_SECONDS, MIN_SECONDS, Recorder } from './recorder.js';

const MAX_BYTES = 10 * 1024 * 1024;
const player = new SpeechPlayer();
let recorder = null;
let recording = null;  // {blob, seconds, peak}

function status(message) { $('#voices-status').textContent = message; }

function check(ok, text, fromServer = false) {
  const dataset = fromServer ? { ok: String(ok), server: 'true' } : { ok: String(ok) };
  return h('li', { class: ok ? 'pass' : 'fail', dataset },
    h('span', { class: 'mark', 'aria-hidden': 'true', text: ok ? '✓' : '✗' }),
    h('span', { class: 'visually-hidden', text: ok ? 'Passed: ' : 'Failed: ' }), text);
}

async function playSample(voice, button) {
  button.disabled = true;
  status(`Synthesising a sample of ${voice.name} …`);
  try {
    const result = await player.speak({ text: `Hello, this is ${voice.name}.`, voice_id: voice.voice_id,
      language: (voice.language || 'en').split('-')[0], format: 'wav' });
    const audio = $('#voices-audio');
    audio.src = URL.createObjectURL(result.blob);
    audio.hidden = false;
    status(`Sample of ${voice.name}: ${result.seconds.toFixed(2)} s, first audio after ${Math.round(result.firstAudioMs)} ms.`);
  } catch (error) {
    status(`Sample failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function renameRow(row, voice) {
  const cell = row.querySelector('.name-cell');
  const input = h('input', { value: voice.name, maxlength: 100, 'aria-label': `New name for ${voice.name}` });
  const save = async (event) => {
    event.preventDefault();
    try {
      await api(`/v1/voices/${encodeURIComponent(voice.voice_id)}`, { method: 'PUT', json: { name: input.value.trim() } });
      status(`Renamed to ${input.value.trim()}.`);
      await refresh();
    } catch (error) { status(`Rename failed: ${error.message}`); }
  };
  const form = h('form', { class: 'row', onsubmit: save }, input,
    h('button', { type: 'submit', text: 'Save' }),
    h('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => refresh() }));
  cell.replaceChildren(form);
  input.focus();
  input.select();
}

function voiceRow(voice) {
  const actions = [h('button', { type: 'button', class: 'secondary', text: 'Play sample',
    'aria-label': `Play a sample of ${voice.name}`, onclick: (e) => playSample(voice, e.currentTarget) })];
  if (!voice.builtin) {
    actions.push(h('button', { type: 'button', class: 'secondary', text: 'Rename', 'aria-label': `Rename ${voice.name}`,
      onclick: (e) => renameRow(e.currentTarget.closest('tr'), voice) }));
    actions.push(confirmButton('Delete', 'Confirm delete', async () => {
      try {
        await api(`/v1/voices/${encodeURIComponent(voice.voice_id)}`, { method: 'DELETE' });
        status(`Deleted ${voice.name}.`);
        await refresh();
      } catch (error) { status(`Delete failed: ${error.message}`); }
    }, { 'aria-label': `Delete ${voice.name}` }));
  }
  return h('tr', { dataset: { voiceId: voice.voice_id } },
    h('td', { class: 'name-cell' }, h('span', { class: 'voice-name', text: voice.name }),
      voice.builtin ? h('span', { class: 'badge', text: 'built-in' }) : null),
    h('td', { text: voice.engine }),
    h('td', { text: voice.language || '–' }),
    h('td', { text: voice.duration_s ? `${voice.duration_s.toFixed(1)} s` : '–' }),
    h('td', { class: 'actions-cell' }, actions));
}

async function refresh() {
  try {
    const voices = await loadVoices();
    $('#voices-table tbody').replaceChildren(...voices.map(voiceRow));
  } catch (error) { status(`Could not list voices: ${error.message}`); }
}

// What can be checked before the upload: size, and (by decoding it here) the duration.
async function localChecks(blob) {
  const checks = [check(blob.size <= MAX_BYTES, `Size ${(blob.size / 1024).toFixed(0)} KB (at most 10 MB)`)];
  let ok = blob.size <= MAX_BYTES && blob.size > 0;
  try {
    const context = new OfflineAudioContext(1, 1, 22050);
    const audio = await context.decodeAudioData(await blob.arrayBuffer());
    const fits = audio.duration >= MIN_SECONDS && audio.duration <= MAX_SECONDS;
    checks.push(check(fits, `Duration ${audio.duration.toFixed(1)} s (3–30 s)`));
    ok = ok && fits;
  } catch {
    checks.push(check(true, 'Duration: checked by the server (this browser cannot decode the file)'));
  }
  return { ok, checks };
}

async function clone(event) {
  event.preventDefault();
  const list = $('#clone-checks');
  const name = $('#clone-name').value.trim();
  const source = document.querySelector('input[name="source"]:checked').value;
  const file = source === 'file' ? $('#clone-file').files[0] : recording?.blob;
  const checks = [check(Boolean(name), name ? `Name “${name}”` : 'A name is required')];
  if (!file) checks.push(check(false, source === 'file' ? 'Choose an audio file' : 'Record 3–30 s first'));
  let ok = Boolean(name && file);
  if (file) {
    const local = await localChecks(file);
    checks.push(...local.checks);
    ok = ok && local.ok;
  }
  list.replaceChildren(...checks);
  if (!ok) return;
  const form = new FormData();
  form.append('audio', file, source === 'file' ? file.name : 'recording.wav');
  form.append('name', name);
  form.append('language', $('#clone-language').value);
  if ($('#clone-gender').value) form.append('gender', $('#clone-gender').value);
  if ($('#clone-description').value) form.append('description', $('#clone-description').value);
  const submit = $('#clone-submit');
  submit.disabled = true;
  list.append(h('li', { class: 'pending', text: 'Server: decoding, checking and conditioning …' }));
  try {
    const voice = await api('/v1/voices/upload', { method: 'POST', body: form });
    list.lastChild.replaceWith(check(true, `Server accepted ${voice.duration_s?.toFixed(1)} s of audio: `
      + `voice “${voice.name}” is ready (${voice.engine}).`, true));
    $('#clone-form').reset();
    recording = null;
    $('#rec-preview').hidden = true;
    setSource();
    await refresh();
  } catch (error) {
    list.lastChild.replaceWith(check(false, `Server: ${error.message} (${error.code})`, true));
  } finally {
    submit.disabled = false;
  }
}

function setSource() {
  const mic = document.querySelector('input[name="source"]:checked').value === 'mic';
  $('#clone-file-box').hidden = mic;
  $('#clone-mic-box').hidden = !mic;
}

async function startRecording() {
  const list = $('#clone-checks');
  list.replaceChildren();
  recorder = new Recorder({
    onLevel: (level) => { $('#rec-level').value = level; },
    onTime: (s) => { $('#rec-time').textContent = `${s.toFixed(1)} s`; },
    onAutoStop: () => stopRecording(),
  });
  try {
    await recorder.start();
  } catch (error) {
    list.replaceChildren(check(false, `Microphone unavailable: ${error.message}`));
    recorder = null;
    return;
  }
  $('#rec-start').disabled = true;
  $('#rec-stop').disabled = false;
  $('#rec-stop').focus();
}

async function stopRecording() {
  if (!recorder) return;
  const active = recorder;
  recorder = null;
  $('#rec-stop').disabled = true;
  $('#rec-start').disabled = false;
  recording = await active.stop();
  $('#rec-level').value = 0;
  const preview = $('#rec-preview');
  preview.src = URL.createObjectURL(recording.blob);
  preview.hidden = false;
  const long = recording.seconds >= MIN_SECONDS;
  $('#clone-checks').replaceChildren(
    check(long, `Recorded ${recording.seconds.toFixed(1)} s (3–30 s)`),
    check(recording.clippedFraction <= 0.01, recording.clippedFraction <= 0.01 ? 'No clipping'
      : `${(recording.clippedFraction * 100).toFixed(1)}% of the samples clip: lower the input level`),
    check(recording.peak > 0.01, recording.peak > 0.01 ? 'Speech level detected' : 'Nearly silent: check the microphone'));
  if (!long) recording = null;
}

export function initVoices() {
  $('#clone-form').addEventListener('submit', clone);
  for (const radio of document.querySelectorAll('input[name="source"]')) radio.addEventListener('change', setSource);
  $('#rec-start').addEventListener('click', startRecording);
  $('#rec-stop').addEventListener('click', stopRecording);
}

export async function showVoices() {
  await loadEngines();
  const langs = languagesOf('xtts');
  fillSelect($('#clone-language'), langs.map((l) => [l, languageLabel(l)]), $('#clone-language').value || 'en');
  await refresh();
}

export function stopVoices() { player.stop(); if (recorder) stopRecording(); }
