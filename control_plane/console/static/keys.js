// Keys: rotate the signed-in tenant's key with a grace period; the new key is shown once.

import { api, saveSession, session } from './api.js';
import { $, copyText, showError } from './dom.js';

async function rotate(event) {
  event.preventDefault();
  const error = $('#keys-error');
  showError(error, null);
  const grace = Number($('#keys-grace').value);
  if (!Number.isInteger(grace) || grace < 0 || grace > 2592000) {
    showError(error, new Error('The grace period is a whole number of seconds from 0 to 2592000.'));
    $('#keys-grace').focus();
    return;
  }
  $('#keys-rotate').disabled = true;
  try {
    const rotated = await api('/v1/tenant/keys/rotate', { method: 'POST', json: { grace_seconds: grace } });
    saveSession({ ...session(), token: rotated.api_key });
    $('#keys-new').value = rotated.api_key;
    $('#keys-result').hidden = false;
    $('#keys-until').textContent = rotated.previous_keys_valid_until
      ? `The previous key keeps working until ${new Date(rotated.previous_keys_valid_until).toLocaleString()}.`
      : 'The previous key is refused from now on.';
    $('#keys-new').focus();
    $('#keys-new').select();
  } catch (err) {
    showError(error, err);
  } finally {
    $('#keys-rotate').disabled = false;
  }
}

export function initKeys() {
  $('#keys-form').addEventListener('submit', rotate);
  $('#keys-copy').addEventListener('click', (e) => copyText($('#keys-new'), e.currentTarget));
}

// The key is shown once: leaving the page forgets it.
export function showKeys() {}
export function leaveKeys() {
  $('#keys-new').value = '';
  $('#keys-result').hidden = true;
}
