/**
 * The layer x head grid of thumbnails (tiny uint8 images computed in Python), plus a "mean"
 * and a "max" column made here from the thumbnails. Clicking a cell picks that layer and head;
 * the arrow keys move the pick.
 */
import { LUT32 } from './data';
import { Agg } from './types';

export interface IGridPick {
  /** Position in the captured layers / heads (not the model's numbers). */
  layer: number;
  head: number;
  agg: Agg;
}

const EXTRA: Agg[] = ['mean', 'max'];

export class ThumbGrid {
  readonly node: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private layers = 0;
  private heads = 0;
  private cell = 28;
  private readonly gap = 3;
  private readonly left = 26;
  private readonly top = 16;
  private pick: IGridPick = { layer: 0, head: 0, agg: 'head' };
  private layerLabels: number[] = [];
  private headLabels: number[] = [];
  /** The thumbnails drawn once per kind; a pick only copies them and draws the outline. */
  private readonly base = document.createElement('canvas');
  private baseData: Uint8Array | null = null;
  /** Called when the user picks a cell; `ev` is the input event (for timing). */
  onPick: (pick: IGridPick, ev: Event) => void = () => undefined;

  constructor() {
    this.node = document.createElement('div');
    this.node.className = 'llmlab-insp-grid';
    this.canvas = document.createElement('canvas');
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'grid');
    this.canvas.setAttribute('aria-label', 'Attention heads: layer rows, head columns');
    this.node.append(this.canvas);
    this.canvas.addEventListener('pointerdown', ev => {
      const hit = this.hit(ev);
      if (hit) this.onPick(hit, ev);
    });
    this.canvas.addEventListener('mousemove', ev => {
      const hit = this.hit(ev);
      this.canvas.title = hit
        ? `layer ${this.layerLabels[hit.layer]}, ` +
          (hit.agg === 'head' ? `head ${this.headLabels[hit.head]}` : `${hit.agg} over heads`)
        : '';
    });
    this.canvas.addEventListener('keydown', ev => this.key(ev));
  }

  private column(p: IGridPick): number {
    return p.agg === 'head' ? p.head : this.heads + Math.max(0, EXTRA.indexOf(p.agg));
  }

  private hit(ev: MouseEvent): IGridPick | null {
    const rect = this.canvas.getBoundingClientRect();
    const step = this.cell + this.gap;
    const col = Math.floor((ev.clientX - rect.left - this.left) / step);
    const row = Math.floor((ev.clientY - rect.top - this.top) / step);
    if (row < 0 || row >= this.layers || col < 0 || col >= this.heads + EXTRA.length) {
      return null;
    }
    if (col < this.heads) return { layer: row, head: col, agg: 'head' };
    return { layer: row, head: this.pick.head, agg: EXTRA[col - this.heads] };
  }

  private key(ev: KeyboardEvent): void {
    const moves: { [k: string]: [number, number] } = {
      ArrowUp: [-1, 0],
      ArrowDown: [1, 0],
      ArrowLeft: [0, -1],
      ArrowRight: [0, 1]
    };
    const m = moves[ev.key];
    if (!m) return;
    ev.preventDefault();
    const cols = this.heads + EXTRA.length;
    const layer = Math.min(this.layers - 1, Math.max(0, this.pick.layer + m[0]));
    const col = Math.min(cols - 1, Math.max(0, this.column(this.pick) + m[1]));
    const pick: IGridPick =
      col < this.heads
        ? { layer, head: col, agg: 'head' }
        : { layer, head: this.pick.head, agg: EXTRA[col - this.heads] };
    this.onPick(pick, ev);
  }

  /** Draw thumbnails `data` laid out [layers, heads, rows, cols]. */
  draw(
    data: Uint8Array,
    layerLabels: number[],
    headLabels: number[],
    rows: number,
    cols: number,
    pick: IGridPick
  ): void {
    this.layers = layerLabels.length;
    this.heads = headLabels.length;
    this.layerLabels = layerLabels;
    this.headLabels = headLabels;
    this.pick = pick;
    this.cell = this.heads > 8 ? 24 : 30;
    const step = this.cell + this.gap;
    const width = this.left + step * (this.heads + EXTRA.length) + 4;
    const height = this.top + step * this.layers;
    const dpr = window.devicePixelRatio || 1;
    if (this.baseData !== data) {
      this.baseData = data;
      this.paintBase(data, rows, cols, width, height, dpr);
    }
    this.canvas.width = this.base.width;
    this.canvas.height = this.base.height;
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const ctx = this.canvas.getContext('2d') as CanvasRenderingContext2D;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.base, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const x = this.left + this.column(pick) * step;
    const y = this.top + pick.layer * step;
    ctx.strokeStyle = 'rgb(230, 120, 0)';
    ctx.lineWidth = 2.5;
    ctx.strokeRect(x - 1.5, y - 1.5, this.cell + 3, this.cell + 3);
  }

  private paintBase(
    data: Uint8Array,
    rows: number,
    cols: number,
    width: number,
    height: number,
    dpr: number
  ): void {
    const step = this.cell + this.gap;
    this.base.width = Math.ceil(width * dpr);
    this.base.height = Math.ceil(height * dpr);
    const ctx = this.base.getContext('2d') as CanvasRenderingContext2D;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const off = document.createElement('canvas');
    off.width = cols;
    off.height = rows;
    const octx = off.getContext('2d') as CanvasRenderingContext2D;
    const image = new ImageData(cols, rows);
    const px = new Uint32Array(image.data.buffer);
    const size = rows * cols;
    const mean = new Float32Array(size);
    const max = new Float32Array(size);
    ctx.imageSmoothingEnabled = false;
    const put = (values: ArrayLike<number>, x: number, y: number) => {
      for (let i = 0; i < size; i++) px[i] = LUT32[Math.min(255, values[i] | 0)];
      octx.putImageData(image, 0, 0);
      ctx.drawImage(off, x, y, this.cell, this.cell);
    };
    for (let l = 0; l < this.layers; l++) {
      mean.fill(0);
      max.fill(0);
      for (let h = 0; h < this.heads; h++) {
        const start = (l * this.heads + h) * size;
        const thumb = data.subarray(start, start + size);
        for (let i = 0; i < size; i++) {
          mean[i] += thumb[i] / this.heads;
          if (thumb[i] > max[i]) max[i] = thumb[i];
        }
        put(thumb, this.left + h * step, this.top + l * step);
      }
      put(mean, this.left + this.heads * step, this.top + l * step);
      put(max, this.left + (this.heads + 1) * step, this.top + l * step);
    }
    ctx.fillStyle = getComputedStyle(this.node).color || '#333';
    ctx.font = '10px sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    this.layerLabels.forEach((n, l) =>
      ctx.fillText(String(n), this.left - 5, this.top + l * step + this.cell / 2)
    );
    ctx.textAlign = 'center';
    ctx.textBaseline = 'alphabetic';
    const headText = [...this.headLabels.map(String), 'avg', 'max'];
    headText.forEach((s, h) => ctx.fillText(s, this.left + h * step + this.cell / 2, this.top - 4));
  }

  /** Centre of a cell in client coordinates (for tests and benchmarks). */
  cellCenter(layer: number, column: number): { x: number; y: number } {
    const rect = this.canvas.getBoundingClientRect();
    const step = this.cell + this.gap;
    return {
      x: rect.left + this.left + column * step + this.cell / 2,
      y: rect.top + this.top + layer * step + this.cell / 2
    };
  }
}
