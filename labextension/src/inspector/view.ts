/**
 * The attention inspector: a toolbar, the layer x head thumbnail grid, a canvas heatmap (or
 * the top-k lines view), the tokens as text coloured by attention, and the logit lens at a
 * selected position. Framework-free: give it an element and a host (see types.ts).
 *
 *   const view = new InspectorView(host, { kind: 'decoder', layer: 11 });
 *   el.append(view.node);
 */
import {
  IInspectorHost,
  IKindInfo,
  ILensRows,
  IMatrix,
  IMatrixRequest,
  IMeta,
  IViewState,
  DrawnScale,
  requestKey
} from './types';
import { chooseScale, maxOf, selectionVector } from './data';
import { Heatmap, IHeatmapData } from './heatmap';
import { ThumbGrid } from './grid';
import { TokenStrip, displayToken } from './tokens';
import { ILinesData, drawLines, linesSVG } from './lines';
import { download, downloadText, heatmapSVG } from './exporting';
import { ensureStyle } from './style';

export const DEFAULT_STATE: IViewState = {
  kind: '',
  layer: -1,
  head: 0,
  agg: 'mean',
  hide_first: false,
  merge_words: false,
  selected: [],
  direction: 'from',
  view: 'heatmap',
  top_k: 8,
  scale: 'auto'
};

const SCALE_NAMES: { [k in DrawnScale]: string } = {
  linear: 'linear',
  sqrt: 'sqrt',
  row: 'per row'
};

/** Event fired on the view's node each time a full-resolution matrix has been drawn. */
export const DRAWN_EVENT = 'llmlab-inspector-drawn';

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { [k: string]: unknown } = {},
  children: (Node | string)[] = []
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

function option(value: string, text: string): HTMLOptionElement {
  return el('option', { value, textContent: text });
}

export class InspectorView {
  readonly node: HTMLDivElement;
  private readonly host: IInspectorHost;
  private readonly meta: IMeta;
  private readonly thumbs: Uint8Array;
  private state: IViewState;
  private current: IMatrix | null = null;
  private shown: IHeatmapData | null = null;
  private drawnFor = '';
  private autoScaleOf: IMatrix | null = null;
  private autoScale: DrawnScale = 'linear';
  private wantedKey = '';
  private inputAt = 0;
  private answeredAt = 0;
  private readonly thumbViews = new Map<string, Uint8Array>();
  private hoverRow = -1;
  private hoverCol = -1;
  private hoverToken: { strip: 'q' | 'k'; index: number } | null = null;
  private frame = 0;
  private lensAt = -1;
  private disposed = false;

  private readonly grid = new ThumbGrid();
  private readonly heatmap: Heatmap;
  private readonly linesCanvas = el('canvas', { className: 'llmlab-insp-lines' });
  private readonly stripQ = new TokenStrip();
  private readonly stripK = new TokenStrip();
  private readonly status = el('div', { className: 'llmlab-insp-status' });
  private readonly lensBox = el('div', { className: 'llmlab-insp-lens' });
  private readonly controls: {
    kind: HTMLSelectElement;
    layer: HTMLSelectElement;
    head: HTMLSelectElement;
    hideFirst: HTMLInputElement;
    merge: HTMLInputElement;
    direction: HTMLSelectElement;
    view: HTMLSelectElement;
    topK: HTMLInputElement;
    scale: HTMLSelectElement;
  };

  constructor(host: IInspectorHost, initial: Partial<IViewState> = {}, size = 520) {
    ensureStyle();
    this.host = host;
    this.meta = host.meta();
    this.thumbs = host.thumbs();
    this.heatmap = new Heatmap(size);
    this.state = this.normalise({ ...DEFAULT_STATE, ...initial }, DEFAULT_STATE);

    const c = {
      kind: el('select', { title: 'Which attention: encoder, decoder or cross' }),
      layer: el('select', { title: 'Layer' }),
      head: el('select', { title: 'One head, or an aggregate over heads' }),
      hideFirst: el('input', {
        type: 'checkbox',
        title: 'Hide the attention paid to the first token (an attention sink) and renormalise'
      }),
      merge: el('input', { type: 'checkbox', title: 'Merge subword tokens into words' }),
      direction: el('select', {
        title: 'Colour tokens by the attention the selection gives (from) or receives (to)'
      }),
      view: el('select', { title: 'Heatmap, or lines to the top-k partners' }),
      topK: el('input', { type: 'number', min: '1', max: '50', title: 'Lines per selected token' }),
      scale: el('select', { title: 'Colour scale' })
    };
    this.controls = c;
    for (const k of this.meta.kinds) c.kind.append(option(k.name, k.name));
    c.direction.append(option('from', 'from selection'), option('to', 'to selection'));
    c.view.append(option('heatmap', 'heatmap'), option('lines', 'top-k lines'));
    c.scale.append(
      option('auto', 'auto'),
      option('linear', 'linear'),
      option('sqrt', 'sqrt'),
      option('row', 'per row')
    );
    const png = el('button', { textContent: 'PNG', title: 'Save what is shown as PNG' });
    const svg = el('button', { textContent: 'SVG', title: 'Save what is shown as SVG' });
    const clear = el('button', { textContent: 'Clear', title: 'Clear the token selection' });

    const bar = el('div', { className: 'llmlab-insp-bar' }, [
      ...(this.meta.kinds.length > 1 ? [el('label', {}, ['Kind', c.kind])] : []),
      el('label', {}, ['Layer', c.layer]),
      el('label', {}, ['Head', c.head]),
      el('label', {}, [c.hideFirst, 'hide first token']),
      el('label', {}, [c.merge, 'words']),
      el('label', {}, ['Tokens', c.direction]),
      el('label', {}, ['View', c.view]),
      el('label', {}, ['k', c.topK]),
      el('label', {}, ['Scale', c.scale]),
      clear,
      png,
      svg
    ]);
    const center = el('div', { className: 'llmlab-insp-center' }, [
      this.heatmap.node,
      this.linesCanvas
    ]);
    this.node = el('div', { className: 'llmlab-insp' }, [
      el('div', { className: 'llmlab-insp-title', textContent: this.meta.title }),
      bar,
      el('div', { className: 'llmlab-insp-main' }, [this.grid.node, center]),
      this.status,
      this.stripQ.node,
      this.stripK.node,
      this.lensBox
    ]);

    c.kind.onchange = ev => this.setState({ kind: c.kind.value }, 'user', ev);
    c.layer.onchange = ev => this.setState({ layer: Number(c.layer.value) }, 'user', ev);
    c.head.onchange = ev => {
      const v = c.head.value;
      const agg = v.startsWith('h') ? 'head' : (v as IViewState['agg']);
      const head = v.startsWith('h') ? Number(v.slice(1)) : this.state.head;
      this.setState({ agg, head }, 'user', ev);
    };
    c.hideFirst.onchange = ev => this.setState({ hide_first: c.hideFirst.checked }, 'user', ev);
    c.merge.onchange = ev => this.setState({ merge_words: c.merge.checked }, 'user', ev);
    c.direction.onchange = ev =>
      this.setState({ direction: c.direction.value as IViewState['direction'] }, 'user', ev);
    c.view.onchange = ev => this.setState({ view: c.view.value as IViewState['view'] }, 'user', ev);
    c.topK.onchange = ev => this.setState({ top_k: Number(c.topK.value) }, 'user', ev);
    c.scale.onchange = ev => this.setState({ scale: c.scale.value as IViewState['scale'] }, 'user', ev);
    clear.onclick = ev => this.setState({ selected: [] }, 'user', ev);
    png.onclick = () => this.exportPNG();
    svg.onclick = () => this.exportSVG();

    this.grid.onPick = (p, ev) => {
      const info = this.info();
      this.setState(
        { layer: info.layers[p.layer], head: info.heads[p.head], agg: p.agg },
        'user',
        ev
      );
    };
    this.heatmap.onHover = (r, col) => {
      this.hoverRow = r;
      this.hoverCol = col;
      this.schedule();
    };
    this.heatmap.onClick = (r, col, ev) => {
      const i = this.state.direction === 'from' ? r : col;
      this.select(i, ev.shiftKey || ev.metaKey || ev.ctrlKey, ev);
    };
    for (const [strip, which] of [
      [this.stripQ, 'q'],
      [this.stripK, 'k']
    ] as [TokenStrip, 'q' | 'k'][]) {
      strip.onHover = i => {
        this.hoverToken = i >= 0 ? { strip: which, index: i } : null;
        this.schedule();
      };
      strip.onClick = (i, add, ev) => {
        if (!this.isSelf()) {
          // cross-attention: the strip clicked says the direction (queries: from, keys: to)
          const direction = which === 'q' ? 'from' : 'to';
          if (direction !== this.state.direction) {
            this.setState({ direction, selected: [i] }, 'user', ev);
            return;
          }
        }
        this.select(i, add, ev);
      };
    }
    this.syncControls();
    this.setTokenStrips();
    this.load();
  }

  /** Current state (a copy). */
  getState(): IViewState {
    return { ...this.state, selected: [...this.state.selected] };
  }

  /**
   * Change the state: `origin` "user" reports the change to the host (a widget syncs it to
   * Python), "host" does not (the change came from there).
   */
  setState(partial: Partial<IViewState>, origin: 'user' | 'host' = 'host', ev?: Event): void {
    if (this.disposed) return;
    const before = this.state;
    const next = this.normalise({ ...before, ...partial }, before);
    const changed = (Object.keys(next) as (keyof IViewState)[]).some(
      k => JSON.stringify(next[k]) !== JSON.stringify(before[k])
    );
    if (!changed) return;
    this.state = next;
    if (origin === 'user' && this.host.stateChanged) this.host.stateChanged(this.getState());
    this.syncControls();
    if (next.kind !== before.kind || next.merge_words !== before.merge_words) {
      this.setTokenStrips();
    }
    if (requestKey(next) !== requestKey(before)) {
      this.inputAt = ev ? ev.timeStamp : performance.now();
      this.load();
    } else {
      this.render();
    }
  }

  dispose(): void {
    this.disposed = true;
    cancelAnimationFrame(this.frame);
    this.node.remove();
  }

  // ---------------------------------------------------------------- state helpers
  private info(kind = this.state.kind): IKindInfo {
    return this.meta.kinds.find(k => k.name === kind) || this.meta.kinds[0];
  }

  private isSelf(): boolean {
    const info = this.info();
    return info.query_side === info.key_side;
  }

  private normalise(s: IViewState, before: IViewState): IViewState {
    const out = { ...s, selected: [...s.selected] };
    const info = this.info(s.kind);
    out.kind = info.name;
    if (!info.layers.includes(out.layer)) {
      const n = info.layers.length;
      out.layer = out.layer < 0 && -out.layer <= n ? info.layers[n + out.layer] : info.layers[n - 1];
    }
    if (!info.heads.includes(out.head)) out.head = info.heads[0];
    if (!['head', 'mean', 'max', 'rollout'].includes(out.agg)) out.agg = 'mean';
    if (out.agg === 'rollout' && !info.rollout) out.agg = 'mean';
    if (out.direction !== 'to') out.direction = 'from';
    if (out.view !== 'lines') out.view = 'heatmap';
    if (!['linear', 'sqrt', 'row'].includes(out.scale)) out.scale = 'auto';
    out.top_k = Math.max(1, Math.min(50, Math.round(Number(out.top_k)) || 8));
    const units = this.units(info, out);
    const limit = out.direction === 'from' ? units.rows : units.cols;
    const unitsChanged =
      out.kind !== before.kind ||
      out.merge_words !== before.merge_words ||
      (out.direction !== before.direction && info.query_side !== info.key_side);
    if (unitsChanged && JSON.stringify(s.selected) === JSON.stringify(before.selected)) {
      out.selected = [];
    }
    out.selected = Array.from(new Set(out.selected.filter(i => Number.isInteger(i) && i >= 0 && i < limit)));
    return out;
  }

  /** Rows and columns in displayed units (tokens, or words when merged). */
  private units(info: IKindInfo, s: IViewState): { rows: number; cols: number } {
    if (!s.merge_words) return { rows: info.rows, cols: info.cols };
    return {
      rows: this.meta.sides[info.query_side].words.length,
      cols: this.meta.sides[info.key_side].words.length
    };
  }

  private labels(side: string): string[] {
    const s = this.meta.sides[side];
    return (this.state.merge_words ? s.words : s.tokens).map(displayToken);
  }

  private request(): IMatrixRequest {
    const { kind, layer, head, agg, hide_first, merge_words } = this.state;
    return { kind, layer, head, agg, hide_first, merge_words };
  }

  private select(i: number, add: boolean, ev: Event): void {
    if (i < 0) return;
    const cur = this.state.selected;
    let selected: number[];
    if (add) selected = cur.includes(i) ? cur.filter(x => x !== i) : [...cur, i];
    else selected = cur.length === 1 && cur[0] === i ? [] : [i];
    this.setState({ selected }, 'user', ev);
  }

  // ---------------------------------------------------------------- loading
  private load(): void {
    const req = this.request();
    const key = requestKey(req);
    this.wantedKey = key;
    if (!this.inputAt) this.inputAt = performance.now();
    // ask first, then draw the grid and the placeholder while the answer travels
    const answer = this.host.matrix(req);
    this.drawGrid();
    this.placeholder();
    this.setStatus('loading…');
    answer.then(
      m => {
        if (this.disposed || requestKey(m.request) !== this.wantedKey) return;
        this.answeredAt = performance.now();
        this.current = m;
        this.render();
      },
      err => {
        if (requestKey(req) === this.wantedKey) this.setStatus(String(err.message || err), true);
      }
    );
  }

  /** While a large matrix loads, show its thumbnail blown up (instant feedback). */
  private placeholder(): void {
    const info = this.info();
    if (this.state.view !== 'heatmap' || info.rows * info.cols <= 64 * 64) return;
    if (this.state.merge_words || this.state.agg === 'rollout') return;
    const L = info.layers.indexOf(this.state.layer);
    const rows = info.thumb_rows;
    const cols = info.thumb_cols;
    const size = rows * cols;
    const values = new Float32Array(size);
    const H = info.heads.length;
    const heads = this.state.agg === 'head' ? [info.heads.indexOf(this.state.head)] : [...Array(H).keys()];
    for (const h of heads) {
      const start = info.thumb_offset + (L * H + h) * size;
      for (let i = 0; i < size; i++) values[i] += this.thumbs[start + i] / heads.length;
    }
    this.current = null;
    this.drawnFor = '';
    this.heatmap.draw({
      values,
      rows,
      cols,
      rowLabels: [],
      colLabels: [],
      vmax: maxOf(values),
      sqrt: false
    });
    this.linesCanvas.style.display = 'none';
    this.heatmap.node.style.display = '';
  }

  // ---------------------------------------------------------------- drawing
  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderLight();
    });
  }

  private render(): void {
    const m = this.current;
    if (!m) return;
    const info = this.info();
    const drawKey = `${requestKey(m.request)}|${this.state.view}|${this.state.scale}|${
      this.state.view === 'lines' ? this.state.top_k + this.state.direction + this.state.selected.join(',') : ''
    }`;
    if (drawKey !== this.drawnFor) {
      this.shown = {
        values: m.values,
        rows: m.rows,
        cols: m.cols,
        rowLabels: this.labels(info.query_side),
        colLabels: this.labels(info.key_side),
        vmax: maxOf(m.values),
        sqrt: this.drawnScale() === 'sqrt',
        perRow: this.drawnScale() === 'row'
      };
      const heat = this.state.view === 'heatmap';
      this.heatmap.node.style.display = heat ? '' : 'none';
      this.linesCanvas.style.display = heat ? 'none' : '';
      if (heat) this.heatmap.draw(this.shown);
      else drawLines(this.linesCanvas, this.linesData(), getComputedStyle(this.node).color || '#333');
      const fresh = !this.drawnFor.startsWith(requestKey(m.request) + '|');
      this.drawnFor = drawKey;
      if (fresh) {
        const key = requestKey(m.request);
        const now = performance.now();
        this.node.dataset.drawnKey = key;
        // ms: from the input that asked for it (or the request) to the drawn picture;
        // waitMs: of which waiting for the host's answer (kernel, network); drawMs: drawing
        const answered = this.answeredAt || now;
        this.node.dispatchEvent(
          new CustomEvent(DRAWN_EVENT, {
            bubbles: true,
            detail: { key, ms: now - this.inputAt, waitMs: answered - this.inputAt, drawMs: now - answered }
          })
        );
        this.answeredAt = 0;
        this.inputAt = 0;
      }
    }
    this.renderLight();
    this.updateLens();
  }

  /** What hovering and selecting change: overlay, token colours, status line. */
  private renderLight(): void {
    const d = this.shown;
    if (!d || !this.current) return;
    const s = this.state;
    this.heatmap.highlight(s.selected, s.direction, this.hoverRow, this.hoverCol);
    const self = this.isSelf();
    let sources = s.selected;
    let direction = s.direction;
    if (this.hoverToken) {
      sources = [this.hoverToken.index];
      if (!self) direction = this.hoverToken.strip === 'q' ? 'from' : 'to';
    } else if (this.hoverRow >= 0) {
      sources = [direction === 'from' ? this.hoverRow : this.hoverCol];
    }
    const weights = sources.length
      ? selectionVector(d.values, d.rows, d.cols, sources, direction)
      : null;
    const vmax = weights ? maxOf(weights) : 0;
    const sqrt = this.drawnScale() === 'sqrt';
    if (self) {
      this.stripQ.paint(weights, vmax, sqrt, s.selected);
    } else {
      // the weights land on the other side from the selection
      const onKeys = direction === 'from';
      this.stripK.paint(onKeys ? weights : null, vmax, sqrt, s.direction === 'to' ? s.selected : []);
      this.stripQ.paint(onKeys ? null : weights, vmax, sqrt, s.direction === 'from' ? s.selected : []);
    }
    let line = this.describe();
    if (this.hoverRow >= 0) {
      const v = d.values[this.hoverRow * d.cols + this.hoverCol];
      line +=
        `   ${JSON.stringify(d.rowLabels[this.hoverRow])} (${this.hoverRow}) → ` +
        `${JSON.stringify(d.colLabels[this.hoverCol])} (${this.hoverCol}): ${v.toFixed(4)}`;
    }
    this.setStatus(line);
  }

  /** The scale the current matrix is drawn with ("auto" resolved once per matrix). */
  private drawnScale(): DrawnScale {
    const m = this.current;
    if (this.state.scale !== 'auto') return this.state.scale;
    if (!m) return 'linear';
    if (this.autoScaleOf !== m) {
      this.autoScaleOf = m;
      this.autoScale = chooseScale(m.values, m.rows, m.cols);
      this.controls.scale.options[0].textContent = `auto (${SCALE_NAMES[this.autoScale]})`;
    }
    return this.autoScale;
  }

  private describe(): string {
    const s = this.state;
    const d = this.shown as IHeatmapData;
    const what = s.agg === 'head' ? `head ${s.head}` : s.agg === 'rollout' ? 'rollout' : `${s.agg} of heads`;
    const unit = s.merge_words ? 'words' : 'tokens';
    return `${s.kind} · layer ${s.layer} · ${what} · ${d.rows}×${d.cols} ${unit}` +
      (s.hide_first ? ' · first token hidden' : '') +
      (s.scale === 'auto' && this.drawnScale() !== 'linear'
        ? ` · colours ${SCALE_NAMES[this.drawnScale()]} (auto)`
        : '');
  }

  private drawGrid(): void {
    const info = this.info();
    const pick = {
      layer: Math.max(0, info.layers.indexOf(this.state.layer)),
      head: Math.max(0, info.heads.indexOf(this.state.head)),
      agg: this.state.agg === 'rollout' ? ('mean' as const) : this.state.agg
    };
    let data = this.thumbViews.get(info.name);
    if (!data) {
      const size = info.thumb_rows * info.thumb_cols * info.layers.length * info.heads.length;
      data = this.thumbs.subarray(info.thumb_offset, info.thumb_offset + size);
      this.thumbViews.set(info.name, data); // same object per kind: the grid redraws only on change
    }
    this.grid.draw(
      data,
      info.layers,
      info.heads,
      info.thumb_rows,
      info.thumb_cols,
      pick
    );
  }

  private setTokenStrips(): void {
    const info = this.info();
    const unit = this.state.merge_words ? 'words' : 'tokens';
    if (info.query_side === info.key_side) {
      this.stripQ.setTokens(
        this.labels(info.query_side),
        `${info.query_side} ${unit} — hover or click to see where attention goes (shift-click adds)`
      );
      this.stripK.visible = false;
    } else {
      this.stripQ.setTokens(this.labels(info.query_side), `${info.query_side} ${unit} (queries)`);
      this.stripK.setTokens(this.labels(info.key_side), `${info.key_side} ${unit} (keys)`);
      this.stripK.visible = true;
    }
  }

  private syncControls(): void {
    const c = this.controls;
    const s = this.state;
    const info = this.info();
    c.kind.value = s.kind;
    c.layer.replaceChildren(...info.layers.map(l => option(String(l), String(l))));
    c.layer.value = String(s.layer);
    c.head.replaceChildren(
      ...info.heads.map(h => option(`h${h}`, String(h))),
      option('mean', 'mean'),
      option('max', 'max'),
      ...(info.rollout ? [option('rollout', 'rollout')] : [])
    );
    c.head.value = s.agg === 'head' ? `h${s.head}` : s.agg;
    c.hideFirst.checked = s.hide_first;
    c.merge.checked = s.merge_words;
    c.direction.value = s.direction;
    c.view.value = s.view;
    c.topK.value = String(s.top_k);
    c.scale.value = s.scale;
  }

  private setStatus(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle('llmlab-insp-error', error);
  }

  private linesData(): ILinesData {
    const d = this.shown as IHeatmapData;
    return {
      values: d.values,
      rows: d.rows,
      cols: d.cols,
      rowLabels: d.rowLabels,
      colLabels: d.colLabels,
      selected: this.state.selected,
      direction: this.state.direction,
      k: this.state.top_k
    };
  }

  // ---------------------------------------------------------------- logit lens
  private updateLens(): void {
    const s = this.state;
    const info = this.info();
    const side = this.meta.lens_side;
    const ok =
      !!this.host.lens && side !== '' && side === info.query_side &&
      s.direction === 'from' && s.selected.length === 1;
    if (!ok) {
      this.lensAt = -1;
      this.lensBox.replaceChildren();
      return;
    }
    let position = s.selected[0];
    if (s.merge_words) {
      // a word's prediction is the one made at its last token
      const wordOf = this.meta.sides[side].word_of;
      position = wordOf.lastIndexOf(position);
    }
    if (position === this.lensAt) return;
    this.lensAt = position;
    this.lensBox.textContent = 'logit lens: loading…';
    (this.host.lens as (p: number) => Promise<ILensRows>)(position).then(
      rows => {
        if (this.lensAt !== position) return;
        const token = this.meta.sides[side].tokens[position];
        const head = el('tr', {}, [
          el('th', { textContent: 'layer' }),
          ...rows.tokens[0].map((_, i) => el('th', { textContent: `#${i + 1}` }))
        ]);
        const body = rows.layers.map((name, l) =>
          el('tr', {}, [
            el('th', { textContent: name }),
            ...rows.tokens[l].map((t, i) =>
              el('td', { textContent: `${displayToken(t)} ${(100 * rows.probs[l][i]).toFixed(1)}%` })
            )
          ])
        );
        this.lensBox.replaceChildren(
          el('div', {
            className: 'llmlab-insp-caption',
            textContent: `logit lens at ${position} ${JSON.stringify(token)}: ${rows.what} after each layer`
          }),
          el('table', {}, [head, ...body])
        );
      },
      err => {
        this.lensBox.textContent = `logit lens: ${err.message || err}`;
      }
    );
  }

  // ---------------------------------------------------------------- export
  private fileStem(): string {
    const s = this.state;
    const what = s.agg === 'head' ? `head${s.head}` : s.agg;
    return `attention-${s.kind}-layer${s.layer}-${what}`;
  }

  exportPNG(): string {
    const url =
      this.state.view === 'heatmap' ? this.heatmap.toPNG() : this.linesCanvas.toDataURL('image/png');
    download(url, `${this.fileStem()}.png`);
    return url;
  }

  exportSVG(): string {
    if (!this.shown) return '';
    const text =
      this.state.view === 'heatmap'
        ? heatmapSVG(this.shown, this.describe())
        : linesSVG(this.linesData());
    downloadText(text, `${this.fileStem()}.svg`, 'image/svg+xml');
    return text;
  }

  /** Centre of a grid cell in client coordinates (tests and benchmarks click there). */
  gridCellCenter(layerPosition: number, column: number): { x: number; y: number } {
    return this.grid.cellCenter(layerPosition, column);
  }
}
