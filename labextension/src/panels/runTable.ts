/**
 * The run table of the Run history panel: sortable columns (click a header), a
 * page of rows at a time, status badges, a checkbox per run to compare curves,
 * and per-run actions.
 *
 *   const table = new RunTable({ selectionChanged: ids => draw(ids), insertCode, openFolder });
 *   table.rows = page.runs;
 */
import type { IRunRow } from '../api';
import { button, h } from './dom';
import {
  formatShare,
  formatThroughput,
  formatTick,
  formatTime,
  formatValue
} from './format';
import { seriesColour } from './lineChart';

/** What the table tells its owner. */
export interface IRunTableHandlers {
  /** The ticked runs changed; `ids` in the order they were ticked. */
  selectionChanged(ids: string[]): void;
  insertCode(run: IRunRow): void;
  openFolder(run: IRunRow): void;
}

/** A sortable column: its header, the value it sorts by and how a cell shows it. */
interface IColumn {
  key: keyof IRunRow;
  label: string;
  cell?: (run: IRunRow, shared: Set<string>) => Node | string;
  numeric?: boolean;
}

const COLUMNS: IColumn[] = [
  { key: 'name', label: 'name', cell: nameCell },
  { key: 'status', label: 'status', cell: statusBadge },
  { key: 'steps', label: 'steps', numeric: true },
  {
    key: 'train_loss',
    label: 'train loss',
    numeric: true,
    cell: r => formatValue(r.train_loss)
  },
  {
    key: 'val_loss',
    label: 'val loss',
    numeric: true,
    cell: r => formatValue(r.val_loss)
  },
  {
    key: 'tokens_per_s',
    label: 'tok/s',
    numeric: true,
    cell: r => formatThroughput(r.tokens_per_s)
  },
  { key: 'mfu', label: 'MFU', numeric: true, cell: r => formatShare(r.mfu) },
  {
    key: 'params',
    label: 'params',
    numeric: true,
    cell: r => (r.params === null ? '' : formatTick(r.params))
  },
  { key: 'created_at', label: 'created', cell: createdCell }
];

const PAGE_SIZE = 20;

export class RunTable {
  readonly node = h('div', { class: 'llmlab-RunTable' });
  private _rows: IRunRow[] = [];
  private _sortKey: keyof IRunRow = 'created_at';
  private _descending = true;
  private _page = 0;
  private _selected: string[] = [];
  private _body: HTMLElement | null = null;
  private readonly _pagerHost = h('div', {});
  private _renderedSort = '';
  private _renderedPager = '';
  private readonly _rowNodes = new Map<
    string,
    { key: string; node: HTMLElement }
  >();

  constructor(private readonly _handlers: IRunTableHandlers) {}

  /** Ticked run ids, in the order they were ticked. */
  get selected(): string[] {
    return [...this._selected];
  }

  /** Replace the rows (a refresh keeps the sort, the page where possible and the ticks). */
  set rows(rows: IRunRow[]) {
    this._rows = rows;
    const ids = new Set(rows.map(r => r.id));
    const kept = this._selected.filter(id => ids.has(id));
    const changed = kept.length !== this._selected.length;
    this._selected = kept;
    this._page = Math.min(this._page, Math.max(0, this._pageCount() - 1));
    this._render();
    if (changed) {
      this._handlers.selectionChanged(this.selected);
    }
  }

  private _pageCount(): number {
    return Math.ceil(this._rows.length / PAGE_SIZE);
  }

  private _sorted(): IRunRow[] {
    const sign = this._descending ? -1 : 1;
    return [...this._rows].sort((a, b) => {
      const [x, y] = [sortValue(a, this._sortKey), sortValue(b, this._sortKey)];
      if (x === null || y === null) {
        return x === y ? 0 : x === null ? 1 : -1; // missing values last either way
      }
      return compareValues(x, y) * sign || a.id.localeCompare(b.id);
    });
  }

  private _sortBy(key: keyof IRunRow): void {
    this._descending =
      key === this._sortKey ? !this._descending : key !== 'name';
    this._sortKey = key;
    this._page = 0;
    this._render();
  }

  private _toggle(id: string, on: boolean): void {
    this._selected = this._selected.filter(s => s !== id);
    if (on) {
      this._selected.push(id);
    }
    this._render();
    this._handlers.selectionChanged(this.selected);
  }

  /**
   * Show the current page. Only what changed is rebuilt: a poll that finds the same runs
   * leaves every node in place, so a click, focus or scroll position survives it.
   */
  private _render(): void {
    if (!this._rows.length) {
      this._body = null;
      this.node.replaceChildren(
        h('p', { class: 'llmlab-Empty' }, 'No runs match.')
      );
      return;
    }
    const start = this._page * PAGE_SIZE;
    const page = this._sorted().slice(start, start + PAGE_SIZE);
    const sort = `${String(this._sortKey)} ${this._descending}`;
    if (!this._body || sort !== this._renderedSort) {
      this._body = h('tbody', {});
      this._renderedSort = sort;
      this._renderedPager = '';
      this.node.replaceChildren(
        h(
          'div',
          { class: 'llmlab-TableScroll' },
          h('table', { class: 'llmlab-Table' }, this._head(), this._body)
        ),
        this._pagerHost
      );
    }
    const shared = sharedNames(this._rows);
    placeChildren(
      this._body,
      page.map(run => this._cachedRow(run, shared))
    );
    this._forgetRowsNotIn(page);
    const pager = `${this._page} ${this._pageCount()} ${start} ${page.length} ${this._rows.length}`;
    if (pager !== this._renderedPager) {
      this._renderedPager = pager;
      this._pagerHost.replaceChildren(this._pager(start, page.length));
    }
  }

  private _head(): HTMLElement {
    const headers = COLUMNS.map(column => {
      const sorted = column.key === this._sortKey;
      const th = h(
        'th',
        {
          class: column.numeric ? 'llmlab-mod-numeric' : undefined,
          'data-key': column.key,
          'data-col': column.key,
          'aria-sort': sorted
            ? this._descending
              ? 'descending'
              : 'ascending'
            : undefined,
          title: `Sort by ${column.label}`
        },
        column.label + (sorted ? (this._descending ? ' ▼' : ' ▲') : '')
      );
      th.addEventListener('click', () => this._sortBy(column.key));
      return th;
    });
    return h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { title: 'Tick runs to compare their curves', 'data-col': 'tick' }),
        ...headers,
        h('th', { 'data-col': 'actions' })
      )
    );
  }

  /** The row of `run`: the one already shown when nothing it shows (or its tick) changed. */
  private _cachedRow(run: IRunRow, shared: Set<string>): HTMLElement {
    const shown: unknown[] = [
      this._selected.indexOf(run.id),
      shared.has(run.name),
      run.id,
      run.kind,
      run.family,
      run.tags,
      run.error,
      ...COLUMNS.map(column => run[column.key])
    ];
    const key = JSON.stringify(shown);
    const cached = this._rowNodes.get(run.id);
    if (cached?.key === key) {
      return cached.node;
    }
    const node = this._row(run, shared);
    this._rowNodes.set(run.id, { key, node });
    return node;
  }

  private _forgetRowsNotIn(page: IRunRow[]): void {
    const shown = new Set(page.map(r => r.id));
    for (const id of this._rowNodes.keys()) {
      if (!shown.has(id)) {
        this._rowNodes.delete(id);
      }
    }
  }

  private _row(run: IRunRow, shared: Set<string>): HTMLElement {
    const index = this._selected.indexOf(run.id);
    const box = h('input', {
      type: 'checkbox',
      checked: index >= 0,
      'aria-label': `Compare ${run.name}`
    });
    box.addEventListener('change', () => this._toggle(run.id, box.checked));
    const tick = h('td', { class: 'llmlab-Tick', 'data-col': 'tick' }, box);
    if (index >= 0) {
      tick.style.borderLeftColor = seriesColour(index);
    }
    const code = button(
      'code',
      {
        class: 'llmlab-Action',
        title: 'Insert code that opens this run into the current notebook'
      },
      () => this._handlers.insertCode(run)
    );
    const folder = button(
      'folder',
      { class: 'llmlab-Action', title: "Open this run's folder" },
      () => this._handlers.openFolder(run)
    );
    return h(
      'tr',
      { 'data-run-id': run.id, 'data-status': run.status },
      tick,
      ...COLUMNS.map(column =>
        h(
          'td',
          {
            class: column.numeric ? 'llmlab-mod-numeric' : undefined,
            'data-col': column.key,
            // the narrow layout names each value, since its headers cannot line up
            'data-label': column.label
          },
          column.cell
            ? column.cell(run, shared)
            : String(run[column.key] ?? '')
        )
      ),
      h('td', { class: 'llmlab-Actions', 'data-col': 'actions' }, code, folder)
    );
  }

  private _turnPage(by: number): void {
    this._page += by;
    this._render();
  }

  private _pager(start: number, shown: number): HTMLElement {
    const previous = button(
      '‹ prev',
      { class: 'llmlab-Action', disabled: this._page === 0 },
      () => this._turnPage(-1)
    );
    const next = button(
      'next ›',
      { class: 'llmlab-Action', disabled: this._page >= this._pageCount() - 1 },
      () => this._turnPage(1)
    );
    return h(
      'div',
      { class: 'llmlab-Pager' },
      previous,
      h('span', {}, `${start + 1}–${start + shown} of ${this._rows.length}`),
      next
    );
  }
}

/**
 * The run's full name; where another listed run has the same name, its id's last six
 * digits beside it so the two can be told apart. The tooltip has the id, kind, family, tags.
 */
function nameCell(run: IRunRow, shared: Set<string>): Node {
  const details = [run.id, run.kind, run.family, ...(run.tags ?? [])]
    .filter(Boolean)
    .join(' · ');
  const suffix =
    shared.has(run.name) && run.name !== run.id
      ? [h('span', { class: 'llmlab-RunSuffix' }, ` · ${run.id.slice(-6)}`)]
      : [];
  return h(
    'span',
    {
      class: 'llmlab-RunName',
      title: run.error ? `${details}\n${run.error}` : details
    },
    run.name,
    ...suffix
  );
}

/** The creation time as local "YYYY-MM-DD HH:MM", the exact ISO time in its tooltip. */
function createdCell(run: IRunRow): Node {
  return h(
    'time',
    { datetime: run.created_at ?? '', title: run.created_at ?? '' },
    formatTime(run.created_at)
  );
}

/** Names that more than one of `rows` has. */
export function sharedNames(rows: IRunRow[]): Set<string> {
  const seen = new Set<string>();
  const shared = new Set<string>();
  for (const { name } of rows) {
    (seen.has(name) ? shared : seen).add(name);
  }
  return shared;
}

/** What a column sorts by: numbers as numbers, times as epoch ms, text as shown. */
export function sortValue(
  run: IRunRow,
  key: keyof IRunRow
): number | string | null {
  const value = run[key];
  if (value === null || value === undefined) {
    return null;
  }
  if (key.endsWith('_at')) {
    const time = Date.parse(String(value));
    return isNaN(time) ? null : time;
  }
  return typeof value === 'number' ? value : String(value);
}

const TEXT_ORDER = new Intl.Collator(undefined, {
  numeric: true,
  sensitivity: 'base'
});

/** Numbers by value; text as a person orders it ("run-2" before "run-10", any case). */
export function compareValues(x: number | string, y: number | string): number {
  return typeof x === 'number' && typeof y === 'number'
    ? x - y
    : TEXT_ORDER.compare(String(x), String(y));
}
/** A coloured label for a run's status; the error, if any, in its tooltip. */
function statusBadge(run: IRunRow): Node {
  return h(
    'span',
    {
      class: `llmlab-Status llmlab-Status-${run.status}`,
      title: run.error ?? run.status
    },
    run.status
  );
}

/** Make `parent`'s children exactly `nodes`, moving only those not already in place. */
function placeChildren(parent: HTMLElement, nodes: HTMLElement[]): void {
  nodes.forEach((node, i) => {
    const current = parent.children[i] ?? null;
    if (current !== node) {
      parent.insertBefore(node, current);
    }
  });
  while (parent.children.length > nodes.length) {
    parent.lastElementChild!.remove();
  }
}
