// Small DOM helpers. Text always goes in as text nodes (never innerHTML): names and messages
// come from users and tenants.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// SVG elements need their namespace.
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : document.createTextNode(child));
  }
  return el;
}

export function flash(message, kind = 'info') {
  const el = $('#flash');
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = !message;
}

export function showError(el, error) {
  el.textContent = error ? (error.message || String(error)) : '';
}

export function fmtNumber(n, digits = 0) {
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

// A button whose first press asks, and second press (within a few seconds) does.
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = null;
  const button = h('button', { type: 'button', class: 'secondary', ...attrs, text: label });
  button.addEventListener('click', async () => {
    if (!armed) {
      button.textContent = confirmLabel;
      button.classList.add('danger');
      armed = setTimeout(() => { armed = null; button.textContent = label; button.classList.remove('danger'); }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.disabled = true;
    try { await action(); } finally { button.disabled = false; button.textContent = label; button.classList.remove('danger'); }
  });
  return button;
}

export async function copyText(input, button) {
  input.select();
  let ok = false;
  try { await navigator.clipboard.writeText(input.value); ok = true; } catch { ok = document.execCommand('copy'); }
  button.textContent = ok ? 'Copied' : 'Select and copy';
  setTimeout(() => { button.textContent = 'Copy'; }, 2000);
}
