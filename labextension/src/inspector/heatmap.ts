/**
 * A matrix drawn on a canvas, the tokens written beside it: every token while labels fit,
 * else every k-th (with its position) so that labels never overlap. Up to LABEL_LIMIT tokens
 * a side, cells are squares of whole pixels; beyond that a token is (less than) a pixel and
 * every token shows on hover. A second canvas on top carries the selection and the hover cross, so moving the
 * mouse never redraws the matrix.
 */
import { LUT32 } from './data';

/** Up to this many rows and columns a token is a square of whole pixels. */
export const LABEL_LIMIT = 64;
/** Least distance in CSS pixels between two labels' centres (the font is FONT_PX). */
export const LABEL_GAP = 13;
const LABEL_ROOM = 120;
const FONT_PX = 11;

/** Where a label was written, in CSS pixels of the heatmap (for tests of overlap). */
export interface ILabelRect {
  x: number;
  y: number;
  w: number;
  h: number;
}
const LABEL_PAD = 8;

/** Every how many tokens a label is written so that labels `cell` pixels apart never overlap. */
export function labelStep(cell: number): number {
  return Math.max(1, Math.ceil(LABEL_GAP / cell));
}

/** Positions 0, step, 2 step, ... below n. */
export function thinned(n: number, step: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}

/** A token's label; with its position when labels are thinned (so the axis stays countable). */
function tickLabel(token: string, index: number, step: number): string {
  return step > 1 ? `${index} ${token}` : token;
}

export interface IHeatmapData {
  values: Float32Array;
  rows: number;
  cols: number;
  rowLabels: string[];
  colLabels: string[];
  vmax: number;
  sqrt: boolean;
  /** Scale each row by its own maximum (long causal inputs: later rows are spread thin). */
  perRow?: boolean;
}

interface ILayout {
  x0: number;
  y0: number;
  cellW: number;
  cellH: number;
  width: number;
  height: number;
}

/** Turn values into RGBA pixels through the colour map. */
export function paint(
  values: Float32Array,
  vmax: number,
  sqrt: boolean,
  target: ImageData,
  perRow = false
): void {
  const px = new Uint32Array(target.data.buffer);
  const n = Math.min(values.length, px.length);
  const inv = vmax > 0 ? 1 / vmax : 0;
  if (perRow) {
    const cols = target.width;
    for (let start = 0; start < n; start += cols) {
      let m = 0;
      for (let i = start; i < start + cols; i++) if (values[i] > m) m = values[i];
      const rinv = m > 0 ? 1 / m : 0;
      for (let i = start; i < start + cols; i++) {
        const t = values[i] * rinv;
        px[i] = LUT32[t >= 1 ? 255 : (t * 255) | 0];
      }
    }
  } else if (sqrt) {
    for (let i = 0; i < n; i++) {
      const t = values[i] * inv;
      px[i] = LUT32[t >= 1 ? 255 : (Math.sqrt(t) * 255) | 0];
    }
  } else {
    for (let i = 0; i < n; i++) {
      const t = values[i] * inv;
      px[i] = LUT32[t >= 1 ? 255 : (t * 255) | 0];
    }
  }
}

export class Heatmap {
  readonly node: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private readonly overlay: HTMLCanvasElement;
  private readonly offscreen: HTMLCanvasElement;
  private image: ImageData | null = null;
  private data: IHeatmapData | null = null;
  private layout: ILayout | null = null;
  private readonly size: number;
  /** The boxes of the labels last drawn. */
  labelRects: ILabelRect[] = [];
  /** Called with (row, col) under the mouse, or (-1, -1) when it leaves. */
  onHover: (row: number, col: number, ev: MouseEvent) => void = () => undefined;
  onClick: (row: number, col: number, ev: MouseEvent) => void = () => undefined;

  constructor(size: number) {
    this.size = size;
    this.node = document.createElement('div');
    this.node.className = 'llmlab-insp-heatmap';
    this.canvas = document.createElement('canvas');
    this.overlay = document.createElement('canvas');
    this.overlay.className = 'llmlab-insp-overlay';
    this.offscreen = document.createElement('canvas');
    this.node.append(this.canvas, this.overlay);
    this.overlay.addEventListener('mousemove', ev => {
      const [r, c] = this.cellAt(ev);
      this.onHover(r, c, ev);
    });
    this.overlay.addEventListener('mouseleave', ev => this.onHover(-1, -1, ev));
    this.overlay.addEventListener('click', ev => {
      const [r, c] = this.cellAt(ev);
      if (r >= 0) this.onClick(r, c, ev);
    });
  }

  /** Row and column under a mouse event, (-1, -1) outside the matrix. */
  cellAt(ev: MouseEvent): [number, number] {
    const L = this.layout;
    const d = this.data;
    if (!L || !d) return [-1, -1];
    const rect = this.overlay.getBoundingClientRect();
    const x = ev.clientX - rect.left - L.x0;
    const y = ev.clientY - rect.top - L.y0;
    const c = Math.floor(x / L.cellW);
    const r = Math.floor(y / L.cellH);
    if (r < 0 || c < 0 || r >= d.rows || c >= d.cols) return [-1, -1];
    return [r, c];
  }

  /** Draw a matrix (the full one, or a thumbnail standing in for it while it loads). */
  draw(data: IHeatmapData): void {
    this.data = data;
    const ctx = this.canvas.getContext('2d') as CanvasRenderingContext2D;
    const font = `${FONT_PX}px sans-serif`;
    this.labelRects = [];
    ctx.font = font;
    const widest = (labels: string[]) =>
      labels.reduce((m, s) => Math.max(m, ctx.measureText(s).width), 0);
    const labelled = data.rowLabels.length > 0 && data.colLabels.length > 0;
    const n = Math.max(data.rows, data.cols);
    const rowsWide = labelled ? widest(data.rowLabels) : 0;
    const colsWide = labelled ? widest(data.colLabels) : 0;
    const fit = (extra: number) => {
      const margin = (wide: number) =>
        labelled ? Math.min(LABEL_ROOM, Math.ceil(wide + extra) + LABEL_PAD) : 0;
      const x0 = margin(rowsWide);
      const y0 = margin(colsWide);
      const room = this.size - Math.max(x0, y0);
      // up to LABEL_LIMIT tokens whole-pixel squares, beyond that (less than) a pixel a token
      const cell = n <= LABEL_LIMIT ? Math.max(4, Math.min(28, Math.floor(room / n))) : room / n;
      return { x0, y0, cell };
    };
    let { x0, y0, cell } = fit(0);
    if (labelled && labelStep(cell) > 1) {
      ({ x0, y0, cell } = fit(widest([`${n - 1} `]))); // thinned labels carry their position
    }
    const width = x0 + cell * data.cols;
    const height = y0 + cell * data.rows;
    this.layout = { x0, y0, cellW: cell, cellH: cell, width, height };
    const dpr = window.devicePixelRatio || 1;
    for (const c of [this.canvas, this.overlay]) {
      c.width = Math.ceil(width * dpr);
      c.height = Math.ceil(height * dpr);
      c.style.width = `${width}px`;
      c.style.height = `${height}px`;
    }
    this.node.style.width = `${width}px`;
    this.node.style.height = `${height}px`;

    if (!this.image || this.image.width !== data.cols || this.image.height !== data.rows) {
      this.image = new ImageData(data.cols, data.rows);
      this.offscreen.width = data.cols;
      this.offscreen.height = data.rows;
    }
    paint(data.values, data.vmax, data.sqrt, this.image, data.perRow);
    const off = this.offscreen.getContext('2d') as CanvasRenderingContext2D;
    off.putImageData(this.image, 0, 0);

    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    // smooth when many tokens share a pixel, crisp squares when a token is several pixels
    ctx.imageSmoothingEnabled = cell * dpr < 1;
    ctx.drawImage(this.offscreen, x0, y0, cell * data.cols, cell * data.rows);
    if (labelled) {
      const step = labelStep(cell);
      ctx.fillStyle = getComputedStyle(this.node).color || '#333';
      ctx.font = font;
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'right';
      const rects: ILabelRect[] = [];
      for (const r of thinned(data.rows, step)) {
        const text = tickLabel(data.rowLabels[r], r, step);
        // the first labels keep out of the corner where rows' and columns' labels meet
        const y = Math.max(y0 + (r + 0.5) * cell, y0 - 4 + FONT_PX / 2);
        ctx.fillText(text, x0 - 4, y, x0 - 6);
        const w = Math.min(ctx.measureText(text).width, x0 - 6);
        rects.push({ x: x0 - 4 - w, y: y - FONT_PX / 2, w, h: FONT_PX });
      }
      ctx.save();
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'left';
      for (const c of thinned(data.cols, step)) {
        const text = tickLabel(data.colLabels[c], c, step);
        const x = Math.max(x0 + (c + 0.5) * cell, x0 - 4 + FONT_PX / 2);
        ctx.fillText(text, -(y0 - 4), x, y0 - 6);
        const w = Math.min(ctx.measureText(text).width, y0 - 6);
        rects.push({ x: x - FONT_PX / 2, y: y0 - 4 - w, w: FONT_PX, h: w });
      }
      ctx.restore();
      this.labelRects = rects;
    }
    this.highlight([], 'from', -1, -1);
  }

  /** Mark the selected rows ("from") or columns ("to") and the hovered cell. */
  highlight(selected: number[], direction: 'from' | 'to', hoverRow: number, hoverCol: number): void {
    const L = this.layout;
    const d = this.data;
    if (!L || !d) return;
    const ctx = this.overlay.getContext('2d') as CanvasRenderingContext2D;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, L.width, L.height);
    const w = L.cellW * d.cols;
    const h = L.cellH * d.rows;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = 'rgba(230, 120, 0, 0.95)';
    ctx.fillStyle = 'rgba(255, 150, 0, 0.12)';
    const minBand = 2; // keep one-token bands visible at less than a pixel per token
    for (const i of selected) {
      if (direction === 'from' && i < d.rows) {
        const y = L.y0 + i * L.cellH;
        const bh = Math.max(minBand, L.cellH);
        ctx.fillRect(L.x0, y, w, bh);
        ctx.strokeRect(L.x0, y, w, bh);
      } else if (direction === 'to' && i < d.cols) {
        const x = L.x0 + i * L.cellW;
        const bw = Math.max(minBand, L.cellW);
        ctx.fillRect(x, L.y0, bw, h);
        ctx.strokeRect(x, L.y0, bw, h);
      }
    }
    if (hoverRow >= 0 && hoverCol >= 0) {
      ctx.strokeStyle = 'rgba(200, 40, 40, 0.8)';
      ctx.lineWidth = 1;
      const x = L.x0 + (hoverCol + 0.5) * L.cellW;
      const y = L.y0 + (hoverRow + 0.5) * L.cellH;
      ctx.beginPath();
      ctx.moveTo(L.x0, y);
      ctx.lineTo(L.x0 + w, y);
      ctx.moveTo(x, L.y0);
      ctx.lineTo(x, L.y0 + h);
      ctx.stroke();
    }
  }

  /** The picture as a PNG data URL (what is shown, without the hover cross). */
  toPNG(): string {
    return this.canvas.toDataURL('image/png');
  }
}

/** Normalised value of a cell, for tooltips. */
export function cellValue(d: IHeatmapData, r: number, c: number): number {
  return d.values[r * d.cols + c];
}
