import { describe, expect, it } from 'vitest';

import {
  formatBytes,
  formatCount,
  formatShare,
  formatThroughput,
  formatTick,
  formatTime,
  formatValue
} from '../src/panels/format';
import { niceTicks } from '../src/panels/lineChart';
import { displayToken } from '../src/inspector/tokens';

describe('numbers', () => {
  it('counts with k/M/G/T', () => {
    expect(formatCount(804096)).toBe('804.10k');
    expect(formatCount(1.5e9)).toBe('1.50G');
    expect(formatCount(12)).toBe('12');
    expect(formatCount(null)).toBe('');
  });

  it('sizes in binary units', () => {
    expect(formatBytes(3.2e6)).toBe('3.1 MiB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2 ** 31)).toBe('2.0 GiB');
  });

  it('values with four significant digits, exponents when tiny or huge', () => {
    expect(formatValue(2.345678)).toBe('2.346');
    expect(formatValue(1e-5)).toBe('1.00e-5');
    expect(formatValue(0)).toBe('0');
    expect(formatValue(undefined)).toBe('');
  });

  it('throughput and MFU, a dash when a run logged none', () => {
    expect(formatThroughput(12345.6)).toBe('12.35k');
    expect(formatThroughput(812.4)).toBe('812');
    expect(formatThroughput(null)).toBe('–');
    expect(formatShare(0.4127)).toBe('41.3%');
    expect(formatShare(null)).toBe('–');
  });

  it('axis ticks', () => {
    expect(formatTick(25000)).toBe('25k');
    expect(formatTick(0.123456)).toBe('0.123');
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 97, 4)).toEqual([0, 50, 100]);
  });

  it('times: local minutes, or the text itself when it does not parse', () => {
    expect(formatTime('not a time')).toBe('not a time');
    expect(formatTime(null)).toBe('');
    expect(formatTime('2026-11-23T07:18:00Z')).toMatch(/^2026-11-2\d \d\d:18$/);
  });
});

describe('displayToken', () => {
  it('shows byte-level BPE spaces and whitespace tokens visibly', () => {
    expect(displayToken('Ġanimal')).toBe('\u00a0animal');
    expect(displayToken(' ')).toBe('␣');
    expect(displayToken('Ċ')).toBe('↵');
    expect(displayToken('')).toBe('∅');
  });
});
