/**
 * The anywidget front end of llmlab.attention.AttentionInspector (bundled by build.mjs into
 * llmlab/attention/static/inspector.js).
 *
 * Traffic with the kernel: the description of the capture and every head's thumbnail come
 * once, in the widget state (the thumbnails as one binary buffer). A full matrix is asked for
 * with a custom message only when it is needed and not cached here; the answer is uint8 per
 * row plus one float32 scale per row, as binary buffers. At most one request is in flight and
 * one waits (newer requests replace the waiting one; requests.ts, shared with the lab panel);
 * state changes are synced to Python at most every SAVE_MS. Hovering never talks to the
 * kernel.
 */
import { InspectorView } from './view';
import { bytesOf, dequantize } from './data';
import { MatrixQueue } from './requests';
import { IInspectorHost, ILensRows, IMatrix, IMatrixRequest, IMeta, IViewState } from './types';

/** The part of anywidget's model interface that this widget uses. */
export interface IAnyModel {
  get(name: string): any;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(event: string, callback: (...args: any[]) => void): void;
  off(event?: string | null, callback?: ((...args: any[]) => void) | null): void;
  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
}

const SAVE_MS = 100;
const CACHE = 6;
const STATE_KEYS: (keyof IViewState)[] = [
  'kind',
  'layer',
  'head',
  'agg',
  'hide_first',
  'merge_words',
  'selected',
  'direction',
  'view',
  'top_k',
  'scale'
];

interface IPending {
  resolve: (value: any) => void;
  reject: (reason: Error) => void;
}

/** Implements the view's host on top of an anywidget model. */
export class WidgetHost implements IInspectorHost {
  private readonly model: IAnyModel;
  private nextId = 1;
  private readonly pending = new Map<number, IPending>();
  private readonly queue = new MatrixQueue(request => this.fetchMatrix(request), CACHE);
  private saveTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly onMessage: (msg: any, buffers: (ArrayBuffer | ArrayBufferView)[]) => void;
  /** Bytes received in matrix answers (for benchmarks). */
  received = 0;

  constructor(model: IAnyModel) {
    this.model = model;
    this.onMessage = (msg, buffers) => this.receive(msg, buffers || []);
    model.on('msg:custom', this.onMessage);
  }

  meta(): IMeta {
    return this.model.get('meta') as IMeta;
  }

  thumbs(): Uint8Array {
    const t = this.model.get('thumbs');
    return t ? bytesOf(t) : new Uint8Array(0);
  }

  matrix(request: IMatrixRequest): Promise<IMatrix> {
    return this.queue.get(request);
  }

  private fetchMatrix(request: IMatrixRequest): Promise<IMatrix> {
    return this.ask({ type: 'matrix', ...request }).then(([msg, buffers]) => {
      this.received += buffers.reduce((n: number, b: ArrayBuffer | ArrayBufferView) => n + b.byteLength, 0);
      return {
        request,
        rows: msg.rows,
        cols: msg.cols,
        values: dequantize(bytesOf(buffers[0]), bytesOf(buffers[1]), msg.rows, msg.cols)
      };
    });
  }

  lens(position: number): Promise<ILensRows> {
    return this.ask({ type: 'lens', position }).then(([msg]) => msg as ILensRows);
  }

  private ask(content: { [k: string]: unknown }): Promise<[any, (ArrayBuffer | ArrayBufferView)[]]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.model.send({ ...content, id });
    });
  }

  private receive(msg: any, buffers: (ArrayBuffer | ArrayBufferView)[]): void {
    if (!msg || typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.type === 'error') p.reject(new Error(msg.message));
    else p.resolve([msg, buffers]);
  }

  /** True while this host writes the view's state into the model (its echoes are ignored). */
  applying = false;
  /**
   * Values the view set that wait for the next save. A kernel message that writes one of
   * them meanwhile (a change made in Python, or an echo that the widget manager does not
   * match to a message it sent) must not undo the user's newer pick.
   */
  private readonly unsent = new Map<keyof IViewState, unknown>();

  stateChanged(state: IViewState): void {
    this.write(STATE_KEYS.map(k => [k, state[k]]), true);
    if (this.saveTimer === null) {
      this.saveTimer = setTimeout(() => this.flush(), SAVE_MS);
    }
  }

  /** Put back the view's unsent values over what a kernel message just wrote. */
  keepUnsent(): void {
    this.write([...this.unsent], false);
  }

  private write(entries: [keyof IViewState, unknown][], remember: boolean): void {
    this.applying = true;
    try {
      for (const [k, v] of entries) {
        if (JSON.stringify(this.model.get(k)) === JSON.stringify(v)) continue;
        this.model.set(k, v);
        if (remember) this.unsent.set(k, v);
      }
    } finally {
      this.applying = false;
    }
  }

  private flush(): void {
    this.saveTimer = null;
    this.unsent.clear();
    this.model.save_changes();
  }

  /** The synced state, as the view wants it. */
  state(): Partial<IViewState> {
    const out: { [k: string]: unknown } = {};
    for (const k of STATE_KEYS) out[k] = this.model.get(k);
    return out as Partial<IViewState>;
  }

  dispose(): void {
    this.model.off('msg:custom', this.onMessage);
    if (this.saveTimer !== null) {
      clearTimeout(this.saveTimer);
      this.flush();
    }
    for (const p of this.pending.values()) p.reject(new Error('closed'));
    this.pending.clear();
  }
}

function render({ model, el }: { model: IAnyModel; el: HTMLElement }): () => void {
  const host = new WidgetHost(model);
  const view = new InspectorView(host, host.state());
  el.append(view.node);
  // changes made in Python (w.layer = 3) arrive as change events
  const onChange = () => {
    if (host.applying) return;
    host.keepUnsent();
    view.setState(host.state(), 'host');
  };
  const events = STATE_KEYS.map(k => `change:${k}`);
  for (const e of events) model.on(e, onChange);
  (el as any).llmlabInspector = view;
  (el as any).llmlabHost = host;
  return () => {
    for (const e of events) model.off(e, onChange);
    host.dispose();
    view.dispose();
  };
}

export default { render };
