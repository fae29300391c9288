import { describe, expect, it } from 'vitest';

import { LABEL_GAP, labelStep, thinned } from '../src/inspector/heatmap';
import {
  chooseScale,
  decodeFloat16,
  dequantize,
  downsample,
  maxOf,
  normalise,
  selectionVector,
  topK
} from '../src/inspector/data';

/** Little-endian bytes of float16 bit patterns. */
function halves(...bits: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(bits).buffer);
}

describe('decodeFloat16', () => {
  it('decodes normal, subnormal, signed and special values', () => {
    const out = decodeFloat16(halves(0x3c00, 0xc000, 0x3555, 0x0001, 0x0000, 0x7c00, 0x7e00, 0x7bff), 2, 4);
    expect(Array.from(out.slice(0, 2))).toEqual([1, -2]);
    expect(out[2]).toBeCloseTo(1 / 3, 3);
    expect(out[3]).toBe(2 ** -24);
    expect(out[4]).toBe(0);
    expect(out[5]).toBe(Infinity);
    expect(out[6]).toBeNaN();
    expect(out[7]).toBe(65504);
  });

  it('reads attention weights the way numpy wrote them', () => {
    // numpy: np.array([0.5, 0.25, 0.125, 0.0999755859375], '<f2').tobytes()
    const bytes = new Uint8Array([0x00, 0x38, 0x00, 0x34, 0x00, 0x30, 0x66, 0x2e]);
    expect(Array.from(decodeFloat16(bytes, 2, 2))).toEqual([0.5, 0.25, 0.125, 0.0999755859375]);
  });

  it('refuses a body whose size does not match the shape', () => {
    expect(() => decodeFloat16(new Uint8Array(6), 2, 2)).toThrow(/has 6 bytes; a 2x2 float16 matrix has 8/);
  });
});

describe('dequantize', () => {
  it('scales each row by its own maximum', () => {
    const scales = new Uint8Array(new Float32Array([1, 0.5]).buffer);
    const out = dequantize(new Uint8Array([255, 0, 51, 255]), scales, 2, 2);
    expect(Array.from(out)).toEqual([1, 0, 0.1, 0.5].map(v => Math.fround(v)));
  });

  it('names the mismatch in a malformed message', () => {
    expect(() => dequantize(new Uint8Array(3), new Uint8Array(8), 2, 2)).toThrow(/3 values and 2 scales/);
  });
});

describe('matrix helpers', () => {
  const m = new Float32Array([0.5, 0.5, 0, 0.2, 0.3, 0.5, 1, 0, 0]); // 3 x 3

  it('sums the attention from selected rows or to selected columns', () => {
    expect(Array.from(selectionVector(m, 3, 3, [0, 2], 'from'))).toEqual([1.5, 0.5, 0]);
    expect(Array.from(selectionVector(m, 3, 3, [2], 'to'))).toEqual([0, 0.5, 0]);
    expect(Array.from(selectionVector(m, 3, 3, [7], 'from'))).toEqual([0, 0, 0]);
  });

  it('finds the k largest non-zero entries', () => {
    expect(topK(new Float32Array([0.1, 0, 0.7, 0.2]), 2)).toEqual([2, 3]);
    expect(topK(new Float32Array([0, 0]), 3)).toEqual([]);
    expect(maxOf(m)).toBe(1);
  });

  it('block-averages large matrices and leaves small ones alone', () => {
    const four = new Float32Array([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2]);
    const small = downsample(four, 4, 4, 2);
    expect([small.rows, small.cols]).toEqual([2, 2]);
    expect(Array.from(small.values)).toEqual([1, 0, 0, 2]);
    expect(downsample(four, 4, 4, 8).values).toBe(four);
  });

  it('normalises to [0, 1], optionally square-rooted', () => {
    expect(normalise(0.25, 1, false)).toBe(0.25);
    expect(normalise(0.25, 1, true)).toBe(0.5);
    expect(normalise(3, 1, false)).toBe(1);
    expect(normalise(1, 0, false)).toBe(0);
  });
});

/** Causal attention spread evenly over the past: row i holds 1/(i+1) on columns 0..i. */
function evenCausal(n: number): Float32Array {
  const v = new Float32Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c <= r; c++) v[r * n + c] = 1 / (r + 1);
  return v;
}

describe('chooseScale (the "auto" scale; same cases as tests/test_inspect.py)', () => {
  it('picks per-row colours when late rows spread thin', () => {
    expect(chooseScale(evenCausal(64), 64, 64)).toBe('row');
  });
  it('keeps linear colours for short inputs and sharp attention', () => {
    expect(chooseScale(evenCausal(8), 8, 8)).toBe('linear');
    const eye = new Float32Array(32 * 32);
    for (let i = 0; i < 32; i++) eye[i * 32 + i] = 1;
    expect(chooseScale(eye, 32, 32)).toBe('linear');
  });
  it('picks sqrt when most cells would be drawn near blank', () => {
    const v = new Float32Array(10 * 10).fill(0.001);
    for (let r = 0; r < 10; r++) v[r * 10] = 1;
    expect(chooseScale(v, 10, 10)).toBe('sqrt');
    expect(chooseScale(new Float32Array(4), 2, 2)).toBe('linear'); // all zero
  });
});

describe('labelStep', () => {
  it('spaces labels at least LABEL_GAP apart', () => {
    for (const cell of [0.5, 1, 4, 6.5, 12, 13, 28]) {
      const step = labelStep(cell);
      expect(step * cell).toBeGreaterThanOrEqual(LABEL_GAP);
      expect(step === 1 || (step - 1) * cell < LABEL_GAP).toBe(true); // and no sparser
    }
    expect(thinned(10, 4)).toEqual([0, 4, 8]);
  });
});
