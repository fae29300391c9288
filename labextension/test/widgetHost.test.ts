import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { IAnyModel, WidgetHost } from '../src/inspector/widget';

/** A Backbone-like model: set() fires change events; sent holds what save_changes sent. */
function fakeModel(initial: { [k: string]: unknown }) {
  const values: { [k: string]: unknown } = { ...initial };
  const handlers = new Map<string, ((...a: any[]) => void)[]>();
  const sent: { [k: string]: unknown }[] = [];
  let dirty: { [k: string]: unknown } = {};
  const model: IAnyModel = {
    get: k => values[k],
    set: (k, v) => {
      values[k] = v;
      dirty[k] = v;
      for (const h of handlers.get(`change:${k}`) || []) h();
    },
    save_changes: () => {
      sent.push(dirty);
      dirty = {};
    },
    on: (e, cb) => handlers.set(e, [...(handlers.get(e) || []), cb]),
    off: () => undefined,
    send: () => undefined
  };
  /** The kernel writing a value (an echo or a change made in Python). */
  const fromKernel = (k: string, v: unknown) => {
    values[k] = v;
    for (const h of handlers.get(`change:${k}`) || []) h();
  };
  return { model, values, sent, fromKernel };
}

const STATE = {
  kind: 'decoder', layer: 0, head: 0, agg: 'head', hide_first: false, merge_words: false,
  selected: [], direction: 'from', view: 'heatmap', top_k: 8, scale: 'linear'
} as const;

describe('WidgetHost', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps a pick made before the save when the echo of an older pick arrives', () => {
    const m = fakeModel({ ...STATE });
    const host = new WidgetHost(m.model);
    host.stateChanged({ ...STATE, layer: 1 } as any);
    vi.advanceTimersByTime(150); // layer 1 sent
    expect(m.sent.at(-1)).toEqual({ layer: 1 });
    host.stateChanged({ ...STATE, layer: 2 } as any); // picked before the echo came back
    m.fromKernel('layer', 1); // the echo of the first pick
    host.keepUnsent(); // what the change handler does
    expect(m.values.layer).toBe(2);
    vi.advanceTimersByTime(150);
    expect(m.sent.at(-1)).toEqual({ layer: 2 });
    // once sent, a change made in Python is taken as it is
    m.fromKernel('layer', 5);
    host.keepUnsent();
    expect(m.values.layer).toBe(5);
  });

  it('sends a burst of changes once', () => {
    const m = fakeModel({ ...STATE });
    const host = new WidgetHost(m.model);
    host.stateChanged({ ...STATE, head: 1 } as any);
    host.stateChanged({ ...STATE, head: 2 } as any);
    host.stateChanged({ ...STATE, head: 3 } as any);
    vi.advanceTimersByTime(150);
    expect(m.sent).toEqual([{ head: 3 }]);
  });
});
