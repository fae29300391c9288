/**
 * The top-k lines view for long inputs: queries on the left, keys on the right, and for each
 * selected token only the lines to its k strongest partners (bertviz draws every pair, which
 * is unreadable and slow past a few dozen tokens).
 */
import { topK } from './data';

export interface ILinesData {
  values: Float32Array;
  rows: number;
  cols: number;
  rowLabels: string[];
  colLabels: string[];
  selected: number[];
  direction: 'from' | 'to';
  k: number;
}

export interface ILine {
  row: number;
  col: number;
  weight: number;
}

/** The lines to draw: per selected row ("from") or column ("to"), its k largest weights. */
export function topLines(d: ILinesData): ILine[] {
  const lines: ILine[] = [];
  for (const s of d.selected) {
    if (d.direction === 'from') {
      if (s >= d.rows) continue;
      const row = d.values.subarray(s * d.cols, (s + 1) * d.cols);
      for (const c of topK(row, d.k)) lines.push({ row: s, col: c, weight: row[c] });
    } else {
      if (s >= d.cols) continue;
      const col = new Float32Array(d.rows);
      for (let r = 0; r < d.rows; r++) col[r] = d.values[r * d.cols + s];
      for (const r of topK(col, d.k)) lines.push({ row: r, col: s, weight: col[r] });
    }
  }
  return lines;
}

interface IPlaced {
  rows: number[];
  cols: number[];
  lines: ILine[];
  width: number;
  height: number;
  rowY: Map<number, number>;
  colY: Map<number, number>;
  max: number;
}

const ROW_H = 18;
const LABEL_W = 150;
const GAP = 160;

function place(d: ILinesData): IPlaced {
  const lines = topLines(d);
  const rows = Array.from(new Set(lines.map(l => l.row))).sort((a, b) => a - b);
  const cols = Array.from(new Set(lines.map(l => l.col))).sort((a, b) => a - b);
  const n = Math.max(rows.length, cols.length, 1);
  const height = 24 + n * ROW_H;
  const offset = (len: number) => 20 + ((n - len) * ROW_H) / 2;
  const rowY = new Map(rows.map((r, i) => [r, offset(rows.length) + (i + 0.5) * ROW_H]));
  const colY = new Map(cols.map((c, i) => [c, offset(cols.length) + (i + 0.5) * ROW_H]));
  const max = lines.reduce((m, l) => Math.max(m, l.weight), 0);
  return { rows, cols, lines, width: 2 * LABEL_W + GAP, height, rowY, colY, max };
}

function label(s: string, i: number): string {
  const t = s.length > 18 ? `${s.slice(0, 17)}…` : s;
  return `${t} ·${i}`;
}

/** Draw on a canvas; returns false when nothing is selected. */
export function drawLines(canvas: HTMLCanvasElement, d: ILinesData, color: string): boolean {
  const p = place(d);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.ceil(p.width * dpr);
  canvas.height = Math.ceil(p.height * dpr);
  canvas.style.width = `${p.width}px`;
  canvas.style.height = `${p.height}px`;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, p.width, p.height);
  ctx.font = '12px sans-serif';
  ctx.fillStyle = color;
  ctx.textBaseline = 'middle';
  if (!p.lines.length) {
    ctx.fillText('Select tokens (click the text or the heatmap) to draw their top-k lines.', 4, 12);
    return false;
  }
  ctx.textAlign = 'center';
  ctx.fillText(d.direction === 'from' ? 'queries (selected)' : 'queries', LABEL_W / 2, 8);
  ctx.fillText(d.direction === 'to' ? 'keys (selected)' : 'keys', LABEL_W + GAP + LABEL_W / 2, 8);
  for (const l of p.lines) {
    const a = p.max > 0 ? l.weight / p.max : 0;
    ctx.strokeStyle = `rgba(33, 113, 181, ${0.15 + 0.85 * a})`;
    ctx.lineWidth = 0.5 + 3.5 * a;
    ctx.beginPath();
    ctx.moveTo(LABEL_W, p.rowY.get(l.row) as number);
    ctx.lineTo(LABEL_W + GAP, p.colY.get(l.col) as number);
    ctx.stroke();
  }
  ctx.fillStyle = color;
  ctx.textAlign = 'right';
  for (const r of p.rows) ctx.fillText(label(d.rowLabels[r], r), LABEL_W - 6, p.rowY.get(r) as number);
  ctx.textAlign = 'left';
  for (const c of p.cols) {
    ctx.fillText(label(d.colLabels[c], c), LABEL_W + GAP + 6, p.colY.get(c) as number);
  }
  return true;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The same picture as an SVG document. */
export function linesSVG(d: ILinesData): string {
  const p = place(d);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${p.width}" height="${p.height}" ` +
      `font-family="sans-serif" font-size="12">`
  ];
  for (const l of p.lines) {
    const a = p.max > 0 ? l.weight / p.max : 0;
    out.push(
      `<line x1="${LABEL_W}" y1="${p.rowY.get(l.row)}" x2="${LABEL_W + GAP}" ` +
        `y2="${p.colY.get(l.col)}" stroke="rgb(33,113,181)" stroke-opacity="${(0.15 + 0.85 * a).toFixed(3)}" ` +
        `stroke-width="${(0.5 + 3.5 * a).toFixed(2)}"><title>${l.weight.toFixed(4)}</title></line>`
    );
  }
  for (const r of p.rows) {
    out.push(
      `<text x="${LABEL_W - 6}" y="${p.rowY.get(r)}" text-anchor="end" dominant-baseline="middle">` +
        `${esc(label(d.rowLabels[r], r))}</text>`
    );
  }
  for (const c of p.cols) {
    out.push(
      `<text x="${LABEL_W + GAP + 6}" y="${p.colY.get(c)}" dominant-baseline="middle">` +
        `${esc(label(d.colLabels[c], c))}</text>`
    );
  }
  out.push('</svg>');
  return out.join('\n');
}

export { esc };
