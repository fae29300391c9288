/**
 * Run history panel: the runs of the server's run store in a sortable, filterable,
 * paged table that refreshes itself while a run is running; tick runs to overlay
 * a metric's curves; insert code that opens a run, or open its folder.
 */
import type { Message } from '@lumino/messaging';
import type { Widget } from '@lumino/widgets';

import {
  IMetricsReply,
  IRunRow,
  IRunsPage,
  IRunsQuery,
  errorMessage,
  listRuns,
  runMetrics
} from '../api';
import { runHistoryIcon } from '../icons';
import { button, h, MessageLine } from './dom';
import { ISeries, lineChart, seriesColour } from './lineChart';
import { insertCodeCell } from './notebook';
import { ILabContext, LlmlabPanel } from './panel';
import { runCode } from './python';
import { RunTable, sharedNames } from './runTable';
import { missingStoreMessage, storeForKernel, storeInRoot } from './storeLocation';

const STATUSES = ['running', 'finished', 'failed', 'interrupted', 'corrupt'];
/** How often the table reloads while a listed run is running. */
const POLL_MS = 3000;
/** How often it looks for a run that started (a TrainerWidget's Start) while none runs. */
const IDLE_POLL_MS = 10000;
const FILTER_DELAY_MS = 300;
/** The server's largest page; the panel loads every matching run to sort them all. */
const FETCH_LIMIT = 500;
const DEFAULT_METRIC = 'train/loss';

/** A run's metrics as last fetched, and the manifest time they belong to. */
interface ICachedMetrics {
  updatedAt: string | null;
  columns: IMetricsReply['columns'];
}

export class RunHistoryPanel extends LlmlabPanel {
  static readonly ID = 'llmlab-run-history';

  private readonly _query = h('input', {
    class: 'llmlab-Input llmlab-RunQuery',
    type: 'search',
    placeholder: 'filter: name, id, family or tag',
    title: 'Show runs whose name, id, family or a tag contains this text (any case)'
  });
  private readonly _status = h('select', {
    class: 'llmlab-Input llmlab-RunStatus'
  });
  private readonly _info = h('p', {
    class: 'llmlab-Panel-description llmlab-RunInfo'
  });
  private readonly _message = new MessageLine();
  private readonly _table: RunTable;
  private readonly _metric = h('select', {
    class: 'llmlab-Input llmlab-Metric'
  });
  private readonly _chart = h('div', { class: 'llmlab-ChartHost' });

  private _runs: IRunRow[] = [];
  private _store = '';
  /** The store folder vanished while runs from it were shown (said until it is back). */
  private _storeGone = false;
  private _storeRelative: Promise<string | null> = Promise.resolve(null);
  private readonly _metrics = new Map<string, ICachedMetrics>();
  private _refreshes = 0;
  private _draws = 0;
  private _poll = 0;
  private _filterTimer = 0;
  private _listFailed = false;

  constructor(private readonly _lab: ILabContext) {
    super({
      id: RunHistoryPanel.ID,
      label: 'Run history',
      icon: runHistoryIcon,
      description:
        'The runs in the run store. Click a header to sort; tick runs to ' +
        'compare their curves.'
    });
    this.addClass('llmlab-RunHistory');
    this._status.append(
      h('option', { value: '' }, 'any status'),
      ...STATUSES.map(s => h('option', { value: s }, s))
    );
    this._query.addEventListener('input', () => {
      window.clearTimeout(this._filterTimer);
      this._filterTimer = window.setTimeout(
        () => void this.refresh(),
        FILTER_DELAY_MS
      );
    });
    this._status.addEventListener('change', () => void this.refresh());
    this._metric.addEventListener('change', () => void this._drawChart());
    const refresh = button(
      'Refresh',
      { class: 'jp-Button llmlab-Button llmlab-Refresh', title: 'Reload the run list' },
      () => void this.refresh()
    );

    this._table = new RunTable({
      selectionChanged: () => void this._drawChart(),
      insertCode: run => void this._insertCode(run),
      openFolder: run => void this._openFolder(run)
    });
    this.body.append(
      h('div', { class: 'llmlab-Row' }, this._query),
      h('div', { class: 'llmlab-Row' }, this._status, refresh),
      this._info,
      this._message.node,
      this._table.node,
      h('h3', { class: 'llmlab-Section' }, 'Curves ', this._metric),
      this._chart
    );
    void this._drawChart();
  }

  /** Reload the list (keeping sort, page and ticks); poll again while a run is running. */
  async refresh(): Promise<void> {
    const refresh = ++this._refreshes;
    window.clearTimeout(this._poll);
    try {
      const { runs, store, exists } = await loadAllRuns({
        q: this._query.value.trim(),
        status: this._status.value
      });
      if (refresh !== this._refreshes) {
        return; // a newer refresh (another filter) is under way
      }
      const hadRuns = this._runs.length > 0 || this._storeGone;
      this._runs = runs;
      if (this._listFailed || this._storeGone) {
        this._listFailed = this._storeGone = false;
        this._message.clear();
      }
      if (exists === false) {
        this._storeGone = hadRuns;
        this._message.show(missingStoreMessage(store, hadRuns, START_HINT), hadRuns ? 'error' : 'info');
      }
      if (store !== this._store) {
        this._store = store;
        this._storeRelative = storeInRoot(
          store,
          this._lab.app.serviceManager.contents
        );
      }
      const running = runs.filter(r => r.status === 'running').length;
      this._info.textContent =
        `${runs.length} run${runs.length === 1 ? '' : 's'} in ${store}` +
        (running
          ? ` · ${running} running, refreshing every ${POLL_MS / 1000} s`
          : '');
      this._table.rows = runs;
      void this._drawChart();
      if (this.isVisible) {
        this._poll = window.setTimeout(
          () => void this.refresh(),
          running ? POLL_MS : IDLE_POLL_MS
        );
      }
    } catch (error) {
      this._listFailed = true;
      this._message.show(
        `Cannot list runs: ${errorMessage(error)} Press Refresh to retry.`,
        'error'
      );
    }
  }

  protected onShown(): void {
    void this.refresh();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    if (this._table.selected.length) {
      void this._drawChart(); // at the new width (metrics are cached)
    }
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearTimeout(this._poll); // no polling for a panel nobody sees
  }

  dispose(): void {
    window.clearTimeout(this._poll);
    window.clearTimeout(this._filterTimer);
    super.dispose();
  }

  /** Overlay the chosen metric of the ticked runs (fetching metrics that changed). */
  private async _drawChart(): Promise<void> {
    const draw = ++this._draws;
    const runs = this._table.selected
      .map(id => this._runs.find(r => r.id === id))
      .filter((r): r is IRunRow => !!r);
    for (const id of this._metrics.keys()) {
      if (!runs.some(r => r.id === id)) {
        this._metrics.delete(id);
      }
    }
    if (!runs.length) {
      this._metric.disabled = true;
      this._chart.replaceChildren(
        h(
          'p',
          { class: 'llmlab-Empty' },
          'Tick runs in the table to compare their curves.'
        )
      );
      return;
    }
    try {
      await Promise.all(runs.map(run => this._loadMetrics(run)));
    } catch (error) {
      this._message.show(
        `Cannot load metrics: ${errorMessage(error)}`,
        'error'
      );
      return;
    }
    if (draw !== this._draws) {
      return;
    }
    const metric = this._fillMetrics(runs);
    const shared = sharedNames(this._runs);
    const series: ISeries[] = runs.map((run, i) => ({
      label: shared.has(run.name) ? `${run.name} · ${run.id.slice(-6)}` : run.name,
      colour: seriesColour(i),
      points: points(this._metrics.get(run.id)!.columns, metric)
    }));
    this._chart.replaceChildren(
      lineChart(series, {
        xLabel: 'step',
        yLabel: metric,
        width: this._chart.clientWidth
      })
    );
  }

  private async _loadMetrics(run: IRunRow): Promise<void> {
    const cached = this._metrics.get(run.id);
    if (cached && cached.updatedAt === run.updated_at) {
      return;
    }
    const { columns } = await runMetrics(run.id);
    this._metrics.set(run.id, { updatedAt: run.updated_at, columns });
  }

  /** Offer every metric the ticked runs logged; keep the choice, else train/loss. */
  private _fillMetrics(runs: IRunRow[]): string {
    const names = new Set<string>();
    for (const run of runs) {
      Object.keys(this._metrics.get(run.id)!.columns)
        .filter(name => name !== 'step')
        .forEach(name => names.add(name));
    }
    const sorted = [...names].sort();
    const current = this._metric.value;
    const metric = names.has(current)
      ? current
      : names.has(DEFAULT_METRIC)
        ? DEFAULT_METRIC
        : (sorted[0] ?? DEFAULT_METRIC);
    this._metric.replaceChildren(
      ...sorted.map(name => h('option', { value: name }, name))
    );
    this._metric.value = metric;
    this._metric.disabled = !sorted.length;
    return metric;
  }

  private async _insertCode(run: IRunRow): Promise<void> {
    const relative = await this._storeRelative;
    try {
      const path = await insertCodeCell(this._lab, notebook =>
        runCode(run.id, storeForKernel(relative, this._store, notebook))
      );
      this._message.show(
        `Inserted code for ${run.name} into ${path}.`,
        'success'
      );
    } catch (error) {
      this._message.show(errorMessage(error), 'error');
    }
  }

  /** Show the run's folder in the file browser, or its path when JupyterLab cannot reach it. */
  private async _openFolder(run: IRunRow): Promise<void> {
    const relative = await this._storeRelative;
    const { commands } = this._lab.app;
    if (relative !== null && commands.hasCommand('filebrowser:go-to-path')) {
      const path = relative ? `${relative}/${run.id}` : run.id;
      try {
        await commands.execute('filebrowser:go-to-path', { path });
        this._message.show(`Showing ${path} in the file browser.`, 'success');
      } catch (error) {
        this._message.show(
          `Cannot show ${path} in the file browser: ${errorMessage(error)}`,
          'error'
        );
      }
      return;
    }
    const separator = this._store.includes('/') ? '/' : '\\';
    this._message.show(
      `The run's folder is ${this._store}${separator}${run.id}; it lies outside the ` +
        "Jupyter server's root, so the file browser cannot show it.",
      'info'
    );
  }
}

/** What to do in an empty store. */
const START_HINT =
  'Runs appear here once a training starts (llmlab.Trainer, a TrainerWidget or python -m llmlab.train).';

/** Every run matching `query`, fetched a page at a time. */
async function loadAllRuns(query: IRunsQuery): Promise<IRunsPage> {
  const first = await listRuns({ ...query, limit: FETCH_LIMIT });
  const runs = [...first.runs];
  while (runs.length < first.total) {
    const next = await listRuns({
      ...query,
      offset: runs.length,
      limit: FETCH_LIMIT
    });
    if (!next.runs.length) {
      break; // runs were deleted meanwhile
    }
    runs.push(...next.runs);
  }
  return { ...first, runs };
}

/** The (step, value) points of one metric, skipping steps where it was not logged. */
function points(
  columns: IMetricsReply['columns'],
  metric: string
): [number, number][] {
  const steps = columns.step ?? [];
  const values = columns[metric] ?? [];
  const out: [number, number][] = [];
  steps.forEach((step, i) => {
    const value = values[i];
    if (step !== null && value !== null && value !== undefined) {
      out.push([step, value]);
    }
  });
  return out;
}
