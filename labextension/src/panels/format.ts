/**
 * How the panels write numbers, sizes and times (the same units as `str(Estimate)`).
 *
 *   formatCount(804096)   // "804.10k"
 *   formatBytes(3.2e6)    // "3.1 MiB"
 */

const COUNT_UNITS: [string, number][] = [
  ['T', 1e12],
  ['G', 1e9],
  ['M', 1e6],
  ['k', 1e3]
];
const BYTE_UNITS: [string, number][] = [
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10]
];

/** A count (parameters, FLOPs) with a k/M/G/T suffix; empty for a missing value. */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return '';
  }
  for (const [unit, scale] of COUNT_UNITS) {
    if (Math.abs(n) >= scale) {
      return `${(n / scale).toFixed(2)}${unit}`;
    }
  }
  return String(n);
}

/** A size in bytes with a binary unit. */
export function formatBytes(n: number): string {
  for (const [unit, scale] of BYTE_UNITS) {
    if (n >= scale) {
      return `${(n / scale).toFixed(1)} ${unit}`;
    }
  }
  return `${n} B`;
}

/** A metric value such as a loss: four significant digits; empty when missing. */
export function formatValue(x: number | null | undefined): string {
  if (x === null || x === undefined) {
    return '';
  }
  return Math.abs(x) >= 1e5 || (x !== 0 && Math.abs(x) < 1e-3)
    ? x.toExponential(2)
    : String(Number(x.toPrecision(4)));
}

/** A dash where a run logged no such number. */
export const MISSING = '–';

/** Tokens per second with a k/M suffix (whole below 1000); a dash when missing. */
export function formatThroughput(x: number | null | undefined): string {
  if (x === null || x === undefined) {
    return MISSING;
  }
  return Math.abs(x) >= 1e3 ? formatCount(x) : String(Math.round(x));
}

/** A fraction such as MFU as a percentage with one decimal; a dash when missing. */
export function formatShare(x: number | null | undefined): string {
  return x === null || x === undefined ? MISSING : `${(x * 100).toFixed(1)}%`;
}

/** An ISO time as local "YYYY-MM-DD HH:MM"; the input itself when it does not parse. */
export function formatTime(iso: string | null): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}`
  );
}

/** An axis tick: at most three significant digits, k/M/G for large values. */
export function formatTick(x: number): string {
  for (const [unit, scale] of COUNT_UNITS) {
    if (Math.abs(x) >= scale) {
      return `${Number((x / scale).toPrecision(3))}${unit}`;
    }
  }
  return String(Number(x.toPrecision(3)));
}
