/**
 * Plain-array work on matrices: decoding what the kernel sends, the attention from/to a set
 * of tokens, top-k partners, downsampling and the colour map.
 */
import type { DrawnScale } from './types';

/** Bytes of an ArrayBuffer, a DataView or any typed array, without copying. */
export function bytesOf(buf: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (buf instanceof ArrayBuffer) {
    return new Uint8Array(buf);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Decode a row-quantised matrix: `q` holds rows*cols uint8, `scales` one float32 per row;
 * value = q / 255 * scale[row].
 */
export function dequantize(
  q: Uint8Array,
  scaleBytes: Uint8Array,
  rows: number,
  cols: number
): Float32Array {
  if (q.length !== rows * cols || scaleBytes.length !== rows * 4) {
    throw new Error(
      `matrix message has ${q.length} values and ${scaleBytes.length / 4} scales ` +
        `for a ${rows}x${cols} matrix`
    );
  }
  // copy the scales so that they are 4-byte aligned whatever the buffer's offset
  const scales = new Float32Array(scaleBytes.slice().buffer);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = scales[r] / 255;
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      out[base + c] = q[base + c] * s;
    }
  }
  return out;
}

/** float32 value of every float16 bit pattern (built on first use: 256 kB). */
let HALF: Float32Array | null = null;

function halfTable(): Float32Array {
  if (HALF) return HALF;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * fraction * 2 ** -24; // subnormal
    else if (exponent === 31) table[bits] = fraction ? NaN : sign * Infinity;
    else table[bits] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  HALF = table;
  return table;
}

/**
 * Decode little-endian IEEE float16 values (what the server sends for a snapshot's matrix)
 * into a Float32Array of `rows * cols` values.
 */
export function decodeFloat16(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  if (bytes.length !== rows * cols * 2) {
    throw new Error(
      `matrix answer has ${bytes.length} bytes; a ${rows}x${cols} float16 matrix has ${rows * cols * 2}`
    );
  }
  const table = halfTable();
  const out = new Float32Array(rows * cols);
  for (let i = 0, j = 0; i < out.length; i++, j += 2) {
    out[i] = table[bytes[j] | (bytes[j + 1] << 8)];
  }
  return out;
}

/** Sum of the selected rows (direction "from") or columns ("to"). */
export function selectionVector(
  values: Float32Array,
  rows: number,
  cols: number,
  selected: number[],
  direction: 'from' | 'to'
): Float32Array {
  if (direction === 'from') {
    const out = new Float32Array(cols);
    for (const r of selected) {
      if (r < 0 || r >= rows) continue;
      const base = r * cols;
      for (let c = 0; c < cols; c++) out[c] += values[base + c];
    }
    return out;
  }
  const out = new Float32Array(rows);
  for (const c of selected) {
    if (c < 0 || c >= cols) continue;
    for (let r = 0; r < rows; r++) out[r] += values[r * cols + c];
  }
  return out;
}

/** Indices of the k largest entries (largest first); zeros are left out. */
export function topK(v: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < v.length; i++) if (v[i] > 0) idx.push(i);
  idx.sort((a, b) => v[b] - v[a]);
  return idx.slice(0, k);
}

/** Largest value (0 for an empty array). */
export function maxOf(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) if (v[i] > m) m = v[i];
  return m;
}

/**
 * The colour scale that keeps a matrix readable (the "auto" scale; llmlab.attention.ops
 * choose_scale is the same rule for the static pictures). "row" when the typical row peaks
 * far below the matrix maximum (long causal inputs: late rows spread their attention thin
 * while the first rows hold 1.0), "sqrt" when most non-zero cells are under 5% of the maximum,
 * else "linear".
 */
export function chooseScale(values: Float32Array, rows: number, cols: number): DrawnScale {
  const vmax = maxOf(values);
  if (!(vmax > 0)) return 'linear';
  const peaks = new Float32Array(rows);
  let faint = 0;
  let nonzero = 0;
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let i = r * cols; i < (r + 1) * cols; i++) {
      const v = values[i];
      if (v > m) m = v;
      if (v > 0) {
        nonzero++;
        if (v < SCALE_FAINT * vmax) faint++;
      }
    }
    peaks[r] = m;
  }
  peaks.sort();
  const median = peaks[Math.floor((rows - 1) / 2)]; // the lower median, as choose_scale
  if (rows >= SCALE_MIN_ROWS && median < SCALE_ROW_PEAK * vmax) return 'row';
  if (nonzero > 0 && faint > SCALE_FAINT_SHARE * nonzero) return 'sqrt';
  return 'linear';
}

/** chooseScale's constants (the same in llmlab/attention/ops.py). */
export const SCALE_MIN_ROWS = 16;
export const SCALE_ROW_PEAK = 0.25;
export const SCALE_FAINT = 0.05;
export const SCALE_FAINT_SHARE = 0.5;

/** Block-mean downsampling to at most `limit` rows and columns. */
export function downsample(
  values: Float32Array,
  rows: number,
  cols: number,
  limit: number
): { values: Float32Array; rows: number; cols: number } {
  if (rows <= limit && cols <= limit) return { values, rows, cols };
  const r2 = Math.min(rows, limit);
  const c2 = Math.min(cols, limit);
  const out = new Float32Array(r2 * c2);
  const count = new Float32Array(r2 * c2);
  for (let r = 0; r < rows; r++) {
    const rr = Math.floor((r * r2) / rows);
    for (let c = 0; c < cols; c++) {
      const cc = Math.floor((c * c2) / cols);
      out[rr * c2 + cc] += values[r * cols + c];
      count[rr * c2 + cc] += 1;
    }
  }
  for (let i = 0; i < out.length; i++) out[i] /= count[i] || 1;
  return { values: out, rows: r2, cols: c2 };
}

// Colour map: white through light and mid blue to dark navy (a sequential scale that
// prints well and keeps small weights visible against the white of zero).
const STOPS: [number, number, number, number][] = [
  [0, 255, 255, 255],
  [0.2, 222, 235, 247],
  [0.45, 158, 202, 225],
  [0.7, 66, 146, 198],
  [0.88, 22, 92, 164],
  [1, 8, 48, 107]
];

function rgbAt(t: number): [number, number, number] {
  for (let i = 1; i < STOPS.length; i++) {
    const [t1, r1, g1, b1] = STOPS[i];
    if (t <= t1) {
      const [t0, r0, g0, b0] = STOPS[i - 1];
      const f = (t - t0) / (t1 - t0);
      return [r0 + f * (r1 - r0), g0 + f * (g1 - g0), b0 + f * (b1 - b0)].map(Math.round) as [
        number,
        number,
        number
      ];
    }
  }
  return [8, 48, 107];
}

/** 256 RGBA colours packed for a little-endian Uint32Array over ImageData. */
export const LUT32: Uint32Array = (() => {
  const lut = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = rgbAt(i / 255);
    lut[i] = (255 << 24) | (b << 16) | (g << 8) | r;
  }
  return lut;
})();

/** CSS colour of a value in [0, 1]. */
export function cssColor(t: number): string {
  const [r, g, b] = rgbAt(Math.max(0, Math.min(1, t)));
  return `rgb(${r},${g},${b})`;
}

/** Map a value to [0, 1] given the maximum and the scale. */
export function normalise(v: number, vmax: number, sqrt: boolean): number {
  if (vmax <= 0) return 0;
  const t = Math.min(1, v / vmax);
  return sqrt ? Math.sqrt(t) : t;
}
