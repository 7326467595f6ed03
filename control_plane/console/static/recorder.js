// Microphone capture to a 16-bit WAV (what the upload accepts), with a level meter and a 30 s cap.

import { wavFile } from './player.js';

export const MIN_SECONDS = 3;
export const MAX_SECONDS = 30;
const CLIP_LEVEL = 0.99;  // a little under the server's full-scale mark: its resampling can raise peaks

export class Recorder {
  constructor({ onLevel, onTime, onAutoStop }) {
    Object.assign(this, { onLevel, onTime, onAutoStop });
    this.blocks = [];
    this.length = 0;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    this.context = new AudioContext();
    await this.context.audioWorklet.addModule('recorder-worklet.js');
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, 'capture');
    this.blocks = [];
    this.length = 0;
    this.peak = 0;
    this.clipped = 0;
    this.node.port.onmessage = ({ data }) => {
      this.blocks.push(data);
      this.length += data.length;
      let sum = 0;
      for (const x of data) {
        sum += x * x;
        this.peak = Math.max(this.peak, Math.abs(x));
        if (Math.abs(x) >= CLIP_LEVEL) this.clipped += 1;
      }
      // RMS in dBFS from -60..0 mapped to 0..1 for the meter.
      const db = 10 * Math.log10(sum / data.length + 1e-12);
      this.onLevel(Math.min(1, Math.max(0, (db + 60) / 60)));
      const seconds = this.length / this.context.sampleRate;
      this.onTime(seconds);
      if (seconds >= MAX_SECONDS) this.onAutoStop();
    };
    source.connect(this.node);
    // Not connected to the speakers: no feedback while recording.
  }

  async stop() {
    this.node?.disconnect();
    for (const track of this.stream?.getTracks() || []) track.stop();
    const rate = this.context.sampleRate;
    await this.context.close();
    const samples = new Int16Array(this.length);
    let offset = 0;
    for (const block of this.blocks) {
      for (let i = 0; i < block.length; i++) {
        samples[offset++] = Math.max(-32768, Math.min(32767, Math.round(block[i] * 32767)));
      }
    }
    return { blob: wavFile(samples, rate), seconds: this.length / rate, peak: this.peak,
      clippedFraction: this.clipped / Math.max(1, this.length) };
  }
}
