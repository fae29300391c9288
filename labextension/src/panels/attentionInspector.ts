/**
 * Attention inspector panel: pick a run and one of its attention snapshots, then explore it
 * with the notebook widget's own front end (`InspectorView` from ../inspector) fed by a
 * `SnapshotHost`, which fetches one matrix at a time from the server.
 *
 * Performance marks (read by benchmarks/lab.py): `llmlab:snapshot-open` when a snapshot is
 * asked for, a measure `llmlab:snapshot-first-draw` from there to its first full-resolution
 * picture, and a measure `llmlab:attention-draw` for every picture (from the input that asked
 * for it to the drawn heatmap).
 */
import {
  ISnapshotList,
  errorMessage,
  listSnapshots,
  snapshotInfo,
  snapshotThumbs
} from '../api';
import { attentionIcon } from '../icons';
import { DRAWN_EVENT, InspectorView } from '../inspector';
import type { IViewState } from '../inspector/types';
import { Widget } from '@lumino/widgets';
import { button, h, MessageLine } from './dom';
import { insertCodeCell } from './notebook';
import { ILabContext, LlmlabPanel } from './panel';
import { snapshotCode } from './python';
import { SnapshotHost } from './snapshotHost';
import {
  IRunSnapshots,
  emptyStoreMessage,
  firstReadable,
  groupByRun,
  runLabel,
  runWarning,
  snapshotLabel
} from './snapshots';
import { storeForKernel, storeInRoot } from './storeLocation';

/** Heatmap size bounds in CSS pixels (the view is sized to the panel when opened). */
const MIN_SIZE = 240;
const MAX_SIZE = 640;
/** In the main area the heatmap may take the whole width (and is resized with it). */
const MAX_MAIN_SIZE = 1400;
/** Room left beside the heatmap for its row labels' scroll bar and padding. */
const SIDE_ROOM = 40;
/** Room above the heatmap in a main-area document: heading, pickers, toolbar. */
const TOP_ROOM = 230;

/** Where the panel lives: the left sidebar (one) or the main area (a document per open). */
export interface IInspectorPlace {
  main: boolean;
  /** For the sidebar: opens a main-area inspector (its "Open in main area" button). */
  openMain?: (shown: IShownSnapshot) => void;
  /** For a main-area inspector: what it shows first (else the newest run's first snapshot). */
  initial?: IShownSnapshot;
}

/** A snapshot and the view's state on it. */
export interface IShownSnapshot {
  runId: string;
  name: string;
  state: Partial<IViewState>;
}

let mainCount = 0;
/** A main-area view is redrawn at a new size once its width changed by this many pixels… */
const RESIZE_STEP = 24;
/** …and resizing paused this long (ms). */
const RESIZE_MS = 150;

export class AttentionInspectorPanel extends LlmlabPanel {
  static readonly ID = 'llmlab-attention-inspector';

  private readonly _run = h('select', {
    class: 'llmlab-Input llmlab-SnapshotRun',
    title: 'Run'
  });
  private readonly _snapshot = h('select', {
    class: 'llmlab-Input llmlab-SnapshotName',
    title: 'Snapshot'
  });
  private readonly _info = h('p', {
    class: 'llmlab-Panel-description llmlab-SnapshotInfo'
  });
  private readonly _message = new MessageLine();
  private readonly _viewHost = h('div', { class: 'llmlab-InspectorHost' });
  private _runs: IRunSnapshots[] = [];
  private _store = '';
  private _storeRelative: Promise<string | null> = Promise.resolve(null);
  private _view: InspectorView | null = null;
  /** `<run id>/<name>` of the snapshot shown (or being opened). */
  private _shown = '';
  private _opens = 0;
  private _listed = false;
  /** When the snapshot being opened was asked for, until its first picture. */
  private _openedAt: number | null = null;

  private _host: SnapshotHost | null = null;
  private _size = 0;
  private _resizeTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly _openMain: HTMLButtonElement | null = null;

  constructor(
    private readonly _lab: ILabContext,
    private readonly _place: IInspectorPlace = { main: false }
  ) {
    super({
      id: _place.main
        ? `${AttentionInspectorPanel.ID}-main-${++mainCount}`
        : AttentionInspectorPanel.ID,
      label: 'Attention inspector',
      icon: attentionIcon,
      description:
        'Attention snapshots saved in the run store: pick a run and a snapshot, then a ' +
        'layer and head (or click a thumbnail).'
    });
    this.addClass('llmlab-AttentionInspector');
    if (_place.main) {
      this.addClass('llmlab-AttentionInspector-main');
      this.title.label = 'Attention inspector';
      this.title.closable = true;
    }
    this._run.addEventListener('change', () => {
      this._fillSnapshots();
      void this._openSelected();
    });
    this._snapshot.addEventListener('change', () => void this._openSelected());
    const refresh = button(
      'Refresh',
      { class: 'jp-Button llmlab-Button llmlab-Refresh', title: 'Reload the snapshot list' },
      () => void this.refresh()
    );
    const insert = button(
      'Insert code',
      {
        class: 'jp-Button llmlab-Button llmlab-InsertSnapshot',
        title: 'Insert a cell that loads this snapshot into the current notebook'
      },
      () => void this._insertCode()
    );
    this._viewHost.addEventListener(DRAWN_EVENT, event => this._drawn(event as CustomEvent));
    const openMain = _place.openMain;
    if (openMain) {
      this._openMain = button(
        'Open in main area',
        {
          class: 'jp-Button llmlab-Button llmlab-OpenMain',
          title: 'Open this snapshot in the main work area, where the heatmap has room'
        },
        () => {
          const run = this._selectedRun();
          if (run && this._shown && this._view) {
            openMain({ runId: run.runId, name: this._snapshot.value, state: this._view.getState() });
          }
        }
      );
      this._openMain.disabled = true;
    }
    this.body.append(
      h('div', { class: 'llmlab-Row' }, this._run, refresh),
      h('div', { class: 'llmlab-Row' }, this._snapshot, insert),
      ...(this._openMain ? [h('div', { class: 'llmlab-Row' }, this._openMain)] : []),
      this._info,
      this._message.node,
      this._viewHost
    );
  }

  protected onShown(): void {
    if (this._listed) return;
    const initial = this._place.initial;
    void (initial ? this.showSnapshot(initial) : this.refresh());
  }

  /** Reload the snapshot list, keeping the selection when it is still there, and open the
   * selected snapshot (unless `openSelected` is false). */
  async refresh(openSelected = true): Promise<void> {
    this._listed = true;
    let list: ISnapshotList;
    try {
      list = await listSnapshots();
    } catch (error) {
      this._message.show(errorMessage(error), 'error');
      return;
    }
    if (list.store !== this._store) {
      this._store = list.store;
      this._storeRelative = storeInRoot(list.store, this._lab.app.serviceManager.contents);
    }
    const wantedRun = this._run.value;
    const wantedName = this._snapshot.value;
    const hadSnapshots = this._runs.length > 0;
    this._runs = groupByRun(list.snapshots);
    this._run.replaceChildren(
      ...this._runs.map(run => h('option', { value: run.runId }, runLabel(run)))
    );
    const empty = emptyStoreMessage(list, hadSnapshots);
    this._run.disabled = this._snapshot.disabled = !!empty;
    if (empty) {
      this._snapshot.replaceChildren();
      this._info.textContent = '';
      this._closeView();
      this._message.show(empty, 'info');
      return;
    }
    this._message.clear();
    if (this._runs.some(run => run.runId === wantedRun)) {
      this._run.value = wantedRun;
    }
    this._fillSnapshots(wantedName);
    if (openSelected) {
      await this._openSelected();
    }
  }

  /** Show snapshot `name` of run `runId` with the view in `state` (the main-area document
   * opened from the sidebar starts where the sidebar was). */
  async showSnapshot({ runId, name, state }: IShownSnapshot): Promise<void> {
    await this.refresh(false);
    if (this._runs.some(run => run.runId === runId)) {
      this._run.value = runId;
    }
    this._fillSnapshots(name);
    const run = this._selectedRun();
    this.title.label = `Attention: ${run ? runLabel(run) : runId} / ${name}`;
    await this.open(runId, name, state);
  }

  /** Open snapshot `name` of run `runId` (also what the UI tests and benchmarks call). */
  async open(runId: string, name: string, state: Partial<IViewState> = {}): Promise<void> {
    const key = `${runId}/${name}`;
    const open = ++this._opens;
    this._shown = key;
    this._openedAt = performance.mark('llmlab:snapshot-open', { detail: key }).startTime;
    this._message.show(`Opening ${name}…`);
    try {
      const [info, thumbs] = await Promise.all([
        snapshotInfo(runId, name),
        snapshotThumbs(runId, name)
      ]);
      if (open !== this._opens) {
        return; // another snapshot was picked meanwhile
      }
      this._closeView();
      this._host = new SnapshotHost(info, thumbs);
      this._mountView(state);
      this._message.clear();
      const sides = Object.entries(info.sides)
        .map(([side, s]) => `${s.tokens.length} ${side} tokens`)
        .join(', ');
      this._info.textContent =
        `${info.family} · ${sides} · heads ${info.heads.length} of ${info.n_heads} · ` +
        `format ${info.format_version}` + (info.created_at ? ` · saved ${info.created_at}` : '');
    } catch (error) {
      if (open === this._opens) {
        this._closeView();
        this._info.textContent = '';
        this._message.show(`Cannot open ${name}: ${errorMessage(error)}`, 'error');
      }
    }
  }

  private _selectedRun(): IRunSnapshots | undefined {
    return this._runs.find(run => run.runId === this._run.value);
  }

  private _fillSnapshots(wanted = ''): void {
    const run = this._selectedRun();
    const entries = run?.entries || [];
    this._snapshot.replaceChildren(
      ...entries.map(e => h('option', { value: e.name, 'data-error': !!e.error }, snapshotLabel(e)))
    );
    const keep = entries.find(e => e.name === wanted);
    const pick = keep || firstReadable(run) || entries[0];
    if (pick) {
      this._snapshot.value = pick.name;
    }
  }

  private async _openSelected(): Promise<void> {
    const run = this._selectedRun();
    const entry = run?.entries.find(e => e.name === this._snapshot.value);
    if (!run || !entry) {
      return;
    }
    const warning = runWarning(run);
    if (entry.error) {
      ++this._opens;
      this._shown = '';
      this._closeView();
      this._info.textContent = warning;
      this._message.show(`Cannot open ${entry.name}: ${entry.error}`, 'error');
      return;
    }
    if (`${run.runId}/${entry.name}` === this._shown && this._view) {
      return;
    }
    await this.open(run.runId, entry.name);
    if (warning) {
      this._message.show(warning, 'info');
    }
  }

  /** The heatmap size this panel's width gives. */
  private _fitSize(): number {
    const wide = this.node.clientWidth - SIDE_ROOM;
    if (!this._place.main) return Math.max(MIN_SIZE, Math.min(MAX_SIZE, wide));
    // a document: the heatmap as large as the area allows below the pickers and toolbar
    const tall = this.node.clientHeight - TOP_ROOM;
    return Math.max(MIN_SIZE, Math.min(MAX_MAIN_SIZE, wide, tall));
  }

  /** A view of the open snapshot sized to the panel, in `state`. */
  private _mountView(state: Partial<IViewState>): void {
    if (!this._host) return;
    this._view?.dispose();
    this._viewHost.replaceChildren();
    this._size = this._fitSize();
    this._view = new InspectorView(this._host, state, this._size);
    this._viewHost.append(this._view.node);
    // as the notebook widget does: tests and benchmarks reach the view through its host node
    (this._viewHost as HTMLElement & { llmlabInspector?: InspectorView }).llmlabInspector =
      this._view;
    if (this._openMain) this._openMain.disabled = false;
  }

  /** In the main area the heatmap follows the document's width (redrawn once resizing stops;
   * the snapshot's matrices stay cached in its host). */
  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    if (!this._place.main || !this._view) return;
    if (this._resizeTimer !== null) clearTimeout(this._resizeTimer);
    this._resizeTimer = setTimeout(() => {
      this._resizeTimer = null;
      if (this._view && Math.abs(this._fitSize() - this._size) >= RESIZE_STEP) {
        this._mountView(this._view.getState());
      }
    }, RESIZE_MS);
  }

  private _closeView(): void {
    this._view?.dispose();
    this._view = null;
    this._host = null;
    this._viewHost.replaceChildren();
    if (this._openMain) this._openMain.disabled = true;
  }

  private _drawn(event: CustomEvent): void {
    const now = performance.now();
    const detail = event.detail as { key: string; ms: number };
    performance.measure('llmlab:attention-draw', { start: now - detail.ms, end: now, detail });
    if (this._openedAt !== null) {
      performance.measure('llmlab:snapshot-first-draw', {
        start: this._openedAt,
        end: now,
        detail: this._shown
      });
      this._openedAt = null;
    }
  }

  private async _insertCode(): Promise<void> {
    const run = this._selectedRun();
    const name = this._snapshot.value;
    if (!run || !name) {
      this._message.show('Pick a snapshot first.', 'error');
      return;
    }
    const relative = await this._storeRelative;
    try {
      const path = await insertCodeCell(this._lab, notebook =>
        snapshotCode(run.runId, name, storeForKernel(relative, this._store, notebook))
      );
      this._message.show(`Inserted code for ${name} into ${path}.`, 'success');
    } catch (error) {
      this._message.show(errorMessage(error), 'error');
    }
  }
}
