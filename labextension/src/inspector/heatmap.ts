/**
 * A matrix drawn on a canvas. Up to LABEL_LIMIT tokens a side, cells are squares with the
 * tokens written beside them; beyond that each token is (less than) a pixel and tokens show
 * on hover. A second canvas on top carries the selection and the hover cross, so moving the
 * mouse never redraws the matrix.
 */
import { LUT32 } from './data';

/** Up to this many rows and columns the heatmap writes token labels. */
export const LABEL_LIMIT = 64;

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
    const labelled = data.rows <= LABEL_LIMIT && data.cols <= LABEL_LIMIT;
    const ctx = this.canvas.getContext('2d') as CanvasRenderingContext2D;
    const font = '11px sans-serif';
    let x0 = 0;
    let y0 = 0;
    let cell: number;
    if (labelled) {
      ctx.font = font;
      const widest = (labels: string[]) =>
        labels.reduce((m, s) => Math.max(m, ctx.measureText(s).width), 0);
      x0 = Math.min(120, Math.ceil(widest(data.rowLabels)) + 8);
      y0 = Math.min(120, Math.ceil(widest(data.colLabels)) + 8);
      const room = this.size - Math.max(x0, y0);
      cell = Math.max(4, Math.min(28, Math.floor(room / Math.max(data.rows, data.cols))));
    } else {
      cell = this.size / Math.max(data.rows, data.cols);
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
      ctx.fillStyle = getComputedStyle(this.node).color || '#333';
      ctx.font = font;
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'right';
      data.rowLabels.forEach((s, r) => ctx.fillText(s, x0 - 4, y0 + (r + 0.5) * cell, x0 - 6));
      ctx.save();
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'left';
      data.colLabels.forEach((s, c) =>
        ctx.fillText(s, -(y0 - 4), x0 + (c + 0.5) * cell, y0 - 6)
      );
      ctx.restore();
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
