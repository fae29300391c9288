/**
 * A small SVG line chart: linear axes with round-number ticks, one coloured line
 * per series, and a legend. Written here rather than pulling in a charting
 * library because the panel needs only this and the extension stays small.
 *
 *   panel.append(lineChart([{ label: 'run a', colour: seriesColour(0), points }],
 *                          { xLabel: 'step', yLabel: 'train/loss' }));
 */
import { h } from './dom';
import { formatTick } from './format';

/** One line: its name, colour and (x, y) points in x order. */
export interface ISeries {
  label: string;
  colour: string;
  points: [number, number][];
}

export interface IChartOptions {
  xLabel: string;
  yLabel: string;
  /** Width in CSS pixels (give the container's, so text keeps its size); default 320. */
  width?: number;
}

/** Ten colours that stay apart on light and dark themes; they repeat after ten. */
const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf'
];

/** The colour of the i-th series. */
export function seriesColour(i: number): string {
  return PALETTE[i % PALETTE.length];
}

const DEFAULT_WIDTH = 320;
const HEIGHT = 190;
const MARGIN = { left: 46, right: 10, top: 10, bottom: 34 };
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Draw `series`; series without points are listed in the legend as "(no data)". */
export function lineChart(
  series: ISeries[],
  options: IChartOptions
): HTMLElement {
  const all = ([] as [number, number][]).concat(...series.map(s => s.points));
  const width = Math.max(200, options.width || DEFAULT_WIDTH);
  const svg = svgElement('svg', {
    class: 'llmlab-LineChart-svg',
    viewBox: `0 0 ${width} ${HEIGHT}`,
    role: 'img',
    'aria-label': `${options.yLabel} against ${options.xLabel}`
  });
  if (all.length) {
    const x = scale(
      all.map(p => p[0]),
      MARGIN.left,
      width - MARGIN.right
    );
    const y = scale(
      all.map(p => p[1]),
      HEIGHT - MARGIN.bottom,
      MARGIN.top
    );
    svg.append(...axes(x, y, width, options));
    for (const s of series) {
      svg.append(...line(s, x, y));
    }
  }
  const legend = h(
    'ul',
    { class: 'llmlab-LineChart-legend' },
    ...series.map(s =>
      h(
        'li',
        {},
        h('span', { class: 'llmlab-Swatch', style: `background: ${s.colour}` }),
        s.points.length ? s.label : `${s.label} (no data)`
      )
    )
  );
  return h('div', { class: 'llmlab-LineChart' }, svg, legend);
}

/** A linear map from data to pixels over round-number bounds, with its ticks. */
interface IScale {
  (value: number): number;
  ticks: number[];
}

function scale(values: number[], from: number, to: number): IScale {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  const ticks = niceTicks(lo, hi, 5);
  lo = Math.min(lo, ticks[0]);
  hi = Math.max(hi, ticks[ticks.length - 1]);
  const map = ((value: number) =>
    from + ((value - lo) / (hi - lo)) * (to - from)) as IScale;
  map.ticks = ticks;
  return map;
}

/** About `count` evenly spaced round numbers (1, 2 or 5 times a power of ten) covering lo..hi. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map(m => m * power).find(s => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  if (ticks[ticks.length - 1] < hi) {
    ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  }
  return ticks;
}

function axes(
  x: IScale,
  y: IScale,
  width: number,
  options: IChartOptions
): SVGElement[] {
  const [left, right] = [MARGIN.left, width - MARGIN.right];
  const [top, bottom] = [MARGIN.top, HEIGHT - MARGIN.bottom];
  const parts: SVGElement[] = [];
  for (const t of y.ticks) {
    parts.push(
      svgElement('line', {
        class: 'llmlab-LineChart-grid',
        x1: left,
        x2: right,
        y1: y(t),
        y2: y(t)
      }),
      text(formatTick(t), left - 4, y(t) + 3, 'end')
    );
  }
  for (const t of x.ticks) {
    parts.push(
      svgElement('line', {
        class: 'llmlab-LineChart-tick',
        x1: x(t),
        x2: x(t),
        y1: bottom,
        y2: bottom + 4
      }),
      text(formatTick(t), x(t), bottom + 14, 'middle')
    );
  }
  parts.push(
    svgElement('path', {
      class: 'llmlab-LineChart-axis',
      d: `M${left} ${top}V${bottom}H${right}`
    }),
    text(options.xLabel, (left + right) / 2, HEIGHT - 4, 'middle'),
    text(options.yLabel, left, top - 2, 'start', 'llmlab-LineChart-ylabel')
  );
  return parts;
}

function line(s: ISeries, x: IScale, y: IScale): SVGElement[] {
  if (!s.points.length) {
    return [];
  }
  const d = s.points
    .map(
      ([px, py], i) => `${i ? 'L' : 'M'}${x(px).toFixed(1)} ${y(py).toFixed(1)}`
    )
    .join('');
  const path = svgElement('path', {
    class: 'llmlab-LineChart-line',
    d,
    stroke: s.colour
  });
  path.append(svgElement('title', {}, s.label));
  if (s.points.length > 1) {
    return [path];
  }
  const [[px, py]] = s.points; // one point draws no line: mark it
  return [
    path,
    svgElement('circle', { cx: x(px), cy: y(py), r: 3, fill: s.colour })
  ];
}

function text(
  content: string,
  x: number,
  y: number,
  anchor: string,
  cls = 'llmlab-LineChart-label'
): SVGElement {
  return svgElement(
    'text',
    { class: cls, x, y, 'text-anchor': anchor },
    content
  );
}

function svgElement(
  tag: string,
  attributes: Record<string, string | number>,
  content?: string
): SVGElement {
  const element = document.createElementNS(SVG_NS, tag) as SVGElement;
  for (const [name, value] of Object.entries(attributes)) {
    element.setAttribute(name, String(value));
  }
  if (content !== undefined) {
    element.textContent = content;
  }
  return element;
}
