// Streamed speech: POST /v1/synthesize/stream with the Authorization header, read the body as it
// arrives and, for the uncompressed formats (WAV, PCM, μ-law, A-law), schedule each piece on a Web
// Audio clock so playback starts with the first chunk. The whole result is then handed to an
// <audio> element (replay, seek, download).

import { api } from './api.js';

export const LIVE_FORMATS = new Set(['wav', 'pcm', 'mulaw', 'alaw']);
const MIME = {
  wav: 'audio/wav', pcm: 'audio/wav', mulaw: 'audio/wav', alaw: 'audio/wav', mp3: 'audio/mpeg',
  opus: 'audio/ogg', ogg: 'audio/ogg', vorbis: 'audio/ogg', flac: 'audio/flac',
};
export const EXTENSION = { wav: 'wav', pcm: 'pcm', mulaw: 'ulaw', alaw: 'alaw', mp3: 'mp3', opus: 'opus',
  ogg: 'ogg', vorbis: 'ogg', flac: 'flac' };

function mulawSample(u) {
  u = ~u & 0xff;
  const exponent = (u >> 4) & 7;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

function alawSample(a) {
  a ^= 0x55;
  const exponent = (a >> 4) & 7;
  const mantissa = a & 0x0f;
  const magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return a & 0x80 ? magnitude : -magnitude;
}

const MULAW = Int16Array.from({ length: 256 }, (_, i) => mulawSample(i));
const ALAW = Int16Array.from({ length: 256 }, (_, i) => alawSample(i));

export function wavFile(pcm16, rate) {
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, s) => [...s].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  text(0, 'RIFF'); header.setUint32(4, 36 + pcm16.byteLength, true); text(8, 'WAVE');
  text(12, 'fmt '); header.setUint32(16, 16, true); header.setUint16(20, 1, true); header.setUint16(22, 1, true);
  header.setUint32(24, rate, true); header.setUint32(28, rate * 2, true); header.setUint16(32, 2, true);
  header.setUint16(34, 16, true); text(36, 'data'); header.setUint32(40, pcm16.byteLength, true);
  return new Blob([header.buffer, pcm16.buffer], { type: 'audio/wav' });
}

function concat(chunks, length) {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const c of chunks) { out.set(c, offset); offset += c.byteLength; }
  return out;
}

// Turns the byte stream of one live format into Int16 samples, whatever the chunk boundaries.
class Decoder {
  constructor(format) {
    this.format = format;
    this.pending = new Uint8Array(0);
    this.headerDone = format !== 'wav';
  }

  push(bytes) {
    let data = bytes;
    if (this.pending.byteLength) {
      data = concat([this.pending, bytes], this.pending.byteLength + bytes.byteLength);
      this.pending = new Uint8Array(0);
    }
    if (!this.headerDone) {
      const start = wavDataOffset(data);
      if (start < 0) { this.pending = data; return new Int16Array(0); }
      this.headerDone = true;
      data = data.subarray(start);
    }
    if (this.format === 'mulaw' || this.format === 'alaw') {
      const table = this.format === 'mulaw' ? MULAW : ALAW;
      return Int16Array.from(data, (b) => table[b]);
    }
    const even = data.byteLength & ~1;
    if (even < data.byteLength) this.pending = data.slice(even);
    const copy = data.slice(0, even);  // aligned copy for the Int16 view
    return new Int16Array(copy.buffer, 0, even / 2);
  }
}

// Offset of the PCM after a RIFF header's "data" chunk id and size, or -1 while more bytes are needed.
function wavDataOffset(data) {
  if (data.byteLength < 12) return -1;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 12;
  while (offset + 8 <= data.byteLength) {
    const id = String.fromCharCode(...data.subarray(offset, offset + 4));
    const size = view.getUint32(offset + 4, true);
    if (id === 'data') return offset + 8;
    offset += 8 + size + (size & 1);
  }
  return -1;
}

export class SpeechPlayer {
  constructor() {
    this.context = null;
    this.sources = new Set();
    this.controller = null;
    this.reported = false;
  }

  stop() {
    this.controller?.abort();
    for (const source of this.sources) { try { source.stop(); } catch { /* already ended */ } }
    this.sources.clear();
  }

  _schedule(samples, rate) {
    if (!samples.length) return false;
    const buffer = this.context.createBuffer(1, samples.length, rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    // A little lead keeps the first chunks gapless while the next ones are on their way.
    const at = Math.max(this.next, this.context.currentTime + 0.06);
    source.start(at);
    this.next = at + buffer.duration;
    this.sources.add(source);
    source.onended = () => this.sources.delete(source);
    return true;
  }

  // Streams `body`; calls onFirstAudio(ms) once; resolves to the whole result.
  async speak(body, { live = true, onFirstAudio = () => {} } = {}) {
    this.stop();
    const format = body.format || 'wav';
    const playLive = live && LIVE_FORMATS.has(format);
    if (playLive) {
      this.context = this.context || new AudioContext();
      if (this.context.state === 'suspended') await this.context.resume();
      this.next = 0;
    }
    this.controller = new AbortController();
    this.reported = false;
    const started = performance.now();
    const response = await api('/v1/synthesize/stream', { method: 'POST', json: body, raw: true,
      signal: this.controller.signal });
    const rate = Number(response.headers.get('X-Sample-Rate')) || 22050;
    const decoder = playLive ? new Decoder(format) : null;
    const chunks = [];
    const samples = [];
    let length = 0;
    let first = null;
    const reader = response.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.byteLength;
      if (decoder) {
        const pcm = decoder.push(value);
        samples.push(pcm);
        if (this._schedule(pcm, rate) && first === null) first = performance.now() - started;
      } else if (first === null) {
        first = performance.now() - started;
      }
      if (first !== null && !this.reported) { this.reported = true; onFirstAudio(first, playLive); }
    }
    const raw = concat(chunks, length);
    let blob;
    let pcm = null;
    if (LIVE_FORMATS.has(format)) {
      pcm = decoder ? joinSamples(samples) : new Decoder(format).push(raw);
      blob = wavFile(pcm, rate);  // the <audio> element needs a file with real sizes
    } else {
      blob = new Blob([raw], { type: MIME[format] });
    }
    const rawType = LIVE_FORMATS.has(format) ? 'application/octet-stream' : MIME[format];
    const download = format === 'wav' ? blob : new Blob([raw], { type: rawType });
    return {
      blob, download, rate, bytes: length, firstAudioMs: first, live: playLive,
      seconds: pcm ? pcm.length / rate : Number(response.headers.get('X-Audio-Duration')) || null,
      cache: response.headers.get('X-Cache'), characters: response.headers.get('X-Characters'),
    };
  }
}

function joinSamples(parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Int16Array(total);
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}
